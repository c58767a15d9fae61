//! The Workflows pages: the list (each workflow's trigger, last run and recent failures),
//! the builder (trigger → conditions → steps as a vertical list; steps are added, moved,
//! removed and configured with htmx, each button posting the whole form to `compose`, which
//! answers the builder again — so nothing is edited as JSON and nothing is lost between
//! clicks), saving (a new version), switching on and off, the incoming URL, "try on a
//! record", and a run's step-by-step page. Reading needs `workflow:read`, the rest
//! `workflow:admin`.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use crate::auth::ConsoleActor;
use crate::domain::workflows::{
    self as wf, Definition, Input, Step, Trigger, ACTIONS, DATE_FIELDS, TRIGGERS,
};
use crate::error::{AppError, AppResult};
use crate::ops::workflows as ops;
use crate::state::AppState;
use crate::web::console::{form_pairs, redirect_with_flash, render_with_status};

/// One form control.
pub struct Widget {
    pub name: String,
    pub label: String,
    /// text, number, time, url, textarea, select, checkbox
    pub kind: &'static str,
    pub value: String,
    pub options: Vec<(String, String)>,
    pub hint: String,
}

fn widget(name: String, label: &str, kind: &'static str, value: String) -> Widget {
    Widget {
        name,
        label: label.into(),
        kind,
        value,
        options: vec![],
        hint: String::new(),
    }
}

fn select(name: String, label: &str, value: String, options: Vec<(String, String)>) -> Widget {
    Widget {
        options,
        ..widget(name, label, "select", value)
    }
}

fn hinted(mut w: Widget, hint: &str) -> Widget {
    w.hint = hint.into();
    w
}

/// What the builder offers to choose from, read once per render.
pub struct Choices {
    stages: Vec<(String, String)>,
    members: Vec<(String, String)>,
    templates: Vec<(String, String)>,
    mailboxes: Vec<(String, String)>,
    fields: Vec<(String, String)>,
    segments: Vec<(String, String)>,
    plugin_actions: Vec<crate::plugins::actions::OfferedAction>,
    plugin_triggers: Vec<crate::plugins::actions::OfferedTrigger>,
}

async fn choices(scope: &crate::ops::Scope) -> AppResult<Choices> {
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            use crate::db::schema::{memberships, pipeline_stages, pipelines, users};
            use diesel::prelude::*;
            let stages: Vec<(String, String, String)> = pipeline_stages::table
                .inner_join(pipelines::table.on(pipelines::id.eq(pipeline_stages::pipeline_id)))
                .filter(pipeline_stages::organization_id.eq(&org))
                .filter(pipeline_stages::is_active.eq(true))
                .order((pipelines::name.asc(), pipeline_stages::position.asc()))
                .select((pipeline_stages::id, pipelines::name, pipeline_stages::name))
                .load(c)?;
            let members: Vec<(String, String, String)> = memberships::table
                .inner_join(users::table.on(users::id.eq(memberships::user_id)))
                .filter(memberships::organization_id.eq(&org))
                .filter(memberships::is_active.eq(true))
                .order(users::name.asc())
                .select((users::id, users::name, users::email))
                .load(c)?;
            let templates = crate::domain::templates::list(c, &org)?
                .into_iter()
                .filter(|t| t.kind == "email")
                .map(|t| (t.id, t.name))
                .collect();
            let mailboxes = crate::domain::mail::mailboxes_for(c, &org, None)?
                .into_iter()
                .filter(|m| m.user_id.is_none())
                .map(|m| (m.id, format!("{} <{}>", m.name, m.address)))
                .collect();
            let mut fields: Vec<(String, String)> = vec![
                ("status".into(), "Status".into()),
                ("type".into(), "Type".into()),
                ("tag".into(), "Tag".into()),
                ("assignedTo".into(), "Owner".into()),
                ("industry".into(), "Industry".into()),
                ("source".into(), "Source".into()),
                ("createdAt".into(), "Created".into()),
                ("updatedAt".into(), "Last changed".into()),
            ];
            for d in crate::domain::custom_fields::store::list(c, &org, "client", false)? {
                fields.push((format!("customFields.{}", d.field_key), d.label.clone()));
            }
            let segments = crate::domain::segments::list(c, &org)?
                .into_iter()
                .map(|s| (s.id, s.name))
                .collect();
            Ok(Choices {
                plugin_actions: crate::plugins::actions::actions(c, &org)?,
                plugin_triggers: crate::plugins::actions::triggers(c, &org)?,
                segments,
                stages: stages
                    .into_iter()
                    .map(|(id, p, s)| (id, format!("{p} › {s}")))
                    .collect(),
                members: members
                    .into_iter()
                    .map(|(id, n, e)| (id, if n.is_empty() { e } else { n }))
                    .collect(),
                templates,
                mailboxes,
                fields,
            })
        })
        .await
}

fn opts(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, l)| (k.to_string(), l.to_string()))
        .collect()
}

