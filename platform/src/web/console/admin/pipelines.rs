//! The Pipelines page: pipelines and their stages (rename, recolour, re-weight,
//! reorder, add, retire with a destination for their deals) and the loss reasons.
//! Everything here needs `pipeline:write`.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::pipeline::service::{self, PipelineView};
use crate::domain::pipeline::{store, LossReasonRow, DEFAULT_STAGES, STAGE_COLORS};
use crate::error::{AppError, AppResult};
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
    actor.require("pipeline", "write").await?;
    let org = actor.org_id().to_string();
    let page = db::run(&state.pool, move |c| {
        let pipelines = service::pipelines(c, &org)?;
        let mut counts = std::collections::HashMap::new();
        for v in &pipelines {
            for s in &v.stages {
                counts.insert(s.id.clone(), store::count_in_stage(c, &s.id)?);
            }
        }
        Ok(PipelinesPage {
            pipelines,
            counts,
            reasons: store::loss_reasons(c, &org, false)?,
            colors: STAGE_COLORS,
            templates: crate::plugins::pipeline_templates(c, &org)?
                .into_iter()
                .map(|o| (o.reference, o.label))
                .collect(),
        })
    })
    .await?;
    render(&req, &actor, "Pipelines", &page).await
}

fn form(body: &web::Bytes) -> AppResult<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))
}

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

/// One endpoint per action keeps the page a set of small forms.
pub async fn action(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("pipeline", "write").await?;
    let pairs = form(&body)?;
    let ctx = actor.audit();
    let what = get(&pairs, "do");
    let message = db::run(&state.pool, move |c| {
        let f = |k: &str| get(&pairs, k);
        Ok(match what.as_str() {
            "create_pipeline" if !f("template").is_empty() => {
                let v = crate::plugins::create_pipeline_from_template(
                    c,
                    &ctx,
                    &f("template"),
                    Some(&f("name")),
                    rotting(&f("rotting_days"))?,
                )?;
                format!(
                    "The pipeline {} was created with {} stages from the template.",
                    v.pipeline.name,
                    v.stages.len()
                )
            }
            "create_pipeline" => {
                let v = service::create_pipeline(
                    c,
                    &ctx,
                    &f("name"),
                    rotting(&f("rotting_days"))?,
                    DEFAULT_STAGES,
                )?;
                format!(
                    "The pipeline {} was created with the default stages.",
                    v.pipeline.name
                )
            }
            "update_pipeline" => {
                let p = service::update_pipeline(
                    c,
                    &ctx,
                    &f("pipeline"),
                    Some(&f("name")),
                    Some(rotting(&f("rotting_days"))?),
                )?;
                format!("{} was saved.", p.name)
            }
            "add_stage" => {
                let p = f("probability").parse().map_err(|_| {
                    AppError::invalid("probability", "Use a probability from 0 to 100.")
                })?;
                let s = service::add_stage(c, &ctx, &f("pipeline"), &f("name"), p, &f("color"))?;
                format!("The stage {} was added.", s.name)
            }
            "update_stage" => {
                let p = f("probability").parse().map_err(|_| {
                    AppError::invalid("probability", "Use a probability from 0 to 100.")
                })?;
                let s = service::update_stage(
                    c,
                    &ctx,
                    &f("stage"),
                    Some(&f("name")),
                    Some(p),
                    Some(&f("color")),
                    None,
                )?;
                format!("{} was saved.", s.name)
            }
            "move_stage" => {
                let s =
                    store::find_stage(c, &ctx.org_id, &f("stage"))?.ok_or(AppError::NotFound)?;
                let pos = usize::try_from(s.position).unwrap_or(0);
                let new = if f("dir") == "up" {
                    pos.saturating_sub(1)
                } else {
                    pos + 1
                };
                service::update_stage(c, &ctx, &s.id, None, None, None, Some(new))?;
                format!("{} was moved.", s.name)
            }
            "retire_stage" => {
                let target = Some(f("move_to")).filter(|t| !t.is_empty());
                let moved = service::retire_stage(c, &ctx, &f("stage"), target.as_deref())?;
                format!("The stage was retired; {moved} deal(s) moved.")
            }
            "add_reason" => format!(
                "The reason {} was added.",
                service::add_loss_reason(c, &ctx, &f("name"))?.name
            ),
            "toggle_reason" => {
                let on = f("active") == "true";
                if !store::set_loss_reason_active(c, &ctx.org_id, &f("reason"), on)? {
                    return Err(AppError::NotFound);
                }
                if on {
                    "The reason is offered again.".into()
                } else {
                    "The reason is no longer offered.".into()
                }
            }
            _ => return Err(AppError::BadRequest("Unknown action.".into())),
        })
    })
    .await?;
    done(&req, &message)
}
