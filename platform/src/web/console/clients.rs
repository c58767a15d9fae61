//! The client console: list (filters, sort, paging, saved views, bulk actions),
//! profile, create/edit form, trash, and the company/client pickers.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use super::{redirect, redirect_with_flash, render, render_with_status};
use crate::auth::ConsoleActor;
use crate::db::{self, DbConn};
use crate::domain::audit::{self, AuditRow};
use crate::domain::clients::query::{self, cursor_after, Column, SortKey};
use crate::domain::clients::service::{self, Access, WriteMode};
use crate::domain::clients::{status_label, store, ClientRow, TagRow, RELATION_LABELS, STATUSES};
use crate::domain::custom_fields::value::{display, form_value};
use crate::domain::custom_fields::{self, FieldRow, FieldType};
use crate::domain::orgs;
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::clients as ops;
use crate::state::AppState;
use crate::web::{client_access, query_pairs, resolve_me};

// ---------- shared views ----------

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(items: impl IntoIterator<Item = (String, String)>, selected: &[String]) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice {
            selected: selected.contains(&value),
            value,
            label,
        })
        .collect()
}

pub struct TagView {
    pub id: String,
    pub name: String,
    pub color: String,
}

impl From<&TagRow> for TagView {
    fn from(t: &TagRow) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            color: t.color.clone(),
        }
    }
}

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

