//! The pipeline board, and moving a deal on it (a drop, or a choice in a card's menu).

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Duration;

use super::super::clients::Choice;
use super::super::{redirect_with_flash, render, render_with_status, Toast};
use super::{get, owner_choices, parse_form, pipeline_choices, stage_choices, StageChoice};
use crate::auth::ConsoleActor;
use crate::db::now;
use crate::domain::pipeline::{OpportunityRow, PipelineRow};
use crate::error::{AppError, AppResult};
use crate::locale::Local;
use crate::ops::deals::{self, BoardQuery, Column};
use crate::ops::Scope;
use crate::state::AppState;
use crate::web::query_pairs;

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
    /// Deals in the column not drawn yet.
    pub hidden: i64,
    /// How many the "Show more" button loads, and its query ("" when nothing is left).
    pub next: i64,
    pub more: String,
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
    /// The Forecast button (it needs the right to read reports).
    can_forecast: bool,
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

/// The board's filters as the query gives them.
fn query_of(pairs: &[(String, String)]) -> BoardQuery {
    BoardQuery {
        pipeline: get(pairs, "pipeline").map(str::to_string),
        owner: get(pairs, "owner").map(str::to_string),
        month: get(pairs, "month").map(str::to_string),
    }
}

/// Names by id, borrowed.
type Names<'a> = HashMap<&'a str, &'a str>;

