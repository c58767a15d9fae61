//! `/api/clients`: clients with filters, sorts and keyset paging; the trash; tags and
//! relations of a client; bulk actions. Base rights come from `client:*`; without
//! `client:oversee` a user works only on clients assigned to them, and others' clients
//! are "not found".

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{etag, if_match_version, rfc3339, ListEnvelope};
use crate::app::AppState;
use crate::auth::ApiActor;
use crate::db::{self, DbConn};
use crate::domain::audit;
use crate::domain::clients::query::{self, cursor_after};
use crate::domain::clients::service::{self, Access, BulkAction, WriteContext, WriteMode};
use crate::domain::clients::{store, ClientRow, TagRow};
use crate::domain::custom_fields::{self, FieldRow};
use crate::error::{AppError, AppResult};
use crate::web::{client_access, query_pairs};

/// The client as the API shows it; sensitive custom values only to those allowed.
pub fn client_json(c: &ClientRow, tags: &[TagRow], defs: &[FieldRow], access: &Access) -> Value {
    let stored = c.custom_map();
    let custom: Map<String, Value> = defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.read_sensitive))
        .filter_map(|d| {
            stored
                .get(&d.field_key)
                .map(|v| (d.field_key.clone(), v.clone()))
        })
        .collect();
    json!({
        "id": c.id,
        "type": c.kind,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "companyName": c.company_name,
        "displayName": c.display_name,
        "email": c.email,
        "phone": c.phone,
        "phoneE164": c.phone.as_deref().and_then(|p| crate::domain::clients::duplicates::e164(p, c.country.as_deref())),
        "address": {
            "street": c.street, "city": c.city, "region": c.region,
            "postalCode": c.postal_code, "country": c.country,
        },
        "website": c.website,
        "industry": c.industry,
        "source": c.source,
        "status": c.status,
        "assignedTo": c.assigned_to,
        "employerId": c.employer_id,
        "tags": tags.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "customFields": custom,
        "version": c.version,
        "createdAt": rfc3339(c.created_at),
        "updatedAt": rfc3339(c.updated_at),
        "deletedAt": c.deleted_at.map(rfc3339),
    })
}

fn shows_sensitive(c: &ClientRow, defs: &[FieldRow], access: &Access) -> bool {
    access.read_sensitive && {
        let stored = c.custom_map();
        defs.iter()
            .any(|d| d.sensitive && d.is_active() && stored.contains_key(&d.field_key))
    }
}

fn tags_by_client(
    conn: &mut DbConn,
    rows: &[ClientRow],
) -> AppResult<std::collections::HashMap<String, Vec<TagRow>>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut map: std::collections::HashMap<String, Vec<TagRow>> = std::collections::HashMap::new();
    for (client_id, tag) in store::tags_of(conn, &ids)? {
        map.entry(client_id).or_default().push(tag);
    }
    Ok(map)
}

async fn list_inner(
    actor: &ApiActor,
    state: &AppState,
    req: &HttpRequest,
    trash: bool,
) -> AppResult<HttpResponse> {
    let access = client_access(actor).await?;
    let mut pairs = query_pairs(req)?;
    crate::web::resolve_me(&mut pairs, &actor.user_id);
    let org = actor.org_id().to_string();
    let ctx = actor.audit();
    let body = db::run(&state.pool, move |c| {
        let defs = custom_fields::store::list(c, &org, "client", false)?;
        let mut params = query::parse_params(c, &org, &defs, &pairs)?;
        params.trash = trash;
        if !access.oversee {
            params.only_assigned_to = Some(access.user_id.clone());
        }
        let limit = params.limit;
        params.limit = limit + 1;
        let mut rows = query::list(c, &org, &params)?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| rows.last().map(|r| cursor_after(r, &params.sort).encode()))
            .flatten();
        let tags = tags_by_client(c, &rows)?;
        let sensitive: Vec<&str> = rows
            .iter()
            .filter(|r| shows_sensitive(r, &defs, &access))
            .map(|r| r.id.as_str())
            .collect();
        if !sensitive.is_empty() {
            audit::record(
                c,
                &ctx,
                "client.view_sensitive",
                "client",
                None,
                json!({"clients": sensitive}),
            )?;
        }
        let data = rows
            .iter()
            .map(|r| {
                client_json(
                    r,
                    tags.get(&r.id).map_or(&[][..], Vec::as_slice),
                    &defs,
                    &access,
                )
            })
            .collect();
        Ok(ListEnvelope { data, next_cursor })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

pub async fn list(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    list_inner(&actor, &state, &req, false).await
}

pub async fn list_trash(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    actor.require("client", "admin").await?;
    list_inner(&actor, &state, &req, true).await
}

fn respond(status: actix_web::http::StatusCode, row: &ClientRow, json: Value) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::ETAG, etag(row.version)));
    if status == actix_web::http::StatusCode::CREATED {
        res.insert_header((header::LOCATION, format!("/api/clients/{}", row.id)));
    }
    res.json(json)
}

