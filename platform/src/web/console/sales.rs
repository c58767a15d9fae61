//! The sales console: the pipeline board (drag and drop, with a menu for keyboards and
//! phones), deal pages and forms, quotes, the forecast and performance pages, contracts.

use std::collections::{BTreeMap, HashMap};

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{Duration, NaiveDate};
use serde_json::{json, Map, Value};

use super::clients::{Choice, FormField};
use super::{redirect_with_flash, render, render_with_status, Toast};
use crate::auth::ConsoleActor;
use crate::db::{self, now, DbConn};
use crate::domain::clients::service::Access;
use crate::domain::custom_fields::value::{display, form_value};
use crate::domain::custom_fields::{self, FieldRow, FieldType};
use crate::domain::money::{display as money, format_cents};
use crate::domain::pipeline::analytics::{self, Scope};
use crate::domain::pipeline::service::{self, WriteContext};
use crate::domain::pipeline::{contracts, quotes, store, OpportunityRow};
use crate::domain::{clients, orgs};
use crate::error::{AppError, AppResult, FieldError};
use crate::state::AppState;
use crate::web::{query_pairs, record_access};

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn parse_form(body: &web::Bytes) -> AppResult<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))
}

fn owners(c: &mut DbConn, org: &str) -> AppResult<Vec<(String, String)>> {
    let f = orgs::store::MemberFilter {
        is_active: Some(true),
        limit: 1000,
        ..Default::default()
    };
    Ok(orgs::store::list_members(c, org, &f)?
        .into_iter()
        .map(|m| (m.user.id, m.user.name))
        .collect())
}

fn client_names(c: &mut DbConn, org: &str, ids: Vec<String>) -> AppResult<HashMap<String, String>> {
    Ok(clients::store::find_many(c, org, &ids)?
        .into_iter()
        .map(|r| (r.id, r.display_name))
        .collect())
}

fn month_bounds(month: &str) -> Option<(NaiveDate, NaiveDate)> {
    let start = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    Some((start, analytics::add_months(start, 1) - Duration::days(1)))
}

// ---------- board ----------

pub struct Card {
    pub id: String,
    pub name: String,
    pub client: String,
    pub value: String,
    pub close: String,
    pub overdue: bool,
    pub owner: String,
    pub rotting: bool,
    pub version: i64,
}

pub struct BoardColumn {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub color: String,
    pub probability: i32,
    pub count: i64,
    pub totals: String,
    pub cards: Vec<Card>,
    pub hidden: i64,
}

pub struct StageChoice {
    pub id: String,
    pub name: String,
    pub kind: String,
}

#[derive(Template)]
#[template(path = "partials/sales/board.html")]
struct Board {
    sortable_src: &'static str,
    sortable_sri: &'static str,
    pipelines: Vec<Choice>,
    pipeline_id: String,
    columns: Vec<BoardColumn>,
    stages: Vec<StageChoice>,
    owners: Vec<Choice>,
    month: String,
    loss_reasons: Vec<String>,
    can_write: bool,
    /// Offers the deals as a spreadsheet or CSV.
    can_export: bool,
    query: String,
}

#[derive(Template)]
#[template(path = "partials/sales/board_moved.html")]
struct BoardMoved<'a> {
    board: &'a str,
    toast: Toast<'a>,
}

/// Cards drawn per column; the rest are counted with a link to the list. why: each card
/// carries its move menu, and 50 per column made the board page 9 ms of server CPU.
const CARDS_PER_COLUMN: i64 = 25;

fn board_data(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    pairs: &[(String, String)],
    can_write: bool,
) -> AppResult<Board> {
    let pipelines = service::pipelines(c, org)?;
    let chosen = get(pairs, "pipeline")
        .and_then(|p| pipelines.iter().find(|v| v.pipeline.id == p))
        .or(pipelines.first())
        .ok_or(AppError::NotFound)?;
    let owner_filter = match get(pairs, "owner") {
        Some("me") => Some(access.user_id.clone()),
        Some(o) => Some(o.to_string()),
        None => None,
    };
    let owner = if access.oversee {
        owner_filter.clone()
    } else {
        Some(access.user_id.clone())
    };
    let month = get(pairs, "month").unwrap_or_default().to_string();
    let bounds = month_bounds(&month);
    let totals = store::stage_totals(c, org, &chosen.pipeline.id, owner.as_deref(), bounds)?;
    let members = owners(c, org)?;
    let member_names: HashMap<&str, &str> = members
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let today = now().date();
    let mut per_stage = Vec::new();
    for stage in chosen.stages.iter().filter(|s| s.is_active) {
        let deals = store::board(
            c,
            org,
            &chosen.pipeline.id,
            owner.as_deref(),
            bounds,
            CARDS_PER_COLUMN,
            &stage.id,
        )?;
        per_stage.push((stage, deals));
    }
    // One lookup of every card's client name, not one per column.
    let names = client_names(
        c,
        org,
        per_stage
            .iter()
            .flat_map(|(_, deals)| deals.iter().map(|d| d.client_id.clone()))
            .collect(),
    )?;
    let mut columns = Vec::new();
    for (stage, deals) in per_stage {
        let stage_totals: Vec<&store::StageTotal> =
            totals.iter().filter(|t| t.stage_id == stage.id).collect();
        let count: i64 = stage_totals.iter().map(|t| t.deals).sum();
        columns.push(BoardColumn {
            totals: stage_totals
                .iter()
                .map(|t| money(t.value_cents, &t.currency))
                .collect::<Vec<_>>()
                .join(" · "),
            hidden: (count - deals.len() as i64).max(0),
            count,
            cards: deals
                .iter()
                .map(|d| Card {
                    rotting: stage.kind == "open"
                        && chosen.pipeline.rotting_days.is_some_and(|days| {
                            now() - d.stage_entered_at > Duration::days(i64::from(days))
                        }),
                    overdue: stage.kind == "open" && d.expected_close.is_some_and(|e| e < today),
                    id: d.id.clone(),
                    name: d.name.clone(),
                    client: names.get(&d.client_id).cloned().unwrap_or_default(),
                    value: money(d.value_cents, &d.currency),
                    close: d.expected_close.map(|e| e.to_string()).unwrap_or_default(),
                    owner: d
                        .assigned_to
                        .as_deref()
                        .and_then(|o| member_names.get(o))
                        .map(|s| s.to_string())
                        .unwrap_or_default(),
                    version: d.version,
                })
                .collect(),
            id: stage.id.clone(),
            name: stage.name.clone(),
            kind: stage.kind.clone(),
            color: stage.color.clone(),
            probability: stage.probability,
        });
    }
    let selected_owner = get(pairs, "owner").unwrap_or_default().to_string();
    Ok(Board {
        sortable_src: crate::web::assets::SORTABLE_PATH,
        sortable_sri: crate::web::assets::SORTABLE_SRI,
        pipelines: pipelines
            .iter()
            .map(|v| Choice {
                value: v.pipeline.id.clone(),
                label: v.pipeline.name.clone(),
                selected: v.pipeline.id == chosen.pipeline.id,
            })
            .collect(),
        pipeline_id: chosen.pipeline.id.clone(),
        stages: chosen
            .stages
            .iter()
            .filter(|s| s.is_active)
            .map(|s| StageChoice {
                id: s.id.clone(),
                name: s.name.clone(),
                kind: s.kind.clone(),
            })
            .collect(),
        columns,
        owners: if access.oversee {
            std::iter::once(("me".to_string(), "Me".to_string()))
                .chain(members)
                .map(|(v, l)| Choice {
                    selected: v == selected_owner,
                    value: v,
                    label: l,
                })
                .collect()
        } else {
            Vec::new()
        },
        month,
        loss_reasons: store::loss_reasons(c, org, true)?
            .into_iter()
            .map(|r| r.name)
            .collect(),
        can_write,
        can_export: false,
        query: serde_urlencoded::to_string(pairs).unwrap_or_default(),
    })
}

