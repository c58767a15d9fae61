//! A deal's page: its figures, contacts, history, quotes, contracts, timeline and files.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;

use super::super::redirect_with_flash;
use super::super::render_with_status;
use super::super::{files, timeline};
use super::{stage_choices, StageChoice};
use crate::auth::ConsoleActor;
use crate::domain::pipeline::{QuoteRow, StageMoveRow, StageRow};
use crate::error::{AppError, AppResult, FieldError};
use crate::locale::Local;
use crate::ops::deals::{self, DealPage as Read};
use crate::ops::Scope;
use crate::state::AppState;

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
    /// May write e-mail to the deal's client from here.
    can_email: bool,
    /// "History" (the audit log narrowed to this deal) for those who may read the log.
    can_audit: bool,
    currency: String,
    quote_errors: Vec<FieldError>,
    /// What the quote form shows: empty rows, or what was typed when it was refused.
    quote_draft: QuoteDraft,
    /// The deal's timeline card (empty when its client is out of the reader's sight).
    timeline: String,
    /// The deal's Files card.
    files: String,
}

fn stage_name(stages: &[StageRow], id: &str) -> String {
    stages
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.name.clone())
        .unwrap_or_default()
}

fn history_view(h: StageMoveRow, page: &Read, local: &Local) -> MoveView {
    let name_of = |id: &str| stage_name(&page.stages, id);
    MoveView {
        at: local.datetime(h.moved_at),
        who: h
            .moved_by
            .as_ref()
            .and_then(|u| page.members.get(u).cloned())
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
    }
}

fn quote_view(q: QuoteRow, local: &Local) -> QuoteView {
    QuoteView {
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
        total: local.cents(q.total_cents, &q.currency),
        valid_until: q.valid_until.map(|v| local.date(v)).unwrap_or_default(),
        id: q.id,
        status: q.status,
    }
}

/// The deal's timeline and Files cards, drawn by their own areas.
async fn cards(state: &AppState, scope: &Scope, deal: String) -> AppResult<(String, String)> {
    let parent = crate::domain::attachments::Parent::Deal(deal.clone());
    let can_write = scope.can("opportunity", "write");
    let files = files::card(scope, parent, can_write, state.config.max_upload_bytes).await?;
    let view = timeline::View {
        can_write: scope.can("interaction", "write"),
        ..Default::default()
    };
    let target = crate::domain::interactions::Scope::Deal(deal);
    let timeline = match timeline::card(scope, target, view).await {
        Ok(html) => html,
        // The deal's client is out of the reader's reach: the deal shows without its timeline.
        Err(AppError::NotFound) => String::new(),
        Err(e) => return Err(e),
    };
    Ok((timeline, files))
}

/// The page template from the deal's read model.
fn page_view(p: Read, scope: &Scope, quote_errors: Vec<FieldError>) -> DealPage {
    let d = &p.deal;
    let history = p
        .history
        .iter()
        .cloned()
        .map(|h| history_view(h, &p, &scope.local))
        .collect();
    DealPage {
        timeline: String::new(),
        files: String::new(),
        stage: stage_name(&p.stages, &d.stage_id),
        stage_id: d.stage_id.clone(),
        stages: stage_choices(&p.stages),
        value: scope.local.cents(d.value_cents, &d.currency),
        weighted: scope.local.cents(
            (d.value_cents * i64::from(d.probability) + 50) / 100,
            &d.currency,
        ),
        close: d
            .expected_close
            .map(|x| scope.local.date(x))
            .unwrap_or_default(),
        actual_close: d
            .actual_close
            .map(|x| scope.local.date(x))
            .unwrap_or_default(),
        owner: d
            .assigned_to
            .as_ref()
            .and_then(|u| p.members.get(u).cloned())
            .unwrap_or_default(),
        competitors: d.competitor_list().join(", "),
        id: d.id.clone(),
        name: d.name.clone(),
        status: d.status.clone(),
        probability: d.probability,
        client_id: d.client_id.clone(),
        source: d.source.clone().unwrap_or_default(),
        description: d.description.clone(),
        loss_reason: d.loss_reason.clone().unwrap_or_default(),
        version: d.version,
        currency: d.currency.clone(),
        custom: p.custom,
        contacts: p
            .contacts
            .into_iter()
            .map(|(id, name, role)| ContactView { id, name, role })
            .collect(),
        history,
        quotes: p
            .quotes
            .into_iter()
            .map(|q| quote_view(q, &scope.local))
            .collect(),
        contracts: p
            .contracts
            .into_iter()
            .map(|k| {
                let period = format!(
                    "{} → {}",
                    scope.local.date(k.start_date),
                    scope.local.date(k.end_date)
                );
                (k.id, k.name, period)
            })
            .collect(),
        client: p.client,
        loss_reasons: p.loss_reasons,
        can_write: scope.can("opportunity", "write"),
        can_delete: scope.can("opportunity", "delete"),
        can_email: scope.can("message", "send") && scope.can("client", "read"),
        can_audit: scope.can("audit", "read"),
        quote_errors,
        quote_draft: QuoteDraft::default(),
    }
}

/// One row of the quote form as typed.
#[derive(Clone, Default)]
pub struct DraftLine {
    pub name: String,
    pub qty: String,
    pub price: String,
    pub discount: String,
    pub tax: String,
}

/// The quote form's content: three empty rows, or everything typed in a refused quote.
#[derive(Clone)]
pub struct QuoteDraft {
    pub lines: Vec<DraftLine>,
    pub valid_until: String,
    pub terms: String,
}

impl Default for QuoteDraft {
    fn default() -> Self {
        let blank = DraftLine {
            qty: "1".into(),
            discount: "0".into(),
            tax: "0".into(),
            ..Default::default()
        };
        Self {
            lines: vec![blank; 3],
            valid_until: String::new(),
            terms: String::new(),
        }
    }
}

/// The deal's page; a refused quote shows it again with the quote form's errors and
/// everything that was typed.
pub(super) async fn deal_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    id: String,
    quote_errors: Vec<FieldError>,
    quote_draft: QuoteDraft,
    status: StatusCode,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let read = deals::page(&scope, id).await?;
    let (timeline, files) = cards(state, &scope, read.deal.id.clone()).await?;
    let page = DealPage {
        timeline,
        files,
        quote_draft,
        ..page_view(read, &scope, quote_errors)
    };
    let title = page.name.clone();
    render_with_status(req, actor, &title, &page, status).await
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    deal_page(
        &req,
        &actor,
        &state,
        id,
        Vec::new(),
        QuoteDraft::default(),
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
    deals::delete(&scope, id.into_inner()).await?;
    redirect_with_flash(&req, "/pipeline", "The deal was deleted.")
}
