//! The API's OpenAPI 3.1 description, served at `GET /api/openapi.json` and read by the
//! console's reference page. utoipa builds it from each handler's `#[utoipa::path]` and the
//! response types' `ToSchema` derives; every API file contributes a `Doc` listing its
//! handlers. `tests/it/openapi.rs` checks that every route `routes()` registers is described,
//! and the test suite checks every API response it receives against this document.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rapport API",
        description = "The JSON API of Rapport CRM. Send an API token as `Authorization: Bearer …` \
(made in the console under Account → API tokens, or with `rapport token create`). Bodies are \
camelCase JSON; lists answer `{\"data\": […], \"nextCursor\": …}` and take `limit` (1–500) and \
`cursor`; errors are RFC 9457 problems (`application/problem+json`). Writes accept an \
`Idempotency-Key` header; reads answer an `ETag` that `If-Match` turns into a precondition.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(openapi_json),
    components(schemas(crate::error::Problem<'static>)),
    modifiers(&Common)
)]
struct Base;

/// The bearer scheme, a token required everywhere unless an operation says otherwise, and
/// the problem answer every operation may give.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token; it acts as its user, narrowed to the token's scopes.",
                    ))
                    .build(),
            ),
        );
        components.responses.insert(
            "Problem".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "The request failed: 400 malformed, 401 no valid token, 403 not allowed, \
                         404 not found, 409 conflict, 412 precondition failed, 413 too large, \
                         422 invalid (with `errors` per field), 429 rate limited (`Retry-After`), \
                         503 unavailable.",
                    )
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new(
            "token",
            Vec::<String>::new(),
        )]);
    }
}

/// `custom_fields` → `customFields` (or `CustomFields` with `upper`).
fn camel(snake: &str, upper: bool) -> String {
    let mut out = String::new();
    let mut up = upper;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The whole description, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = Base::openapi();
        for (area, mut part) in super::docs() {
            // utoipa names an operation after its handler (`list`, `show`), which repeats
            // across files; the spec wants them unique, so the area goes in front.
            for item in part.paths.paths.values_mut() {
                for op in operations(item) {
                    let handler = op.operation_id.take().unwrap_or_default();
                    op.operation_id =
                        Some(format!("{}{}", camel(area, false), camel(&handler, true)));
                }
            }
            doc.merge(part);
        }
        for item in doc.paths.paths.values_mut() {
            for op in operations(item) {
                op.responses
                    .responses
                    .entry("default".into())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Problem")));
            }
        }
        doc
    })
}

/// The document as JSON (what `/api/openapi.json` answers and the reference page reads).
pub fn json_value() -> &'static serde_json::Value {
    static JSON: OnceLock<serde_json::Value> = OnceLock::new();
    JSON.get_or_init(|| serde_json::to_value(document()).unwrap_or_default())
}

/// This document. No token needed: it describes what exists, not anyone's data.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "API",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 description of this API.", content_type = "application/json", body = Object))
)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(json_value())
}