pub async fn board(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let can_write = actor.can("opportunity", "write").await?;
    let can_export = actor.can("opportunity", "export").await?;
    let pairs = query_pairs(&req)?;
    let org = actor.org_id().to_string();
    let mut b = db::run(&state.pool, move |c| {
        board_data(c, &org, &access, &pairs, can_write)
    })
    .await?;
    b.can_export = can_export;
    render(&req, &actor, "Pipeline", &b).await
}

/// A drop on the board or a choice in a card's menu. Answers with the refreshed board.
pub async fn move_deal(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let pairs = parse_form(&body)?;
    let stage = get(&pairs, "stage").unwrap_or_default().to_string();
    let reason = get(&pairs, "loss_reason").map(str::to_string);
    let version = get(&pairs, "version").and_then(|v| v.parse().ok());
    let back: Vec<(String, String)> =
        serde_urlencoded::from_str(get(&pairs, "board").unwrap_or_default()).unwrap_or_default();
    let ctx = actor.audit();
    let id = id.into_inner();
    let from_deal_page = get(&pairs, "from") == Some("deal");
    let result = crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
        let before = service::get(c, &ctx.org_id, &access, &id)?;
        let message = match service::move_to(
            c,
            &ctx,
            &access,
            &id,
            &stage,
            reason.as_deref(),
            version,
            ext,
        ) {
            Ok(d) => {
                let from = store::find_stage(c, &ctx.org_id, &before.stage_id)?
                    .map(|s| s.name)
                    .unwrap_or_default();
                let to = store::find_stage(c, &ctx.org_id, &d.stage_id)?
                    .map(|s| s.name)
                    .unwrap_or_default();
                Ok(format!(
                    "{} moved from {from} to {to} ({}% → {}%).",
                    d.name, before.probability, d.probability
                ))
            }
            Err(AppError::Validation(_, errors)) => Err(errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| "The deal could not be moved.".into())),
            Err(AppError::Stale(m)) => Err(m),
            Err(e) => return Err(e),
        };
        let mut pairs = back;
        if !pairs.iter().any(|(k, _)| k == "pipeline") {
            pairs.push(("pipeline".into(), before.pipeline_id.clone()));
        }
        let board = board_data(c, &ctx.org_id, &access, &pairs, true)?;
        Ok((board, message, id))
    })
    .await?;
    let (board, message, id) = result;
    if from_deal_page {
        return match message {
            Ok(m) => redirect_with_flash(&req, &format!("/opportunities/{id}"), &m),
            Err(m) => Err(AppError::Validation(m, Vec::new())),
        };
    }
    let board_html = board
        .render()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let (kind, text, status) = match &message {
        Ok(m) => ("ok", m.as_str(), StatusCode::OK),
        Err(m) => ("error", m.as_str(), StatusCode::OK),
    };
    let fragment = BoardMoved {
        board: &board_html,
        toast: Toast {
            kind,
            message: text,
            oob: true,
        },
    };
    render_with_status(&req, &actor, "Pipeline", &fragment, status).await
}

// ---------- deal page ----------

pub struct MoveView {
    pub at: String,
    pub who: String,
    pub text: String,
}

pub struct QuoteView {
    pub id: String,
    pub reference: String,
    pub status: String,
    pub total: String,
    pub valid_until: String,
    pub next: Vec<(&'static str, &'static str)>,
}

pub struct ContactView {
    pub id: String,
    pub name: String,
    pub role: String,
}

#[derive(Template)]
#[template(path = "partials/sales/deal.html")]
struct DealPage {
    id: String,
    name: String,
    status: String,
    stage: String,
    stage_id: String,
    stages: Vec<StageChoice>,
    value: String,
    probability: i32,
    weighted: String,
    close: String,
    actual_close: String,
    owner: String,
    client_id: String,
    client: String,
    source: String,
    competitors: String,
    description: String,
    loss_reason: String,
    loss_reasons: Vec<String>,
    custom: Vec<(String, String)>,
    contacts: Vec<ContactView>,
    history: Vec<MoveView>,
    quotes: Vec<QuoteView>,
    contracts: Vec<(String, String, String)>,
    version: i64,
    can_write: bool,
    can_delete: bool,
    currency: String,
    quote_errors: Vec<FieldError>,
    /// The deal's timeline card (empty when its client is out of the reader's sight).
    timeline: String,
    /// The deal's Files card.
    files: String,
}

