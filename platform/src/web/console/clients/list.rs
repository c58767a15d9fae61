//! The client list: filters, sort links, column choices, paging, saved views and bulk actions.

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;

use super::{choices, fmt_time, parse_form, posted, status_choices, Choice, TagView};
use crate::auth::ConsoleActor;
use crate::domain::clients::query::{self, Column, Sort, SortKey};
use crate::domain::clients::{status_label, ClientRow, SavedViewRow};
use crate::domain::custom_fields::value::display_local;
use crate::domain::custom_fields::FieldRow;
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::{clients as ops, Scope};
use crate::state::AppState;
use crate::web::console::{redirect, redirect_with_flash, render_with_status};
use crate::web::query_pairs;

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
    /// Scores, blank until the client is first scored.
    pub engagement: String,
    pub churn_risk: String,
    pub lifetime_value: String,
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
    ("engagement", "Engagement"),
    ("churnRisk", "Churn risk"),
    ("lifetimeValue", "Lifetime value"),
];
const DEFAULT_COLUMNS: &[&str] = &["email", "phone", "status", "owner", "tags"];

/// What the filter bar offers, the current choices selected.
pub struct Filters {
    pub statuses: Vec<Choice>,
    pub kinds: Vec<Choice>,
    pub owners: Vec<Choice>,
    pub tags: Vec<Choice>,
    /// Custom fields to filter by.
    pub fields: Vec<Choice>,
    pub cf_ops: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "partials/clients/list.html")]
struct ClientsList {
    rows: Vec<Row>,
    headers: Vec<SortLink>,
    show: HashMap<String, bool>,
    custom_headers: Vec<SortLink>,
    columns: Vec<ColumnChoice>,
    q: String,
    filters: Filters,
    cf_value: String,
    views: Vec<ViewLink>,
    next_href: Option<String>,
    first_href: Option<String>,
    /// "1,234 clients", "1,000+ clients"; empty when the query was refused.
    count_label: String,
    query: String,
    filtered: bool,
    can_write: bool,
    can_delete: bool,
    can_admin: bool,
    can_export: bool,
    /// "E-mail these": a bulk send to what the list shows, for those who may write e-mail.
    send_link: Option<String>,
    errors: Vec<FieldError>,
    bulk_tags: Vec<Choice>,
    bulk_owners: Vec<Choice>,
    /// The segment the list is narrowed to: (id, name).
    segment: Option<(String, String)>,
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
    let scope = crate::web::scope::of(&actor, &state).await?;
    let raw = query_pairs(&req)?;
    let mut pairs = raw.clone();
    expand_console_filters(&mut pairs);
    let found = ops::list_page(&scope, pairs).await?;
    let status = if found.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let segment = match raw
        .iter()
        .find(|(k, v)| k == "filter[segment]" && !v.is_empty())
    {
        Some((_, id)) if scope.can("segment", "read") => {
            crate::ops::segments::get(&scope, id.clone())
                .await
                .ok()
                .map(|s| (s.id, s.name))
        }
        _ => None,
    };
    let mut page = list_view(&scope, &raw, found);
    page.segment = segment;
    render_with_status(&req, &actor, "Clients", &page, status).await
}

/// Every value of `key` in the query, comma-separated lists split.
fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .flat_map(|(_, v)| v.split(',').map(str::to_string))
        .filter(|v| !v.is_empty())
        .collect()
}

/// The list page from what the operation found, as the query (`raw`) asked for it.
fn list_view(scope: &Scope, raw: &[(String, String)], found: ops::ListPage) -> ClientsList {
    let chosen = all(raw, "columns");
    let shown: Vec<String> = if chosen.is_empty() {
        DEFAULT_COLUMNS.iter().map(|s| s.to_string()).collect()
    } else {
        chosen
    };
    let custom_cols: Vec<FieldRow> = found
        .fields
        .iter()
        .filter(|d| shown.contains(&format!("cf:{}", d.field_key)))
        .cloned()
        .collect();
    let base = query_without(raw, &["cursor"]);
    let send_link = scope.can("send", "create").then(|| {
        format!(
            "/mail/sends?{}",
            serde_urlencoded::to_string([("audience", base.as_str())]).unwrap_or_default()
        )
    });
    let sorter = Sorter {
        sort: &found.sort,
        base: query_without(raw, &["cursor", "sort"]),
    };
    ClientsList {
        headers: sorter.headers(),
        custom_headers: sorter.custom_headers(&custom_cols),
        columns: column_choices(&shown, &found.fields),
        show: shown.iter().map(|c| (c.clone(), true)).collect(),
        filters: filters(raw, &found),
        q: posted(raw, "q"),
        cf_value: posted(raw, "cf_value"),
        views: found.views.iter().map(view_link).collect(),
        first_href: raw
            .iter()
            .any(|(k, _)| k == "cursor")
            .then(|| format!("/clients?{base}")),
        next_href: found
            .next_cursor
            .as_ref()
            .map(|c| with_param(&base, "cursor", c)),
        count_label: found
            .total
            .map(|t| count_label(t, &scope.local))
            .unwrap_or_default(),
        query: base,
        filtered: raw.iter().any(|(k, v)| {
            !v.is_empty() && (k.starts_with("filter[") || k == "q" || k == "cf_value")
        }),
        can_write: scope.can("client", "write"),
        can_delete: scope.can("client", "delete"),
        can_admin: scope.can("client", "admin"),
        can_export: scope.can("client", "export"),
        send_link,
        bulk_tags: choices(
            found
                .all_tags
                .iter()
                .map(|t| (t.id.clone(), t.name.clone())),
            &[],
        ),
        bulk_owners: choices(found.owners.iter().cloned(), &[]),
        rows: rows_of(&found, &custom_cols, &scope.local),
        errors: found.errors,
        segment: None,
    }
}

