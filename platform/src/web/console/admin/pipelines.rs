//! The Pipelines page: pipelines and their stages (rename, recolour, re-weight,
//! reorder, add, retire with a destination for their deals) and the loss reasons.
//! Everything here needs `pipeline:write`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::pipeline::service::PipelineView;
use crate::domain::pipeline::{LossReasonRow, DEFAULT_STAGES, STAGE_COLORS};
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::pipelines as ops;
use crate::ops::Scope;
use crate::state::AppState;
use crate::web::console::{flash_cookie, redirect, render_with_status};

#[derive(Template)]
#[template(path = "partials/admin/pipelines.html")]
struct PipelinesPage {
    pipelines: Vec<PipelineView>,
    counts: std::collections::HashMap<String, i64>,
    reasons: Vec<LossReasonRow>,
    colors: &'static [&'static str],
    /// Plugins' pipeline templates: (reference, label).
    templates: Vec<(String, String)>,
    refused: Refused,
}

/// A form of the page that was refused: the page comes back with that form as typed and
/// its messages beside the fields. A form is told apart by its action and the stage (or
/// else the pipeline) it is about, since the page repeats the same forms per pipeline.
#[derive(Default)]
struct Refused {
    action: String,
    about: String,
    values: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl Refused {
    fn new(values: Vec<(String, String)>, errors: Vec<FieldError>) -> Self {
        let stage = get(&values, "stage");
        Self {
            action: get(&values, "do"),
            about: if stage.is_empty() {
                get(&values, "pipeline")
            } else {
                stage
            },
            errors: errors
                .into_iter()
                .map(|e| FieldError::new(form_field(&e.field), e.message))
                .collect(),
            values,
        }
    }

    fn is(&self, action: &str, about: &str) -> bool {
        !self.errors.is_empty() && self.action == action && self.about == about
    }
}

/// The form input a service's field error is about (the services name fields as the API
/// does; a template's stages are chosen with the template).
fn form_field(field: &str) -> String {
    match field {
        "rottingDays" => "rotting_days".into(),
        "moveTo" => "move_to".into(),
        f if f.starts_with("stages") => "template".into(),
        f => f.into(),
    }
}

/// The inputs each form shows its own errors beside; any other error of the form is
/// shown under it.
fn inputs(action: &str) -> &'static [&'static str] {
    match action {
        "create_pipeline" => &["name", "rotting_days", "template"],
        "update_pipeline" => &["name", "rotting_days"],
        "add_stage" | "update_stage" => &["name", "probability"],
        "retire_stage" => &["move_to"],
        "add_reason" => &["name"],
        _ => &[],
    }
}

impl PipelinesPage {
    fn count(&self, stage: &str) -> i64 {
        self.counts.get(stage).copied().unwrap_or(0)
    }

    fn failed(&self, action: &str, about: &str) -> bool {
        self.refused.is(action, about)
    }

    /// What was typed into a refused form's input, to show again instead of the stored value.
    fn typed(&self, action: &str, about: &str, input: &str) -> Option<&str> {
        if !self.refused.is(action, about) {
            return None;
        }
        self.refused
            .values
            .iter()
            .find(|(k, _)| k == input)
            .map(|(_, v)| v.as_str())
    }

    fn error(&self, action: &str, about: &str, input: &str) -> Option<&str> {
        if !self.refused.is(action, about) {
            return None;
        }
        self.refused
            .errors
            .iter()
            .find(|e| e.field == input)
            .map(|e| e.message.as_str())
    }

    /// A refused form's errors about nothing it shows an input for.
    fn other_errors(&self, action: &str, about: &str) -> Vec<&str> {
        if !self.refused.is(action, about) {
            return Vec::new();
        }
        let shown = inputs(action);
        self.refused
            .errors
            .iter()
            .filter(|e| !shown.contains(&e.field.as_str()))
            .map(|e| e.message.as_str())
            .collect()
    }
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    page(&req, &actor, &scope, Refused::default()).await
}

async fn page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    scope: &Scope,
    refused: Refused,
) -> AppResult<HttpResponse> {
    let setup = ops::setup(scope).await?;
    let status = if refused.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = PipelinesPage {
        pipelines: setup.pipelines,
        counts: setup.counts,
        reasons: setup.reasons,
        colors: STAGE_COLORS,
        templates: setup.templates,
        refused,
    };
    render_with_status(req, actor, "Pipelines", &page, status).await
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
    match apply(&scope, |k| get(&pairs, k)).await {
        Ok(message) => done(&req, &message),
        Err(AppError::Validation(_, errors)) => {
            page(&req, &actor, &scope, Refused::new(pairs, errors)).await
        }
        Err(e) => Err(e),
    }
}
