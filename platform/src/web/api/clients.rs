//! `/api/clients`: clients with filters, sorts and keyset paging; the trash; tags and
//! relations of a client; bulk actions. Every rule is in `ops::clients`; these handlers
//! read the request and write the response.

use std::collections::HashMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{etag, if_match_version, ListEnvelope};
use crate::domain::clients::service::WriteMode;
use crate::domain::clients::TagRow;
use crate::error::{AppError, AppResult};
use crate::ops::clients::{self as ops, BulkInput, ClientView, Relation, TagChange, Total};
use crate::web::query_pairs;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list,
    list_trash,
    show,
    opportunities,
    create,
    replace,
    patch,
    delete,
    restore,
    purge,
    client_tags,
    add_client_tag,
    remove_client_tag,
    relations,
    relate,
    unrelate,
    bulk
))]
pub struct Doc;

/// A client's postal address; every part may be null.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `ClientView::to_json` builds it.
pub struct Address {
    street: Option<String>,
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case (`GB`).
    country: Option<String>,
}

/// A client another one may be the same as.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub id: String,
    pub display_name: String,
    /// Why: `same e-mail`, `same phone number`, `same company name` or
    /// `same name and company`.
    pub reason: String,
}

/// A client (a person or a company) as the API answers it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `ClientView::to_json` builds it.
pub struct Client {
    id: String,
    /// `individual` or `company`.
    #[serde(rename = "type")]
    kind: String,
    first_name: Option<String>,
    last_name: Option<String>,
    company_name: Option<String>,
    /// The name shown everywhere: a person's first and last name, a company's name.
    display_name: String,
    /// Lower case.
    email: Option<String>,
    /// As entered.
    phone: Option<String>,
    /// The phone number in E.164 form (`+442079460018`), when it can be read as one.
    phone_e164: Option<String>,
    address: Address,
    website: Option<String>,
    industry: Option<String>,
    source: Option<String>,
    /// `lead`, `prospect`, `customer` or `inactive`.
    status: String,
    /// The id of the member it is assigned to.
    assigned_to: Option<String>,
    /// A person's company (a client id).
    employer_id: Option<String>,
    /// Tag names.
    tags: Vec<String>,
    /// Custom field values by field key (sensitive ones only for those allowed to read them).
    custom_fields: HashMap<String, Value>,
    /// Increases with every change; send it back (or its `ETag` as `If-Match`) to guard a write.
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// When it went to the trash; null when it is not there.
    deleted_at: Option<DateTime<Utc>>,
    /// What plugins compute for it, by `<plugin>/<key>` (only where a single client is
    /// answered).
    computed: Option<HashMap<String, Value>>,
    /// Clients it may be the same as (only in the answer to a create; flagged, not refused).
    possible_duplicates: Option<Vec<Candidate>>,
}

/// The fields of a client a write accepts. `PUT` replaces the client (fields left out are
/// cleared), `PATCH` and `POST` change only the fields sent. Read-only fields of an answer
/// (`id`, `displayName`, `createdAt`, …) may be sent back and are ignored; `version` guards
/// against a concurrent edit like `If-Match`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the accepted body for /api/openapi.json; the handler reads it as JSON.
pub struct ClientInput {
    /// `individual` (default) or `company`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A person needs a first or a last name (at most 100 characters each).
    first_name: Option<String>,
    last_name: Option<String>,
    /// A company's name (required for a company), or a person's company as text.
    company_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    address: Option<Address>,
    /// A web address; `https://` is added when no scheme is given.
    website: Option<String>,
    industry: Option<String>,
    source: Option<String>,
    /// `lead`, `prospect`, `customer` or `inactive`.
    status: Option<String>,
    /// A member's id; a role without `oversee` may assign only to itself.
    assigned_to: Option<String>,
    /// A company client's id (people only).
    employer_id: Option<String>,
    /// Tag names; a name not yet in the catalogue is added when the role may create tags.
    tags: Option<Vec<String>>,
    /// Custom field values by field key.
    custom_fields: Option<HashMap<String, Value>>,
    /// The version the change was based on.
    version: Option<i64>,
}

/// A page of clients; `total` only when `count=true` asked for it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientPage {
    #[schema(value_type = Vec<Client>)]
    pub(crate) data: Vec<ClientView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub(crate) next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) total: Option<Total>,
}

fn respond(status: StatusCode, view: &ClientView) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::ETAG, etag(view.row.version)));
    if status == StatusCode::CREATED {
        res.insert_header((header::LOCATION, format!("/api/clients/{}", view.row.id)));
    }
    res.json(view)
}

