//! The console's segments: the list, and the builder (SegmentationBuilder) where groups of
//! conditions are added, changed and removed with htmx, the live count and a sample of
//! matching clients following every edit. Every button posts the whole form to
//! `compose`, which answers the builder with the change, so it works without JavaScript
//! too; no JSON is edited by hand.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{json, Value};

use super::{form_pairs, redirect_with_flash, render, render_with_status};
use crate::auth::ConsoleActor;
use crate::domain::segments::criteria::{self, Kind};
use crate::domain::segments::Catalog;
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::segments::{self as ops, Preview, SegmentInput};
use crate::state::AppState;

/// One condition row as the form holds it.
#[derive(Debug, Clone, Default)]
struct Row {
    field: String,
    op: String,
    value: String,
    days: String,
    kind: String,
    status: String,
    currency: String,
}

#[derive(Debug, Clone, Default)]
struct Group {
    any: bool,
    rows: Vec<Row>,
}

#[derive(Debug, Clone, Default)]
struct Draft {
    name: String,
    description: String,
    root_any: bool,
    groups: Vec<Group>,
}

impl Draft {
    fn blank() -> Draft {
        Draft {
            groups: vec![Group {
                any: false,
                rows: vec![Row::default()],
            }],
            ..Default::default()
        }
    }
}

fn get(pairs: &[(String, String)], k: &str) -> String {
    super::form_value(pairs, k)
}

/// Most groups and rows the form is read with (the criteria allow fewer anyway).
const MAX_FORM: usize = 40;