/// The list's count as people read it: grouped digits, "+" past the cap.
fn count_label(total: ops::Total, local: &crate::locale::Local) -> String {
    let grouped = local.count(total.count);
    let plus = if total.at_least { "+" } else { "" };
    let noun = if total.count == 1 && !total.at_least {
        "client"
    } else {
        "clients"
    };
    format!("{grouped}{plus} {noun}")
}

fn view_link(v: &SavedViewRow) -> ViewLink {
    ViewLink {
        href: format!("/clients?{}&view={}", v.query, v.id),
        id: v.id.clone(),
        name: v.name.clone(),
    }
}

fn rows_of(
    found: &ops::ListPage,
    custom_cols: &[FieldRow],
    local: &crate::locale::Local,
) -> Vec<Row> {
    let owners: HashMap<&str, &str> = found
        .owners
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    let named = |map: &HashMap<String, String>, id: &Option<String>| {
        id.as_ref()
            .and_then(|i| map.get(i).cloned())
            .unwrap_or_default()
    };
    found
        .rows
        .iter()
        .map(|r| {
            let stored = r.custom_map();
            let score = |f: &dyn Fn(&crate::domain::scores::ScoreRow) -> String| {
                found.scores.get(&r.id).map(f).unwrap_or_default()
            };
            Row {
                custom: custom_cols
                    .iter()
                    .map(|d| {
                        stored
                            .get(&d.field_key)
                            .map(|v| display_local(d, v, local))
                            .unwrap_or_default()
                    })
                    .collect(),
                tags: found
                    .tags
                    .get(&r.id)
                    .map(|ts| ts.iter().map(TagView::from).collect())
                    .unwrap_or_default(),
                owner: r
                    .assigned_to
                    .as_deref()
                    .and_then(|u| owners.get(u))
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                company: named(&found.employers, &r.employer_id),
                engagement: score(&|x| x.engagement.to_string()),
                churn_risk: score(&|x| x.churn_risk.to_string()),
                lifetime_value: score(&|x| local.cents(x.lifetime_value_cents, &x.currency)),
                ..row_of(r, local)
            }
        })
        .collect()
}

/// A row's built-in columns.
fn row_of(r: &ClientRow, local: &crate::locale::Local) -> Row {
    Row {
        id: r.id.clone(),
        name: r.display_name.clone(),
        is_company: r.is_company(),
        email: r.email.clone().unwrap_or_default(),
        phone: r.phone.clone().unwrap_or_default(),
        status: r.status.clone(),
        status_label: status_label(&r.status),
        owner: String::new(),
        company: String::new(),
        city: r.city.clone().unwrap_or_default(),
        industry: r.industry.clone().unwrap_or_default(),
        tags: Vec::new(),
        custom: Vec::new(),
        updated: fmt_time(r.updated_at, local),
        engagement: String::new(),
        churn_risk: String::new(),
        lifetime_value: String::new(),
    }
}

/// Sort links over the query without its cursor and sort (`base`).
struct Sorter<'a> {
    sort: &'a Sort,
    base: String,
}