fn fmt_time(t: chrono::NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn owner_names(c: &mut DbConn, org_id: &str) -> AppResult<Vec<(String, String)>> {
    let filter = orgs::store::MemberFilter {
        is_active: Some(true),
        limit: 1000,
        ..Default::default()
    };
    Ok(orgs::store::list_members(c, org_id, &filter)?
        .into_iter()
        .map(|m| (m.user.id, m.user.name))
        .collect())
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

// ---------- profile ----------

pub struct FieldLine {
    pub label: String,
    pub value: String,
    pub help: String,
}

pub struct FieldGroup {
    pub name: String,
    pub fields: Vec<FieldLine>,
}

pub struct PersonView {
    pub id: String,
    pub name: String,
    pub detail: String,
}

pub struct RelationView {
    pub id: String,
    pub other_id: String,
    pub other_name: String,
    pub text: String,
}

pub struct HistoryView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub changes: String,
}

#[derive(Template)]
#[template(path = "partials/clients/profile.html")]
struct ClientProfile {
    /// The rendered Files card.
    files: String,
    /// Likely duplicates: (id, name, why).
    twins: Vec<(String, String, &'static str)>,
    id: String,
    name: String,
    is_company: bool,
    status: String,
    status_label: &'static str,
    owner: String,
    email: String,
    phone: String,
    website: String,
    address: Vec<String>,
    industry: String,
    source: String,
    created: String,
    updated: String,
    groups: Vec<FieldGroup>,
    tags: Vec<TagView>,
    addable_tags: Vec<Choice>,
    employer: Option<PersonView>,
    people: Vec<PersonView>,
    relations: Vec<RelationView>,
    relation_labels: Vec<&'static str>,
    history: Vec<HistoryView>,
    /// The rendered timeline card (quick log + interactions).
    timeline: String,
    /// (channel, label, status: opt_in | opt_out | unknown, source).
    consents: Vec<(String, &'static str, String, String)>,
    do_not_contact: bool,
    can_write: bool,
    can_delete: bool,
    can_tag: bool,
    notice: Option<String>,
}

fn group_fields(
    defs: &[FieldRow],
    stored: &Map<String, Value>,
    access: &Access,
    plugins: &crate::plugins::PluginFieldTypes,
) -> Vec<FieldGroup> {
    let mut groups: Vec<FieldGroup> = Vec::new();
    for d in defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.read_sensitive))
    {
        let value = stored
            .get(&d.field_key)
            .map(|v| match v.as_str() {
                // A plugin type reads as its plugin's `format` hook says (or as stored).
                Some(text) if d.field_type.starts_with("plugin:") => {
                    plugins.format(&d.field_type, text)
                }
                _ => display(d, v),
            })
            .unwrap_or_default();
        let name = if d.display_group.is_empty() {
            "Details".to_string()
        } else {
            d.display_group.clone()
        };
        let line = FieldLine {
            label: d.label.clone(),
            value,
            help: d.help_text.clone(),
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.fields.push(line),
            None => groups.push(FieldGroup {
                name,
                fields: vec![line],
            }),
        }
    }
    groups
}

fn history_of(rows: Vec<AuditRow>) -> Vec<HistoryView> {
    rows.into_iter()
        .map(|r| HistoryView {
            at: fmt_time(r.created_at),
            actor: r.actor_label,
            action: match r.action.as_str() {
                "client.create" => "created the client",
                "client.update" => "changed",
                "client.delete" => "moved it to the trash",
                "client.restore" => "restored it",
                "client.tag" => "tagged it",
                "client.untag" => "removed a tag",
                "client.relate" => "linked a relation",
                "client.unrelate" => "removed a relation",
                "client.view_sensitive" => "viewed sensitive fields",
                _ => "updated",
            }
            .to_string(),
            changes: if r.action == "client.create" {
                String::new()
            } else {
                super::admin::audit::describe_changes(&r.changes)
            },
        })
        .collect()
}

async fn profile_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    id: String,
    notice: Option<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(actor).await?;
    let log_interactions = actor.can("interaction", "write").await?;
    let see_timeline = actor.can("interaction", "read").await?;
    let can_write = actor.can("client", "write").await?;
    let can_delete = actor.can("client", "delete").await?;
    // "Log" in the client list opens the profile ready to type.
    let focus_log = req.query_string().split('&').any(|p| p == "log=1");
    let upload_limit = state.config.max_upload_bytes;
    let scope = crate::web::scope::of(actor, state).await?;
    let (_, rels) = ops::relations(&scope, id.clone()).await?;
    let ctx = actor.audit();
    let org = ctx.org_id.clone();
    let page = crate::web::run_with_plugins(state, org, move |c, plugins| {
        let org = ctx.org_id.clone();
        let row = service::get(c, &org, &access, &id)?;
        let relations = rels
            .into_iter()
            .map(|r| RelationView {
                text: if r.direction == "outgoing" {
                    format!("{} {}", row.display_name, r.label)
                } else {
                    format!("{} {}", r.display_name, r.label)
                },
                id: r.id,
                other_id: r.client_id,
                other_name: r.display_name,
            })
            .collect();
        let defs = custom_fields::store::list(c, &org, "client", false)?;
        let stored = row.custom_map();
        if access.read_sensitive
            && defs
                .iter()
                .any(|d| d.sensitive && stored.contains_key(&d.field_key))
        {
            audit::record(
                c,
                &ctx,
                "client.view_sensitive",
                "client",
                Some(&row.id),
                serde_json::json!({}),
            )?;
        }
        let tags: Vec<TagRow> = store::tags_of(c, std::slice::from_ref(&row.id))?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let all_tags = store::list_tags(c, &org)?;
        let owner = match &row.assigned_to {
            Some(u) => orgs::store::find_member(c, &org, u)?
                .map(|m| m.user.name)
                .unwrap_or_default(),
            None => String::new(),
        };
        let employer = match &row.employer_id {
            Some(e) => store::find(c, &org, e)?
                .filter(|e| e.deleted_at.is_none())
                .map(|e| PersonView {
                    id: e.id,
                    name: e.display_name,
                    detail: String::new(),
                }),
            None => None,
        };
        let people = if row.is_company() {
            store::people_of(c, &org, &row.id)?
                .into_iter()
                .map(|p| PersonView {
                    id: p.id,
                    name: p.display_name,
                    detail: p.email.unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let history = history_of(audit::list_for_resource(c, &org, "client", &row.id, 30)?);
        let address: Vec<String> = [
            row.street.clone(),
            [row.postal_code.clone(), row.city.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
                .into(),
            row.region.clone(),
            row.country.clone(),
        ]
        .into_iter()
        .flatten()
        .filter(|l| !l.is_empty())
        .collect();
        let timeline = if !see_timeline {
            String::new()
        } else {
            use askama::Template;
            let view = super::timeline::View {
                can_write: log_interactions,
                focus: focus_log,
                ..Default::default()
            };
            let scope = crate::domain::interactions::Scope::Client(row.id.clone());
            super::timeline::card(c, &org, &access, &scope, view)?
                .render()
                .map_err(|e| AppError::Internal(e.to_string()))?
        };
        let prefs = crate::domain::preferences::load(c, &org, &row.id)?;
        let consents = crate::domain::preferences::CHANNELS
            .iter()
            .map(|ch| {
                let consent = prefs.channels.get(*ch);
                (
                    ch.to_string(),
                    match *ch {
                        "email" => "E-mail",
                        "phone" => "Phone",
                        "sms" => "SMS",
                        _ => "Post",
                    },
                    consent.map_or("unknown".to_string(), |c| c.status.clone()),
                    consent.map(|c| c.source.clone()).unwrap_or_default(),
                )
            })
            .collect();
        let twins = crate::domain::clients::duplicates::candidates(c, &access, &row)?
            .into_iter()
            .map(|t| (t.id, t.name, t.reason))
            .collect();
        let files = super::files::card(
            c,
            &org,
            &access,
            &crate::domain::attachments::Parent::Client(row.id.clone()),
            can_write,
            upload_limit,
        )?;
        Ok(ClientProfile {
            files,
            twins,
            consents,
            do_not_contact: prefs.do_not_contact,
            timeline,
            groups: {
                let mut groups = group_fields(&defs, &stored, &access, plugins);
                let computed = plugins.computed(&rapport_plugin_sdk::ComputeRequest::Client(
                    crate::plugins::client_snapshot(&row),
                ));
                if !computed.is_empty() {
                    groups.push(FieldGroup {
                        name: "Computed by plugins".into(),
                        fields: computed
                            .into_iter()
                            .map(|v| FieldLine {
                                label: v.label,
                                value: v.value.unwrap_or_else(|| "unavailable right now".into()),
                                help: format!("Computed by the {} plugin", v.plugin),
                            })
                            .collect(),
                    });
                }
                groups
            },
            addable_tags: choices(
                all_tags
                    .iter()
                    .filter(|t| !tags.iter().any(|x| x.id == t.id))
                    .map(|t| (t.id.clone(), t.name.clone())),
                &[],
            ),
            tags: tags.iter().map(TagView::from).collect(),
            status_label: status_label(&row.status),
            is_company: row.is_company(),
            created: fmt_time(row.created_at),
            updated: fmt_time(row.updated_at),
            id: row.id,
            name: row.display_name,
            status: row.status,
            owner,
            email: row.email.unwrap_or_default(),
            phone: row.phone.unwrap_or_default(),
            website: row.website.unwrap_or_default(),
            address,
            industry: row.industry.unwrap_or_default(),
            source: row.source.unwrap_or_default(),
            employer,
            people,
            relations,
            relation_labels: RELATION_LABELS.to_vec(),
            history,
            can_write,
            can_delete,
            can_tag: can_write,
            notice,
        })
    })
    .await?;
    let title = page.name.clone();
    render(req, actor, &title, &page).await
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    profile_page(&req, &actor, &state, id.into_inner(), None).await
}

// ---------- form ----------

pub struct FormField {
    pub key: String,
    pub label: String,
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<Choice>,
    pub required: bool,
    pub help: String,
    pub currency: String,
    pub error: Option<String>,
}

pub struct FormGroup {
    pub name: String,
    pub fields: Vec<FormField>,
}

#[derive(Template)]
#[template(path = "partials/clients/form.html")]
struct ClientForm {
    id: Option<String>,
    version: i64,
    heading: String,
    values: HashMap<String, String>,
    statuses: Vec<Choice>,
    owners: Vec<Choice>,
    tags: Vec<Choice>,
    groups: Vec<FormGroup>,
    errors: Vec<FieldError>,
    stale: bool,
    employer_name: String,
    general_error: Option<String>,
}

impl ClientForm {
    fn v(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    fn error(&self, key: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == key)
            .map(|e| e.message.as_str())
    }
}

fn row_values(row: &ClientRow) -> HashMap<String, String> {
    let mut v = HashMap::new();
    let mut put = |k: &str, val: &Option<String>| {
        v.insert(k.to_string(), val.clone().unwrap_or_default());
    };
    put("firstName", &row.first_name);
    put("lastName", &row.last_name);
    put("companyName", &row.company_name);
    put("email", &row.email);
    put("phone", &row.phone);
    put("address.street", &row.street);
    put("address.city", &row.city);
    put("address.region", &row.region);
    put("address.postalCode", &row.postal_code);
    put("address.country", &row.country);
    put("website", &row.website);
    put("industry", &row.industry);
    put("source", &row.source);
    put("assignedTo", &row.assigned_to);
    put("employerId", &row.employer_id);
    v.insert("type".into(), row.kind.clone());
    v.insert("status".into(), row.status.clone());
    v
}

struct FormState {
    values: HashMap<String, String>,
    custom: HashMap<String, Vec<String>>,
    tags: Vec<String>,
}

fn form_groups(
    defs: &[FieldRow],
    access: &Access,
    custom: &HashMap<String, Vec<String>>,
    errors: &[FieldError],
) -> Vec<FormGroup> {
    let mut groups: Vec<FormGroup> = Vec::new();
    for d in defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.write_sensitive))
    {
        let values = custom.get(&d.field_key).cloned().unwrap_or_default();
        let kind = d.kind();
        let field = FormField {
            key: d.field_key.clone(),
            label: d.label.clone(),
            kind: kind.as_str(),
            value: match (kind, values.first()) {
                // why: datetime-local inputs take "YYYY-MM-DDTHH:MM" without a zone.
                (FieldType::DateTime, Some(v)) => {
                    v.trim_end_matches('Z').chars().take(16).collect()
                }
                (_, v) => v.cloned().unwrap_or_default(),
            },
            options: choices(d.option_list().into_iter().map(|o| (o.clone(), o)), &values),
            required: d.required,
            help: d.help_text.clone(),
            currency: d.currency.clone().unwrap_or_default(),
            error: errors
                .iter()
                .find(|e| e.field == format!("customFields.{}", d.field_key))
                .map(|e| e.message.clone()),
        };
        let name = if d.display_group.is_empty() {
            "Details".to_string()
        } else {
            d.display_group.clone()
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.fields.push(field),
            None => groups.push(FormGroup {
                name,
                fields: vec![field],
            }),
        }
    }
    groups
}

#[allow(clippy::too_many_arguments)]
fn build_form(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    id: Option<String>,
    version: i64,
    state: FormState,
    errors: Vec<FieldError>,
    stale: bool,
) -> AppResult<ClientForm> {
    let defs = custom_fields::store::list(c, org, "client", false)?;
    let owners = owner_names(c, org)?
        .into_iter()
        .filter(|(uid, _)| access.oversee || *uid == access.user_id)
        .collect::<Vec<_>>();
    let owner = state.values.get("assignedTo").cloned().unwrap_or_default();
    let employer_name = match state.values.get("employerId").filter(|e| !e.is_empty()) {
        Some(e) => store::find(c, org, e)?
            .map(|e| e.display_name)
            .unwrap_or_default(),
        None => String::new(),
    };
    let all_tags = store::list_tags(c, org)?;
    let general_error = errors
        .iter()
        .find(|e| {
            !e.field.starts_with("customFields.")
                && !state.values.contains_key(&e.field)
                && e.field != "tags"
        })
        .map(|e| format!("{}: {}", e.field, e.message));
    Ok(ClientForm {
        heading: if id.is_some() {
            "Edit client".into()
        } else {
            "New client".into()
        },
        id,
        version,
        statuses: choices(
            STATUSES
                .iter()
                .map(|s| (s.to_string(), status_label(s).to_string())),
            &[state
                .values
                .get("status")
                .cloned()
                .unwrap_or_else(|| "lead".into())],
        ),
        owners: choices(owners, &[owner]),
        tags: choices(
            all_tags.iter().map(|t| (t.name.clone(), t.name.clone())),
            &state.tags,
        ),
        groups: form_groups(&defs, access, &state.custom, &errors),
        employer_name,
        values: state.values,
        errors,
        stale,
        general_error,
    })
}

pub async fn new_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let me = actor.user_id.clone();
    let pairs = query_pairs(&req)?;
    let form = db::run(&state.pool, move |c| {
        let defs = custom_fields::store::list(c, &org, "client", false)?;
        let mut values: HashMap<String, String> = HashMap::from([
            ("type".to_string(), "individual".to_string()),
            ("status".to_string(), "lead".to_string()),
            ("assignedTo".to_string(), me),
        ]);
        // Prefill from the query, e.g. "add a person to this company".
        for (k, v) in pairs {
            if ["type", "employerId"].contains(&k.as_str()) {
                values.insert(k, v);
            }
        }
        let custom = defs
            .iter()
            .filter_map(|d| {
                let default: Value = serde_json::from_str(d.default_value.as_deref()?).ok()?;
                Some((d.field_key.clone(), form_values(&default)))
            })
            .collect();
        build_form(
            c,
            &org,
            &access,
            None,
            0,
            FormState {
                values,
                custom,
                tags: Vec::new(),
            },
            Vec::new(),
            false,
        )
    })
    .await?;
    render(&req, &actor, "New client", &form).await
}

fn form_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::Null => Vec::new(),
        other => vec![form_value(other)],
    }
}

