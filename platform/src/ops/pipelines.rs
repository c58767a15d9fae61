//! Pipelines, their stages and the loss reasons: the sales process an admin shapes
//! (`pipeline:*` rights), read by everyone who works deals.

use serde::Deserialize;

use super::Scope;
use crate::domain::pipeline::service::{self, PipelineView};
use crate::domain::pipeline::{store, LossReasonRow, PipelineRow, StageRow};
use crate::error::{AppError, AppResult};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PipelineStageInput)]
pub struct StageInput {
    pub name: String,
    /// Win probability in percent, 0–100.
    pub probability: i32,
    /// `open` (default), `won` or `lost` (when creating a pipeline; added stages are open).
    #[serde(default)]
    pub kind: Option<String>,
    /// A colour name (`blue` by default): gray, blue, purple, orange, green, red, ….
    #[serde(default)]
    pub color: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineInput {
    #[serde(default)]
    pub name: Option<String>,
    /// Days without activity after which an open deal counts as rotting; absent: never.
    #[serde(default)]
    pub rotting_days: Option<i32>,
    /// The stages in order (with a won and a lost stage), unless `template` is given.
    #[serde(default)]
    pub stages: Vec<StageInput>,
    /// `<plugin id>/<template key>`: the stages come from a plugin's template.
    #[serde(default)]
    pub template: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelinePatch {
    pub name: Option<String>,
    /// Days without activity after which an open deal counts as rotting; null turns it off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>)]
    pub rotting_days: Option<Option<i32>>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PipelineStagePatch)]
pub struct StagePatch {
    pub name: Option<String>,
    pub probability: Option<i32>,
    pub color: Option<String>,
    pub position: Option<usize>,
}

/// The organization's pipelines with their stages (the default one made on first use).
pub async fn list(scope: &Scope) -> AppResult<Vec<PipelineView>> {
    scope.require("pipeline", "read")?;
    let org = scope.org_id.clone();
    scope.read(move |c| service::pipelines(c, &org)).await
}

/// Creates a pipeline from a plugin's template or from the stages given (not both).
pub async fn create(scope: &Scope, b: PipelineInput) -> AppResult<PipelineView> {
    scope.require("pipeline", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let name = b.name.as_deref();
            if let Some(t) = b.template.as_deref() {
                if !b.stages.is_empty() {
                    return Err(AppError::invalid(
                        "stages",
                        "Give either a template or stages, not both.",
                    ));
                }
                return crate::plugins::create_pipeline_from_template(
                    c,
                    &ctx,
                    t,
                    name,
                    b.rotting_days,
                );
            }
            let stages: Vec<(&str, i32, &str, &str)> = b
                .stages
                .iter()
                .map(|s| {
                    let kind = s.kind.as_deref().unwrap_or("open");
                    (
                        s.name.as_str(),
                        s.probability,
                        kind,
                        s.color.as_deref().unwrap_or("blue"),
                    )
                })
                .collect();
            let name = name.unwrap_or_default();
            service::create_pipeline(c, &ctx, name, b.rotting_days, &stages)
        })
        .await
}

pub async fn update(scope: &Scope, id: String, b: PipelinePatch) -> AppResult<PipelineRow> {
    scope.require("pipeline", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::update_pipeline(c, &ctx, &id, b.name.as_deref(), b.rotting_days))
        .await
}

/// Adds an open stage at the end of a pipeline.
pub async fn add_stage(scope: &Scope, pipeline: String, b: StageInput) -> AppResult<StageRow> {
    scope.require("pipeline", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let color = b.color.as_deref().unwrap_or("blue");
            service::add_stage(c, &ctx, &pipeline, &b.name, b.probability, color)
        })
        .await
}

/// A stage of the organization's, in the pipeline named.
fn stage_in(
    c: &mut crate::db::DbConn,
    org: &str,
    pipeline: &str,
    stage: &str,
) -> AppResult<StageRow> {
    store::find_stage(c, org, stage)?
        .filter(|s| s.pipeline_id == pipeline)
        .ok_or(AppError::NotFound)
}

pub async fn update_stage(
    scope: &Scope,
    pipeline: String,
    stage: String,
    b: StagePatch,
) -> AppResult<StageRow> {
    scope.require("pipeline", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let found = stage_in(c, &ctx.org_id, &pipeline, &stage)?;
            let (name, color) = (b.name.as_deref(), b.color.as_deref());
            service::update_stage(c, &ctx, &found.id, name, b.probability, color, b.position)
        })
        .await
}

/// Retires a stage, moving its deals to `move_to`; answers how many moved.
pub async fn retire_stage(
    scope: &Scope,
    pipeline: String,
    stage: String,
    move_to: Option<String>,
) -> AppResult<usize> {
    scope.require("pipeline", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let found = stage_in(c, &ctx.org_id, &pipeline, &stage)?;
            service::retire_stage(c, &ctx, &found.id, move_to.as_deref())
        })
        .await
}

/// Moves a stage one place up or down in its pipeline.
pub async fn move_stage(
    scope: &Scope,
    pipeline: String,
    stage: String,
    up: bool,
) -> AppResult<StageRow> {
    scope.require("pipeline", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let found = stage_in(c, &ctx.org_id, &pipeline, &stage)?;
            let pos = usize::try_from(found.position).unwrap_or(0);
            let to = if up { pos.saturating_sub(1) } else { pos + 1 };
            service::update_stage(c, &ctx, &found.id, None, None, None, Some(to))?;
            Ok(found)
        })
        .await
}

/// What the admin's Pipelines page shows: every pipeline with its stages and how many
/// deals sit in each, the loss reasons, and the plugins' pipeline templates.
pub struct Setup {
    pub pipelines: Vec<PipelineView>,
    pub counts: std::collections::HashMap<String, i64>,
    pub reasons: Vec<LossReasonRow>,
    /// (reference, label).
    pub templates: Vec<(String, String)>,
}

pub async fn setup(scope: &Scope) -> AppResult<Setup> {
    scope.require("pipeline", "write")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let pipelines = service::pipelines(c, &org)?;
            let mut counts = std::collections::HashMap::new();
            for s in pipelines.iter().flat_map(|v| &v.stages) {
                counts.insert(s.id.clone(), store::count_in_stage(c, &s.id)?);
            }
            Ok(Setup {
                pipelines,
                counts,
                reasons: store::loss_reasons(c, &org, false)?,
                templates: crate::plugins::pipeline_templates(c, &org)?
                    .into_iter()
                    .map(|o| (o.reference, o.label))
                    .collect(),
            })
        })
        .await
}

/// Every loss reason, retired ones too (the defaults made on first use).
pub async fn loss_reasons(scope: &Scope) -> AppResult<Vec<LossReasonRow>> {
    scope.require("opportunity", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            service::ensure_defaults(c, &org)?;
            Ok(store::loss_reasons(c, &org, false)?)
        })
        .await
}

pub async fn add_loss_reason(scope: &Scope, name: String) -> AppResult<LossReasonRow> {
    scope.require("pipeline", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::add_loss_reason(c, &ctx, &name))
        .await
}

/// Retires or brings back a loss reason (`active` must be given).
pub async fn set_loss_reason_active(
    scope: &Scope,
    id: String,
    active: Option<bool>,
) -> AppResult<()> {
    scope.require("pipeline", "write")?;
    let active =
        active.ok_or_else(|| AppError::invalid("isActive", "Say whether the reason is active."))?;
    let org = scope.org_id.clone();
    let found = scope
        .read(move |c| Ok(store::set_loss_reason_active(c, &org, &id, active)?))
        .await?;
    if found {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}