/// Loads the client with what it takes to show it, auditing a view of sensitive values.
fn load_shown(
    c: &mut DbConn,
    ctx: &audit::AuditContext,
    access: &Access,
    id: &str,
) -> AppResult<(ClientRow, Value)> {
    let row = service::get(c, &ctx.org_id, access, id)?;
    let defs = custom_fields::store::list(c, &ctx.org_id, "client", false)?;
    let tags: Vec<TagRow> = store::tags_of(c, std::slice::from_ref(&row.id))?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    if shows_sensitive(&row, &defs, access) {
        audit::record(
            c,
            ctx,
            "client.view_sensitive",
            "client",
            Some(&row.id),
            json!({}),
        )?;
    }
    let json = client_json(&row, &tags, &defs, access);
    Ok((row, json))
}

pub async fn show(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let org = ctx.org_id.clone();
    let (row, json) = crate::web::run_with_plugins(&state, org, move |c, plugins| {
        let (row, mut json) = load_shown(c, &ctx, &access, &id)?;
        json["computed"] = crate::plugins::computed_json(&plugins.computed(
            &rapport_plugin_sdk::ComputeRequest::Client(crate::plugins::client_snapshot(&row)),
        ));
        Ok((row, json))
    })
    .await?;
    Ok(respond(actix_web::http::StatusCode::OK, &row, json))
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

pub async fn create(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let body = body_object(body)?;
    let (row, json) =
        crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
            let defs = custom_fields::store::list(c, &ctx.org_id, "client", false)?;
            let row = service::create(
                c,
                &WriteContext {
                    external: ext,
                    ctx: &ctx,
                    access: &access,
                    defs: &defs,
                },
                &body,
            )?;
            let (row, mut json) = load_shown(c, &ctx, &access, &row.id)?;
            // Flagged, not refused: the caller decides whether it is the same client.
            let twins = crate::domain::clients::duplicates::candidates(c, &access, &row)?;
            json["possibleDuplicates"] = super::duplicates::candidates_json(&twins);
            Ok((row, json))
        })
        .await?;
    Ok(respond(actix_web::http::StatusCode::CREATED, &row, json))
}

async fn write(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: String,
    body: web::Json<Value>,
    mode: WriteMode,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let expected = if_match_version(&req)?;
    let ctx = actor.audit();
    let body = body_object(body)?;
    let (row, json) =
        crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
            let defs = custom_fields::store::list(c, &ctx.org_id, "client", false)?;
            service::update(
                c,
                &WriteContext {
                    external: ext,
                    ctx: &ctx,
                    access: &access,
                    defs: &defs,
                },
                &id,
                &body,
                mode,
                expected,
            )?;
            load_shown(c, &ctx, &access, &id)
        })
        .await?;
    Ok(respond(actix_web::http::StatusCode::OK, &row, json))
}

pub async fn replace(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(actor, state, req, id.into_inner(), body, WriteMode::Replace).await
}

pub async fn patch(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Json<Value>,
) -> AppResult<HttpResponse> {
    write(actor, state, req, id.into_inner(), body, WriteMode::Merge).await
}