async fn deal_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    id: String,
    quote_errors: Vec<FieldError>,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(actor, "opportunity").await?;
    let client_access = record_access(actor, "client").await?;
    let can_write = actor.can("opportunity", "write").await?;
    let can_delete = actor.can("opportunity", "delete").await?;
    let log_calls = actor.can("interaction", "write").await?;
    let see_timeline = actor.can("interaction", "read").await?;
    let upload_limit = state.config.max_upload_bytes;
    let org = actor.org_id().to_string();
    let page = crate::web::run_with_plugins(state, org.clone(), move |c, plugins| {
        let d = service::get(c, &org, &access, &id)?;
        let files = super::files::card(
            c,
            &org,
            &access,
            &crate::domain::attachments::Parent::Deal(d.id.clone()),
            can_write,
            upload_limit,
        )?;
        let timeline = if !see_timeline {
            String::new()
        } else {
            use askama::Template;
            let view = super::timeline::View {
                can_write: log_calls,
                ..Default::default()
            };
            let scope = crate::domain::interactions::Scope::Deal(d.id.clone());
            match super::timeline::card(c, &org, &client_access, &scope, view) {
                Ok(card) => card
                    .render()
                    .map_err(|e| AppError::Internal(e.to_string()))?,
                Err(AppError::NotFound) => String::new(),
                Err(e) => return Err(e),
            }
        };
        let stages = store::stages_of(c, &d.pipeline_id)?;
        let name_of = |sid: &str| {
            stages
                .iter()
                .find(|s| s.id == sid)
                .map(|s| s.name.clone())
                .unwrap_or_default()
        };
        let members: HashMap<String, String> = owners(c, &org)?.into_iter().collect();
        let client = clients::store::find(c, &org, &d.client_id)?
            .map(|x| x.display_name)
            .unwrap_or_default();
        let defs = custom_fields::store::list(c, &org, "opportunity", false)?;
        let stored: Map<String, Value> = serde_json::from_str(&d.custom_fields).unwrap_or_default();
        let contact_rows = store::contacts_of(c, &d.id)?;
        let contact_names = client_names(
            c,
            &org,
            contact_rows.iter().map(|x| x.client_id.clone()).collect(),
        )?;
        let history = store::history_of(c, &org, &d.id)?
            .into_iter()
            .rev()
            .map(|h| MoveView {
                at: h.moved_at.format("%Y-%m-%d %H:%M").to_string(),
                who: h
                    .moved_by
                    .as_ref()
                    .and_then(|u| members.get(u).cloned())
                    .unwrap_or_else(|| "System".into()),
                text: match &h.from_stage_id {
                    Some(f) => format!(
                        "moved it from {} to {} ({}% → {}%)",
                        name_of(f),
                        name_of(&h.to_stage_id),
                        h.from_probability.unwrap_or(0),
                        h.to_probability
                    ),
                    None => format!(
                        "created it in {} ({}%)",
                        name_of(&h.to_stage_id),
                        h.to_probability
                    ),
                },
            })
            .collect();
        let quotes = quotes::list_for(c, &org, &access, &d.id)?
            .into_iter()
            .map(|q| QuoteView {
                next: match q.status.as_str() {
                    "draft" => vec![("sent", "Mark sent")],
                    "sent" => vec![
                        ("accepted", "Accepted"),
                        ("declined", "Declined"),
                        ("expired", "Expired"),
                    ],
                    _ => vec![],
                },
                reference: format!("Q-{:05}", q.number),
                total: money(q.total_cents, &q.currency),
                valid_until: q.valid_until.map(|v| v.to_string()).unwrap_or_default(),
                id: q.id,
                status: q.status,
            })
            .collect();
        let contract_rows =
            contracts::list(c, &org, &client_access, Some(&d.client_id), None, None)?
                .into_iter()
                .filter(|k| k.opportunity_id.as_deref() == Some(d.id.as_str()))
                .map(|k| (k.id, k.name, format!("{} → {}", k.start_date, k.end_date)))
                .collect();
        Ok(DealPage {
            timeline,
            files,
            stage: name_of(&d.stage_id),
            stage_id: d.stage_id.clone(),
            stages: stages
                .iter()
                .filter(|s| s.is_active)
                .map(|s| StageChoice {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    kind: s.kind.clone(),
                })
                .collect(),
            value: money(d.value_cents, &d.currency),
            weighted: money(
                (d.value_cents * i64::from(d.probability) + 50) / 100,
                &d.currency,
            ),
            close: d.expected_close.map(|x| x.to_string()).unwrap_or_default(),
            actual_close: d.actual_close.map(|x| x.to_string()).unwrap_or_default(),
            owner: d
                .assigned_to
                .as_ref()
                .and_then(|u| members.get(u).cloned())
                .unwrap_or_default(),
            custom: defs
                .iter()
                .filter(|f| f.is_active() && (!f.sensitive || access.read_sensitive))
                .map(|f| {
                    (
                        f.label.clone(),
                        stored
                            .get(&f.field_key)
                            .map(|v| match v.as_str() {
                                Some(text) if f.field_type.starts_with("plugin:") => {
                                    plugins.format(&f.field_type, text)
                                }
                                _ => display(f, v),
                            })
                            .unwrap_or_default(),
                    )
                })
                .chain(
                    plugins
                        .computed(&rapport_plugin_sdk::ComputeRequest::Opportunity(
                            crate::plugins::deal_snapshot(&d),
                        ))
                        .into_iter()
                        .map(|v| {
                            (
                                format!("{} ({} plugin)", v.label, v.plugin),
                                v.value.unwrap_or_else(|| "unavailable right now".into()),
                            )
                        }),
                )
                .collect(),
            contacts: contact_rows
                .into_iter()
                .map(|x| ContactView {
                    name: contact_names.get(&x.client_id).cloned().unwrap_or_default(),
                    id: x.client_id,
                    role: x.role,
                })
                .collect(),
            competitors: d.competitor_list().join(", "),
            loss_reasons: store::loss_reasons(c, &org, true)?
                .into_iter()
                .map(|r| r.name)
                .collect(),
            id: d.id.clone(),
            name: d.name.clone(),
            status: d.status.clone(),
            probability: d.probability,
            client_id: d.client_id.clone(),
            client,
            source: d.source.clone().unwrap_or_default(),
            description: d.description.clone(),
            loss_reason: d.loss_reason.clone().unwrap_or_default(),
            history,
            quotes,
            contracts: contract_rows,
            version: d.version,
            can_write,
            can_delete,
            currency: d.currency,
            quote_errors,
        })
    })
    .await?;
    let title = page.name.clone();
    render_with_status(req, actor, &title, &page, status).await
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    deal_page(
        &req,
        &actor,
        &state,
        id.into_inner(),
        Vec::new(),
        StatusCode::OK,
    )
    .await
}