impl Sorter<'_> {
    /// A header that sorts by `api` (the API's sort name): ascending first, then
    /// descending, marked when it is the current sort.
    fn link(&self, label: &str, api: &str) -> SortLink {
        let current = match &self.sort.key {
            SortKey::Column(col) => {
                Column::parse(api) == Some(*col) && !api.starts_with("customFields.")
            }
            SortKey::Custom(f) => api == format!("customFields.{}", f.field_key),
            SortKey::Score(score) => api == score.api_name(),
        };
        let (state, next) = match (current, self.sort.descending) {
            (true, false) => ("asc", format!("-{api}")),
            (true, true) => ("desc", api.to_string()),
            _ => ("", api.to_string()),
        };
        SortLink {
            label: label.to_string(),
            href: with_param(&self.base, "sort", &next),
            state,
        }
    }

    /// A header that does not sort.
    fn plain(label: &str) -> SortLink {
        SortLink {
            label: label.to_string(),
            href: String::new(),
            state: "",
        }
    }

    /// The built-in columns' headers, in the table's order.
    fn headers(&self) -> Vec<SortLink> {
        vec![
            self.link("Name", "name"),
            self.link("E-mail", "email"),
            self.link("Phone", "phone"),
            self.link("Status", "status"),
            Self::plain("Owner"),
            self.link("Company", "companyName"),
            self.link("City", "city"),
            self.link("Industry", "industry"),
            Self::plain("Tags"),
            self.link("Updated", "updatedAt"),
            self.link("Engagement", "engagement"),
            self.link("Churn risk", "churnRisk"),
            self.link("Lifetime value", "lifetimeValue"),
        ]
    }

    fn custom_headers(&self, custom_cols: &[FieldRow]) -> Vec<SortLink> {
        custom_cols
            .iter()
            .map(|d| {
                if query::sortable(d) {
                    self.link(&d.label, &format!("customFields.{}", d.field_key))
                } else {
                    Self::plain(&d.label)
                }
            })
            .collect()
    }
}

/// The columns menu: the built-in columns, then the custom fields the caller may see.
fn column_choices(shown: &[String], fields: &[FieldRow]) -> Vec<ColumnChoice> {
    let builtin = BUILTIN_COLUMNS
        .iter()
        .map(|(k, l)| (k.to_string(), l.to_string()));
    let custom = fields
        .iter()
        .map(|d| (format!("cf:{}", d.field_key), d.label.clone()));
    builtin
        .chain(custom)
        .map(|(key, label)| ColumnChoice {
            shown: shown.contains(&key),
            key,
            label,
        })
        .collect()
}

fn filters(raw: &[(String, String)], found: &ops::ListPage) -> Filters {
    let pair = |v: &str, l: &str| (v.to_string(), l.to_string());
    Filters {
        statuses: status_choices(&all(raw, "filter[status]")),
        kinds: choices(
            [pair("individual", "People"), pair("company", "Companies")],
            &all(raw, "filter[type]"),
        ),
        owners: choices(
            [pair("me", "Me"), pair("none", "Nobody")]
                .into_iter()
                .chain(found.owners.iter().cloned()),
            &all(raw, "filter[assignedTo]"),
        ),
        tags: choices(
            found
                .all_tags
                .iter()
                .map(|t| (t.name.clone(), t.name.clone())),
            &all(raw, "filter[tag]"),
        ),
        fields: choices(
            found
                .fields
                .iter()
                .map(|d| (d.field_key.clone(), d.label.clone())),
            &[posted(raw, "cf_key")],
        ),
        cf_ops: choices(
            [
                pair("eq", "is"),
                pair("gte", "from"),
                pair("lte", "until"),
                pair("contains", "contains"),
            ],
            &[posted(raw, "cf_op")],
        ),
    }
}

// ---------- saved views and bulk ----------

pub async fn save_view(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let (name, query) = (posted(&pairs, "name"), posted(&pairs, "query"));
    let view = ops::save_view(&scope, name, query).await?;
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
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::delete_view(&scope, id.into_inner()).await?;
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
    let back = format!("/clients?{}", posted(&pairs, "back"));
    let message = match ops::bulk(&scope, input).await {
        Ok(done) => format!("{done} client{} updated.", if done == 1 { "" } else { "s" }),
        // Back to the list, which says what to fix: nothing was changed.
        Err(AppError::Validation(_, errors)) => errors
            .first()
            .map(|e| format!("Nothing was changed: {}", e.message))
            .unwrap_or_default(),
        Err(e) => return Err(e),
    };
    redirect_with_flash(&req, &back, &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_reads_as_people_write_it() {
        let exact = |count| ops::Total {
            count,
            at_least: false,
        };
        assert_eq!(count_label(exact(0), &Default::default()), "0 clients");
        assert_eq!(count_label(exact(1), &Default::default()), "1 client");
        assert_eq!(count_label(exact(999), &Default::default()), "999 clients");
        assert_eq!(
            count_label(exact(1234), &Default::default()),
            "1,234 clients"
        );
        assert_eq!(
            count_label(exact(1_234_567), &Default::default()),
            "1,234,567 clients"
        );
        assert_eq!(
            count_label(ops::Total::of(None), &Default::default()),
            "1,000+ clients"
        );
    }
}