fn card(
    d: &OpportunityRow,
    open: bool,
    p: &PipelineRow,
    clients: &Names,
    members: &Names,
    local: &Local,
) -> Card {
    let name_of = |names: &Names, id: Option<&str>| {
        id.and_then(|i| names.get(i))
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    Card {
        rotting: open
            && p.rotting_days
                .is_some_and(|days| now() - d.stage_entered_at > Duration::days(i64::from(days))),
        overdue: open && d.expected_close.is_some_and(|e| e < local.today()),
        id: d.id.clone(),
        name: d.name.clone(),
        client: name_of(clients, Some(&d.client_id)),
        value: local.cents(d.value_cents, &d.currency),
        close: d.expected_close.map(|e| local.date(e)).unwrap_or_default(),
        owner: name_of(members, d.assigned_to.as_deref()),
        version: d.version,
    }
}

fn column(
    col: &Column,
    p: &PipelineRow,
    clients: &Names,
    members: &Names,
    local: &Local,
) -> BoardColumn {
    let count: i64 = col.totals.iter().map(|t| t.deals).sum();
    let open = col.stage.kind == "open";
    BoardColumn {
        totals: col
            .totals
            .iter()
            .map(|t| local.cents(t.value_cents, &t.currency))
            .collect::<Vec<_>>()
            .join(" · "),
        hidden: (count - col.deals.len() as i64).max(0),
        next: 0,
        more: String::new(),
        count,
        cards: col
            .deals
            .iter()
            .map(|d| card(d, open, p, clients, members, local))
            .collect(),
        id: col.stage.id.clone(),
        name: col.stage.name.clone(),
        kind: col.stage.kind.clone(),
        color: col.stage.color.clone(),
        probability: col.stage.probability,
    }
}

/// The board template from its read model; `pairs` is the query it answers.
fn board_view(
    b: deals::Board,
    pairs: &[(String, String)],
    scope: &Scope,
    can_export: bool,
) -> Board {
    let clients: Names = b
        .clients
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let members: Names = b
        .members
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let p = &b.pipeline.pipeline;
    let base = base_query(p, pairs);
    let columns = b
        .columns
        .iter()
        .map(|col| {
            let view = column(col, p, &clients, &members, &scope.local);
            paged(view, 0, None, &base)
        })
        .collect();
    Board {
        sortable_src: crate::web::assets::SORTABLE_PATH,
        sortable_sri: crate::web::assets::SORTABLE_SRI,
        pipelines: pipeline_choices(&b.pipelines, Some(&p.id)),
        pipeline_id: p.id.clone(),
        stages: stage_choices(&b.pipeline.stages),
        columns,
        owners: owner_choices(
            b.members,
            scope.access("opportunity").oversee,
            get(pairs, "owner").unwrap_or_default(),
        ),
        month: get(pairs, "month").unwrap_or_default().to_string(),
        loss_reasons: b.loss_reasons,
        can_write: scope.can("opportunity", "write"),
        can_forecast: crate::ops::sales::require_reports(scope).is_ok(),
        can_export,
        query: serde_urlencoded::to_string(pairs).unwrap_or_default(),
    }
}

/// The board's filters, with its pipeline named: what a column's next page answers to.
fn base_query(p: &PipelineRow, pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut base = vec![("pipeline".to_string(), p.id.clone())];
    for key in ["owner", "month"] {
        if let Some(v) = get(pairs, key).filter(|v| !v.is_empty()) {
            base.push((key.to_string(), v.to_string()));
        }
    }
    base
}

/// A column drawn after `shown_before` cards: what is left, and the query of its next page
/// (cursor: its last card). `more` says whether cards follow when the read knows it; the
/// count alone comes from the rollup.
fn paged(
    mut col: BoardColumn,
    shown_before: i64,
    more: Option<bool>,
    base: &[(String, String)],
) -> BoardColumn {
    let shown = shown_before + col.cards.len() as i64;
    col.hidden = match more {
        Some(false) => 0,
        Some(true) => (col.count - shown).max(1),
        None => (col.count - shown).max(0),
    };
    col.next = col.hidden.min(deals::CARDS_PER_COLUMN);
    col.more = match col.cards.last() {
        Some(last) if col.hidden > 0 => {
            let mut q = base.to_vec();
            q.push(("stage".into(), col.id.clone()));
            q.push(("before".into(), last.id.clone()));
            q.push(("shown".into(), shown.to_string()));
            serde_urlencoded::to_string(q).unwrap_or_default()
        }
        _ => String::new(),
    };
    col
}

#[derive(Template)]
#[template(path = "partials/sales/board_column.html")]
struct ColumnCards {
    col: BoardColumn,
    stages: Vec<StageChoice>,
    can_write: bool,
    /// The board's query, carried by the cards' move menus.
    query: String,
    /// A page of its own (a link opened without htmx), not cards added to the board.
    full: bool,
    pipeline_id: String,
    pipeline: String,
}

/// `GET /pipeline/column?pipeline=…&stage=…&before=<deal id>&shown=25[&owner=…][&month=…]`:
/// a column's next cards, under the board's filters and record rule. htmx adds them to the
/// column and replaces its "Show more"; without htmx it is a page listing them.
pub async fn column_cards(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let stage = get(&pairs, "stage").unwrap_or_default().to_string();
    let before = get(&pairs, "before").unwrap_or_default().to_string();
    let shown = get(&pairs, "shown")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
        // why: a count from the URL; no column holds a billion cards, and the sums below
        // must not overflow.
        .clamp(0, 1_000_000_000);
    let page = deals::column_page(&scope, query_of(&pairs), stage, before).await?;
    let clients: Names = page
        .clients
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let members: Names = page
        .members
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let p = &page.pipeline.pipeline;
    let base = base_query(p, &pairs);
    let view = column(&page.column, p, &clients, &members, &scope.local);
    let full = !crate::web::wants_fragment(&req);
    let cards = ColumnCards {
        col: paged(view, shown, Some(page.more), &base),
        stages: stage_choices(&page.pipeline.stages),
        // why: the move menus answer with the board, which a page of its own lacks.
        can_write: scope.can("opportunity", "write") && !full,
        query: serde_urlencoded::to_string(&base).unwrap_or_default(),
        full,
        pipeline_id: p.id.clone(),
        pipeline: p.name.clone(),
    };
    let title = format!("{} · {}", cards.col.name, cards.pipeline);
    render(&req, &actor, &title, &cards).await
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = query_pairs(&req)?;
    let b = deals::board(&scope, query_of(&pairs)).await?;
    let can_export = scope.can("opportunity", "export");
    render(
        &req,
        &actor,
        "Pipeline",
        &board_view(b, &pairs, &scope, can_export),
    )
    .await
}

/// What the board says about a move: done (from where to where), or why not.
fn account(
    outcome: AppResult<deals::Moved>,
) -> AppResult<(Result<String, String>, Option<String>)> {
    match outcome {
        Ok(m) => {
            let d = &m.deal;
            let to = d.stage.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            let text = format!(
                "{} moved from {} to {to} ({}% → {}%).",
                d.row.name, m.from_stage, m.from_probability, d.row.probability
            );
            Ok((Ok(text), Some(d.row.pipeline_id.clone())))
        }
        Err(AppError::Validation(_, errors)) => Ok((
            Err(errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_else(|| "The deal could not be moved.".into())),
            None,
        )),
        Err(AppError::Stale(m)) => Ok((Err(m), None)),
        Err(e) => Err(e),
    }
}

/// The board the move came from, in the deal's pipeline unless it named one.
async fn board_after(
    scope: &Scope,
    pairs: &[(String, String)],
    id: String,
    pipeline: Option<String>,
) -> AppResult<String> {
    let mut pairs = pairs.to_vec();
    if !pairs.iter().any(|(k, _)| k == "pipeline") {
        let pipeline = match pipeline {
            Some(p) => p,
            None => deals::get(scope, id).await?.row.pipeline_id,
        };
        pairs.push(("pipeline".into(), pipeline));
    }
    let b = deals::board(scope, query_of(&pairs)).await?;
    // The same buttons as before the move: "Export deals" once vanished until a reload.
    board_view(b, &pairs, scope, scope.can("opportunity", "export"))
        .render()
        .map_err(|e| AppError::Internal(e.to_string()))
}

/// A drop on the board or a choice in a card's menu. Answers with the refreshed board.
pub async fn move_deal(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let stage = get(&pairs, "stage").unwrap_or_default().to_string();
    let reason = get(&pairs, "loss_reason").map(str::to_string);
    let version = get(&pairs, "version").and_then(|v| v.parse().ok());
    let id = id.into_inner();
    let outcome = deals::moved(&scope, id.clone(), stage, reason, version).await;
    let (message, pipeline) = account(outcome)?;
    if get(&pairs, "from") == Some("deal") {
        return match message {
            Ok(m) => redirect_with_flash(&req, &format!("/opportunities/{id}"), &m),
            Err(m) => Err(AppError::Validation(m, Vec::new())),
        };
    }
    let back: Vec<(String, String)> =
        serde_urlencoded::from_str(get(&pairs, "board").unwrap_or_default()).unwrap_or_default();
    let board = board_after(&scope, &back, id, pipeline).await?;
    let (kind, text) = match &message {
        Ok(m) => ("ok", m.as_str()),
        Err(m) => ("error", m.as_str()),
    };
    let toast = Toast {
        kind,
        message: text,
        oob: true,
    };
    let fragment = BoardMoved {
        board: &board,
        toast,
    };
    render_with_status(&req, &actor, "Pipeline", &fragment, StatusCode::OK).await
}