pub async fn edit_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let org = actor.org_id().to_string();
    let id = id.into_inner();
    let form = db::run(&state.pool, move |c| {
        let row = service::get(c, &org, &access, &id)?;
        let tags = store::tags_of(c, std::slice::from_ref(&row.id))?
            .into_iter()
            .map(|(_, t)| t.name)
            .collect();
        let custom = row
            .custom_map()
            .iter()
            .map(|(k, v)| (k.clone(), form_values(v)))
            .collect();
        build_form(
            c,
            &org,
            &access,
            Some(row.id.clone()),
            row.version,
            FormState {
                values: row_values(&row),
                custom,
                tags,
            },
            Vec::new(),
            false,
        )
    })
    .await?;
    render(&req, &actor, "Edit client", &form).await
}

/// Reads the posted form into the API's JSON shape, so both go through one validation.
fn form_to_body(pairs: &[(String, String)], defs: &[FieldRow]) -> (Map<String, Value>, FormState) {
    let mut body = Map::new();
    let mut address = Map::new();
    let mut custom = Map::new();
    let mut state = FormState {
        values: HashMap::new(),
        custom: HashMap::new(),
        tags: Vec::new(),
    };
    let text = |v: &str| {
        if v.trim().is_empty() {
            Value::Null
        } else {
            Value::String(v.to_string())
        }
    };
    for (k, v) in pairs {
        match k.as_str() {
            "type" | "firstName" | "lastName" | "companyName" | "email" | "phone" | "website"
            | "industry" | "source" | "status" | "assignedTo" | "employerId" => {
                body.insert(k.clone(), text(v));
                state.values.insert(k.clone(), v.clone());
            }
            a if a.starts_with("address.") => {
                address.insert(a["address.".len()..].to_string(), text(v));
                state.values.insert(k.clone(), v.clone());
            }
            "tags" => state.tags.push(v.clone()),
            cf if cf.starts_with("cf.") => {
                state
                    .custom
                    .entry(cf[3..].to_string())
                    .or_default()
                    .push(v.clone());
            }
            _ => {}
        }
    }
    body.insert("address".into(), Value::Object(address));
    body.insert("tags".into(), Value::from(state.tags.clone()));
    for d in defs.iter().filter(|d| d.is_active()) {
        let Some(values) = state.custom.get(&d.field_key) else {
            if d.kind() == FieldType::MultiSelect
                && pairs
                    .iter()
                    .any(|(k, _)| k == &format!("cf_present.{}", d.field_key))
            {
                custom.insert(d.field_key.clone(), Value::Array(Vec::new()));
            }
            continue;
        };
        let value = if d.kind() == FieldType::MultiSelect {
            Value::from(
                values
                    .iter()
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        } else {
            values.first().map_or(Value::Null, |v| text(v))
        };
        custom.insert(d.field_key.clone(), value);
    }
    body.insert("customFields".into(), Value::Object(custom));
    (body, state)
}

/// The first value of `key` in a posted form, or "".
fn posted(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn parse_form(body: &web::Bytes) -> AppResult<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))
}