fn with_blank(blank: &str, mut list: Vec<(String, String)>) -> Vec<(String, String)> {
    list.insert(0, (String::new(), blank.into()));
    list
}

const OPS: &[(&str, &str)] = &[
    ("eq", "is"),
    ("contains", "contains"),
    ("in", "is one of (comma-separated)"),
    ("gt", "is after / more than"),
    ("gte", "is on or after / at least"),
    ("lt", "is before / less than"),
    ("lte", "is on or before / at most"),
];

const ROLES: &[(&str, &str)] = &[
    ("", "Everyone active"),
    ("sales_rep", "Sales reps"),
    ("service_rep", "Service reps"),
    ("manager", "Managers"),
    ("marketer", "Marketers"),
    ("admin", "Admins"),
];

fn trigger_widgets(t: &Trigger, ch: &Choices) -> Vec<Widget> {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    match t.kind.as_str() {
        "client.updated" | "deal.updated" => vec![hinted(
            select("t.field".into(), "Only when this changed", s(&t.field), {
                let mut f = with_blank("Any change", ch.fields.clone());
                f.retain(|(k, _)| !matches!(k.as_str(), "createdAt" | "updatedAt" | "type"));
                f
            }),
            "Leave on “Any change” to run on every change.",
        )],
        "deal.stage_changed" => vec![select(
            "t.stage".into(),
            "Into stage",
            s(&t.stage),
            with_blank("Any stage", ch.stages.clone()),
        )],
        "segment.entered" | "segment.left" => vec![hinted(
            select(
                "t.segment".into(),
                "Segment",
                s(&t.segment),
                with_blank("Choose a segment", ch.segments.clone()),
            ),
            "Entries and exits are seen within seconds of the change that causes them, and by the hourly re-evaluation for dates that pass.",
        )],
        "interaction.created" => vec![select(
            "t.interaction".into(),
            "Kind",
            s(&t.interaction),
            with_blank(
                "Any kind",
                opts(&[
                    ("call", "Call"),
                    ("meeting", "Meeting"),
                    ("note", "Note"),
                    ("task", "Task"),
                    ("email", "E-mail"),
                    ("sms", "Text message"),
                ]),
            ),
        )],
        // The event's plugin and key travel in the trigger menu's value; the hidden widget
        // carries what the event is, or why it cannot start runs any more.
        "plugin" => {
            let offered = ch.plugin_triggers.iter().find(|p| {
                Some(&p.plugin_id) == t.plugin.as_ref() && Some(&p.decl.key) == t.event.as_ref()
            });
            vec![hinted(
                widget("t.plugin".into(), "", "hidden", s(&t.plugin)),
                match offered {
                    Some(p) if !p.decl.description.is_empty() => &p.decl.description,
                    Some(_) => "Runs when the plugin raises this event.",
                    None => "This plugin event is not offered any more (the plugin was removed or switched off), so the workflow does not start: choose another trigger or switch the plugin on.",
                },
            )]
        }
        "date" => vec![
            select("t.date".into(), "Date", s(&t.date), opts(DATE_FIELDS)),
            hinted(
                widget(
                    "t.offsetDays".into(),
                    "Days after it",
                    "number",
                    t.offset_days.map(|d| d.to_string()).unwrap_or_default(),
                ),
                "Negative for before: -3 runs three days before the date (at midnight UTC).",
            ),
        ],
        "schedule" => vec![
            select(
                "t.every".into(),
                "Every",
                s(&t.every),
                opts(&[("day", "Day"), ("week", "Week"), ("hour", "Hour")]),
            ),
            hinted(
                widget("t.at".into(), "At (UTC)", "time", s(&t.at)),
                "For hourly runs, the minute counts.",
            ),
            select(
                "t.weekday".into(),
                "On (weekly)",
                t.weekday.map(|d| d.to_string()).unwrap_or_default(),
                opts(&[
                    ("1", "Monday"),
                    ("2", "Tuesday"),
                    ("3", "Wednesday"),
                    ("4", "Thursday"),
                    ("5", "Friday"),
                    ("6", "Saturday"),
                    ("7", "Sunday"),
                ]),
            ),
        ],
        _ => vec![],
    }
}

