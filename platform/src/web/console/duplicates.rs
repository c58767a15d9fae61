//! Duplicates in the console: the groups a scan finds, a side-by-side comparison where the
//! user picks the surviving value per field, and the merge with its undo.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::app::AppState;
use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::clients::duplicates::{self, MERGE_FIELDS};
use crate::error::{AppError, AppResult};
use crate::web::console::{redirect, redirect_with_flash, render};
use crate::web::{client_access, query_pairs};

#[derive(Template)]
#[template(path = "partials/clients/duplicates.html")]
struct GroupsPage {
    groups: Vec<duplicates::Group>,
    /// "Last checked …", "Checking now…" or "Not checked yet".
    status: String,
    /// A scan is queued or running: the page refreshes itself.
    busy: bool,
}

/// `GET /clients/duplicates`.
pub async fn groups(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let (groups, scan) = db::run(&state.pool, move |c| {
        duplicates::page(c, &org, &access, 200)
    })
    .await?;
    let busy = scan.running() || scan.pending();
    let status = match (busy, scan.finished_at) {
        (true, _) => {
            "Checking for duplicates now; this page refreshes when it is done.".to_string()
        }
        (false, Some(at)) => format!(
            "Last checked {} UTC across {} clients.",
            at.format("%-d %b %Y %H:%M"),
            scan.scanned_clients
        ),
        (false, None) => "Not checked yet.".to_string(),
    };
    render(
        &req,
        &actor,
        "Duplicates",
        &GroupsPage {
            groups,
            status,
            busy,
        },
    )
    .await
}

/// `POST /clients/duplicates/scan`: asks for a fresh scan and shows the page again.
pub async fn request_scan(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    actor.require("client", "delete").await?;
    let org = actor.org_id().to_string();
    db::run(&state.pool, move |c| duplicates::request_scan(c, &org)).await?;
    redirect_with_flash(
        &req,
        "/clients/duplicates",
        "A fresh check for duplicates has started.",
    )
}

pub struct FieldChoice {
    pub key: String,
    pub label: String,
    pub mine: String,
    pub theirs: String,
}

#[derive(Template)]
#[template(path = "partials/clients/merge.html")]
struct ComparePage {
    survivor_id: String,
    survivor: String,
    duplicate_id: String,
    duplicate: String,
    fields: Vec<FieldChoice>,
    moving: Vec<(String, i64)>,
}

fn label(key: &str) -> &'static str {
    match key {
        "firstName" => "First name",
        "lastName" => "Last name",
        "companyName" => "Company name",
        "email" => "E-mail",
        "phone" => "Phone",
        "website" => "Website",
        "industry" => "Industry",
        "source" => "Source",
        "status" => "Status",
        "assignedTo" => "Owner",
        _ => "Address",
    }
}

fn shown(c: &crate::domain::clients::ClientRow, key: &str) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    match key {
        "firstName" => o(&c.first_name),
        "lastName" => o(&c.last_name),
        "companyName" => o(&c.company_name),
        "email" => o(&c.email),
        "phone" => o(&c.phone),
        "website" => o(&c.website),
        "industry" => o(&c.industry),
        "source" => o(&c.source),
        "status" => c.status.clone(),
        "assignedTo" => o(&c.assigned_to),
        _ => [&c.street, &c.postal_code, &c.city, &c.country]
            .iter()
            .filter_map(|v| v.as_deref())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `GET /clients/{id}/merge?with={duplicate}`.
pub async fn compare(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "delete").await?;
    let access = client_access(&actor).await?;
    let with = query_pairs(&req)?
        .into_iter()
        .find(|(k, _)| k == "with")
        .map(|(_, v)| v)
        .ok_or_else(|| AppError::BadRequest("Say which client to compare with.".into()))?;
    let org = actor.org_id().to_string();
    let page = db::run(&state.pool, move |c| {
        use crate::db::schema::{interactions, opportunities};
        use diesel::prelude::*;
        let s = crate::domain::clients::service::get(c, &org, &access, &id)?;
        let d = crate::domain::clients::service::get(c, &org, &access, &with)?;
        let names = |c: &mut db::DbConn, row: &crate::domain::clients::ClientRow| {
            crate::domain::orgs::store::find_member(
                c,
                &org,
                row.assigned_to.as_deref().unwrap_or_default(),
            )
            .map(|m| m.map(|m| m.user.email).unwrap_or_default())
        };
        let (sn, dn) = (names(c, &s)?, names(c, &d)?);
        let fields = MERGE_FIELDS
            .iter()
            .map(|k| {
                let (mine, theirs) = if *k == "assignedTo" {
                    (sn.clone(), dn.clone())
                } else {
                    (shown(&s, k), shown(&d, k))
                };
                FieldChoice {
                    key: k.to_string(),
                    label: label(k).to_string(),
                    mine,
                    theirs,
                }
            })
            .filter(|f| f.mine != f.theirs)
            .collect::<Vec<_>>();
        // Custom fields the reader may write, where the two differ.
        let mut fields = fields;
        let (sm, dm) = (s.custom_map(), d.custom_map());
        let text = |v: Option<&serde_json::Value>| match v {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
            Some(other) => other.to_string(),
        };
        for def in crate::domain::custom_fields::store::list(c, &org, "client", false)? {
            if !def.is_active() || (def.sensitive && !access.write_sensitive) {
                continue;
            }
            let (mine, theirs) = (text(sm.get(&def.field_key)), text(dm.get(&def.field_key)));
            if mine != theirs {
                fields.push(FieldChoice {
                    key: format!("{}{}", duplicates::CUSTOM_PREFIX, def.field_key),
                    label: def.label.clone(),
                    mine,
                    theirs,
                });
            }
        }
        let count_i: i64 = interactions::table
            .filter(interactions::client_id.eq(&d.id))
            .filter(interactions::deleted_at.is_null())
            .count()
            .get_result(c)?;
        let count_d: i64 = opportunities::table
            .filter(opportunities::client_id.eq(&d.id))
            .filter(opportunities::deleted_at.is_null())
            .count()
            .get_result(c)?;
        Ok(ComparePage {
            survivor_id: s.id.clone(),
            survivor: s.display_name.clone(),
            duplicate_id: d.id.clone(),
            duplicate: d.display_name.clone(),
            fields,
            moving: vec![
                ("interactions".to_string(), count_i),
                ("deals".to_string(), count_d),
            ],
        })
    })
    .await?;
    render(&req, &actor, "Merge", &page).await
}