async fn save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: Option<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let version: i64 = posted(&pairs, "version").parse().unwrap_or(0);
    let org = scope.org_id.clone();
    let defs = db::run(&state.pool, move |c| {
        Ok(custom_fields::store::list(c, &org, "client", false)?)
    })
    .await?;
    let (body, form_state) = form_to_body(&pairs, &defs);
    let saved = match &id {
        None => ops::create(&scope, body).await,
        Some(i) => ops::update(&scope, i.clone(), body, WriteMode::Replace, Some(version)).await,
    };
    let (errors, stale, status) = match saved {
        Ok(v) => {
            let message = format!("{} was saved.", v.row.display_name);
            return redirect_with_flash(&req, &format!("/clients/{}", v.row.id), &message);
        }
        Err(AppError::Validation(_, errors)) => (errors, false, StatusCode::UNPROCESSABLE_ENTITY),
        Err(AppError::Stale(_)) => (Vec::new(), true, StatusCode::CONFLICT),
        Err(e) => return Err(e),
    };
    let access = scope.access("client");
    let org = scope.org_id.clone();
    let form = db::run(&state.pool, move |c| {
        // A stale form comes back with the current version, so saving again overwrites.
        let current = match (&id, stale) {
            (Some(i), true) => store::find(c, &org, i)?.map_or(version, |r| r.version),
            _ => version,
        };
        build_form(c, &org, &access, id, current, form_state, errors, stale)
    })
    .await?;
    render_with_status(&req, &actor, "Client", &form, status).await
}

