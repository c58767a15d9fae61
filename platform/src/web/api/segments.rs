//! `/api/segments`: saved dynamic segments (`segment:read`, `segment:write`,
//! `segment:delete`), their live count, members, entries and exits, and size over time.
//! A segment's members are exported by the client export with `filter[segment]=<id>`.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::clients::ClientPage;
use super::{etag, if_match_version, ListEnvelope};
use crate::error::AppResult;
use crate::ops::segments::{self as ops, EventView, Part, Preview, SegmentInput, SegmentView};
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    create,
    show,
    replace,
    delete,
    preview,
    count,
    clients,
    events,
    sizes,
    evaluate,
    composition
))]
pub struct Doc;

fn respond(status: actix_web::http::StatusCode, v: &SegmentView) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::ETAG, etag(v.version)));
    if status == actix_web::http::StatusCode::CREATED {
        res.insert_header((header::LOCATION, format!("/api/segments/{}", v.id)));
    }
    res.json(v)
}

/// Every segment of the organization, by name (one page, no cursor).
#[utoipa::path(get, path = "/api/segments", tag = "Segments",
    responses((status = 200, description = "The segments.", body = ListEnvelope<SegmentView>)))]
pub async fn list(scope: ApiScope) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: ops::list(&scope).await?,
        next_cursor: None,
    }))
}

/// Saves a segment (`segment:write`). The criteria are checked: an unknown field, an
/// operator the field does not take or a missing tag is a 422 naming the condition
/// (`criteria.conditions[1].op`). Fields: name, email, phone, status, type, companyName,
/// industry, source, website, assignedTo, tags, createdAt, updatedAt, street, city, region,
/// postalCode, country, `customFields.<key>`, interactions.count (`days`, `kind`),
/// interactions.last, email.opened, email.clicked, deals.count (`status`),
/// deals.openValue and deals.wonValue (`currency`), deals.stage, segment.
#[utoipa::path(post, path = "/api/segments", tag = "Segments", request_body = SegmentInput,
    responses((status = 201, description = "Saved; `Location` names it. Its members are filled within seconds.", body = SegmentView)))]
pub async fn create(scope: ApiScope, body: web::Json<SegmentInput>) -> AppResult<HttpResponse> {
    let v = ops::create(&scope, body.into_inner()).await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, &v))
}

/// A segment; the `ETag` is its version.
#[utoipa::path(get, path = "/api/segments/{id}", tag = "Segments",
    params(("id" = String, Path, description = "The segment's id.")),
    responses((status = 200, description = "The segment.", body = SegmentView)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let v = ops::get(&scope, id.into_inner()).await?;
    Ok(respond(actix_web::http::StatusCode::OK, &v))
}

/// Replaces a segment's name, description and criteria (`segment:write`); `If-Match`
/// guards against a concurrent edit (412). Changed criteria start a new baseline: the
/// members are re-evaluated without entry or exit events.
#[utoipa::path(put, path = "/api/segments/{id}", tag = "Segments", request_body = SegmentInput,
    params(("id" = String, Path, description = "The segment's id.")),
    responses((status = 200, description = "Saved.", body = SegmentView)))]
pub async fn replace(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<SegmentInput>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let v = ops::update(&scope, id.into_inner(), body.into_inner(), expected).await?;
    Ok(respond(actix_web::http::StatusCode::OK, &v))
}

/// Deletes a segment and its history (`segment:delete`); 409 while another segment or a
/// workflow uses it.
#[utoipa::path(delete, path = "/api/segments/{id}", tag = "Segments",
    params(("id" = String, Path, description = "The segment's id.")),
    responses((status = 204, description = "Deleted.")))]
pub async fn delete(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::delete(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Criteria to count before saving.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct PreviewInput {
    /// The criteria tree, as a segment's.
    #[schema(value_type = Object)]
    criteria: Value,
    /// The segment being edited, if any (it may not include itself).
    #[serde(default)]
    segment_id: Option<String>,
}

/// Counts what criteria match now, within the caller's reach, with a sample of five.
#[utoipa::path(post, path = "/api/segments/preview", tag = "Segments", request_body = PreviewInput,
    responses((status = 200, description = "The count and a sample.", body = Preview)))]
pub async fn preview(scope: ApiScope, body: web::Json<PreviewInput>) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    Ok(HttpResponse::Ok().json(ops::preview(&scope, b.criteria, b.segment_id).await?))
}

