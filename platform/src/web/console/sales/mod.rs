//! The sales console: the pipeline board (drag and drop, with a menu for keyboards and
//! phones), deal pages and forms, quotes, the forecast and performance pages, contracts.
//! The data comes from `ops::deals`, `ops::quotes`, `ops::contracts` and `ops::sales`;
//! what is here turns it into pages and fragments.

pub mod board;
pub mod contracts;
pub mod deal;
pub mod forecast;
pub mod form;
pub mod quotes;

pub use contracts::{renewal_lines, ContractLine};

use super::clients::Choice;
use crate::domain::pipeline::service::PipelineView;
use crate::domain::pipeline::StageRow;

/// A non-empty value of the query or form.
fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == k)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

use crate::web::console::form_pairs as parse_form;

pub struct StageChoice {
    pub id: String,
    pub name: String,
    pub kind: String,
}

/// The active stages a deal may move to.
fn stage_choices(stages: &[StageRow]) -> Vec<StageChoice> {
    stages
        .iter()
        .filter(|s| s.is_active)
        .map(|s| StageChoice {
            id: s.id.clone(),
            name: s.name.clone(),
            kind: s.kind.clone(),
        })
        .collect()
}

fn pipeline_choices(pipelines: &[PipelineView], selected: Option<&str>) -> Vec<Choice> {
    pipelines
        .iter()
        .map(|v| Choice {
            value: v.pipeline.id.clone(),
            label: v.pipeline.name.clone(),
            selected: selected == Some(v.pipeline.id.as_str()),
        })
        .collect()
}

/// The owner filter: "Me", then the members; empty for those who see only their own deals.
fn owner_choices(members: Vec<(String, String)>, oversee: bool, selected: &str) -> Vec<Choice> {
    if !oversee {
        return Vec::new();
    }
    std::iter::once(("me".to_string(), "Me".to_string()))
        .chain(members)
        .map(|(v, l)| Choice {
            selected: v == selected,
            value: v,
            label: l,
        })
        .collect()
}