pub async fn create(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    save(req, actor, state, None, body).await
}

pub async fn update(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    save(req, actor, state, Some(id.into_inner()), body).await
}

pub async fn delete(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let row = ops::trash(&scope, id.into_inner(), None).await?;
    let message = format!("{} was moved to the trash.", row.display_name);
    redirect_with_flash(&req, "/clients", &message)
}

// ---------- tags and relations on the profile ----------

pub async fn tag(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let (tag, add) = (posted(&pairs, "tag"), posted(&pairs, "op") != "remove");
    let id = id.into_inner();
    if let ops::TagChange::NoSuchTag = ops::set_tag(&scope, id.clone(), tag, add).await? {
        return Err(AppError::invalid("tag", "Choose a tag."));
    }
    profile_page(&req, &actor, &state, id, None).await
}

pub async fn relate(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let (other, label) = (posted(&pairs, "client_id"), posted(&pairs, "label"));
    let id = id.into_inner();
    match ops::relate(&scope, id.clone(), other, label).await {
        Ok(_) => {
            let done = Some("The relation was added.".into());
            profile_page(&req, &actor, &state, id, done).await
        }
        Err(AppError::Validation(_, errors)) => Err(AppError::Validation(
            errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            Vec::new(),
        )),
        Err(e) => Err(e),
    }
}