pub async fn delete(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    crate::ops::deals::delete(&scope, id.into_inner()).await?;
    redirect_with_flash(&req, "/pipeline", "The deal was deleted.")
}

// ---------- deal form ----------

#[derive(Template)]
#[template(path = "partials/sales/deal_form.html")]
struct DealForm {
    id: Option<String>,
    version: i64,
    values: HashMap<String, String>,
    pipelines: Vec<Choice>,
    stages: Vec<Choice>,
    owners: Vec<Choice>,
    fields: Vec<FormField>,
    errors: Vec<FieldError>,
    stale: bool,
    client_name: String,
    contacts: Vec<ContactView>,
}

impl DealForm {
    fn v(&self, key: &str) -> &str {
        self.values.get(key).map_or("", String::as_str)
    }

    fn error(&self, key: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == key || e.field.starts_with(&format!("{key}[")))
            .map(|e| e.message.as_str())
    }
}

#[allow(clippy::too_many_arguments)]
fn deal_form(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    id: Option<String>,
    version: i64,
    values: HashMap<String, String>,
    custom: HashMap<String, Vec<String>>,
    contacts: Vec<(String, String)>,
    errors: Vec<FieldError>,
    stale: bool,
) -> AppResult<DealForm> {
    let pipelines = service::pipelines(c, org)?;
    let pipeline = values
        .get("pipeline")
        .and_then(|p| pipelines.iter().find(|v| &v.pipeline.id == p))
        .or(pipelines.first())
        .ok_or(AppError::NotFound)?;
    let stage_sel = values.get("stage").cloned().unwrap_or_default();
    let owner_sel = values.get("assignedTo").cloned().unwrap_or_default();
    let defs = custom_fields::store::list(c, org, "opportunity", false)?;
    let fields = defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.write_sensitive))
        .map(|d| {
            let vals = custom.get(&d.field_key).cloned().unwrap_or_default();
            FormField {
                key: d.field_key.clone(),
                label: d.label.clone(),
                kind: d.kind().as_str(),
                value: vals.first().cloned().unwrap_or_default(),
                options: d
                    .option_list()
                    .into_iter()
                    .map(|o| Choice {
                        selected: vals.contains(&o),
                        value: o.clone(),
                        label: o,
                    })
                    .collect(),
                required: d.required,
                help: d.help_text.clone(),
                currency: d.currency.clone().unwrap_or_default(),
                error: errors
                    .iter()
                    .find(|e| e.field == format!("customFields.{}", d.field_key))
                    .map(|e| e.message.clone()),
            }
        })
        .collect();
    let client_name = values
        .get("clientId")
        .filter(|x| !x.is_empty())
        .map(|cid| clients::store::find(c, org, cid))
        .transpose()?
        .flatten()
        .map(|x| x.display_name)
        .unwrap_or_default();
    let names = client_names(c, org, contacts.iter().map(|x| x.0.clone()).collect())?;
    Ok(DealForm {
        pipelines: pipelines
            .iter()
            .map(|v| Choice {
                value: v.pipeline.id.clone(),
                label: v.pipeline.name.clone(),
                selected: v.pipeline.id == pipeline.pipeline.id,
            })
            .collect(),
        stages: pipeline
            .stages
            .iter()
            .filter(|s| s.is_active)
            .map(|s| Choice {
                value: s.id.clone(),
                label: format!("{} ({}%)", s.name, s.probability),
                selected: s.id == stage_sel,
            })
            .collect(),
        owners: owners(c, org)?
            .into_iter()
            .filter(|(u, _)| access.oversee || *u == access.user_id)
            .map(|(v, l)| Choice {
                selected: v == owner_sel,
                value: v,
                label: l,
            })
            .collect(),
        fields,
        client_name,
        contacts: contacts
            .into_iter()
            .map(|(id, role)| ContactView {
                name: names.get(&id).cloned().unwrap_or_default(),
                id,
                role,
            })
            .collect(),
        id,
        version,
        values,
        errors,
        stale,
    })
}

fn deal_values(d: &OpportunityRow) -> HashMap<String, String> {
    HashMap::from([
        ("name".to_string(), d.name.clone()),
        ("clientId".into(), d.client_id.clone()),
        ("pipeline".into(), d.pipeline_id.clone()),
        ("stage".into(), d.stage_id.clone()),
        ("value".into(), format_cents(d.value_cents)),
        ("currency".into(), d.currency.clone()),
        (
            "probability".into(),
            if d.probability_set {
                d.probability.to_string()
            } else {
                String::new()
            },
        ),
        (
            "expectedCloseDate".into(),
            d.expected_close.map(|x| x.to_string()).unwrap_or_default(),
        ),
        (
            "assignedTo".into(),
            d.assigned_to.clone().unwrap_or_default(),
        ),
        ("source".into(), d.source.clone().unwrap_or_default()),
        ("competitors".into(), d.competitor_list().join(", ")),
        ("description".into(), d.description.clone()),
        (
            "lossReason".into(),
            d.loss_reason.clone().unwrap_or_default(),
        ),
    ])
}

pub async fn new_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let pairs = query_pairs(&req)?;
    let org = actor.org_id().to_string();
    let currency = actor.org.default_currency.clone();
    let form = db::run(&state.pool, move |c| {
        let mut values = HashMap::from([
            ("currency".to_string(), currency),
            ("assignedTo".into(), access.user_id.clone()),
        ]);
        for k in ["pipeline", "clientId", "stage"] {
            if let Some(v) = get(&pairs, k) {
                values.insert(k.into(), v.into());
            }
        }
        deal_form(
            c,
            &org,
            &access,
            None,
            0,
            values,
            HashMap::new(),
            Vec::new(),
            Vec::new(),
            false,
        )
    })
    .await?;
    render(&req, &actor, "New deal", &form).await
}

pub async fn edit_form(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let org = actor.org_id().to_string();
    let form = db::run(&state.pool, move |c| {
        let d = service::get(c, &org, &access, &id)?;
        let stored: Map<String, Value> = serde_json::from_str(&d.custom_fields).unwrap_or_default();
        let custom = stored
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        Value::Array(items) => items
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                        other => vec![form_value(other)],
                    },
                )
            })
            .collect();
        let contacts = store::contacts_of(c, &d.id)?
            .into_iter()
            .map(|x| (x.client_id, x.role))
            .collect();
        deal_form(
            c,
            &org,
            &access,
            Some(d.id.clone()),
            d.version,
            deal_values(&d),
            custom,
            contacts,
            Vec::new(),
            false,
        )
    })
    .await?;
    render(&req, &actor, "Edit deal", &form).await
}