fn step_widgets(i: usize, s: &Step, ch: &Choices) -> Vec<Widget> {
    let n = |f: &str| format!("s.{i}.{f}");
    let v = |x: &Option<String>| x.clone().unwrap_or_default();
    let num = |x: Option<i64>| x.map(|d| d.to_string()).unwrap_or_default();
    let people = || {
        let mut p = vec![
            ("owner".to_string(), "The record's owner".to_string()),
            ("manager".to_string(), "A manager".to_string()),
        ];
        p.extend(ch.members.clone());
        p
    };
    match s.kind.as_str() {
        "task" => vec![
            hinted(
                widget(n("title"), "Title", "text", v(&s.title)),
                "Merge fields work: {{ client.name }}.",
            ),
            select(n("assignee"), "For", v(&s.assignee), people()),
            widget(n("inDays"), "Due in (days)", "number", num(s.in_days)),
            widget(n("body"), "Details", "textarea", v(&s.body)),
        ],
        "meeting" => vec![
            widget(n("title"), "Title", "text", v(&s.title)),
            widget(n("inDays"), "In (days)", "number", num(s.in_days)),
            widget(n("body"), "Agenda", "textarea", v(&s.body)),
        ],
        "note" => vec![widget(n("body"), "Note", "textarea", v(&s.body))],
        "update" => vec![
            select(n("field"), "Field", v(&s.field), {
                let mut f: Vec<(String, String)> = vec![
                    ("status".into(), "Status".into()),
                    ("source".into(), "Source".into()),
                    ("industry".into(), "Industry".into()),
                ];
                f.extend(
                    ch.fields
                        .iter()
                        .filter(|(k, _)| k.starts_with("customFields."))
                        .cloned(),
                );
                f
            }),
            widget(n("value"), "New value", "text", v(&s.value)),
        ],
        "tag" | "untag" => vec![widget(n("tag"), "Tag", "text", v(&s.tag))],
        "assign" => vec![
            select(
                n("mode"),
                "How",
                v(&s.mode),
                opts(&[
                    ("fixed", "This person"),
                    ("round_robin", "In turn (round robin)"),
                    ("least_loaded", "The least loaded"),
                ]),
            ),
            select(
                n("user"),
                "Person (this person)",
                v(&s.user),
                with_blank("—", ch.members.clone()),
            ),
            select(
                n("role"),
                "Among (in turn, least loaded)",
                v(&s.role),
                opts(ROLES),
            ),
        ],
        "move" => vec![select(
            n("stage"),
            "To stage",
            v(&s.stage),
            ch.stages.clone(),
        )],
        "email" => vec![
            select(
                n("template"),
                "Template",
                v(&s.template),
                with_blank("Choose…", ch.templates.clone()),
            ),
            hinted(
                select(
                    n("mailbox"),
                    "From",
                    v(&s.mailbox),
                    with_blank("Choose…", ch.mailboxes.clone()),
                ),
                "A shared mailbox. Clients who opted out of e-mail are not written to.",
            ),
        ],
        "webhook" => vec![
            widget(n("url"), "Address", "url", v(&s.url)),
            Widget {
                value: if s.allow_private_host == Some(true) {
                    "1".into()
                } else {
                    String::new()
                },
                ..widget(
                    n("allowPrivateHost"),
                    "Allow a host on this machine or a private network (development)",
                    "checkbox",
                    String::new(),
                )
            },
        ],
        "wait" => {
            let m = s.minutes.unwrap_or(60);
            let (amount, unit) = if m % 1440 == 0 {
                (m / 1440, "days")
            } else if m % 60 == 0 {
                (m / 60, "hours")
            } else {
                (m, "minutes")
            };
            vec![
                widget(n("wait"), "Wait", "number", amount.to_string()),
                select(
                    n("unit"),
                    "Unit",
                    unit.into(),
                    opts(&[("minutes", "minutes"), ("hours", "hours"), ("days", "days")]),
                ),
            ]
        }
        "plugin" => {
            let offered = ch.plugin_actions.iter().find(|a| {
                Some(&a.plugin_id) == s.plugin.as_ref() && Some(&a.decl.key) == s.action.as_ref()
            });
            // The step's plugin and action travel as hidden fields; the first one carries
            // what the action does, or why it cannot run any more.
            let mut out = vec![
                hinted(
                    widget(n("plugin"), "", "hidden", v(&s.plugin)),
                    match offered {
                        Some(a) => &a.decl.description,
                        None => "This plugin action is not offered any more (the plugin was removed or switched off): remove the step or switch the plugin on.",
                    },
                ),
                widget(n("action"), "", "hidden", v(&s.action)),
            ];
            match offered {
                None => {}
                Some(a) => {
                    let given = s.settings.clone().unwrap_or_default();
                    for d in &a.decl.settings {
                        let value = given
                            .get(&d.key)
                            .cloned()
                            .or_else(|| d.default.clone())
                            .unwrap_or_default();
                        let name = n(&format!("set:{}", d.key));
                        let w = match d.kind.as_str() {
                            rapport_plugin_sdk::setting_kinds::BOOLEAN => select(
                                name,
                                &d.label,
                                value,
                                opts(&[("false", "No"), ("true", "Yes")]),
                            ),
                            rapport_plugin_sdk::setting_kinds::NUMBER => {
                                widget(name, &d.label, "number", value)
                            }
                            rapport_plugin_sdk::setting_kinds::URL => {
                                widget(name, &d.label, "url", value)
                            }
                            _ => widget(name, &d.label, "text", value),
                        };
                        out.push(hinted(w, &d.description));
                    }
                }
            }
            out
        }
        "branch" => {
            let row = rows_of(s.condition.as_deref().unwrap_or_default())
                .into_iter()
                .next()
                .unwrap_or_default();
            vec![
                select(n("cfield"), "If the client's", row.0, ch.fields.clone()),
                select(n("cop"), "", row.1, opts(OPS)),
                widget(n("cvalue"), "Value", "text", row.2),
                hinted(
                    widget(
                        n("elseSkip"),
                        "Otherwise skip (steps)",
                        "number",
                        num(s.else_skip),
                    ),
                    "Empty: otherwise the run ends here.",
                ),
            ]
        }
        _ => vec![],
    }
}