pub async fn unrelate(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (id, rel) = path.into_inner();
    ops::unrelate(&scope, id.clone(), rel).await?;
    let done = Some("The relation was removed.".into());
    profile_page(&req, &actor, &state, id, done).await
}

// ---------- pickers ----------

#[derive(Template)]
#[template(path = "partials/clients/lookup.html")]
struct Lookup {
    items: Vec<PersonView>,
    target: String,
}

/// Type-ahead for the company and relation pickers.
pub async fn lookup(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(&actor).await?;
    let pairs = query_pairs(&req)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (q, kind, target) = (get("q"), get("kind"), get("target"));
    let org = actor.org_id().to_string();
    let items = db::run(&state.pool, move |c| {
        if q.trim().is_empty() {
            return Ok(Vec::new());
        }
        let rows = if kind == "company" {
            store::companies_matching(c, &org, q.trim(), 8)?
        } else {
            let params = query::ListParams {
                q: Some(q.trim().to_string()),
                limit: 8,
                sort: query::Sort {
                    key: SortKey::Column(Column::Name),
                    descending: false,
                },
                only_assigned_to: (!access.oversee).then(|| access.user_id.clone()),
                ..Default::default()
            };
            query::list(c, &org, &params)?
        };
        Ok(rows
            .into_iter()
            .filter(|r| access.sees(r) || kind == "company")
            .map(|r| PersonView {
                detail: if r.is_company() {
                    "company".into()
                } else {
                    r.email.unwrap_or_default()
                },
                id: r.id,
                name: r.display_name,
            })
            .collect())
    })
    .await?;
    let t = Lookup {
        items,
        target: if target.is_empty() {
            "employer".into()
        } else {
            target
        },
    };
    let body = t.render().map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

// ---------- trash ----------

pub struct TrashRow {
    pub id: String,
    pub name: String,
    pub deleted: String,
}

#[derive(Template)]
#[template(path = "partials/clients/trash.html")]
struct TrashPage {
    rows: Vec<TrashRow>,
    next_href: Option<String>,
}

pub async fn trash(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "admin").await?;
    let org = actor.org_id().to_string();
    let pairs = query_pairs(&req)?;
    let page = db::run(&state.pool, move |c| {
        let mut params = query::parse_params(c, &org, &[], &pairs)?;
        params.trash = true;
        params.sort = query::Sort {
            key: SortKey::Column(Column::UpdatedAt),
            descending: true,
        };
        params.limit = 51;
        let mut rows = query::list(c, &org, &params)?;
        let more = rows.len() > 50;
        rows.truncate(50);
        let next_href = more
            .then(|| {
                rows.last().map(|r| {
                    format!(
                        "/clients/trash?cursor={}",
                        cursor_after(r, &params.sort).encode()
                    )
                })
            })
            .flatten();
        Ok(TrashPage {
            rows: rows
                .into_iter()
                .map(|r| TrashRow {
                    deleted: r.deleted_at.map(fmt_time).unwrap_or_default(),
                    id: r.id,
                    name: r.display_name,
                })
                .collect(),
            next_href,
        })
    })
    .await?;
    render(&req, &actor, "Trash", &page).await
}