/// A posted deal form: the API-shaped body, and what to show again if it is refused.
type PostedDeal = (
    Map<String, Value>,
    HashMap<String, String>,
    HashMap<String, Vec<String>>,
    Vec<(String, String)>,
);

fn form_body(pairs: &[(String, String)], defs: &[FieldRow]) -> PostedDeal {
    let mut body = Map::new();
    let mut values = HashMap::new();
    let mut custom: HashMap<String, Vec<String>> = HashMap::new();
    let text = |v: &str| {
        if v.trim().is_empty() {
            Value::Null
        } else {
            Value::String(v.trim().to_string())
        }
    };
    for (k, v) in pairs {
        match k.as_str() {
            "name" | "clientId" | "pipeline" | "stage" | "currency" | "expectedCloseDate"
            | "assignedTo" | "source" | "description" | "lossReason" => {
                body.insert(k.clone(), text(v));
                values.insert(k.clone(), v.clone());
            }
            "value" => {
                body.insert("value".into(), Value::String(v.trim().to_string()));
                values.insert(k.clone(), v.clone());
            }
            "probability" => {
                let p = v.trim();
                body.insert(
                    "probability".into(),
                    if p.is_empty() {
                        Value::Null
                    } else {
                        p.parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::String(p.into()))
                    },
                );
                values.insert(k.clone(), v.clone());
            }
            "competitors" => {
                body.insert(
                    "competitors".into(),
                    Value::from(
                        v.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect::<Vec<_>>(),
                    ),
                );
                values.insert(k.clone(), v.clone());
            }
            cf if cf.starts_with("cf.") => custom
                .entry(cf[3..].to_string())
                .or_default()
                .push(v.clone()),
            _ => {}
        }
    }
    let mut contacts = Vec::new();
    let ids: Vec<&String> = pairs
        .iter()
        .filter(|(k, _)| k == "contact_id")
        .map(|(_, v)| v)
        .collect();
    let roles: Vec<&String> = pairs
        .iter()
        .filter(|(k, _)| k == "contact_role")
        .map(|(_, v)| v)
        .collect();
    for (i, r) in ids.iter().zip(roles.iter()) {
        if !i.is_empty() {
            contacts.push(((*i).clone(), (*r).clone()));
        }
    }
    body.insert(
        "contacts".into(),
        Value::from(
            contacts
                .iter()
                .map(|(i, r)| json!({"clientId": i, "role": r}))
                .collect::<Vec<_>>(),
        ),
    );
    let mut cf = Map::new();
    for d in defs.iter().filter(|d| d.is_active()) {
        if let Some(vals) = custom.get(&d.field_key) {
            cf.insert(
                d.field_key.clone(),
                if d.kind() == FieldType::MultiSelect {
                    Value::from(vals.clone())
                } else {
                    vals.first().map_or(Value::Null, |v| text(v))
                },
            );
        }
    }
    body.insert("customFields".into(), Value::Object(cf));
    (body, values, custom, contacts)
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
    let version: i64 = get(&pairs, "version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let org = actor.org_id().to_string();
    let defs = db::run(&state.pool, move |c| {
        Ok(custom_fields::store::list(c, &org, "opportunity", false)?)
    })
    .await?;
    let (body, values, custom, contacts) = form_body(&pairs, &defs);
    let saved = match &id {
        None => crate::ops::deals::create(&scope, body).await,
        Some(i) => {
            let mode = custom_fields::service::Mode::Replace;
            crate::ops::deals::update(&scope, i.clone(), body, mode, Some(version)).await
        }
    };
    let (errors, stale, status) = match saved {
        Ok(d) => {
            let (to, message) = (
                format!("/opportunities/{}", d.row.id),
                format!("{} was saved.", d.row.name),
            );
            return redirect_with_flash(&req, &to, &message);
        }
        Err(AppError::Validation(_, errors)) => (errors, false, StatusCode::UNPROCESSABLE_ENTITY),
        Err(AppError::Stale(_)) => (Vec::new(), true, StatusCode::CONFLICT),
        Err(e) => return Err(e),
    };
    let access = scope.access("opportunity");
    let org = scope.org_id.clone();
    let form = db::run(&state.pool, move |c| {
        deal_form(
            c, &org, &access, id, version, values, custom, contacts, errors, stale,
        )
    })
    .await?;
    render_with_status(&req, &actor, "Deal", &form, status).await
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

// ---------- quotes ----------

pub async fn create_quote(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let ctx = actor.audit();
    let pairs = parse_form(&body)?;
    let all = |k: &str| {
        pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    let (names, qtys, prices, discounts, taxes) = (
        all("line_name"),
        all("line_qty"),
        all("line_price"),
        all("line_discount"),
        all("line_tax"),
    );
    let lines: Vec<quotes::LineInput> = (0..names.len())
        .filter(|i| {
            !names[*i].trim().is_empty() || !prices.get(*i).is_none_or(|p| p.trim().is_empty())
        })
        .map(|i| quotes::LineInput {
            name: names[i].clone(),
            quantity: qtys.get(i).cloned().unwrap_or_else(|| "1".into()),
            unit_price: prices.get(i).cloned().unwrap_or_default(),
            discount: discounts.get(i).cloned(),
            tax_rate: taxes.get(i).cloned(),
        })
        .collect();
    let valid_until =
        get(&pairs, "valid_until").and_then(|v| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok());
    let terms = get(&pairs, "terms").unwrap_or_default().to_string();
    let deal = id.into_inner();
    let d = deal.clone();
    let result = db::run(&state.pool, move |c| {
        match quotes::create(
            c,
            &ctx,
            &access,
            quotes::QuoteInput {
                opportunity_id: d,
                currency: None,
                valid_until,
                terms,
                lines,
            },
        ) {
            Ok(q) => Ok(Ok(q)),
            Err(AppError::Validation(_, errors)) => Ok(Err(errors)),
            Err(e) => Err(e),
        }
    })
    .await?;
    match result {
        Ok(q) => redirect_with_flash(
            &req,
            &format!("/opportunities/{deal}"),
            &format!(
                "Quote Q-{:05} was created: {}.",
                q.number,
                money(q.total_cents, &q.currency)
            ),
        ),
        Err(errors) => {
            deal_page(
                &req,
                &actor,
                &state,
                deal,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

pub async fn quote_status(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let ctx = actor.audit();
    let pairs = parse_form(&body)?;
    let status = get(&pairs, "status").unwrap_or_default().to_string();
    let win = get(&pairs, "win_deal").is_some();
    let q = crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
        quotes::set_status(c, &ctx, &access, &id, &status, win, ext)
    })
    .await?;
    redirect_with_flash(
        &req,
        &format!("/opportunities/{}", q.opportunity_id),
        &format!("Quote Q-{:05} is now {}.", q.number, q.status),
    )
}

pub async fn quote_pdf(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let org = actor.org.clone();
    let (q, bytes) = db::run(&state.pool, move |c| {
        crate::domain::pipeline::quotes::quote_pdf(c, &org, &access, &id)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("inline; filename=\"quote-Q-{:05}.pdf\"", q.number),
        ))
        .body(bytes))
}

// ---------- charts ----------

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Scales `v` to `0..=span` pixels against `max`, in decimal arithmetic.
fn px(v: rust_decimal::Decimal, max: rust_decimal::Decimal, span: i64) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    if max <= rust_decimal::Decimal::ZERO {
        return 0;
    }
    (v * rust_decimal::Decimal::from(span) / max)
        .round()
        .to_i64()
        .unwrap_or(0)
        .clamp(0, span)
}

/// Weighted bars with best-case and commit lines and closed-won dots, per month.
fn forecast_svg(months: &[&analytics::ForecastMonth]) -> String {
    let (w, h, left, bottom, top) = (720i64, 260i64, 70i64, 30i64, 20i64);
    let plot_h = h - bottom - top;
    let max = months
        .iter()
        .flat_map(|m| [m.best_case, m.closed_won, m.weighted])
        .max()
        .unwrap_or_default();
    let n = months.len().max(1) as i64;
    let slot = (w - left - 10) / n;
    let y = |v| h - bottom - px(v, max, plot_h);
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="Forecast by month"><title>Forecast by month</title>"#
    );
    for i in 0..=4 {
        let gy = h - bottom - plot_h * i / 4;
        let label = (max * rust_decimal::Decimal::from(i) / rust_decimal::Decimal::from(4)).round();
        s.push_str(&format!(r#"<line x1="{left}" x2="{w}" y1="{gy}" y2="{gy}" class="grid"/><text x="{}" y="{}" class="axis" text-anchor="end">{label}</text>"#, left - 6, gy + 4));
    }
    let mut best = String::new();
    let mut commit = String::new();
    for (i, m) in months.iter().enumerate() {
        let i = i as i64;
        let x = left + slot * i + slot / 2;
        let bw = (slot * 2 / 5).max(6);
        let by = y(m.weighted);
        s.push_str(&format!(
            r#"<rect x="{}" y="{by}" width="{bw}" height="{}" class="bar"><title>{}: weighted {}</title></rect><text x="{x}" y="{}" class="axis" text-anchor="middle">{}</text>"#,
            x - bw / 2,
            h - bottom - by,
            esc(&m.month),
            m.weighted.round_dp(2),
            h - bottom + 18,
            esc(&m.month)
        ));
        best.push_str(&format!("{x},{} ", y(m.best_case)));
        commit.push_str(&format!("{x},{} ", y(m.commit)));
        if m.closed_won > rust_decimal::Decimal::ZERO {
            s.push_str(&format!(r#"<circle cx="{x}" cy="{}" r="5" class="won"><title>closed won {}</title></circle>"#, y(m.closed_won), m.closed_won));
        }
    }
    s.push_str(&format!(r#"<polyline points="{}" class="line-best"/><polyline points="{}" class="line-commit"/></svg>"#, best.trim(), commit.trim()));
    s
}

/// Horizontal bars of won value per rep.
fn performance_svg(reps: &[&analytics::RepFigures]) -> String {
    let row = 28i64;
    let (w, left) = (720i64, 170i64);
    let h = row * reps.len().max(1) as i64 + 10;
    let max = reps.iter().map(|r| r.won_value).max().unwrap_or_default();
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="Won value per rep"><title>Won value per rep</title>"#
    );
    for (i, r) in reps.iter().enumerate() {
        let y = 5 + row * i as i64;
        let bw = px(r.won_value, max, w - left - 120);
        s.push_str(&format!(
            r#"<text x="{}" y="{}" class="axis" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{bw}" height="{}" class="bar"/><text x="{}" y="{}" class="axis">{} {}</text>"#,
            left - 8,
            y + 16,
            esc(&r.name),
            row - 8,
            left + bw + 6,
            y + 16,
            r.won_value,
            esc(&r.currency)
        ));
    }
    s.push_str("</svg>");
    s
}

// ---------- forecast ----------

#[derive(Template)]
#[template(path = "partials/sales/forecast.html")]
struct ForecastPage {
    pipelines: Vec<Choice>,
    owners: Vec<Choice>,
    months: Vec<analytics::ForecastMonth>,
    stages: Vec<analytics::StageRate>,
    chart: String,
    currency: String,
    own_only: bool,
}

pub async fn forecast(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("report", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let pairs = query_pairs(&req)?;
    let org = actor.org.clone();
    let page = db::run(&state.pool, move |c| {
        let pipelines = service::pipelines(c, &org.id)?;
        let pipeline = get(&pairs, "pipeline").map(str::to_string);
        let owner = if access.oversee {
            get(&pairs, "owner").map(|o| {
                if o == "me" {
                    access.user_id.clone()
                } else {
                    o.to_string()
                }
            })
        } else {
            Some(access.user_id.clone())
        };
        let months = get(&pairs, "months")
            .and_then(|m| m.parse().ok())
            .filter(|m| (1..=24).contains(m))
            .unwrap_or(6);
        let scope = Scope {
            pipeline_id: pipeline.clone(),
            owner,
        };
        let f = analytics::forecast(
            c,
            &org.id,
            &scope,
            now().date(),
            months,
            &org.default_currency,
        )?;
        let chart_months: Vec<&analytics::ForecastMonth> = f
            .months
            .iter()
            .filter(|m| m.currency == org.default_currency)
            .collect();
        let selected_owner = get(&pairs, "owner").unwrap_or_default().to_string();
        Ok(ForecastPage {
            chart: forecast_svg(&chart_months),
            pipelines: pipelines
                .iter()
                .map(|v| Choice {
                    value: v.pipeline.id.clone(),
                    label: v.pipeline.name.clone(),
                    selected: pipeline.as_deref() == Some(v.pipeline.id.as_str()),
                })
                .collect(),
            owners: if access.oversee {
                std::iter::once(("me".to_string(), "Me".to_string()))
                    .chain(owners(c, &org.id)?)
                    .map(|(v, l)| Choice {
                        selected: v == selected_owner,
                        value: v,
                        label: l,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            months: f.months,
            stages: f.stages,
            currency: org.default_currency.clone(),
            own_only: !access.oversee,
        })
    })
    .await?;
    render(&req, &actor, "Forecast", &page).await
}

// ---------- performance ----------

#[derive(Template)]
#[template(path = "partials/sales/performance.html")]
struct PerformancePage {
    from: String,
    to: String,
    reps: Vec<analytics::RepFigures>,
    stages: Vec<analytics::StageTime>,
    chart: String,
    pipelines: Vec<Choice>,
}

pub async fn performance(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("report", "read").await?;
    let access = record_access(&actor, "opportunity").await?;
    let pairs = query_pairs(&req)?;
    let org = actor.org.clone();
    let today = now().date();
    let to = get(&pairs, "to")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(today);
    let from = get(&pairs, "from")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .unwrap_or(to - Duration::days(90));
    if from > to {
        return Err(AppError::invalid(
            "from",
            "The period starts before it ends.",
        ));
    }
    let page = db::run(&state.pool, move |c| {
        let pipeline = get(&pairs, "pipeline").map(str::to_string);
        let scope = Scope {
            pipeline_id: pipeline.clone(),
            owner: (!access.oversee).then(|| access.user_id.clone()),
        };
        let names: BTreeMap<String, String> = owners(c, &org.id)?.into_iter().collect();
        let p = analytics::performance(c, &org.id, &scope, from, to, &names)?;
        let chart_reps: Vec<&analytics::RepFigures> = p
            .reps
            .iter()
            .filter(|r| !r.team && r.currency == org.default_currency)
            .collect();
        Ok(PerformancePage {
            chart: performance_svg(&chart_reps),
            from: from.to_string(),
            to: to.to_string(),
            reps: p.reps,
            stages: p.time_in_stage,
            pipelines: service::pipelines(c, &org.id)?
                .iter()
                .map(|v| Choice {
                    value: v.pipeline.id.clone(),
                    label: v.pipeline.name.clone(),
                    selected: pipeline.as_deref() == Some(v.pipeline.id.as_str()),
                })
                .collect(),
        })
    })
    .await?;
    render(&req, &actor, "Performance", &page).await
}

// ---------- contracts ----------

pub struct ContractLine {
    pub id: String,
    pub name: String,
    pub client_id: String,
    pub client: String,
    pub period: String,
    pub value: String,
    pub status: String,
    pub due: bool,
    pub notice_by: String,
    pub has_renewal: bool,
}

#[derive(Template)]
#[template(path = "partials/sales/contracts.html")]
struct ContractsPage {
    rows: Vec<ContractLine>,
    can_write: bool,
}

fn contract_lines(
    c: &mut DbConn,
    org: &str,
    rows: Vec<crate::domain::pipeline::ContractRow>,
) -> AppResult<Vec<ContractLine>> {
    let names = client_names(c, org, rows.iter().map(|r| r.client_id.clone()).collect())?;
    let today = now().date();
    Ok(rows
        .into_iter()
        .map(|r| ContractLine {
            due: r.status == "active" && r.end_date <= today + Duration::days(90),
            notice_by: (r.end_date - Duration::days(i64::from(r.notice_days))).to_string(),
            client: names.get(&r.client_id).cloned().unwrap_or_default(),
            period: format!("{} → {}", r.start_date, r.end_date),
            value: money(r.value_cents, &r.currency),
            has_renewal: r.renewal_opportunity_id.is_some(),
            id: r.id,
            name: r.name,
            client_id: r.client_id,
            status: r.status,
        })
        .collect())
}

pub async fn contracts_list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = record_access(&actor, "client").await?;
    let can_write = actor.can("client", "write").await?;
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| {
        let rows = contracts::list(c, &org, &access, None, None, None)?;
        contract_lines(c, &org, rows)
    })
    .await?;
    render(
        &req,
        &actor,
        "Contracts",
        &ContractsPage { rows, can_write },
    )
    .await
}

#[derive(Template)]
#[template(path = "partials/sales/contract_form.html")]
struct ContractForm {
    id: Option<String>,
    version: i64,
    values: HashMap<String, String>,
    client_name: String,
    errors: Vec<FieldError>,
    statuses: Vec<Choice>,
    document_name: String,
    renewal_id: String,
    can_renew: bool,
}

impl ContractForm {
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

#[allow(clippy::too_many_arguments)]
fn contract_form(
    c: &mut DbConn,
    org: &str,
    id: Option<String>,
    version: i64,
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
    document_name: String,
    renewal_id: String,
    can_renew: bool,
) -> AppResult<ContractForm> {
    let client_name = values
        .get("clientId")
        .filter(|x| !x.is_empty())
        .map(|cid| clients::store::find(c, org, cid))
        .transpose()?
        .flatten()
        .map(|x| x.display_name)
        .unwrap_or_default();
    let status = values
        .get("status")
        .cloned()
        .unwrap_or_else(|| "active".into());
    Ok(ContractForm {
        statuses: crate::domain::pipeline::CONTRACT_STATUSES
            .iter()
            .map(|s| Choice {
                value: s.to_string(),
                label: s.to_string(),
                selected: **s == *status,
            })
            .collect(),
        id,
        version,
        values,
        client_name,
        errors,
        document_name,
        renewal_id,
        can_renew,
    })
}

pub async fn contract_new(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let pairs = query_pairs(&req)?;
    let org = actor.org_id().to_string();
    let currency = actor.org.default_currency.clone();
    let form = db::run(&state.pool, move |c| {
        let today = now().date();
        let mut values = HashMap::from([
            ("currency".to_string(), currency),
            ("startDate".into(), today.to_string()),
            ("endDate".into(), (today + Duration::days(365)).to_string()),
            ("noticeDays".into(), "30".into()),
            ("status".into(), "active".into()),
        ]);
        for k in ["clientId", "opportunityId"] {
            if let Some(v) = get(&pairs, k) {
                values.insert(k.into(), v.into());
            }
        }
        contract_form(
            c,
            &org,
            None,
            0,
            values,
            Vec::new(),
            String::new(),
            String::new(),
            false,
        )
    })
    .await?;
    render(&req, &actor, "New contract", &form).await
}

pub async fn contract_show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = record_access(&actor, "client").await?;
    let can_renew = actor.can("opportunity", "write").await?;
    let org = actor.org_id().to_string();
    let form = db::run(&state.pool, move |c| {
        let k = contracts::get(c, &org, &access, &id)?;
        let values = HashMap::from([
            ("name".to_string(), k.name.clone()),
            ("clientId".into(), k.client_id.clone()),
            (
                "opportunityId".into(),
                k.opportunity_id.clone().unwrap_or_default(),
            ),
            ("startDate".into(), k.start_date.to_string()),
            ("endDate".into(), k.end_date.to_string()),
            ("value".into(), format_cents(k.value_cents)),
            ("currency".into(), k.currency.clone()),
            ("renewalTerms".into(), k.renewal_terms.clone()),
            ("noticeDays".into(), k.notice_days.to_string()),
            ("status".into(), k.status.clone()),
        ]);
        contract_form(
            c,
            &org,
            Some(k.id.clone()),
            k.version,
            values,
            Vec::new(),
            k.document_name.clone().unwrap_or_default(),
            k.renewal_opportunity_id.clone().unwrap_or_default(),
            can_renew,
        )
    })
    .await?;
    render(&req, &actor, "Contract", &form).await
}

pub async fn contract_save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: Option<web::Path<String>>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = record_access(&actor, "client").await?;
    let ctx = actor.audit();
    let currency = actor.org.default_currency.clone();
    let pairs = parse_form(&body)?;
    let id = id.map(web::Path::into_inner);
    let outcome = db::run(&state.pool, move |c| {
        let mut body = Map::new();
        let mut values = HashMap::new();
        for (k, v) in &pairs {
            match k.as_str() {
                "name" | "clientId" | "opportunityId" | "startDate" | "endDate" | "value"
                | "currency" | "renewalTerms" | "status" => {
                    body.insert(k.clone(), Value::String(v.trim().to_string()));
                    values.insert(k.clone(), v.clone());
                }
                "noticeDays" => {
                    body.insert(
                        k.clone(),
                        v.trim()
                            .parse::<i64>()
                            .map(Value::from)
                            .unwrap_or_else(|_| Value::String(v.clone())),
                    );
                    values.insert(k.clone(), v.clone());
                }
                "version" => {
                    body.insert(
                        k.clone(),
                        v.parse::<i64>().map(Value::from).unwrap_or(Value::Null),
                    );
                }
                _ => {}
            }
        }
        if body.get("opportunityId").and_then(Value::as_str) == Some("") {
            body.insert("opportunityId".into(), Value::Null);
        }
        match contracts::save(c, &ctx, &access, id.as_deref(), &body, &currency) {
            Ok(k) => Ok(Ok(k)),
            Err(AppError::Validation(_, errors)) => {
                let version = body.get("version").and_then(Value::as_i64).unwrap_or(0);
                Ok(Err(contract_form(
                    c,
                    &ctx.org_id,
                    id.clone(),
                    version,
                    values,
                    errors,
                    String::new(),
                    String::new(),
                    false,
                )?))
            }
            Err(e) => Err(e),
        }
    })
    .await?;
    match outcome {
        Ok(k) => redirect_with_flash(
            &req,
            &format!("/contracts/{}", k.id),
            &format!("{} was saved.", k.name),
        ),
        Err(form) => {
            render_with_status(
                &req,
                &actor,
                "Contract",
                &form,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

pub async fn contract_create(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    contract_save(req, actor, state, None, body).await
}

pub async fn contract_update(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    contract_save(req, actor, state, Some(id), body).await
}

/// The signed document, sent by the page's script as the raw request body.
pub async fn contract_upload(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = record_access(&actor, "client").await?;
    let ctx = actor.audit();
    let ctype = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let name = query_pairs(&req)?
        .into_iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "contract".into());
    let id = id.into_inner();
    let cid = id.clone();
    db::run(&state.pool, move |c| {
        contracts::attach(c, &ctx, &access, &cid, &name, &ctype, body.to_vec())
    })
    .await?;
    redirect_with_flash(
        &req,
        &format!("/contracts/{id}"),
        "The signed document was attached.",
    )
}

pub async fn contract_document(
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = record_access(&actor, "client").await?;
    let org = actor.org_id().to_string();
    let k = db::run(&state.pool, move |c| contracts::get(c, &org, &access, &id)).await?;
    let bytes = k.document.ok_or(AppError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(
            k.document_type
                .unwrap_or_else(|| "application/octet-stream".into()),
        )
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{}\"",
                k.document_name.unwrap_or_else(|| "contract".into())
            ),
        ))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(bytes))
}

pub async fn contract_renew(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("opportunity", "write").await?;
    let access = record_access(&actor, "opportunity").await?;
    let ctx = actor.audit();
    let currency = actor.org.default_currency.clone();
    let deal = crate::web::run_with_plugins(&state, actor.org_id().to_string(), move |c, ext| {
        let defs = custom_fields::store::list(c, &ctx.org_id, "opportunity", false)?;
        contracts::renew(
            c,
            &WriteContext {
                external: ext,
                rules: ext,
                ctx: &ctx,
                access: &access,
                defs: &defs,
                default_currency: &currency,
            },
            &id,
        )
    })
    .await?;
    redirect_with_flash(
        &req,
        &format!("/opportunities/{}", deal.id),
        &format!("The renewal deal {} was opened.", deal.name),
    )
}

/// Contracts whose end is near, for the dashboard.
pub fn renewals_due(c: &mut DbConn, org: &str, access: &Access) -> AppResult<Vec<ContractLine>> {
    let rows = contracts::renewals_due(c, org, access, 90)?;
    contract_lines(c, org, rows)
}