async fn list_of(scope: ApiScope, req: HttpRequest, trash: bool) -> AppResult<HttpResponse> {
    let page = ops::list(&scope, query_pairs(&req)?, trash).await?;
    Ok(HttpResponse::Ok().json(ClientPage {
        data: page.data,
        next_cursor: page.next_cursor,
        total: page.total,
    }))
}

/// Lists the clients the caller sees (`client:read`; a role without `oversee` sees only
/// its own), filtered, sorted and paged by keyset.
///
/// Filters: `filter[status]` and `filter[type]` (one value or a comma-separated list),
/// `filter[tag]` (names or ids, comma-separated: all of them), `filter[assignedTo]` (a
/// member's id, `me` or `none`), `filter[industry]`, `filter[source]`, `filter[company]` (an
/// employer's id), `filter[createdAt][gt|gte|lt|lte]` and `filter[updatedAt][…]` (a date or
/// date-time), and `filter[customFields.<key>][eq|gt|gte|lt|lte|contains|in]` on a custom
/// field. `sort` is one of name, email, phone, status, type, companyName, industry, source,
/// city, country, createdAt, updatedAt, a score (engagement, churnRisk, lifetimeValue: as of the
/// last scoring, unscored clients last) or `customFields.<key>`, with `-` for descending.
#[utoipa::path(get, path = "/api/clients", tag = "Clients",
    params(
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
        ("q" = Option<String>, Query, description = "Text the name, e-mail, phone or company must contain."),
        ("sort" = Option<String>, Query, description = "One field, `-` first for descending (`-createdAt`); default name."),
        ("count" = Option<bool>, Query, description = "`true` adds `total`, the number of matches (not with `q`)."),
        ("filter[status]" = Option<String>, Query, description = "lead, prospect, customer or inactive; comma-separated for several."),
        ("filter[type]" = Option<String>, Query, description = "individual or company."),
        ("filter[tag]" = Option<String>, Query, description = "Tag names or ids, comma-separated; a client must wear them all."),
        ("filter[assignedTo]" = Option<String>, Query, description = "A member's id, `me` or `none`."),
        ("filter[industry]" = Option<String>, Query, description = "The industry, exactly."),
        ("filter[source]" = Option<String>, Query, description = "The source, exactly."),
        ("filter[company]" = Option<String>, Query, description = "The employer's client id: a company's people."),
    ),
    responses((status = 200, description = "A page of clients.", body = ClientPage)))]
pub async fn list(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    list_of(scope, req, false).await
}

/// Lists the clients in the trash (`client:admin`), with the same filters, sorts and paging
/// as the client list.
#[utoipa::path(get, path = "/api/clients/trash", tag = "Clients",
    params(
        ("limit" = Option<i64>, Query, description = "Page size, 1–500 (default 50)."),
        ("cursor" = Option<String>, Query, description = "The `nextCursor` of the previous page."),
        ("q" = Option<String>, Query, description = "Text the name, e-mail, phone or company must contain."),
        ("sort" = Option<String>, Query, description = "One field, `-` first for descending (`-updatedAt`)."),
        ("count" = Option<bool>, Query, description = "`true` adds `total`, the number of matches (not with `q`)."),
    ),
    responses((status = 200, description = "A page of trashed clients.", body = ClientPage)))]
pub async fn list_trash(scope: ApiScope, req: HttpRequest) -> AppResult<HttpResponse> {
    list_of(scope, req, true).await
}

/// Shows a client (`client:read`) with what plugins compute for it; the `ETag` is its version.
#[utoipa::path(get, path = "/api/clients/{id}", tag = "Clients",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "The client.", body = Client)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let view = ops::get(&scope, id.into_inner()).await?;
    Ok(respond(StatusCode::OK, &view))
}

/// A deal of a client's, as its business overview lists it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `ClientDeals::to_json` builds it.
pub struct ClientDeal {
    id: String,
    name: String,
    /// The stage's name.
    stage: String,
    /// `open`, `won` or `lost`.
    status: String,
    /// A decimal amount as a string (`1250.00`).
    value: String,
    currency: String,
    expected_close: Option<NaiveDate>,
    actual_close: Option<NaiveDate>,
    /// The company's person the deal is with, for a company's people's deals.
    via: Option<DealVia>,
}

/// The person a deal of a company is with.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `ClientDeals::to_json` builds it.
pub struct DealVia {
    id: String,
    name: String,
}

