//! `/api/custom-fields`: field definitions (`custom_field:read` to list,
//! `custom_field:write` to define and change, `custom_field:delete` to archive).
//! Archiving hides a field and keeps its values; `PATCH {"archived": false}` brings it back.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{etag, if_match_version, rfc3339, ListEnvelope};
use crate::domain::custom_fields::service::FieldInput;
use crate::domain::custom_fields::FieldRow;
use crate::error::AppResult;
use crate::ops::custom_fields as ops;
use crate::web::scope::ApiScope;

#[derive(utoipa::OpenApi)]
#[openapi(paths())]
pub struct Doc;

pub fn field_json(f: &FieldRow) -> Value {
    json!({
        "id": f.id,
        "entity": f.entity,
        "key": f.field_key,
        "label": f.label,
        "type": f.field_type,
        "required": f.required,
        "options": f.option_list(),
        "default": f.default_value.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
        "helpText": f.help_text,
        "group": f.display_group,
        "position": f.position,
        "sensitive": f.sensitive,
        "searchable": f.searchable,
        "currency": f.currency,
        "archived": f.archived_at.is_some(),
        "version": f.version,
        "createdAt": rfc3339(f.created_at),
        "updatedAt": rfc3339(f.updated_at),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldBody {
    entity: Option<String>,
    key: Option<String>,
    label: Option<String>,
    #[serde(rename = "type")]
    field_type: Option<String>,
    required: Option<bool>,
    options: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    default: Option<Value>,
    help_text: Option<String>,
    group: Option<String>,
    position: Option<i32>,
    sensitive: Option<bool>,
    searchable: Option<bool>,
    currency: Option<String>,
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

pub async fn list(scope: ApiScope, query: web::Query<ListQuery>) -> AppResult<HttpResponse> {
    let q = query.into_inner();
    let entity = q.entity.unwrap_or_else(|| "client".into());
    let rows = ops::list(&scope, entity, q.include_archived.unwrap_or(false)).await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: rows.iter().map(field_json).collect(),
        next_cursor: None,
    }))
}

pub async fn show(scope: ApiScope, id: web::Path<String>) -> AppResult<HttpResponse> {
    let row = ops::get(&scope, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(row.version)))
        .json(field_json(&row)))
}

pub async fn create(scope: ApiScope, body: web::Json<FieldBody>) -> AppResult<HttpResponse> {
    let row = ops::define(&scope, FieldInput::from(body.into_inner())).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/custom-fields/{}", row.id)))
        .insert_header((header::ETAG, etag(row.version)))
        .json(field_json(&row)))
}

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

/// Archives the field: it disappears from forms, lists and the API; its values stay.
pub async fn archive(
    scope: ApiScope,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    ops::set_archived(&scope, id.into_inner(), expected, true).await?;
    Ok(HttpResponse::NoContent().finish())
}