/// A condition group's rows: (field, op, value).
fn rows_of(group: &str) -> Vec<(String, String, String)> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(group).unwrap_or_default();
    pairs
        .into_iter()
        .filter_map(|(k, v)| {
            let inner = k.strip_prefix("filter[")?;
            let (field, rest) = inner.split_once(']')?;
            let op = rest.trim_start_matches('[').trim_end_matches(']');
            Some((
                field.to_string(),
                if op.is_empty() {
                    "eq".into()
                } else {
                    op.to_string()
                },
                v,
            ))
        })
        .collect()
}

fn group_of(rows: &[(String, String, String)]) -> String {
    let pairs: Vec<(String, String)> = rows
        .iter()
        .filter(|(f, _, v)| !f.is_empty() && !v.trim().is_empty())
        .map(|(f, op, v)| {
            let key = if op == "eq" || op.is_empty() {
                format!("filter[{f}]")
            } else {
                format!("filter[{f}][{op}]")
            };
            (key, v.trim().to_string())
        })
        .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

pub struct StepView {
    pub position: usize,
    pub number: usize,
    pub kind: String,
    pub label: String,
    pub widgets: Vec<Widget>,
    pub last: bool,
}

pub struct RowView {
    /// Field, operator, value.
    pub widgets: Vec<Widget>,
}

pub struct GroupView {
    pub index: usize,
    pub rows: Vec<RowView>,
}

pub struct RunLine {
    pub id: String,
    pub status: &'static str,
    pub failed: bool,
    pub when: String,
    pub record: String,
    pub error: String,
}

#[derive(Template)]
#[template(path = "partials/admin/workflow.html")]
struct BuilderPage {
    id: String,
    name: String,
    enabled: bool,
    version: i32,
    trigger_kind: String,
    triggers: Vec<(String, String)>,
    trigger_widgets: Vec<Widget>,
    groups: Vec<GroupView>,
    steps: Vec<StepView>,
    actions: Vec<(String, String)>,
    errors: Vec<String>,
    can_admin: bool,
    runs: Vec<RunLine>,
    incoming_url: String,
    has_url: bool,
    tried: Vec<String>,
    records: Vec<(String, String)>,
}

fn builder(
    id: &str,
    name: &str,
    enabled: bool,
    version: i32,
    def: &Definition,
    ch: &Choices,
) -> BuilderPage {
    let mut groups: Vec<GroupView> = def
        .conditions
        .iter()
        .enumerate()
        .map(|(g, q)| GroupView {
            index: g,
            rows: rows_of(q)
                .into_iter()
                .enumerate()
                .map(|(i, (f, o, v))| row_view(g, i, f, o, v, ch))
                .collect(),
        })
        .collect();
    for g in &mut groups {
        let next = g.rows.len();
        g.rows.push(row_view(
            g.index,
            next,
            String::new(),
            "eq".into(),
            String::new(),
            ch,
        ));
    }
    BuilderPage {
        id: id.into(),
        name: name.into(),
        enabled,
        version,
        trigger_kind: match def.trigger.kind.as_str() {
            "plugin" => format!(
                "plugin:{}:{}",
                def.trigger.plugin.as_deref().unwrap_or_default(),
                def.trigger.event.as_deref().unwrap_or_default()
            ),
            k => k.to_string(),
        },
        triggers: with_blank("Choose…", {
            let mut t = opts(TRIGGERS);
            t.retain(|(k, _)| k != "plugin");
            t.extend(ch.plugin_triggers.iter().map(|p| {
                (
                    format!("plugin:{}:{}", p.plugin_id, p.decl.key),
                    format!("{}: {}", p.plugin_name, p.decl.label),
                )
            }));
            // A saved event no plugin offers now stays chosen (and says so) rather than
            // turning into "Choose…" and asking for a trigger on the next save.
            if def.trigger.kind == "plugin" {
                let (p, e) = (
                    def.trigger.plugin.clone().unwrap_or_default(),
                    def.trigger.event.clone().unwrap_or_default(),
                );
                let value = format!("plugin:{p}:{e}");
                if !t.iter().any(|(k, _)| *k == value) {
                    t.push((value, format!("Plugin {p}: {e} (not offered any more)")));
                }
            }
            t
        }),
        trigger_widgets: trigger_widgets(&def.trigger, ch),
        groups,
        steps: def
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepView {
                position: i,
                number: i + 1,
                kind: s.kind.clone(),
                label: step_label(s, ch),
                widgets: step_widgets(i, s, ch),
                last: i + 1 == def.steps.len(),
            })
            .collect(),
        actions: {
            let mut a = opts(ACTIONS);
            a.retain(|(k, _)| k != "plugin");
            a.extend(ch.plugin_actions.iter().map(|p| {
                (
                    format!("plugin:{}:{}", p.plugin_id, p.decl.key),
                    format!("{}: {}", p.plugin_name, p.decl.label),
                )
            }));
            a
        },
        errors: vec![],
        can_admin: false,
        runs: vec![],
        incoming_url: String::new(),
        has_url: false,
        tried: vec![],
        records: vec![],
    }
}

