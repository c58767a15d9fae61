//! The audit log page (`audit:read`): newest first, with "load more" paging.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use serde::Deserialize;

use crate::auth::ConsoleActor;
use crate::domain::audit::AuditFilter;
use crate::error::AppResult;
use crate::ops::audit as ops;
use crate::state::AppState;
use crate::web::console::render;

const PAGE: i64 = 50;

pub struct EntryView {
    pub at: String,
    pub actor: String,
    pub action: String,
    /// What the record is ("Client") and its name, when it has one.
    pub kind: String,
    pub name: String,
    pub link: Option<String>,
    pub changes: String,
    pub ip: String,
}

impl EntryView {
    fn of(e: ops::Entry, local: &crate::locale::Local) -> Self {
        let r = e.row;
        let kind = ops::RECORD_KINDS
            .iter()
            .find(|(k, _)| *k == r.resource_type)
            .map_or_else(
                || crate::domain::audit::action_label(&r.resource_type),
                |(_, label)| label.trim_end_matches('s').to_string(),
            );
        Self {
            at: local.datetime(r.created_at),
            actor: match r.actor_label.as_str() {
                "cli" => "Command line".into(),
                "system" => "Rapport".into(),
                _ => r.actor_label,
            },
            action: e.action_label,
            kind,
            name: e.resource_name.unwrap_or_default(),
            link: e.resource_link,
            changes: describe_changes(&r.changes),
            ip: r.ip,
        }
    }
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "partials/admin/audit.html")]
struct AuditPanel {
    entries: Vec<EntryView>,
    next: Option<String>,
    /// Only the rows, appended below the previous page.
    rows_only: bool,
    people: Vec<Choice>,
    kinds: Vec<Choice>,
    actions: Vec<Choice>,
    /// The one record whose history is shown ("" for all), and its name when known.
    record: String,
    record_name: Option<String>,
    from: String,
    to: String,
    /// The filters as a query string, carried by "Load more".
    query: String,
    filtered: bool,
}