/// The builder's state read back from its form: `g.<group>.match`,
/// `c.<group>.<row>.<part>`.
fn from_form(pairs: &[(String, String)]) -> Draft {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<usize, (bool, BTreeMap<usize, Row>)> = BTreeMap::new();
    for (k, v) in pairs {
        let parts: Vec<&str> = k.split('.').collect();
        match parts.as_slice() {
            ["g", g, "match"] => {
                if let Ok(g) = g.parse::<usize>() {
                    if g < MAX_FORM {
                        groups.entry(g).or_default().0 = v == "any";
                    }
                }
            }
            ["c", g, r, part] => {
                let (Ok(g), Ok(r)) = (g.parse::<usize>(), r.parse::<usize>()) else {
                    continue;
                };
                if g >= MAX_FORM || r >= MAX_FORM {
                    continue;
                }
                let row = groups.entry(g).or_default().1.entry(r).or_default();
                let v = v.trim().to_string();
                match *part {
                    "field" => row.field = v,
                    "op" => row.op = v,
                    "value" => row.value = v,
                    "days" => row.days = v,
                    "kind" => row.kind = v,
                    "status" => row.status = v,
                    "currency" => row.currency = v,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Draft {
        name: get(pairs, "name"),
        description: get(pairs, "description"),
        root_any: get(pairs, "root") == "any",
        groups: groups
            .into_values()
            .map(|(any, rows)| Group {
                any,
                rows: rows.into_values().collect(),
            })
            .collect(),
    }
}

/// The criteria tree the draft describes; rows without a field are left out, and a row
/// whose operator does not fit its (just changed) field takes the field's first one.
fn to_tree(d: &Draft) -> Value {
    let groups: Vec<Value> = d
        .groups
        .iter()
        .map(|g| {
            let rows: Vec<Value> = g
                .rows
                .iter()
                .filter(|r| !r.field.is_empty())
                .map(|r| {
                    let mut o = serde_json::Map::new();
                    let op = match criteria::kind_of(&r.field) {
                        Some(k) if !k.ops().contains(&r.op.as_str()) => {
                            k.ops().first().copied().unwrap_or_default().to_string()
                        }
                        _ => r.op.clone(),
                    };
                    o.insert("field".into(), json!(r.field));
                    o.insert("op".into(), json!(op));
                    if !criteria::takes_no_value(&op) {
                        o.insert("value".into(), json!(r.value));
                    }
                    for (k, v) in [
                        ("days", &r.days),
                        ("kind", &r.kind),
                        ("status", &r.status),
                        ("currency", &r.currency),
                    ] {
                        if !v.is_empty() {
                            o.insert(k.into(), json!(v));
                        }
                    }
                    Value::Object(o)
                })
                .collect();
            json!({"match": if g.any { "any" } else { "all" }, "conditions": rows})
        })
        .filter(|g| !g["conditions"].as_array().is_some_and(Vec::is_empty))
        .collect();
    json!({"match": if d.root_any { "any" } else { "all" }, "conditions": groups})
}

fn row_of(v: &Value) -> Row {
    let text = |k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .or_else(|| Some(x.to_string()))
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    Row {
        field: text("field"),
        op: text("op"),
        value: text("value"),
        days: text("days"),
        kind: text("kind"),
        status: text("status"),
        currency: text("currency"),
    }
}

/// The draft a saved tree reads as in the builder; `None` when it nests deeper than the
/// builder's two levels (saved through the API).
fn from_tree(tree: &Value) -> Option<Draft> {
    let is_group = |v: &Value| v.get("conditions").is_some();
    let items = tree.get("conditions")?.as_array()?;
    let root_any = tree["match"] == "any";
    if items.iter().all(|i| !is_group(i)) {
        return Some(Draft {
            root_any: false,
            groups: vec![Group {
                any: root_any,
                rows: items.iter().map(row_of).collect(),
            }],
            ..Default::default()
        });
    }
    let mut groups = Vec::new();
    for i in items {
        if is_group(i) {
            let rows = i["conditions"].as_array()?;
            if rows.iter().any(is_group) {
                return None;
            }
            groups.push(Group {
                any: i["match"] == "any",
                rows: rows.iter().map(row_of).collect(),
            });
        } else {
            groups.push(Group {
                any: false,
                rows: vec![row_of(i)],
            });
        }
    }
    Some(Draft {
        root_any,
        groups,
        ..Default::default()
    })
}

/// Applies a builder button to the draft.
fn apply_op(d: &mut Draft, op: &str) {
    let parts: Vec<&str> = op.split(':').collect();
    let n = |i: usize| parts.get(i).and_then(|p| p.parse::<usize>().ok());
    match parts.first().copied() {
        Some("add_group") if d.groups.len() < 10 => d.groups.push(Group {
            any: false,
            rows: vec![Row::default()],
        }),
        Some("remove_group") => {
            if let Some(g) = n(1).filter(|g| *g < d.groups.len()) {
                d.groups.remove(g);
            }
        }
        Some("add_row") => {
            if let Some(g) = n(1).and_then(|g| d.groups.get_mut(g)) {
                if g.rows.len() < 20 {
                    g.rows.push(Row::default());
                }
            }
        }
        Some("remove_row") => {
            if let (Some(g), Some(r)) = (n(1), n(2)) {
                if let Some(group) = d.groups.get_mut(g) {
                    if r < group.rows.len() {
                        group.rows.remove(r);
                    }
                    if group.rows.is_empty() {
                        d.groups.remove(g);
                    }
                }
            }
        }
        _ => {}
    }
    if d.groups.is_empty() {
        d.groups.push(Group {
            any: false,
            rows: vec![Row::default()],
        });
    }
}

/// A `<select>` option.
pub struct Opt {
    value: String,
    label: String,
    selected: bool,
}

fn opts(list: impl IntoIterator<Item = (String, String)>, chosen: &str) -> Vec<Opt> {
    list.into_iter()
        .map(|(value, label)| Opt {
            selected: value == chosen,
            value,
            label,
        })
        .collect()
}

/// Fields listed under a heading in the field menu.
pub struct FieldGroup {
    label: &'static str,
    options: Vec<Opt>,
}

/// Choices for a value menu, by their label (ties by value, so the order is stable).
fn by_label(items: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items.collect();
    v.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// One condition row as the builder shows it.
pub struct RowView {
    g: usize,
    r: usize,
    fields: Vec<FieldGroup>,
    ops: Vec<Opt>,
    /// text, number, date, select, none
    input: &'static str,
    value: String,
    choices: Vec<Opt>,
    hint: &'static str,
    days: Option<String>,
    kinds: Option<Vec<Opt>>,
    statuses: Option<Vec<Opt>>,
    currency: Option<String>,
    error: String,
}

pub struct GroupView {
    index: usize,
    any: bool,
    rows: Vec<RowView>,
}

#[derive(Template)]
#[template(path = "partials/segments/preview.html")]
pub struct PreviewView {
    count: String,
    sample: Vec<(String, String, String)>,
    summary: String,
    errors: Vec<String>,
    list_href: String,
}

impl PreviewView {
    /// No count: nothing to count yet (no errors), or why the criteria cannot be counted.
    fn with_errors(errors: Vec<String>) -> Self {
        PreviewView {
            count: String::new(),
            sample: vec![],
            summary: String::new(),
            errors,
            list_href: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "partials/segments/builder.html")]
pub struct BuilderPage {
    local: crate::locale::Local,
    id: String,
    version: i64,
    name: String,
    description: String,
    root_any: bool,
    groups: Vec<GroupView>,
    /// Saved through the API with deeper nesting: shown, not editable here.
    advanced: String,
    can_write: bool,
    can_delete: bool,
    can_export: bool,
    errors: Vec<String>,
    /// The live count's fragment (`partials/segments/preview.html`), rendered.
    preview_html: String,
    events: Vec<ops::EventView>,
    sizes: Vec<(String, i64)>,
    member_count: i64,
    evaluated: String,
}

/// Words for a criteria path: `criteria.conditions[1].conditions[0].value` → (1, 0).
fn position_of(field: &str) -> Option<(usize, Option<usize>)> {
    let mut idx = Vec::new();
    for part in field.split("conditions[").skip(1) {
        idx.push(part.split(']').next()?.parse::<usize>().ok()?);
    }
    Some((*idx.first()?, idx.get(1).copied()))
}

/// Error paths count the tree's groups, which leave out the form's groups without a
/// filled row; renumbers them to the form's groups, so the words and the row an error is
/// shown next to are the ones the builder shows.
fn renumber(d: &Draft, e: AppError) -> AppError {
    let AppError::Validation(m, errors) = e else {
        return e;
    };
    let kept: Vec<usize> = d
        .groups
        .iter()
        .enumerate()
        .filter(|(_, g)| g.rows.iter().any(|r| !r.field.is_empty()))
        .map(|(i, _)| i)
        .collect();
    let errors = errors
        .into_iter()
        .map(|mut fe| {
            if let Some((g, _)) = position_of(&fe.field) {
                if let Some(form_g) = kept.get(g) {
                    fe.field = fe.field.replacen(
                        &format!("conditions[{g}]"),
                        &format!("conditions[{form_g}]"),
                        1,
                    );
                }
            }
            fe
        })
        .collect();
    AppError::Validation(m, errors)
}

fn words(e: &FieldError, single: bool) -> String {
    match position_of(&e.field) {
        Some((_, Some(r))) if single => format!("Condition {}: {}", r + 1, e.message),
        Some((g, Some(r))) => format!("Group {}, condition {}: {}", g + 1, r + 1, e.message),
        Some((g, None)) => format!("Group {}: {}", g + 1, e.message),
        None => match e.field.as_str() {
            "name" => format!("Name: {}", e.message),
            "description" => format!("Description: {}", e.message),
            _ => e.message.clone(),
        },
    }
}

fn row_view(
    g: usize,
    r: usize,
    row: &Row,
    catalog: &Catalog,
    this: &str,
    error: String,
) -> RowView {
    let all = criteria::fields(&catalog.defs);
    let mut fields: Vec<FieldGroup> = Vec::new();
    for f in &all {
        if fields.last().is_none_or(|fg| fg.label != f.group) {
            fields.push(FieldGroup {
                label: f.group,
                options: vec![],
            });
        }
        if let Some(fg) = fields.last_mut() {
            fg.options.push(Opt {
                selected: f.key == row.field,
                value: f.key.clone(),
                label: f.label.clone(),
            });
        }
    }
    let kind = all.iter().find(|f| f.key == row.field).map(|f| f.kind);
    let ops_list: Vec<(String, String)> = kind
        .map(|k| {
            k.ops()
                .iter()
                .map(|o| {
                    (
                        o.to_string(),
                        criteria::op_label(o)
                            .replace(" … ", " ")
                            .replace("…", "")
                            .trim()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let op = if ops_list.iter().any(|(o, _)| *o == row.op) {
        row.op.clone()
    } else {
        ops_list.first().map(|(o, _)| o.clone()).unwrap_or_default()
    };
    let mut input = "text";
    let mut choices = Vec::new();
    let mut hint = "";
    let pick = |list: Vec<(String, String)>| {
        let mut l = vec![(String::new(), "Choose…".to_string())];
        l.extend(list);
        opts(l, &row.value)
    };
    match kind {
        None => input = "none",
        Some(_) if criteria::takes_no_value(&op) => input = "none",
        Some(Kind::Choice) if op != "in" => {
            input = "select";
            let list = if row.field == "status" {
                crate::domain::clients::model::STATUSES
            } else {
                crate::domain::clients::model::KINDS
            };
            choices = pick(
                list.iter()
                    .map(|s| (s.to_string(), super::label(s)))
                    .collect(),
            );
        }
        Some(Kind::Owner) if op != "in" => {
            input = "select";
            choices = pick(by_label(
                catalog.users.iter().map(|(k, v)| (k.clone(), v.clone())),
            ));
        }
        Some(Kind::Tag) => {
            input = "select";
            choices = pick(by_label(
                catalog.tag_names.values().map(|n| (n.clone(), n.clone())),
            ));
        }
        Some(Kind::Stage) => {
            input = "select";
            choices = pick(by_label(
                catalog.stages.iter().map(|(k, v)| (k.clone(), v.clone())),
            ));
        }
        Some(Kind::Segment) => {
            input = "select";
            choices = pick(by_label(
                catalog
                    .segments
                    .iter()
                    .filter(|(k, _)| k.as_str() != this)
                    .map(|(k, v)| (k.clone(), v.0.clone())),
            ));
        }
        Some(Kind::Time) if op == "before" || op == "after" => input = "date",
        Some(Kind::Time | Kind::Last | Kind::Engagement) => {
            input = "number";
            hint = "days";
        }
        Some(Kind::Count) => input = "number",
        Some(Kind::Score) if row.field == "scores.lifetimeValue" => {
            input = "text";
            hint = "amount";
        }
        Some(Kind::Score) => {
            input = "number";
            hint = "0–100";
        }
        Some(Kind::Money) => {
            input = "text";
            hint = "amount";
        }
        Some(_) if op == "in" => hint = "comma-separated",
        Some(_) => {}
    }
    let kinds =
        (row.field == "interactions.count" || row.field == "interactions.last").then(|| {
            opts(
                [
                    ("", "any kind"),
                    ("call", "calls"),
                    ("meeting", "meetings"),
                    ("email", "e-mails"),
                    ("sms", "text messages"),
                    ("note", "notes"),
                ]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string())),
                &row.kind,
            )
        });
    let statuses = (row.field == "deals.count").then(|| {
        opts(
            [
                ("", "any status"),
                ("open", "open"),
                ("won", "won"),
                ("lost", "lost"),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string())),
            &row.status,
        )
    });
    RowView {
        g,
        r,
        fields,
        ops: opts(ops_list, &op),
        input,
        value: row.value.clone(),
        choices,
        hint,
        days: (row.field == "interactions.count").then(|| row.days.clone()),
        kinds,
        statuses,
        currency: kind
            .filter(|k| *k == Kind::Money)
            .map(|_| row.currency.clone()),
        error,
    }
}

fn group_views(d: &Draft, catalog: &Catalog, this: &str, errors: &[FieldError]) -> Vec<GroupView> {
    d.groups
        .iter()
        .enumerate()
        .map(|(g, group)| {
            // Rows without a field are left out of the tree, so error paths count the
            // filled rows only.
            let mut filled = 0;
            GroupView {
                index: g,
                any: group.any,
                rows: group
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(r, row)| {
                        let mut error = String::new();
                        if !row.field.is_empty() {
                            error = errors
                                .iter()
                                .filter(|e| position_of(&e.field) == Some((g, Some(filled))))
                                .map(|e| e.message.clone())
                                .collect::<Vec<_>>()
                                .join(" ");
                            filled += 1;
                        }
                        row_view(g, r, row, catalog, this, error)
                    })
                    .collect(),
            }
        })
        .collect()
}

fn preview_view(
    result: AppResult<Preview>,
    list_href: String,
    single: bool,
    local: &crate::locale::Local,
) -> AppResult<PreviewView> {
    Ok(match result {
        Ok(p) => PreviewView {
            count: local.count(p.count),
            sample: p
                .sample
                .into_iter()
                .map(|s| (s.id, s.name, super::label(&s.status)))
                .collect(),
            summary: p.summary,
            errors: vec![],
            list_href,
        },
        Err(AppError::Validation(_, errors)) => {
            PreviewView::with_errors(errors.iter().map(|e| words(e, single)).collect())
        }
        Err(AppError::Forbidden(m)) => PreviewView::with_errors(vec![m]),
        Err(e) => return Err(e),
    })
}

#[allow(clippy::too_many_arguments)]
async fn builder(
    scope: &crate::ops::Scope,
    id: &str,
    version: i64,
    d: &Draft,
    advanced: String,
    errors: Vec<FieldError>,
) -> AppResult<BuilderPage> {
    let catalog = ops::catalog(scope).await?;
    let tree = to_tree(d);
    let single = d.groups.len() == 1;
    let preview = if advanced.is_empty() {
        let has_rows = d
            .groups
            .iter()
            .any(|g| g.rows.iter().any(|r| !r.field.is_empty()));
        if has_rows {
            preview_view(
                ops::preview(scope, tree, (!id.is_empty()).then(|| id.to_string()))
                    .await
                    .map_err(|e| renumber(d, e)),
                if id.is_empty() {
                    String::new()
                } else {
                    format!("/clients?filter%5Bsegment%5D={id}")
                },
                single,
                &scope.local,
            )?
        } else {
            PreviewView::with_errors(vec![])
        }
    } else {
        preview_view(
            ops::count(scope, id.to_string()).await,
            format!("/clients?filter%5Bsegment%5D={id}"),
            single,
            &scope.local,
        )?
    };
    let (events, sizes, member_count, evaluated) = if id.is_empty() {
        (vec![], vec![], 0, String::new())
    } else {
        let seg = ops::get(scope, id.to_string()).await?;
        let events = ops::events(scope, Some(id.to_string()), None, None, 20).await?;
        let sizes = ops::sizes(scope, id.to_string())
            .await?
            .into_iter()
            .rev()
            .take(14)
            .map(|(d, n)| (scope.local.date(d), n))
            .collect();
        (
            events,
            sizes,
            seg.member_count,
            seg.evaluated_at
                .map(|t| scope.local.iso(&t))
                .unwrap_or_default(),
        )
    };
    let general: Vec<String> = errors
        .iter()
        .filter(|e| position_of(&e.field).is_none_or(|(_, r)| r.is_none()))
        .map(|e| words(e, single))
        .collect();
    Ok(BuilderPage {
        local: scope.local,
        id: id.to_string(),
        version,
        name: d.name.clone(),
        description: d.description.clone(),
        root_any: d.root_any,
        groups: group_views(d, &catalog, id, &errors),
        advanced,
        can_write: scope.can("segment", "write"),
        can_delete: scope.can("segment", "delete"),
        can_export: scope.can("segment", "export") && scope.can("client", "export"),
        errors: general,
        preview_html: preview
            .render()
            .map_err(|e| AppError::Internal(format!("template: {e}")))?,
        events,
        sizes,
        member_count,
        evaluated,
    })
}

#[derive(Template)]
#[template(path = "partials/segments/composition.html")]
struct CompositionCard {
    local: crate::locale::Local,
    parts: Vec<(&'static str, Vec<ops::Part>, i64)>,
}

/// `GET /segments/{id}/composition`: the members by status, owner and country, and their
/// engagement, churn-risk and lifetime-value distribution, loaded after the page (grouped
/// counts over the live criteria).
pub async fn composition(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let mut parts = Vec::new();
    for (by, title) in [
        ("status", "By status"),
        ("owner", "By owner"),
        ("country", "By country"),
        ("engagement", "By engagement score"),
        ("churnRisk", "By churn risk"),
        ("lifetimeValue", "By lifetime value"),
    ] {
        let mut list = ops::composition(&scope, id.clone(), by.into()).await?;
        let total: i64 = list.iter().map(|p| p.clients).sum();
        list.truncate(8);
        parts.push((title, list, total.max(1)));
    }
    let card = CompositionCard {
        parts,
        local: scope.local,
    };
    Ok(super::html_fragment(card.render().map_err(|e| {
        AppError::Internal(format!("template: {e}"))
    })?))
}

#[derive(Template)]
#[template(path = "partials/segments/list.html")]
struct ListPage {
    local: crate::locale::Local,
    rows: Vec<ops::SegmentView>,
    can_write: bool,
}

/// `GET /segments`
pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let rows = ops::list(&scope).await?;
    let page = ListPage {
        rows,
        can_write: scope.can("segment", "write"),
        local: scope.local,
    };
    render(&req, &actor, "Segments", &page).await
}

/// `GET /segments/new`
pub async fn new(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("segment", "write")?;
    let page = builder(&scope, "", 0, &Draft::blank(), String::new(), vec![]).await?;
    render(&req, &actor, "New segment", &page).await
}

/// `GET /segments/{id}`
pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let seg = ops::get(&scope, id.into_inner()).await?;
    let (mut d, advanced) = match from_tree(&seg.criteria) {
        Some(d) => (d, String::new()),
        None => (Draft::blank(), seg.summary.clone()),
    };
    d.name = seg.name.clone();
    d.description = seg.description.clone();
    let page = builder(&scope, &seg.id, seg.version, &d, advanced, vec![]).await?;
    render(&req, &actor, &seg.name, &page).await
}

/// `POST /segments/compose`: a builder button or a changed field; answers the builder.
pub async fn compose(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("segment", "read")?;
    let pairs = form_pairs(&body)?;
    let mut d = from_form(&pairs);
    apply_op(&mut d, &get(&pairs, "op"));
    let version = get(&pairs, "version").parse().unwrap_or(0);
    let page = builder(
        &scope,
        &get(&pairs, "id"),
        version,
        &d,
        String::new(),
        vec![],
    )
    .await?;
    render(&req, &actor, "Segment", &page).await
}

/// `POST /segments/preview`: the live count and sample for the form as it stands.
pub async fn preview(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let d = from_form(&pairs);
    let id = get(&pairs, "id");
    let has_rows = d
        .groups
        .iter()
        .any(|g| g.rows.iter().any(|r| !r.field.is_empty()));
    let view = if has_rows {
        preview_view(
            ops::preview(&scope, to_tree(&d), (!id.is_empty()).then(|| id.clone()))
                .await
                .map_err(|e| renumber(&d, e)),
            String::new(),
            d.groups.len() == 1,
            &scope.local,
        )?
    } else {
        PreviewView::with_errors(vec![])
    };
    Ok(super::html_fragment(view.render().map_err(|e| {
        AppError::Internal(format!("template: {e}"))
    })?))
}

/// `POST /segments` and `POST /segments/{id}`: saves.
pub async fn save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: Option<web::Path<String>>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let d = from_form(&pairs);
    let id = id.map(|i| i.into_inner());
    let version: i64 = get(&pairs, "version").parse().unwrap_or(0);
    let input = SegmentInput {
        name: Some(d.name.clone()),
        description: Some(d.description.clone()),
        criteria: Some(to_tree(&d)),
    };
    let result = match &id {
        Some(id) => ops::update(&scope, id.clone(), input, Some(version)).await,
        None => ops::create(&scope, input).await,
    }
    .map_err(|e| renumber(&d, e));
    match result {
        Ok(seg) => redirect_with_flash(
            &req,
            &format!("/segments/{}", seg.id),
            &format!(
                "Segment {} saved. Its members are filled within seconds.",
                seg.name
            ),
        ),
        Err(AppError::Validation(_, errors)) => {
            let page = builder(
                &scope,
                id.as_deref().unwrap_or_default(),
                version,
                &d,
                String::new(),
                errors,
            )
            .await?;
            render_with_status(
                &req,
                &actor,
                "Segment",
                &page,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(AppError::PreconditionFailed(m)) => {
            let mut page = builder(
                &scope,
                id.as_deref().unwrap_or_default(),
                version,
                &d,
                String::new(),
                vec![],
            )
            .await?;
            page.errors.push(m);
            render_with_status(&req, &actor, "Segment", &page, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e),
    }
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
    save(req, actor, state, Some(id), body).await
}

/// `POST /segments/{id}/delete`
pub async fn delete(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let seg = ops::get(&scope, id.clone()).await?;
    match ops::delete(&scope, id.clone()).await {
        Ok(()) => redirect_with_flash(&req, "/segments", &format!("Segment {} deleted.", seg.name)),
        Err(AppError::Conflict(m)) => redirect_with_flash(&req, &format!("/segments/{id}"), &m),
        Err(e) => Err(e),
    }
}

/// `POST /segments/{id}/evaluate`
pub async fn evaluate(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let message = match ops::refresh(&scope, id.clone()).await {
        Ok((entered, left)) => format!("Evaluated: {entered} entered, {left} left."),
        // Another worker is on it: say so on the segment's page rather than an error page.
        Err(crate::error::AppError::Conflict(m)) => m,
        Err(e) => return Err(e),
    };
    redirect_with_flash(&req, &format!("/segments/{id}"), &message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_round_trips_through_the_tree() {
        let pairs: Vec<(String, String)> = [
            ("name", "Germans"),
            ("root", "all"),
            ("g.0.match", "all"),
            ("c.0.0.field", "country"),
            ("c.0.0.op", "eq"),
            ("c.0.0.value", "DE"),
            ("g.1.match", "any"),
            ("c.1.0.field", "tags"),
            ("c.1.0.op", "has"),
            ("c.1.0.value", "VIP"),
            ("c.1.1.field", "interactions.count"),
            ("c.1.1.op", "gte"),
            ("c.1.1.value", "3"),
            ("c.1.1.days", "90"),
            ("c.1.2.field", ""),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let d = from_form(&pairs);
        let tree = to_tree(&d);
        assert_eq!(tree["conditions"][1]["match"], "any");
        assert_eq!(
            tree["conditions"][1]["conditions"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(tree["conditions"][1]["conditions"][1]["days"], "90");
        let back = from_tree(&tree).unwrap();
        assert_eq!(back.groups.len(), 2);
        assert!(back.groups[1].any);
        assert_eq!(back.groups[1].rows[1].field, "interactions.count");
        // Deeper nesting is not the builder's: it is shown, not edited.
        let deep = json!({"match": "all", "conditions": [{"match": "any", "conditions": [
            {"match": "all", "conditions": [{"field": "city", "op": "eq", "value": "x"}]}]}]});
        assert!(from_tree(&deep).is_none());
    }

    #[test]
    fn errors_name_the_group_and_condition() {
        let e = FieldError::new("criteria.conditions[1].conditions[0].op", "No.");
        assert_eq!(words(&e, false), "Group 2, condition 1: No.");
        assert_eq!(position_of(&e.field), Some((1, Some(0))));
    }
}