/// A quote on one of the client's deals.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `ClientDeals::to_json` builds it.
pub struct ClientQuote {
    id: String,
    opportunity_id: String,
    opportunity_name: String,
    number: i32,
    status: String,
    /// A decimal amount as a string.
    total: String,
    currency: String,
    valid_until: Option<NaiveDate>,
}

/// One of the client's contracts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `ClientDeals::to_json` builds it.
pub struct ClientContract {
    id: String,
    name: String,
    status: String,
    end_date: NaiveDate,
    /// A decimal amount as a string.
    value: String,
    currency: String,
}

/// A client's business: deals (open first, closing soonest; then won and lost, latest
/// first), their latest quotes and its contracts.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // why: describes the answer for /api/openapi.json; `ClientDeals::to_json` builds it.
pub struct ClientBusiness {
    /// At most 50 deals.
    data: Vec<ClientDeal>,
    /// True when the client has more deals than listed.
    more: bool,
    quotes: Vec<ClientQuote>,
    contracts: Vec<ClientContract>,
}

/// Lists a client's deals (a company's with its people's), their quotes and its contracts
/// (`client:read` and `opportunity:read`).
#[utoipa::path(get, path = "/api/clients/{id}/opportunities", tag = "Clients",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "The client's business.", body = ClientBusiness)))]
pub async fn opportunities(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    scope.require("opportunity", "read")?;
    let deals = ops::deals(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(deals.to_json()))
}

fn body_object(body: web::Json<Value>) -> AppResult<Map<String, Value>> {
    match body.into_inner() {
        Value::Object(m) => Ok(m),
        _ => Err(AppError::invalid(
            "body",
            "Send the client as a JSON object.",
        )),
    }
}

/// Creates a client (`client:write`); the answer lists existing clients it may duplicate.
#[utoipa::path(post, path = "/api/clients", tag = "Clients", request_body = ClientInput,
    responses((status = 201, description = "Created; `Location` names it, `ETag` is its version.", body = Client)))]
pub async fn create(scope: ApiScope, body: web::Json<Value>) -> AppResult<HttpResponse> {
    let view = ops::create(&scope, body_object(body)?).await?;
    Ok(respond(StatusCode::CREATED, &view))
}

async fn write(
    scope: ApiScope,
    req: HttpRequest,
    id: String,
    body: web::Json<Value>,
    mode: WriteMode,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let view = ops::update(&scope, id, body_object(body)?, mode, expected).await?;
    Ok(respond(StatusCode::OK, &view))
}

/// Replaces a client (`client:write`): fields left out are cleared; `If-Match` or `version`
/// guards against a concurrent edit.
#[utoipa::path(put, path = "/api/clients/{id}", tag = "Clients", request_body = ClientInput,
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "Replaced.", body = Client)))]
pub async fn replace(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(scope, req, id.into_inner(), body, WriteMode::Replace).await
}

/// Changes the fields sent of a client (`client:write`); `If-Match` or `version` guards
/// against a concurrent edit.
#[utoipa::path(patch, path = "/api/clients/{id}", tag = "Clients", request_body = ClientInput,
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "Changed.", body = Client)))]
pub async fn patch(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(scope, req, id.into_inner(), body, WriteMode::Merge).await
}

/// Moves a client to the trash (`client:delete`); `If-Match` guards against a concurrent edit.
#[utoipa::path(delete, path = "/api/clients/{id}", tag = "Clients",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 204, description = "In the trash.")))]
pub async fn delete(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    ops::trash(&scope, id.into_inner(), if_match_version(&req)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Brings a client back from the trash (`client:admin`).
#[utoipa::path(post, path = "/api/clients/{id}/restore", tag = "Clients",
    params(("id" = String, Path, description = "The trashed client's id.")),
    responses((status = 200, description = "Restored.", body = Client)))]
pub async fn restore(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let view = ops::restore(&scope, id.into_inner()).await?;
    Ok(respond(StatusCode::OK, &view))
}

/// Deletes a trashed client for good, with its files (`client:admin`).
#[utoipa::path(post, path = "/api/clients/{id}/purge", tag = "Clients",
    params(("id" = String, Path, description = "The trashed client's id.")),
    responses((status = 204, description = "Deleted for good.")))]