#[derive(Deserialize, Default)]
pub struct Query {
    before: Option<String>,
    actor: Option<String>,
    kind: Option<String>,
    action: Option<String>,
    record: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    query: web::Query<Query>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let q = query.into_inner();
    let some = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    let day = |v: &Option<String>| {
        some(v).and_then(|d| NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").ok())
    };
    let filter = AuditFilter {
        actor: some(&q.actor),
        action: some(&q.action),
        resource_type: some(&q.kind).filter(|k| ops::RECORD_KINDS.iter().any(|(x, _)| x == k)),
        resource_id: some(&q.record),
        from: day(&q.from),
        to: day(&q.to),
        local: scope.local,
    };
    let rows_only = q.before.is_some();
    let page = ops::page(&scope, filter.clone(), q.before.clone(), PAGE).await?;
    let people = ops::people(&scope)
        .await?
        .into_iter()
        .map(|(id, name)| Choice {
            selected: filter.actor.as_deref() == Some(id.as_str()),
            value: id,
            label: name,
        })
        .collect();
    let kinds = ops::RECORD_KINDS
        .iter()
        .map(|(k, label)| Choice {
            value: (*k).into(),
            label: (*label).into(),
            selected: filter.resource_type.as_deref() == Some(*k),
        })
        .collect();
    let actions = action_choices(filter.resource_type.as_deref(), filter.action.as_deref());
    let pairs: Vec<(&str, String)> = [
        ("actor", filter.actor.clone()),
        ("kind", filter.resource_type.clone()),
        ("action", filter.action.clone()),
        ("record", filter.resource_id.clone()),
        ("from", filter.from.map(|d| d.to_string())),
        ("to", filter.to.map(|d| d.to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let record_name = filter.resource_id.as_ref().and_then(|id| {
        page.entries
            .iter()
            .find(|e| e.row.resource_id.as_ref() == Some(id))
            .and_then(|e| e.resource_name.clone())
    });
    let panel = AuditPanel {
        actions,
        record: filter.resource_id.clone().unwrap_or_default(),
        record_name,
        entries: page
            .entries
            .into_iter()
            .map(|e| EntryView::of(e, &scope.local))
            .collect(),
        next: page.next,
        rows_only,
        people,
        kinds,
        from: filter.from.map(|d| d.to_string()).unwrap_or_default(),
        to: filter.to.map(|d| d.to_string()).unwrap_or_default(),
        filtered: !pairs.is_empty(),
        query: serde_urlencoded::to_string(&pairs).unwrap_or_default(),
    };
    render(&req, &actor, "Audit log", &panel).await
}

/// The "what happened" choices in words, A to Z: the actions recorded against `kind` when
/// one is chosen (all of them otherwise), and the chosen action even when it is not one
/// Rapport knows (an older link keeps its meaning).
fn action_choices(kind: Option<&str>, chosen: Option<&str>) -> Vec<Choice> {
    let known = crate::domain::audit::ACTIONS;
    let of_kind: Vec<&str> = known
        .iter()
        .filter(|(_, t)| kind.is_none_or(|k| k == *t))
        .map(|(a, _)| *a)
        .collect();
    let mut values = if of_kind.is_empty() {
        known.iter().map(|(a, _)| *a).collect()
    } else {
        of_kind
    };
    if let Some(c) = chosen.filter(|c| !values.contains(c)) {
        values.push(c);
    }
    let mut out: Vec<Choice> = values
        .into_iter()
        .map(|a| Choice {
            value: a.to_string(),
            label: crate::domain::audit::action_label(a),
            selected: chosen == Some(a),
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

/// `{"role": ["manager", "read_only"], "assignedTo": [id, id]}` → `role: Manager → Read only;
/// assigned to: changed`, for people to read: keys in words, enum values as labels, and
/// record ids never shown (the Record column names the record).
pub fn describe_changes(json: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(json) else {
        return json.to_string();
    };
    let is_id = |s: &str| s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) if is_id(s) => None,
        serde_json::Value::String(s)
            if s.contains('_') && s.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
        {
            Some(crate::web::console::label(s))
        }
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => Some("none".into()),
        serde_json::Value::Array(items) => {
            let shown: Vec<String> = items
                .iter()
                .filter_map(|i| match i {
                    serde_json::Value::String(s) if is_id(s) => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect();
            (shown.len() == items.len()).then(|| shown.join(", "))
        }
        other => Some(other.to_string()),
    };
    let key_words = |k: &str| {
        let mut out = String::new();
        for ch in k.chars() {
            if ch.is_ascii_uppercase() {
                out.push(' ');
                out.push(ch.to_ascii_lowercase());
            } else if ch == '_' {
                out.push(' ');
            } else {
                out.push(ch);
            }
        }
        out
    };
    // Values of these keys are stored enum values: shown as labels.
    let enum_key =
        |k: &str| ["role", "status", "type", "kind", "direction", "outcome"].contains(&k);
    let text = |k: &str, v: &serde_json::Value| match v {
        serde_json::Value::String(s) if enum_key(k) && !is_id(s) => {
            Some(crate::web::console::label(s))
        }
        other => text(other),
    };
    map.iter()
        .map(|(key, v)| {
            let text = |v: &serde_json::Value| text(key, v);
            let k = key_words(key);
            match v.as_array().map(Vec::as_slice) {
                Some([from, to]) => match (text(from), text(to)) {
                    (Some(a), Some(b)) => format!("{k}: {a} → {b}"),
                    _ => format!("{k}: changed"),
                },
                _ => text(v).map_or_else(|| k.clone(), |t| format!("{k}: {t}")),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn changes_read_as_sentences() {
        assert_eq!(
            super::describe_changes(r#"{"role":["manager","marketer"],"name":"Ann"}"#),
            "name: Ann; role: Manager → Marketer"
        );
        assert_eq!(
            super::describe_changes(
                r#"{"role":["manager","read_only"],"assignedTo":["01a23d60-8e88-745f-8013-94a899623009","01a23d60-8e83-763f-952e-ddfb2c00f302"],"tagId":"01a23d60-8e88-745f-8013-94a899623009"}"#
            ),
            "assigned to: changed; role: Manager → Read only; tag id"
        );
        assert_eq!(super::describe_changes("{}"), "");
    }
}