pub async fn restore(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let row = ops::restore(&scope, id.into_inner()).await?.row;
    let message = format!("{} was restored.", row.display_name);
    redirect_with_flash(&req, &format!("/clients/{}", row.id), &message)
}

pub async fn purge(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::purge(&scope, id.into_inner()).await?;
    redirect_with_flash(&req, "/clients/trash", "The client was deleted for good.")
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

/// `POST /clients/{id}/preferences`: the profile's communication form.
pub async fn save_preferences(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
    let source = pairs
        .iter()
        .find(|(k, _)| k == "source")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut channels = serde_json::Map::new();
    for ch in crate::domain::preferences::CHANNELS {
        if let Some((_, status)) = pairs.iter().find(|(k, _)| k == ch) {
            channels.insert(
                ch.to_string(),
                serde_json::json!({"status": status, "source": source}),
            );
        }
    }
    let mut body = serde_json::Map::new();
    body.insert("channels".into(), serde_json::Value::Object(channels));
    body.insert(
        "doNotContact".into(),
        serde_json::Value::Bool(
            pairs
                .iter()
                .any(|(k, v)| k == "doNotContact" && v == "true"),
        ),
    );
    let ctx = actor.audit();
    let client = id.into_inner();
    let target = client.clone();
    db::run(&state.pool, move |c| {
        crate::domain::preferences::update(c, &ctx, &access, &target, &body).map(drop)
    })
    .await?;
    redirect_with_flash(
        &req,
        &format!("/clients/{client}"),
        "Communication preferences saved.",
    )
}
