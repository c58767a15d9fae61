//! `/api/custom-fields`: field definitions (`custom_field:read` to list,
//! `custom_field:write` to define and change, `custom_field:delete` to archive).
//! Archiving hides a field and keeps its values; `PATCH {"archived": false}` brings it back.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{etag, if_match_version, rfc3339, ListEnvelope};
use crate::domain::custom_fields::service::FieldInput;
use crate::domain::custom_fields::FieldRow;
use crate::error::AppResult;
use crate::ops::custom_fields as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths(list, show, create, update, archive))]
pub struct Doc;

/// A custom field definition.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomField {
    id: String,
    /// `client` or `opportunity`.
    #[schema(example = "client")]
    entity: String,
    /// The key its values are stored under in `customFields`.
    key: String,
    label: String,
    /// `text`, `long_text`, `integer`, `decimal`, `money`, `date`, `datetime`, `boolean`,
    /// `single_select`, `multi_select`, `email`, `phone`, `url`, or a plugin's type.
    #[serde(rename = "type")]
    #[schema(example = "text")]
    field_type: String,
    required: bool,
    /// A select field's choices (empty otherwise).
    options: Vec<String>,
    /// The value a new record takes when it leaves the field out; null for none.
    default: Option<Value>,
    help_text: String,
    /// The group forms show it in.
    group: String,
    position: i32,
    /// Only those allowed to read sensitive fields see its values.
    sensitive: bool,
    /// Search finds its values (never for sensitive fields).
    searchable: bool,
    /// ISO 4217 code of a money field.
    currency: Option<String>,
    archived: bool,
    version: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

fn field_json(f: &FieldRow) -> CustomField {
    CustomField {
        id: f.id.clone(),
        entity: f.entity.clone(),
        key: f.field_key.clone(),
        label: f.label.clone(),
        field_type: f.field_type.clone(),
        required: f.required,
        options: f.option_list(),
        default: f
            .default_value
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok()),
        help_text: f.help_text.clone(),
        group: f.display_group.clone(),
        position: f.position,
        sensitive: f.sensitive,
        searchable: f.searchable,
        currency: f.currency.clone(),
        archived: f.archived_at.is_some(),
        version: f.version,
        created_at: rfc3339(f.created_at),
        updated_at: rfc3339(f.updated_at),
    }
}

/// A custom field definition to create or change; a change reads only the fields sent.
/// The read-only fields of a definition (`id`, `version`, `createdAt`, `updatedAt`) are
/// accepted and ignored, so a fetched definition can be sent back.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CustomFieldInput)]
pub struct FieldBody {
    /// `client` (default) or `opportunity`; fixed once created.
    entity: Option<String>,
    /// The key values are stored under (camelCase: a lowercase letter, then letters and
    /// digits, at most 40); fixed once created.
    key: Option<String>,
    label: Option<String>,
    /// The field type (see the definition's `type`); fixed once created.
    #[serde(rename = "type")]
    field_type: Option<String>,
    required: Option<bool>,
    /// A select field's choices.
    options: Option<Vec<String>>,
    /// The default value; null clears it.
    #[serde(default, deserialize_with = "present")]
    default: Option<Value>,
    help_text: Option<String>,
    group: Option<String>,
    position: Option<i32>,
    sensitive: Option<bool>,
    searchable: Option<bool>,
    currency: Option<String>,
    /// false brings an archived field back.
    archived: Option<bool>,
    /// Accepted and ignored, so a fetched definition can be sent back.
    #[serde(default)]
    #[allow(dead_code)]
    id: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    version: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    created_at: Option<Value>,
    #[serde(default)]
    #[allow(dead_code)]
    updated_at: Option<Value>,
}

/// Distinguishes `"default": null` (clear) from an absent key (keep).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl From<FieldBody> for FieldInput {
    fn from(b: FieldBody) -> Self {
        FieldInput {
            entity: b.entity,
            key: b.key,
            label: b.label,
            field_type: b.field_type,
            required: b.required,
            options: b.options,
            default_value: b.default,
            help_text: b.help_text,
            display_group: b.group,
            position: b.position,
            sensitive: b.sensitive,
            searchable: b.searchable,
            currency: b.currency,
            archived: b.archived,
        }
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    entity: Option<String>,
    #[serde(rename = "includeArchived")]
    include_archived: Option<bool>,
}

/// Lists an entity's custom field definitions by position (`custom_field:read`).
#[utoipa::path(get, path = "/api/custom-fields", tag = "Custom fields",
    params(
        ("entity" = Option<String>, Query, description = "`client` (default) or `opportunity`."),
        ("includeArchived" = Option<bool>, Query, description = "Also list archived fields (false).")
    ),
    responses((status = 200, description = "The definitions (one page, no cursor).", body = ListEnvelope<CustomField>)))]
pub async fn list(scope: ApiScope, query: web::Query<ListQuery>) -> AppResult<HttpResponse> {
    let q = query.into_inner();
    let entity = q.entity.unwrap_or_else(|| "client".into());
    let rows = ops::list(&scope, entity, q.include_archived.unwrap_or(false)).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(field_json).collect(),
        next_cursor: None,
    }))
}

/// Shows a custom field definition (`custom_field:read`); the `ETag` answers its version.
#[utoipa::path(get, path = "/api/custom-fields/{id}", tag = "Custom fields",
    params(("id" = String, Path, description = "The custom field's id.")),
    responses((status = 200, description = "The definition.", body = CustomField)))]
pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let row = ops::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(row.version)))
        .json(field_json(&row)))
}

/// Defines a custom field (`custom_field:write`); keys are unique per entity.
#[utoipa::path(post, path = "/api/custom-fields", tag = "Custom fields", request_body = FieldBody,
    responses((status = 201, description = "Defined; `Location` names it.", body = CustomField)))]
pub async fn create(scope: ApiScope, body: web::Json<FieldBody>) -> AppResult<HttpResponse> {
    let row = ops::define(&scope, FieldInput::from(body.into_inner())).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/custom-fields/{}", row.id)))
        .insert_header((header::ETAG, etag(row.version)))
        .json(field_json(&row)))
}

/// Changes a custom field definition (`custom_field:write`); `"archived": false` brings an
/// archived field back. `If-Match` makes it conditional.
#[utoipa::path(patch, path = "/api/custom-fields/{id}", tag = "Custom fields", request_body = FieldBody,
    params(
        ("id" = String, Path, description = "The custom field's id."),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on.")
    ),
    responses((status = 200, description = "Changed.", body = CustomField)))]
pub async fn update(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<FieldBody>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let input = FieldInput::from(body.into_inner());
    let row = ops::update(&scope, id.into_inner(), expected, input).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(row.version)))
        .json(field_json(&row)))
}

/// Archives a custom field (`custom_field:delete`): it disappears from forms, lists and the
/// API; its values stay. `If-Match` makes it conditional.
#[utoipa::path(delete, path = "/api/custom-fields/{id}", tag = "Custom fields",
    params(
        ("id" = String, Path, description = "The custom field's id."),
        ("If-Match" = Option<String>, Header, description = "The `ETag` the change is based on.")
    ),
    responses((status = 204, description = "Archived.")))]
pub async fn archive(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    ops::set_archived(&scope, id.into_inner(), expected, true).await?;
    Ok(HttpResponse::NoContent().finish())
}