/// A step's heading: the action's name, a plugin's own for its actions.
fn step_label(s: &Step, ch: &Choices) -> String {
    if s.kind == "plugin" {
        if let Some(a) = ch.plugin_actions.iter().find(|a| {
            Some(&a.plugin_id) == s.plugin.as_ref() && Some(&a.decl.key) == s.action.as_ref()
        }) {
            return format!("{}: {}", a.plugin_name, a.decl.label);
        }
    }
    wf::action_label(&s.kind).to_string()
}

fn row_view(g: usize, i: usize, f: String, o: String, v: String, ch: &Choices) -> RowView {
    let name = format!("c.{g}.{i}");
    RowView {
        widgets: vec![
            select(
                format!("{name}.field"),
                "Field",
                f,
                with_blank("Choose…", ch.fields.clone()),
            ),
            select(format!("{name}.op"), "", o, opts(OPS)),
            widget(format!("{name}.value"), "Value", "text", v),
        ],
    }
}

/// The builder's state read back from its form (lenient: validation happens on save).
fn from_form(pairs: &[(String, String)]) -> (String, bool, Definition) {
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_string())
    };
    let opt = |k: &str| get(k).filter(|v| !v.is_empty());
    let int = |k: &str| opt(k).and_then(|v| v.parse::<i64>().ok());
    let chosen = get("t.type").unwrap_or_default();
    // A plugin's event reads `plugin:<plugin id>:<trigger key>` in the select.
    let from_plugin: Option<(String, String)> = chosen
        .strip_prefix("plugin:")
        .and_then(|rest| rest.split_once(':'))
        .map(|(p, e)| (p.to_string(), e.to_string()));
    let trigger = Trigger {
        kind: if from_plugin.is_some() {
            "plugin".into()
        } else {
            chosen
        },
        plugin: from_plugin.as_ref().map(|(p, _)| p.clone()),
        event: from_plugin.map(|(_, e)| e),
        field: opt("t.field"),
        stage: opt("t.stage"),
        interaction: opt("t.interaction"),
        segment: opt("t.segment"),
        date: opt("t.date"),
        offset_days: int("t.offsetDays"),
        every: opt("t.every"),
        at: opt("t.at"),
        weekday: opt("t.weekday").and_then(|v| v.parse().ok()),
    };
    // Conditions: c.<group>.<row>.<part>
    let mut groups: std::collections::BTreeMap<
        usize,
        std::collections::BTreeMap<usize, (String, String, String)>,
    > = Default::default();
    // Steps: s.<index>.<field>
    let mut steps: std::collections::BTreeMap<usize, Vec<(String, String)>> = Default::default();
    for (k, v) in pairs {
        let parts: Vec<&str> = k.split('.').collect();
        match parts.as_slice() {
            ["c", g, r, part] => {
                if let (Ok(g), Ok(r)) = (g.parse::<usize>(), r.parse::<usize>()) {
                    if g < 10 && r < 20 {
                        let row = groups.entry(g).or_default().entry(r).or_default();
                        match *part {
                            "field" => row.0 = v.clone(),
                            "op" => row.1 = v.clone(),
                            "value" => row.2 = v.clone(),
                            _ => {}
                        }
                    }
                }
            }
            ["s", i, field] => {
                if let Ok(i) = i.parse::<usize>() {
                    if i < wf::MAX_STEPS + 1 {
                        steps
                            .entry(i)
                            .or_default()
                            .push((field.to_string(), v.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    let conditions = groups
        .values()
        .map(|rows| group_of(&rows.values().cloned().collect::<Vec<_>>()))
        .collect();
    let steps = steps
        .into_values()
        .map(|fields| {
            let f = |k: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            let i = |k: &str| f(k).and_then(|v| v.parse::<i64>().ok());
            let kind = f("type").unwrap_or_default();
            let minutes = i("wait").map(|w| match f("unit").as_deref() {
                Some("days") => w * 1440,
                Some("hours") => w * 60,
                _ => w,
            });
            let settings: std::collections::BTreeMap<String, String> = fields
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("set:")
                        .map(|k| (k.to_string(), v.trim().to_string()))
                })
                .filter(|(_, v)| !v.is_empty())
                .collect();
            let condition = (kind == "branch")
                .then(|| {
                    group_of(&[(
                        f("cfield").unwrap_or_default(),
                        f("cop").unwrap_or_default(),
                        f("cvalue").unwrap_or_default(),
                    )])
                })
                .filter(|c| !c.is_empty());
            Step {
                title: f("title"),
                body: f("body"),
                in_days: i("inDays"),
                assignee: f("assignee"),
                field: f("field"),
                value: f("value"),
                tag: f("tag"),
                mode: f("mode"),
                user: f("user"),
                role: f("role"),
                stage: f("stage"),
                template: f("template"),
                mailbox: f("mailbox"),
                url: f("url"),
                allow_private_host: f("allowPrivateHost").map(|v| v == "1"),
                minutes,
                condition,
                else_skip: i("elseSkip"),
                plugin: f("plugin"),
                action: f("action"),
                settings: (kind == "plugin").then_some(settings),
                kind,
            }
        })
        .collect();
    (
        get("name").unwrap_or_default(),
        get("enabled").is_some_and(|v| v == "1"),
        Definition {
            trigger,
            conditions,
            steps,
        },
    )
}

/// Applies a builder button (`op`) to the definition.
fn apply_op(def: &mut Definition, op: &str, new_step: &str) {
    let parts: Vec<&str> = op.split(':').collect();
    let idx = |k: usize| parts.get(k).and_then(|v| v.parse::<usize>().ok());
    match parts.first().copied() {
        Some("add_step")
            if def.steps.len() < wf::MAX_STEPS && ACTIONS.iter().any(|(k, _)| *k == new_step) =>
        {
            let mut s = Step {
                kind: new_step.into(),
                ..Default::default()
            };
            match new_step {
                "task" => {
                    s.assignee = Some("owner".into());
                    s.in_days = Some(1);
                }
                "wait" => s.minutes = Some(1440),
                "assign" => s.mode = Some("fixed".into()),
                _ => {}
            }
            def.steps.push(s);
        }
        Some("add_step") if def.steps.len() < wf::MAX_STEPS && new_step.starts_with("plugin:") => {
            if let Some((plugin, action)) = new_step["plugin:".len()..].split_once(':') {
                def.steps.push(Step {
                    kind: "plugin".into(),
                    plugin: Some(plugin.into()),
                    action: Some(action.into()),
                    settings: Some(Default::default()),
                    ..Default::default()
                });
            }
        }
        Some("remove") => {
            if let Some(i) = idx(1).filter(|i| *i < def.steps.len()) {
                def.steps.remove(i);
            }
        }
        Some("up") => {
            if let Some(i) = idx(1).filter(|i| *i > 0 && *i < def.steps.len()) {
                def.steps.swap(i, i - 1);
            }
        }
        Some("down") => {
            if let Some(i) = idx(1).filter(|i| *i + 1 < def.steps.len()) {
                def.steps.swap(i, i + 1);
            }
        }
        Some("add_group") if def.conditions.len() < 10 => def.conditions.push(String::new()),
        // The builder always shows a blank row under a group's conditions; "add a condition"
        // re-renders, so the row just filled in becomes one and a new blank row appears.
        Some("add_row") => {}
        Some("remove_row") => {
            if let (Some(g), Some(r)) = (idx(1), idx(2)) {
                if g < def.conditions.len() {
                    let mut rows = rows_of(&def.conditions[g]);
                    if r < rows.len() {
                        rows.remove(r);
                    }
                    if rows.is_empty() {
                        def.conditions.remove(g);
                    } else {
                        def.conditions[g] = group_of(&rows);
                    }
                }
            }
        }
        _ => {}
    }
}

async fn page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    mut p: BuilderPage,
    status: actix_web::http::StatusCode,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    p.can_admin = scope.can("workflow", "admin");
    let title = if p.name.is_empty() {
        "New workflow".to_string()
    } else {
        p.name.clone()
    };
    render_with_status(req, actor, &title, &p, status).await
}

async fn record_choices(
    scope: &crate::ops::Scope,
    trigger: &str,
) -> AppResult<Vec<(String, String)>> {
    let org = scope.org_id.clone();
    let deals = trigger.starts_with("deal.") || trigger == "date";
    scope
        .read(move |c| {
            use crate::db::schema::{clients, opportunities};
            use diesel::prelude::*;
            let mut out: Vec<(String, String)> = Vec::new();
            if deals {
                let rows: Vec<(String, String)> = opportunities::table
                    .filter(opportunities::organization_id.eq(&org))
                    .filter(opportunities::deleted_at.is_null())
                    .order(opportunities::updated_at.desc())
                    .limit(25)
                    .select((opportunities::id, opportunities::name))
                    .load(c)?;
                out.extend(
                    rows.into_iter()
                        .map(|(id, n)| (format!("deal:{id}"), format!("Deal: {n}"))),
                );
            }
            let rows: Vec<(String, String)> = clients::table
                .filter(clients::organization_id.eq(&org))
                .filter(clients::deleted_at.is_null())
                .order(clients::updated_at.desc())
                .limit(25)
                .select((clients::id, clients::display_name))
                .load(c)?;
            out.extend(
                rows.into_iter()
                    .map(|(id, n)| (format!("client:{id}"), format!("Client: {n}"))),
            );
            Ok(out)
        })
        .await
}

async fn show_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    id: String,
    incoming_url: String,
    tried: Vec<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(actor, state).await?;
    let (row, def) = ops::get(&scope, id.clone()).await?;
    let ch = choices(&scope).await?;
    let mut p = builder(&row.id, &row.name, row.enabled, row.version, &def, &ch);
    p.runs = run_lines(
        ops::runs(&scope, Some(id), None, None, 20).await?,
        &scope.local,
    );
    p.incoming_url = incoming_url;
    p.has_url = row.hook_hash.is_some();
    p.tried = tried;
    p.records = record_choices(&scope, &def.trigger.kind).await?;
    page(req, actor, state, p, actix_web::http::StatusCode::OK).await
}

fn run_lines(runs: Vec<wf::RunRow>, local: &crate::locale::Local) -> Vec<RunLine> {
    runs.into_iter()
        .map(|r| RunLine {
            status: wf::status_label(&r.status),
            failed: r.status == "failed",
            when: local.datetime(r.created_at),
            record: match r.record_type.as_str() {
                "client" => "a client",
                "opportunity" => "a deal",
                "interaction" => "an interaction",
                "contract" => "a contract",
                _ => "no record",
            }
            .into(),
            error: r.error.unwrap_or_default(),
            id: r.id,
        })
        .collect()
}

pub struct ListLine {
    pub id: String,
    pub name: String,
    pub trigger: &'static str,
    pub steps: usize,
    pub enabled: bool,
    pub version: i32,
    pub last: String,
    pub failures: i64,
}

#[derive(Template)]
#[template(path = "partials/admin/workflows.html")]
struct ListPage {
    lines: Vec<ListLine>,
    can_admin: bool,
}

/// `GET /admin/workflows`
pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (flows, summaries) = ops::overview(&scope).await?;
    let lines = flows
        .into_iter()
        .map(|(w, d)| {
            let (last, failures) = summaries.get(&w.id).cloned().unwrap_or((None, 0));
            ListLine {
                trigger: wf::trigger_label(&w.trigger_type),
                steps: d.steps.len(),
                last: last
                    .map(|r| {
                        format!(
                            "{} · {}",
                            wf::status_label(&r.status),
                            scope.local.datetime(r.created_at)
                        )
                    })
                    .unwrap_or_else(|| "Not run yet".into()),
                failures,
                enabled: w.enabled,
                version: w.version,
                name: w.name,
                id: w.id,
            }
        })
        .collect();
    let page = ListPage {
        lines,
        can_admin: scope.can("workflow", "admin"),
    };
    render_with_status(
        &req,
        &actor,
        "Workflows",
        &page,
        actix_web::http::StatusCode::OK,
    )
    .await
}

/// `GET /admin/workflows/new`
pub async fn new(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("workflow", "admin")?;
    let ch = choices(&scope).await?;
    let def = Definition::default();
    let p = builder("", "", true, 0, &def, &ch);
    page(&req, &actor, &state, p, actix_web::http::StatusCode::OK).await
}

/// `GET /admin/workflows/{id}`
pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    show_page(&req, &actor, &state, id.into_inner(), String::new(), vec![]).await
}