pub async fn delete(
    actor: ApiActor,
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "delete").await?;
    let access = client_access(&actor).await?;
    let expected = if_match_version(&req)?;
    let ctx = actor.audit();
    let org = ctx.org_id.clone();
    crate::web::run_with_plugins(&state, org, move |c, ext| {
        service::trash(c, &ctx, &access, &id, expected, ext).map(drop)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn restore(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "admin").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let (row, json) = db::run(&state.pool, move |c| {
        service::restore(c, &ctx, &id)?;
        load_shown(c, &ctx, &access, &id)
    })
    .await?;
    Ok(respond(actix_web::http::StatusCode::OK, &row, json))
}

pub async fn purge(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "admin").await?;
    crate::web::api::attachments::purge_client(&actor, &state, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
struct TagDto {
    id: String,
    name: String,
    color: String,
}

impl From<TagRow> for TagDto {
    fn from(t: TagRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            color: t.color,
        }
    }
}

pub async fn client_tags(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let tags = db::run(&state.pool, move |c| {
        let row = service::get(c, &org, &access, &id)?;
        Ok(store::tags_of(c, &[row.id])?
            .into_iter()
            .map(|(_, t)| TagDto::from(t))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data: tags,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRef {
    /// A tag id or name.
    tag: String,
}

pub async fn add_client_tag(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<TagRef>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let reference = body.into_inner().tag;
    let tag = db::run(&state.pool, move |c| {
        service::get(c, &ctx.org_id, &access, &id)?;
        let tag = service::resolve_tag(c, &ctx.org_id, &reference)?
            .ok_or_else(|| AppError::invalid("tag", "There is no such tag."))?;
        service::tag_client(c, &ctx, &access, &id, &tag.id, true)?;
        Ok(tag)
    })
    .await?;
    Ok(HttpResponse::Ok().json(TagDto::from(tag)))
}

pub async fn remove_client_tag(
    actor: ApiActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let (id, reference) = path.into_inner();
    db::run(&state.pool, move |c| {
        let tag = service::resolve_tag(c, &ctx.org_id, &reference)?.ok_or(AppError::NotFound)?;
        if !service::tag_client(c, &ctx, &access, &id, &tag.id, false)? {
            return Err(AppError::NotFound);
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RelationDto {
    id: String,
    client_id: String,
    display_name: String,
    label: String,
    /// `outgoing`: this client is `label` of the other; `incoming`: the reverse.
    direction: &'static str,
}

pub async fn relations(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let data = db::run(&state.pool, move |c| {
        let row = service::get(c, &org, &access, &id)?;
        let rels = store::relations_of(c, &org, &row.id)?;
        let others: Vec<String> = rels
            .iter()
            .map(|r| {
                if r.from_client_id == row.id {
                    r.to_client_id.clone()
                } else {
                    r.from_client_id.clone()
                }
            })
            .collect();
        let names: std::collections::HashMap<String, String> = store::find_many(c, &org, &others)?
            .into_iter()
            .map(|c| (c.id, c.display_name))
            .collect();
        Ok(rels
            .into_iter()
            .map(|r| {
                let outgoing = r.from_client_id == row.id;
                let other = if outgoing {
                    r.to_client_id
                } else {
                    r.from_client_id
                };
                RelationDto {
                    id: r.id,
                    display_name: names.get(&other).cloned().unwrap_or_default(),
                    client_id: other,
                    label: r.label,
                    direction: if outgoing { "outgoing" } else { "incoming" },
                }
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(ListEnvelope {
        data,
        next_cursor: None,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRelation {
    client_id: String,
    label: String,
}

pub async fn relate(
    actor: ApiActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<NewRelation>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let body = body.into_inner();
    let row = db::run(&state.pool, move |c| {
        service::relate(c, &ctx, &access, &id, &body.client_id, &body.label)
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "id": row.id, "clientId": row.to_client_id, "label": row.label, "direction": "outgoing"
    })))
}

pub async fn unrelate(
    actor: ApiActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let (id, rel) = path.into_inner();
    db::run(&state.pool, move |c| {
        service::unrelate(c, &ctx, &access, &id, &rel)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkRequest {
    ids: Vec<String>,
    /// `assign`, `tag`, `untag` or `delete`.
    action: String,
    #[serde(default)]
    assigned_to: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

pub async fn bulk(
    actor: ApiActor,
    state: web::Data<AppState>,
    body: web::Json<BulkRequest>,
) -> AppResult<HttpResponse> {
    let b = body.into_inner();
    actor
        .require(
            "client",
            if b.action == "delete" {
                "delete"
            } else {
                "write"
            },
        )
        .await?;
    let access = client_access(&actor).await?;
    let ctx = actor.audit();
    let done = crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
        let action = parse_bulk(c, &ctx.org_id, &b.action, b.assigned_to, b.tag)?;
        let defs = custom_fields::store::list(c, &ctx.org_id, "client", false)?;
        service::bulk(
            c,
            &WriteContext {
                external: ext,
                ctx: &ctx,
                access: &access,
                defs: &defs,
            },
            &b.ids,
            &action,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({"updated": done})))
}

/// Turns the wire form of a bulk action into the domain's, resolving the tag.
pub fn parse_bulk(
    c: &mut DbConn,
    org_id: &str,
    action: &str,
    assigned_to: Option<String>,
    tag: Option<String>,
) -> AppResult<BulkAction> {
    Ok(match action {
        "assign" => BulkAction::Assign(assigned_to.filter(|a| !a.is_empty())),
        "tag" | "untag" => {
            let reference = tag.ok_or_else(|| AppError::invalid("tag", "Name the tag."))?;
            let t = service::resolve_tag(c, org_id, &reference)?
                .ok_or_else(|| AppError::invalid("tag", "There is no such tag."))?;
            if action == "tag" {
                BulkAction::Tag(t.id)
            } else {
                BulkAction::Untag(t.id)
            }
        }
        "delete" => BulkAction::Delete,
        _ => {
            return Err(AppError::invalid(
                "action",
                "Use assign, tag, untag or delete.",
            ))
        }
    })
}