/// `POST /clients/{id}/merge`: `duplicate` and `take` (repeated) from the comparison.
pub async fn merge(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
    let duplicate = pairs
        .iter()
        .find(|(k, _)| k == "duplicate")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| AppError::BadRequest("Say which client to merge.".into()))?;
    let take: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| v == "duplicate")
        .filter_map(|(k, _)| k.strip_prefix("field_").map(str::to_string))
        .collect();
    let (row, undo) =
        crate::web::api::duplicates::run_merge(&actor, &state, id.into_inner(), duplicate, take)
            .await
            .map_err(crate::web::console::as_toast)?;
    let _ = row;
    Ok(redirect(&req, &format!("/merges/{undo}")))
}

#[derive(Template)]
#[template(path = "partials/clients/merged.html")]
struct MergedPage {
    undo_id: String,
    survivor_id: String,
    survivor: String,
    duplicate: String,
    undone: bool,
}

/// `GET /merges/{id}`: what a merge did, with its undo.
pub async fn merged(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let org = actor.org_id().to_string();
    let page = db::run(&state.pool, move |c| {
        use crate::db::schema::{audit_log, clients};
        use diesel::prelude::*;
        let (changes, survivor): (String, Option<String>) = audit_log::table
            .filter(audit_log::organization_id.eq(&org))
            .filter(audit_log::id.eq(&*id))
            .filter(audit_log::action.eq("client.merge"))
            .select((audit_log::changes, audit_log::resource_id))
            .first(c)
            .optional()?
            .ok_or(AppError::NotFound)?;
        let v: serde_json::Value = serde_json::from_str(&changes).unwrap_or_default();
        let dup = v["duplicate"].as_str().unwrap_or_default().to_string();
        let name = |c: &mut db::DbConn, cid: &str| -> AppResult<String> {
            Ok(clients::table
                .filter(clients::id.eq(cid))
                .select(clients::display_name)
                .first(c)
                .optional()?
                .unwrap_or_default())
        };
        let survivor = survivor.unwrap_or_default();
        let undone: bool = diesel::select(diesel::dsl::exists(
            audit_log::table
                .filter(audit_log::action.eq("client.merge_undo"))
                .filter(audit_log::resource_id.eq(&*id)),
        ))
        .get_result(c)?;
        Ok(MergedPage {
            undo_id: id.to_string(),
            survivor: name(c, &survivor)?,
            duplicate: name(c, &dup)?,
            survivor_id: survivor,
            undone,
        })
    })
    .await?;
    render(&req, &actor, "Merged", &page).await
}

/// `POST /merges/{id}/undo`.
pub async fn undo(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    actor.require("client", "delete").await?;
    let ctx = actor.audit();
    let id = id.into_inner();
    let bid = id.clone();
    db::run(&state.pool, move |c| duplicates::undo(c, &ctx, &bid)).await?;
    redirect_with_flash(
        &req,
        &format!("/merges/{id}"),
        "The merge was undone; both clients are back as they were.",
    )
}