/// `POST /admin/workflows/compose`: a builder button (add, move, remove a step; add a
/// condition or a group; a changed trigger type). Answers the builder with the change.
pub async fn compose(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("workflow", "admin")?;
    let pairs = form_pairs(&body)?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (name, enabled, mut def) = from_form(&pairs);
    apply_op(&mut def, &get("op"), &get("newStep"));
    let ch = choices(&scope).await?;
    let version = get("version").parse().unwrap_or(0);
    let mut p = builder(&get("id"), &name, enabled, version, &def, &ch);
    p.name = name;
    page(&req, &actor, &state, p, actix_web::http::StatusCode::OK).await
}

/// `POST /admin/workflows`: creates one.
pub async fn create(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    save(req, actor, state, None, body).await
}

/// `POST /admin/workflows/{id}`: saves a new version.
pub async fn update(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    save(req, actor, state, Some(id.into_inner()), body).await
}

async fn save(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: Option<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = form_pairs(&body)?;
    let (name, enabled, mut def) = from_form(&pairs);
    def.conditions.retain(|g| !g.is_empty());
    let input = Input {
        name: Some(name.clone()),
        enabled: Some(enabled),
        definition: Some(def.clone()),
    };
    let result = match &id {
        Some(id) => ops::update(&scope, id.clone(), input).await,
        None => ops::create(&scope, input).await,
    };
    match result {
        Ok((row, secret)) => match secret {
            Some(s) => {
                let url = format!(
                    "{}/api/hooks/workflows/{s}",
                    crate::config::public_url(&state.config).trim_end_matches('/')
                );
                show_page(&req, &actor, &state, row.id, url, vec![]).await
            }
            None => redirect_with_flash(
                &req,
                &format!("/admin/workflows/{}", row.id),
                &format!("Saved as version {}.", row.version),
            ),
        },
        Err(AppError::Validation(_, errors)) => {
            let ch = choices(&scope).await?;
            let version = pairs
                .iter()
                .find(|(k, _)| k == "version")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut p = builder(
                id.as_deref().unwrap_or_default(),
                &name,
                enabled,
                version,
                &def,
                &ch,
            );
            p.errors = errors.into_iter().map(|e| e.message).collect();
            page(
                &req,
                &actor,
                &state,
                p,
                actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// `POST /admin/workflows/{id}/{action}`: enable, disable, delete, rotate-url, try.
pub async fn action(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (id, action) = path.into_inner();
    let here = format!("/admin/workflows/{id}");
    match action.as_str() {
        "enable" | "disable" => {
            let on = action == "enable";
            ops::update(
                &scope,
                id,
                Input {
                    enabled: Some(on),
                    ..Default::default()
                },
            )
            .await?;
            redirect_with_flash(
                &req,
                &here,
                if on {
                    "The workflow is on."
                } else {
                    "The workflow is off: nothing starts it."
                },
            )
        }
        "delete" => {
            ops::delete(&scope, id).await?;
            redirect_with_flash(&req, "/admin/workflows", "The workflow was removed.")
        }
        "rotate-url" => {
            let s = ops::rotate_hook(&scope, id.clone()).await?;
            let url = format!(
                "{}/api/hooks/workflows/{s}",
                crate::config::public_url(&state.config).trim_end_matches('/')
            );
            show_page(&req, &actor, &state, id, url, vec![]).await
        }
        "try" => {
            let pairs = form_pairs(&body)?;
            let record = pairs
                .into_iter()
                .find(|(k, _)| k == "record")
                .map(|(_, v)| v)
                .unwrap_or_default();
            let Some((kind, rid)) = record.split_once(':') else {
                return Err(AppError::invalid(
                    "record",
                    "Choose a record to try the workflow on.",
                ));
            };
            let lines = ops::dry_run(&scope, id.clone(), kind.to_string(), rid.to_string()).await?;
            show_page(&req, &actor, &state, id, String::new(), lines).await
        }
        _ => Err(AppError::NotFound),
    }
}

pub struct StepLine {
    pub number: usize,
    pub label: String,
    pub status: &'static str,
    pub outcome: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "partials/admin/workflow_run.html")]
struct RunPage {
    workflow_id: String,
    workflow: String,
    status: &'static str,
    failed: bool,
    when: String,
    record: String,
    record_link: String,
    error: String,
    next: String,
    steps: Vec<StepLine>,
}

/// `GET /admin/workflows/runs/{id}`
pub async fn run(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (run, done, flow, def) = ops::run_detail(&scope, id.into_inner()).await?;
    // A plugin step reads as the builder shows it ("Slack notify: Post to Slack") while its
    // plugin offers it; by its ids once the plugin is gone.
    let offered = {
        let org = scope.org_id.clone();
        scope
            .read(move |c| crate::plugins::actions::actions(c, &org))
            .await?
    };
    let steps = def
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = done.iter().find(|d| d.position as usize == i);
            StepLine {
                number: i + 1,
                label: match (&s.plugin, &s.action) {
                    (Some(p), Some(a)) if s.kind == "plugin" => offered
                        .iter()
                        .find(|o| &o.plugin_id == p && &o.decl.key == a)
                        .map(|o| format!("{}: {}", o.plugin_name, o.decl.label))
                        .unwrap_or_else(|| format!("Plugin {p}: {a}")),
                    _ => wf::action_label(&s.kind).to_string(),
                },
                status: match d.map(|d| d.status.as_str()) {
                    Some("done") => "Done",
                    Some("failed") => "Failed",
                    _ if run.status == "running" && run.step as usize == i => "Running",
                    _ if run.status == "waiting" && run.step as usize == i => {
                        "Next, after the wait"
                    }
                    _ => "Not run",
                },
                outcome: d.map(|d| d.outcome.clone()).unwrap_or_default(),
                when: d
                    .map(|d| actor.local.datetime(d.finished_at))
                    .unwrap_or_default(),
            }
        })
        .collect();
    let record_link = match (&run.client_id, run.record_type.as_str(), &run.record_id) {
        (_, "opportunity", Some(d)) => format!("/opportunities/{d}"),
        (Some(c), _, _) => format!("/clients/{c}"),
        _ => String::new(),
    };
    let page = RunPage {
        workflow_id: flow.id,
        workflow: flow.name,
        status: wf::status_label(&run.status),
        failed: run.status == "failed",
        when: actor.local.datetime(run.created_at),
        record: match run.record_type.as_str() {
            "opportunity" => "the deal",
            "none" => "no record",
            _ => "the client",
        }
        .into(),
        record_link,
        error: run.error.unwrap_or_default(),
        next: run
            .next_at
            .filter(|_| run.status == "waiting" || run.status == "pending")
            .map(|t| actor.local.datetime(t))
            .unwrap_or_default(),
        steps,
    };
    render_with_status(
        &req,
        &actor,
        "Workflow run",
        &page,
        actix_web::http::StatusCode::OK,
    )
    .await
}
