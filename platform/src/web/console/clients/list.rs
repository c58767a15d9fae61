//! The client list: filters, sort links, column choices, paging, saved views and bulk actions.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;

use super::super::{redirect, redirect_with_flash, render_with_status};
use super::*;
use crate::auth::ConsoleActor;
use crate::db::{self};
use crate::domain::clients::query::{self, cursor_after, Column, SortKey};
use crate::domain::clients::service::{self};
use crate::domain::clients::{status_label, store, TagRow, STATUSES};
use crate::domain::custom_fields::value::display;
use crate::domain::custom_fields::{self, FieldRow};
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::clients as ops;
use crate::state::AppState;
use crate::web::{client_access, query_pairs, resolve_me};

pub struct Row {
    pub id: String,
    pub name: String,
    pub is_company: bool,
    pub email: String,
    pub phone: String,
    pub status: String,
    pub status_label: &'static str,
    pub owner: String,
    pub company: String,
    pub city: String,
    pub industry: String,
    pub tags: Vec<TagView>,
    /// Values of the custom columns shown, in column order.
    pub custom: Vec<String>,
    pub updated: String,
}

pub struct ColumnChoice {
    pub key: String,
    pub label: String,
    pub shown: bool,
}

pub struct SortLink {
    pub label: String,
    pub href: String,
    /// "", "asc" or "desc"
    pub state: &'static str,
}

pub struct ViewLink {
    pub id: String,
    pub name: String,
    pub href: String,
}

const BUILTIN_COLUMNS: &[(&str, &str)] = &[
    ("email", "E-mail"),
    ("phone", "Phone"),
    ("status", "Status"),
    ("owner", "Owner"),
    ("company", "Company"),
    ("city", "City"),
    ("industry", "Industry"),
    ("tags", "Tags"),
    ("updatedAt", "Updated"),
];
const DEFAULT_COLUMNS: &[&str] = &["email", "phone", "status", "owner", "tags"];

#[derive(Template)]
#[template(path = "partials/clients/list.html")]
struct ClientsList {
    rows: Vec<Row>,
    headers: Vec<SortLink>,
    show: HashMap<String, bool>,
    custom_headers: Vec<SortLink>,
    columns: Vec<ColumnChoice>,
    q: String,
    statuses: Vec<Choice>,
    kinds: Vec<Choice>,
    owners: Vec<Choice>,
    tags: Vec<Choice>,
    filter_fields: Vec<Choice>,
    cf_ops: Vec<Choice>,
    cf_value: String,
    views: Vec<ViewLink>,
    next_href: Option<String>,
    first_href: Option<String>,
    query: String,
    filtered: bool,
    can_write: bool,
    can_delete: bool,
    can_admin: bool,
    can_export: bool,
    errors: Vec<FieldError>,
    bulk_tags: Vec<Choice>,
    bulk_owners: Vec<Choice>,
}

impl ClientsList {
    fn shown(&self, col: &str) -> bool {
        self.show.get(col).copied().unwrap_or(false)
    }

    fn header(&self, i: usize) -> String {
        self.headers
            .get(i)
            .and_then(|h| SortLinkHtml { h }.render().ok())
            .unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "partials/clients/sort_link.html")]
struct SortLinkHtml<'a> {
    h: &'a SortLink,
}

/// Rebuilds a query string from pairs, leaving out `drop` keys.
fn query_without(pairs: &[(String, String)], drop: &[&str]) -> String {
    let kept: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, v)| !drop.contains(&k.as_str()) && !v.is_empty())
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

fn with_param(base: &str, key: &str, value: &str) -> String {
    let extra = serde_urlencoded::to_string([(key, value)]).unwrap_or_default();
    if base.is_empty() {
        format!("/clients?{extra}")
    } else {
        format!("/clients?{base}&{extra}")
    }
}

