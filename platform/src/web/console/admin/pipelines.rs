//! The Pipelines page: pipelines and their stages (rename, recolour, re-weight,
//! reorder, add, retire with a destination for their deals) and the loss reasons.
//! Everything here needs `pipeline:write`.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::pipeline::service::PipelineView;
use crate::domain::pipeline::{LossReasonRow, DEFAULT_STAGES, STAGE_COLORS};
use crate::error::{AppError, AppResult};
use crate::ops::pipelines as ops;
use crate::ops::Scope;
use crate::state::AppState;
use crate::web::console::{flash_cookie, redirect, render};

#[derive(Template)]
#[template(path = "partials/admin/pipelines.html")]
struct PipelinesPage {
    pipelines: Vec<PipelineView>,
    counts: std::collections::HashMap<String, i64>,
    reasons: Vec<LossReasonRow>,
    colors: &'static [&'static str],
    /// Plugins' pipeline templates: (reference, label).
    templates: Vec<(String, String)>,
}

impl PipelinesPage {
    fn count(&self, stage: &str) -> i64 {
        self.counts.get(stage).copied().unwrap_or(0)
    }
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let setup = ops::setup(&scope).await?;
    let page = PipelinesPage {
        pipelines: setup.pipelines,
        counts: setup.counts,
        reasons: setup.reasons,
        colors: STAGE_COLORS,
        templates: setup.templates,
    };
    render(&req, &actor, "Pipelines", &page).await
}

use crate::web::console::form_pairs as form;

fn get(pairs: &[(String, String)], k: &str) -> String {
    pairs
        .iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

fn done(req: &HttpRequest, message: &str) -> AppResult<HttpResponse> {
    let mut res = redirect(req, "/admin/pipelines");
    res.add_cookie(&flash_cookie(message))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(res)
}

fn rotting(raw: &str) -> AppResult<Option<i32>> {
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| AppError::invalid("rotting_days", "Use a whole number of days."))
}

fn probability(raw: &str) -> AppResult<i32> {
    raw.parse()
        .map_err(|_| AppError::invalid("probability", "Use a probability from 0 to 100."))
}

/// Runs one of the page's forms; answers what to tell the admin.
async fn apply(scope: &Scope, f: impl Fn(&str) -> String) -> AppResult<String> {
    let text = |k: &str| Some(f(k)).filter(|v| !v.is_empty());
    Ok(match f("do").as_str() {
        "create_pipeline" => {
            let input = ops::PipelineInput {
                name: Some(f("name")),
                rotting_days: rotting(&f("rotting_days"))?,
                template: text("template"),
                stages: if text("template").is_some() {
                    Vec::new()
                } else {
                    default_stages()
                },
            };
            let v = ops::create(scope, input).await?;
            format!(
                "The pipeline {} was created with {} stages.",
                v.pipeline.name,
                v.stages.len()
            )
        }
        "update_pipeline" => {
            let patch = ops::PipelinePatch {
                name: Some(f("name")),
                rotting_days: Some(rotting(&f("rotting_days"))?),
            };
            format!(
                "{} was saved.",
                ops::update(scope, f("pipeline"), patch).await?.name
            )
        }
        "add_stage" => {
            let input = ops::StageInput {
                name: f("name"),
                probability: probability(&f("probability"))?,
                kind: None,
                color: text("color"),
            };
            let s = ops::add_stage(scope, f("pipeline"), input).await?;
            format!("The stage {} was added.", s.name)
        }
        "update_stage" => {
            let patch = ops::StagePatch {
                name: Some(f("name")),
                probability: Some(probability(&f("probability"))?),
                color: Some(f("color")),
                position: None,
            };
            let s = ops::update_stage(scope, f("pipeline"), f("stage"), patch).await?;
            format!("{} was saved.", s.name)
        }
        "move_stage" => {
            let s = ops::move_stage(scope, f("pipeline"), f("stage"), f("dir") == "up").await?;
            format!("{} was moved.", s.name)
        }
        "retire_stage" => {
            let moved =
                ops::retire_stage(scope, f("pipeline"), f("stage"), text("move_to")).await?;
            format!("The stage was retired; {moved} deal(s) moved.")
        }
        "add_reason" => format!(
            "The reason {} was added.",
            ops::add_loss_reason(scope, f("name")).await?.name
        ),
        "toggle_reason" => {
            let on = f("active") == "true";
            ops::set_loss_reason_active(scope, f("reason"), Some(on)).await?;
            if on {
                "The reason is offered again.".into()
            } else {
                "The reason is no longer offered.".into()
            }
        }
        _ => return Err(AppError::BadRequest("Unknown action.".into())),
    })
}

/// The default stages of a new pipeline, as the create operation takes them.
fn default_stages() -> Vec<ops::StageInput> {
    DEFAULT_STAGES
        .iter()
        .map(|(name, probability, kind, color)| ops::StageInput {
            name: name.to_string(),
            probability: *probability,
            kind: Some(kind.to_string()),
            color: Some(color.to_string()),
        })
        .collect()
}

/// One endpoint per action keeps the page a set of small forms.
pub async fn action(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form(&body)?;
    let message = apply(&scope, |k| get(&pairs, k)).await?;
    done(&req, &message)
}