pub async fn purge(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    ops::purge(&scope, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A tag a client wears.
#[derive(Serialize, ToSchema)]
pub struct ClientTag {
    id: String,
    name: String,
    /// A CSS colour (`#0a7cff`) or a colour name.
    color: String,
}

impl From<TagRow> for ClientTag {
    fn from(t: TagRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            color: t.color,
        }
    }
}

/// Lists the tags a client wears (`client:read`; one page, no cursor).
#[utoipa::path(get, path = "/api/clients/{id}/tags", tag = "Clients",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "Its tags.", body = ListEnvelope<ClientTag>)))]
pub async fn client_tags(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let tags = ops::tags(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: tags.into_iter().map(ClientTag::from).collect(),
        next_cursor: None,
    }))
}

/// The tag to put on a client.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRef {
    /// A tag id or name (of the catalogue).
    tag: String,
}

/// Puts a tag of the catalogue on a client (`client:write`); one it already wears is fine.
#[utoipa::path(post, path = "/api/clients/{id}/tags", tag = "Clients", request_body = TagRef,
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "The client wears the tag.", body = ClientTag)))]
pub async fn add_client_tag(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<TagRef>,
) -> AppResult<HttpResponse> {
    match ops::set_tag(&scope, id.into_inner(), body.into_inner().tag, true).await? {
        TagChange::Changed(tag) | TagChange::Unchanged(tag) => {
            Ok(HttpResponse::Ok().json(ClientTag::from(tag)))
        }
        TagChange::NoSuchTag => Err(AppError::invalid("tag", "There is no such tag.")),
    }
}

/// Takes a tag off a client (`client:write`); 404 when it did not wear it.
#[utoipa::path(delete, path = "/api/clients/{id}/tags/{tag}", tag = "Clients",
    params(
        ("id" = String, Path, description = "The client's id."),
        ("tag" = String, Path, description = "The tag's id or name."),
    ),
    responses((status = 204, description = "Taken off.")))]
pub async fn remove_client_tag(
    scope: ApiScope,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, reference) = path.into_inner();
    match ops::set_tag(&scope, id, reference, false).await? {
        TagChange::Changed(_) => Ok(HttpResponse::NoContent().finish()),
        TagChange::Unchanged(_) | TagChange::NoSuchTag => Err(AppError::NotFound),
    }
}

/// Lists a client's relations to clients the caller sees (`client:read`; one page, no cursor).
#[utoipa::path(get, path = "/api/clients/{id}/relations", tag = "Clients",
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 200, description = "Its relations, both ways.", body = ListEnvelope<Relation>)))]
pub async fn relations(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let (_, data) = ops::relations(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

/// A relation to add: this client is `label` of the other.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRelation {
    /// The other client's id.
    client_id: String,
    /// Up to 60 characters, e.g. `parent of`, `partner`, `referred by`.
    label: String,
}

/// A relation just added, seen from the client it was added on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddedRelation {
    id: String,
    /// The other client's id.
    client_id: String,
    label: String,
    /// Always `outgoing`: this client is `label` of the other.
    direction: &'static str,
}

/// Relates a client to another, e.g. "is the accountant of" (`client:write`).
#[utoipa::path(post, path = "/api/clients/{id}/relations", tag = "Clients", request_body = NewRelation,
    params(("id" = String, Path, description = "The client's id.")),
    responses((status = 201, description = "Related.", body = AddedRelation)))]
pub async fn relate(
    scope: ApiScope,
    id: web::Path<String>,
    body: web::Json<NewRelation>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let row = ops::relate(&scope, id.into_inner(), body.client_id, body.label).await?;
    Ok(HttpResponse::Created().json(AddedRelation {
        id: row.id,
        client_id: row.to_client_id,
        label: row.label,
        direction: "outgoing",
    }))
}

/// Removes a relation of a client (`client:write`).
#[utoipa::path(delete, path = "/api/clients/{id}/relations/{rel}", tag = "Clients",
    params(
        ("id" = String, Path, description = "The client's id."),
        ("rel" = String, Path, description = "The relation's id."),
    ),
    responses((status = 204, description = "Removed.")))]
pub async fn unrelate(
    scope: ApiScope,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (id, rel) = path.into_inner();
    ops::unrelate(&scope, id, rel).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What a bulk action did.
#[derive(Serialize, ToSchema)]
pub struct BulkDone {
    /// How many clients changed.
    updated: usize,
}

/// Applies one action to many clients, all or nothing (`client:write`; `client:delete` to
/// delete).
#[utoipa::path(post, path = "/api/clients/bulk", tag = "Clients", request_body = BulkInput,
    responses((status = 200, description = "Done.", body = BulkDone)))]
pub async fn bulk(scope: ApiScope, body: web::Json<BulkInput>) -> AppResult<HttpResponse> {
    let updated = ops::bulk(&scope, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(BulkDone { updated }))
}