/// The console's simple custom-field filter row becomes an API filter parameter.
fn expand_console_filters(pairs: &mut Vec<(String, String)>) {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let (key, op, value) = (get("cf_key"), get("cf_op"), get("cf_value"));
    if !key.is_empty() && !value.is_empty() {
        let name = if op.is_empty() || op == "eq" {
            format!("filter[customFields.{key}]")
        } else {
            format!("filter[customFields.{key}][{op}]")
        };
        pairs.push((name, value));
    }
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let can_write = actor.can("client", "write").await?;
    let can_delete = actor.can("client", "delete").await?;
    let can_admin = actor.can("client", "admin").await?;
    let can_export = actor.can("client", "export").await?;
    let raw_pairs = query_pairs(&req)?;
    let org = actor.org_id().to_string();
    let user = actor.user_id.clone();
    let page = db::run(&state.pool, move |c| {
        let defs = custom_fields::store::list(c, &org, "client", false)?;
        let visible_defs: Vec<FieldRow> = defs
            .iter()
            .filter(|d| !d.sensitive || access.read_sensitive)
            .cloned()
            .collect();
        let mut pairs = raw_pairs.clone();
        expand_console_filters(&mut pairs);
        resolve_me(&mut pairs, &user);
        let get = |k: &str| {
            raw_pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let all = |k: &str| -> Vec<String> {
            raw_pairs
                .iter()
                .filter(|(key, _)| key == k)
                .flat_map(|(_, v)| v.split(',').map(str::to_string))
                .filter(|v| !v.is_empty())
                .collect()
        };
        let (params, errors) = match query::parse_params(c, &org, &visible_defs, &pairs) {
            Ok(p) => (Some(p), Vec::new()),
            Err(AppError::Validation(_, errs)) => (None, errs),
            Err(e) => return Err(e),
        };
        let mut rows = Vec::new();
        let mut next_href = None;
        let owners = owner_names(c, &org)?;
        let owner_map: HashMap<String, String> = owners.iter().cloned().collect();
        let chosen = all("columns");
        let shown_cols: Vec<String> = if chosen.is_empty() {
            DEFAULT_COLUMNS.iter().map(|s| s.to_string()).collect()
        } else {
            chosen
        };
        let custom_cols: Vec<&FieldRow> = visible_defs
            .iter()
            .filter(|d| shown_cols.contains(&format!("cf:{}", d.field_key)))
            .collect();
        let base = query_without(&raw_pairs, &["cursor"]);
        if let Some(mut params) = params.clone() {
            if !access.oversee {
                params.only_assigned_to = Some(access.user_id.clone());
            }
            let limit = params.limit;
            params.limit = limit + 1;
            let mut found = query::list(c, &org, &params)?;
            let more = found.len() as i64 > limit;
            found.truncate(limit as usize);
            if more {
                if let Some(last) = found.last() {
                    next_href = Some(with_param(
                        &base,
                        "cursor",
                        &cursor_after(last, &params.sort).encode(),
                    ));
                }
            }
            let tags = {
                let ids: Vec<String> = found.iter().map(|r| r.id.clone()).collect();
                let mut m: HashMap<String, Vec<TagRow>> = HashMap::new();
                for (cid, t) in store::tags_of(c, &ids)? {
                    m.entry(cid).or_default().push(t);
                }
                m
            };
            let employers: HashMap<String, String> = {
                let ids: Vec<String> = found.iter().filter_map(|r| r.employer_id.clone()).collect();
                store::find_many(c, &org, &ids)?
                    .into_iter()
                    .map(|e| (e.id, e.display_name))
                    .collect()
            };
            rows = found
                .into_iter()
                .map(|r| {
                    let stored = r.custom_map();
                    Row {
                        custom: custom_cols
                            .iter()
                            .map(|d| {
                                stored
                                    .get(&d.field_key)
                                    .map(|v| display(d, v))
                                    .unwrap_or_default()
                            })
                            .collect(),
                        tags: tags
                            .get(&r.id)
                            .map(|ts| ts.iter().map(TagView::from).collect())
                            .unwrap_or_default(),
                        owner: r
                            .assigned_to
                            .as_ref()
                            .and_then(|u| owner_map.get(u).cloned())
                            .unwrap_or_default(),
                        company: r
                            .employer_id
                            .as_ref()
                            .and_then(|e| employers.get(e).cloned())
                            .unwrap_or_default(),
                        status_label: status_label(&r.status),
                        is_company: r.is_company(),
                        updated: fmt_time(r.updated_at),
                        id: r.id,
                        name: r.display_name,
                        email: r.email.unwrap_or_default(),
                        phone: r.phone.unwrap_or_default(),
                        status: r.status,
                        city: r.city.unwrap_or_default(),
                        industry: r.industry.unwrap_or_default(),
                    }
                })
                .collect();
        }
        let sort = params.as_ref().map(|p| p.sort.clone()).unwrap_or_default();
        let sort_base = query_without(&raw_pairs, &["cursor", "sort"]);
        let sort_link = |label: &str, api: &str| {
            let current = match &sort.key {
                SortKey::Column(col) => {
                    Column::parse(api) == Some(*col) && !api.starts_with("customFields.")
                }
                SortKey::Custom(f) => api == format!("customFields.{}", f.field_key),
            };
            let (state, next) = match (current, sort.descending) {
                (true, false) => ("asc", format!("-{api}")),
                (true, true) => ("desc", api.to_string()),
                _ => ("", api.to_string()),
            };
            SortLink {
                label: label.to_string(),
                href: with_param(&sort_base, "sort", &next),
                state,
            }
        };
        let headers = vec![
            sort_link("Name", "name"),
            sort_link("E-mail", "email"),
            sort_link("Phone", "phone"),
            sort_link("Status", "status"),
            SortLink {
                label: "Owner".into(),
                href: String::new(),
                state: "",
            },
            sort_link("Company", "companyName"),
            sort_link("City", "city"),
            sort_link("Industry", "industry"),
            SortLink {
                label: "Tags".into(),
                href: String::new(),
                state: "",
            },
            sort_link("Updated", "updatedAt"),
        ];
        let custom_headers = custom_cols
            .iter()
            .map(|d| {
                if query::sortable(d) {
                    sort_link(&d.label, &format!("customFields.{}", d.field_key))
                } else {
                    SortLink {
                        label: d.label.clone(),
                        href: String::new(),
                        state: "",
                    }
                }
            })
            .collect();
        let mut columns: Vec<ColumnChoice> = BUILTIN_COLUMNS
            .iter()
            .map(|(k, l)| ColumnChoice {
                key: k.to_string(),
                label: l.to_string(),
                shown: shown_cols.contains(&k.to_string()),
            })
            .collect();
        columns.extend(visible_defs.iter().map(|d| ColumnChoice {
            key: format!("cf:{}", d.field_key),
            label: d.label.clone(),
            shown: shown_cols.contains(&format!("cf:{}", d.field_key)),
        }));
        let show = shown_cols.iter().map(|c| (c.clone(), true)).collect();
        let all_tags = store::list_tags(c, &org)?;
        let views = store::list_views(c, &org, &user, "client")?
            .into_iter()
            .map(|v| ViewLink {
                href: format!("/clients?{}&view={}", v.query, v.id),
                id: v.id,
                name: v.name,
            })
            .collect();
        let filtered = raw_pairs.iter().any(|(k, v)| {
            !v.is_empty() && (k.starts_with("filter[") || k == "q" || k == "cf_value")
        });
        Ok(ClientsList {
            rows,
            headers,
            show,
            custom_headers,
            columns,
            q: get("q"),
            statuses: choices(
                STATUSES
                    .iter()
                    .map(|s| (s.to_string(), status_label(s).to_string())),
                &all("filter[status]"),
            ),
            kinds: choices(
                [
                    ("individual".to_string(), "People".to_string()),
                    ("company".to_string(), "Companies".to_string()),
                ],
                &all("filter[type]"),
            ),
            owners: choices(
                [
                    ("me".to_string(), "Me".to_string()),
                    ("none".to_string(), "Nobody".to_string()),
                ]
                .into_iter()
                .chain(owners.clone()),
                &all("filter[assignedTo]"),
            ),
            tags: choices(
                all_tags.iter().map(|t| (t.name.clone(), t.name.clone())),
                &all("filter[tag]"),
            ),
            filter_fields: choices(
                visible_defs
                    .iter()
                    .map(|d| (d.field_key.clone(), d.label.clone())),
                &[get("cf_key")],
            ),
            cf_ops: choices(
                [
                    ("eq", "is"),
                    ("gte", "from"),
                    ("lte", "until"),
                    ("contains", "contains"),
                ]
                .map(|(v, l)| (v.to_string(), l.to_string())),
                &[get("cf_op")],
            ),
            cf_value: get("cf_value"),
            views,
            first_href: raw_pairs
                .iter()
                .any(|(k, _)| k == "cursor")
                .then(|| format!("/clients?{base}")),
            next_href,
            query: base,
            filtered,
            can_write,
            can_delete,
            can_admin,
            can_export,
            errors,
            bulk_tags: choices(all_tags.iter().map(|t| (t.id.clone(), t.name.clone())), &[]),
            bulk_owners: choices(owners, &[]),
        })
    })
    .await?;
    let status = if page.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_with_status(&req, &actor, "Clients", &page, status).await
}

// ---------- saved views and bulk ----------

pub async fn save_view(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let pairs = parse_form(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (name, query) = (get("name"), get("query"));
    let ctx = actor.audit();
    let user = actor.user_id.clone();
    let view = db::run(&state.pool, move |c| {
        service::save_view(c, &ctx, &user, &name, &query)
    })
    .await?;
    redirect_with_flash(
        &req,
        &format!("/clients?{}", view.query),
        &format!("The view {} was saved.", view.name),
    )
}

pub async fn delete_view(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let (org, user) = (actor.org_id().to_string(), actor.user_id.clone());
    let found = db::run(&state.pool, move |c| {
        Ok(store::delete_view(c, &org, &user, &id)?)
    })
    .await?;
    if !found {
        return Err(AppError::NotFound);
    }
    Ok(redirect(&req, "/clients"))
}

pub async fn bulk(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let input = ops::BulkInput {
        ids: pairs
            .iter()
            .filter(|(k, _)| k == "ids")
            .map(|(_, v)| v.clone())
            .collect(),
        action: posted(&pairs, "action"),
        assigned_to: Some(posted(&pairs, "assigned_to")),
        tag: Some(posted(&pairs, "tag")).filter(|t| !t.is_empty()),
    };
    let done = ops::bulk(&scope, input).await?;
    let back = posted(&pairs, "back");
    let message = format!("{done} client{} updated.", if done == 1 { "" } else { "s" });
    redirect_with_flash(&req, &format!("/clients?{back}"), &message)
}
