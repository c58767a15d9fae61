//! The client console: list (filters, sort, paging, saved views, bulk actions),
//! profile, create/edit form, trash, and the company/client pickers. This root holds
//! the view types the areas share (and other console areas borrow).

mod form;
mod list;
mod pickers;
mod profile;
mod trash;

pub use form::{create, delete, edit_form, new_form, update, FormField};
pub use list::{bulk, delete_view, list, save_view};
pub use pickers::lookup;
pub use profile::{prevent_churn, relate, rescore, save_preferences, show, tag, unrelate};
pub use trash::{purge, restore, trash};

use crate::domain::clients::{status_label, ClientRow, TagRow, STATUSES};

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

fn choices(items: impl IntoIterator<Item = (String, String)>, selected: &[String]) -> Vec<Choice> {
    items
        .into_iter()
        .map(|(value, label)| Choice {
            selected: selected.contains(&value),
            value,
            label,
        })
        .collect()
}

/// The client statuses to choose from, `selected` marked.
fn status_choices(selected: &[String]) -> Vec<Choice> {
    choices(
        STATUSES
            .iter()
            .map(|s| (s.to_string(), status_label(s).to_string())),
        selected,
    )
}

pub struct TagView {
    pub id: String,
    pub name: String,
    pub color: String,
}

impl From<&TagRow> for TagView {
    fn from(t: &TagRow) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            color: t.color.clone(),
        }
    }
}

fn fmt_time(t: chrono::NaiveDateTime, local: &crate::locale::Local) -> String {
    local.datetime(t)
}

pub struct PersonView {
    pub id: String,
    pub name: String,
    pub detail: String,
}

impl PersonView {
    /// A client named with `detail` beside it.
    fn of(row: ClientRow, detail: String) -> Self {
        Self {
            id: row.id,
            name: row.display_name,
            detail,
        }
    }
}

/// The first value of `key` in a posted form or a query, or "".
fn posted(pairs: &[(String, String)], key: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

use crate::web::console::form_pairs as parse_form;