/// A segment's live count (within the caller's reach) with a sample of five.
#[utoipa::path(get, path = "/api/segments/{id}/count", tag = "Segments",
    params(("id" = String, Path, description = "The segment's id.")),
    responses((status = 200, description = "The count and a sample.", body = Preview)))]
pub async fn count(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ops::count(&scope, id.into_inner()).await?))
}

/// The segment's members now, as the client list answers them: the same paging
/// (`limit`, `cursor`), `sort`, `count=true` and further `filter[…]`.
#[utoipa::path(get, path = "/api/segments/{id}/clients", tag = "Segments",
    params(
        ("id" = String, Path, description = "The segment's id."),
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
        ("sort" = Option<String>, Query, description = "As the client list (`-createdAt`)."),
        ("count" = Option<bool>, Query, description = "`true` adds `total` (capped at 1,000; the exact size is `/count`)."),
    ),
    responses((status = 200, description = "A page of members.", body = ClientPage)))]
pub async fn clients(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let page = ops::clients(&scope, id.into_inner(), query_pairs(&req)?).await?;
    Ok(HttpResponse::Ok().json(ClientPage {
        data: page.data,
        next_cursor: page.next_cursor,
        total: page.total,
    }))
}

#[derive(Deserialize)]
pub struct EventsQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

/// Entries into and exits from the segment, newest first.
#[utoipa::path(get, path = "/api/segments/{id}/events", tag = "Segments",
    params(
        ("id" = String, Path, description = "The segment's id."),
        ("limit" = Option<i64>, Query, description = "Page size, 1–200 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
    ),
    responses((status = 200, description = "Entries and exits.", body = ListEnvelope<EventView>)))]
pub async fn events(
    scope: ApiScope,
    id: web::Path<String>,
    q: web::Query<EventsQuery>,
) -> AppResult<HttpResponse> {
    let q = q.into_inner();
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let data = ops::events(&scope, Some(id.into_inner()), None, q.cursor, limit).await?;
    let next_cursor = (data.len() as i64 == limit)
        .then(|| data.last().map(|e| e.id.clone()))
        .flatten();
    Ok(HttpResponse::Ok().json(ListEnvelope { data, next_cursor }))
}

/// The segment's size at the end of a day.
#[derive(Serialize, ToSchema)]
pub struct Size {
    /// `YYYY-MM-DD`.
    day: String,
    members: i64,
}

/// The segment's size over time (each day it was evaluated, up to a year), oldest first.
#[utoipa::path(get, path = "/api/segments/{id}/sizes", tag = "Segments",
    params(("id" = String, Path, description = "The segment's id.")),
    responses((status = 200, description = "Sizes by day.", body = ListEnvelope<Size>)))]
pub async fn sizes(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let data = ops::sizes(&scope, id.into_inner())
        .await?
        .into_iter()
        .map(|(d, n)| Size {
            day: d.format("%Y-%m-%d").to_string(),
            members: n,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// What a full evaluation changed.
#[derive(Serialize, ToSchema)]
pub struct Evaluation {
    entered: i64,
    left: i64,
}

/// Evaluates the segment in full now (`segment:write`) instead of at the next hourly
/// round, recording entries and exits.
#[utoipa::path(post, path = "/api/segments/{id}/evaluate", tag = "Segments",
    params(("id" = String, Path, description = "The segment's id.")),
    responses((status = 200, description = "Evaluated.", body = Evaluation)))]
pub async fn evaluate(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (entered, left) = ops::refresh(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(Evaluation { entered, left }))
}

#[derive(Deserialize)]
pub struct CompositionQuery {
    by: Option<String>,
}

/// What the segment's members are now, by `status` (default), `type`, `owner`, `country` or
/// `source`, largest first, within the caller's reach: one grouped count.
#[utoipa::path(get, path = "/api/segments/{id}/composition", tag = "Segments",
    params(
        ("id" = String, Path, description = "The segment's id."),
        ("by" = Option<String>, Query, description = "status, type, owner, country or source (largest first); engagement, churnRisk or lifetimeValue (bands, low to high)."),
    ),
    responses((status = 200, description = "The parts.", body = ListEnvelope<Part>)))]
pub async fn composition(
    scope: ApiScope,
    id: web::Path<String>,
    q: web::Query<CompositionQuery>,
) -> AppResult<HttpResponse> {
    let by = q.into_inner().by.unwrap_or_else(|| "status".into());
    let data = ops::composition(&scope, id.into_inner(), by).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}
