//! The client profile, and the changes made on it (tags, relations, communication preferences).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use super::super::{redirect_with_flash, render};
use super::*;
use crate::auth::ConsoleActor;
use crate::db::{self};
use crate::domain::audit::{self, AuditRow};
use crate::domain::clients::service::{self, Access};
use crate::domain::clients::{status_label, store, TagRow, RELATION_LABELS};
use crate::domain::custom_fields::value::display;
use crate::domain::custom_fields::{self, FieldRow};
use crate::domain::orgs;
use crate::error::{AppError, AppResult};
use crate::ops::clients as ops;
use crate::state::AppState;
use crate::web::client_access;

pub struct FieldLine {
    pub label: String,
    pub value: String,
    pub help: String,
}

pub struct FieldGroup {
    pub name: String,
    pub fields: Vec<FieldLine>,
}

pub struct RelationView {
    pub id: String,
    pub other_id: String,
    pub other_name: String,
    pub text: String,
}

pub struct HistoryView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub changes: String,
}

#[derive(Template)]
#[template(path = "partials/clients/profile.html")]
struct ClientProfile {
    /// The rendered Files card.
    files: String,
    /// Likely duplicates: (id, name, why).
    twins: Vec<(String, String, &'static str)>,
    id: String,
    name: String,
    is_company: bool,
    status: String,
    status_label: &'static str,
    owner: String,
    email: String,
    phone: String,
    website: String,
    address: Vec<String>,
    industry: String,
    source: String,
    created: String,
    updated: String,
    groups: Vec<FieldGroup>,
    tags: Vec<TagView>,
    addable_tags: Vec<Choice>,
    employer: Option<PersonView>,
    people: Vec<PersonView>,
    relations: Vec<RelationView>,
    relation_labels: Vec<&'static str>,
    history: Vec<HistoryView>,
    /// The rendered timeline card (quick log + interactions).
    timeline: String,
    /// (channel, label, status: opt_in | opt_out | unknown, source).
    consents: Vec<(String, &'static str, String, String)>,
    do_not_contact: bool,
    can_write: bool,
    can_delete: bool,
    can_tag: bool,
    notice: Option<String>,
}

fn group_fields(
    defs: &[FieldRow],
    stored: &Map<String, Value>,
    access: &Access,
    plugins: &crate::plugins::PluginFieldTypes,
) -> Vec<FieldGroup> {
    let mut groups: Vec<FieldGroup> = Vec::new();
    for d in defs
        .iter()
        .filter(|d| d.is_active() && (!d.sensitive || access.read_sensitive))
    {
        let value = stored
            .get(&d.field_key)
            .map(|v| match v.as_str() {
                // A plugin type reads as its plugin's `format` hook says (or as stored).
                Some(text) if d.field_type.starts_with("plugin:") => {
                    plugins.format(&d.field_type, text)
                }
                _ => display(d, v),
            })
            .unwrap_or_default();
        let name = if d.display_group.is_empty() {
            "Details".to_string()
        } else {
            d.display_group.clone()
        };
        let line = FieldLine {
            label: d.label.clone(),
            value,
            help: d.help_text.clone(),
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.fields.push(line),
            None => groups.push(FieldGroup {
                name,
                fields: vec![line],
            }),
        }
    }
    groups
}

fn history_of(rows: Vec<AuditRow>) -> Vec<HistoryView> {
    rows.into_iter()
        .map(|r| HistoryView {
            at: fmt_time(r.created_at),
            actor: r.actor_label,
            action: match r.action.as_str() {
                "client.create" => "created the client",
                "client.update" => "changed",
                "client.delete" => "moved it to the trash",
                "client.restore" => "restored it",
                "client.tag" => "tagged it",
                "client.untag" => "removed a tag",
                "client.relate" => "linked a relation",
                "client.unrelate" => "removed a relation",
                "client.view_sensitive" => "viewed sensitive fields",
                _ => "updated",
            }
            .to_string(),
            changes: if r.action == "client.create" {
                String::new()
            } else {
                super::super::admin::audit::describe_changes(&r.changes)
            },
        })
        .collect()
}

async fn profile_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    id: String,
    notice: Option<String>,
) -> AppResult<HttpResponse> {
    actor.require("client", "read").await?;
    let access = client_access(actor).await?;
    let log_interactions = actor.can("interaction", "write").await?;
    let see_timeline = actor.can("interaction", "read").await?;
    let can_write = actor.can("client", "write").await?;
    let can_delete = actor.can("client", "delete").await?;
    // "Log" in the client list opens the profile ready to type.
    let focus_log = req.query_string().split('&').any(|p| p == "log=1");
    let upload_limit = state.config.max_upload_bytes;
    let scope = crate::web::scope::of(actor, state).await?;
    let (_, rels) = ops::relations(&scope, id.clone()).await?;
    let ctx = actor.audit();
    let org = ctx.org_id.clone();
    let page = crate::web::run_with_plugins(state, org, move |c, plugins| {
        let org = ctx.org_id.clone();
        let row = service::get(c, &org, &access, &id)?;
        let relations = rels
            .into_iter()
            .map(|r| RelationView {
                text: if r.direction == "outgoing" {
                    format!("{} {}", row.display_name, r.label)
                } else {
                    format!("{} {}", r.display_name, r.label)
                },
                id: r.id,
                other_id: r.client_id,
                other_name: r.display_name,
            })
            .collect();
        let defs = custom_fields::store::list(c, &org, "client", false)?;
        let stored = row.custom_map();
        if access.read_sensitive
            && defs
                .iter()
                .any(|d| d.sensitive && stored.contains_key(&d.field_key))
        {
            audit::record(
                c,
                &ctx,
                "client.view_sensitive",
                "client",
                Some(&row.id),
                serde_json::json!({}),
            )?;
        }
        let tags: Vec<TagRow> = store::tags_of(c, std::slice::from_ref(&row.id))?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        let all_tags = store::list_tags(c, &org)?;
        let owner = match &row.assigned_to {
            Some(u) => orgs::store::find_member(c, &org, u)?
                .map(|m| m.user.name)
                .unwrap_or_default(),
            None => String::new(),
        };
        let employer = match &row.employer_id {
            Some(e) => store::find(c, &org, e)?
                .filter(|e| e.deleted_at.is_none())
                .map(|e| PersonView {
                    id: e.id,
                    name: e.display_name,
                    detail: String::new(),
                }),
            None => None,
        };
        let people = if row.is_company() {
            store::people_of(c, &org, &row.id)?
                .into_iter()
                .map(|p| PersonView {
                    id: p.id,
                    name: p.display_name,
                    detail: p.email.unwrap_or_default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let history = history_of(audit::list_for_resource(c, &org, "client", &row.id, 30)?);
        let address: Vec<String> = [
            row.street.clone(),
            [row.postal_code.clone(), row.city.clone()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ")
                .into(),
            row.region.clone(),
            row.country.clone(),
        ]
        .into_iter()
        .flatten()
        .filter(|l| !l.is_empty())
        .collect();
        let timeline = if !see_timeline {
            String::new()
        } else {
            use askama::Template;
            let view = super::super::timeline::View {
                can_write: log_interactions,
                focus: focus_log,
                ..Default::default()
            };
            let scope = crate::domain::interactions::Scope::Client(row.id.clone());
            super::super::timeline::card(c, &org, &access, &scope, view)?
                .render()
                .map_err(|e| AppError::Internal(e.to_string()))?
        };
        let prefs = crate::domain::preferences::load(c, &org, &row.id)?;
        let consents = crate::domain::preferences::CHANNELS
            .iter()
            .map(|ch| {
                let consent = prefs.channels.get(*ch);
                (
                    ch.to_string(),
                    match *ch {
                        "email" => "E-mail",
                        "phone" => "Phone",
                        "sms" => "SMS",
                        _ => "Post",
                    },
                    consent.map_or("unknown".to_string(), |c| c.status.clone()),
                    consent.map(|c| c.source.clone()).unwrap_or_default(),
                )
            })
            .collect();
        let twins = crate::domain::clients::duplicates::candidates(c, &access, &row)?
            .into_iter()
            .map(|t| (t.id, t.name, t.reason))
            .collect();
        let files = super::super::files::card(
            c,
            &org,
            &access,
            &crate::domain::attachments::Parent::Client(row.id.clone()),
            can_write,
            upload_limit,
        )?;
        Ok(ClientProfile {
            files,
            twins,
            consents,
            do_not_contact: prefs.do_not_contact,
            timeline,
            groups: {
                let mut groups = group_fields(&defs, &stored, &access, plugins);
                let computed = plugins.computed(&rapport_plugin_sdk::ComputeRequest::Client(
                    crate::plugins::client_snapshot(&row),
                ));
                if !computed.is_empty() {
                    groups.push(FieldGroup {
                        name: "Computed by plugins".into(),
                        fields: computed
                            .into_iter()
                            .map(|v| FieldLine {
                                label: v.label,
                                value: v.value.unwrap_or_else(|| "unavailable right now".into()),
                                help: format!("Computed by the {} plugin", v.plugin),
                            })
                            .collect(),
                    });
                }
                groups
            },
            addable_tags: choices(
                all_tags
                    .iter()
                    .filter(|t| !tags.iter().any(|x| x.id == t.id))
                    .map(|t| (t.id.clone(), t.name.clone())),
                &[],
            ),
            tags: tags.iter().map(TagView::from).collect(),
            status_label: status_label(&row.status),
            is_company: row.is_company(),
            created: fmt_time(row.created_at),
            updated: fmt_time(row.updated_at),
            id: row.id,
            name: row.display_name,
            status: row.status,
            owner,
            email: row.email.unwrap_or_default(),
            phone: row.phone.unwrap_or_default(),
            website: row.website.unwrap_or_default(),
            address,
            industry: row.industry.unwrap_or_default(),
            source: row.source.unwrap_or_default(),
            employer,
            people,
            relations,
            relation_labels: RELATION_LABELS.to_vec(),
            history,
            can_write,
            can_delete,
            can_tag: can_write,
            notice,
        })
    })
    .await?;
    let title = page.name.clone();
    render(req, actor, &title, &page).await
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    profile_page(&req, &actor, &state, id.into_inner(), None).await
}

// ---------- tags and relations on the profile ----------

pub async fn tag(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let (tag, add) = (posted(&pairs, "tag"), posted(&pairs, "op") != "remove");
    let id = id.into_inner();
    if let ops::TagChange::NoSuchTag = ops::set_tag(&scope, id.clone(), tag, add).await? {
        return Err(AppError::invalid("tag", "Choose a tag."));
    }
    profile_page(&req, &actor, &state, id, None).await
}

pub async fn relate(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let pairs = parse_form(&body)?;
    let (other, label) = (posted(&pairs, "client_id"), posted(&pairs, "label"));
    let id = id.into_inner();
    match ops::relate(&scope, id.clone(), other, label).await {
        Ok(_) => {
            let done = Some("The relation was added.".into());
            profile_page(&req, &actor, &state, id, done).await
        }
        Err(AppError::Validation(_, errors)) => Err(AppError::Validation(
            errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            Vec::new(),
        )),
        Err(e) => Err(e),
    }
}

pub async fn unrelate(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (id, rel) = path.into_inner();
    ops::unrelate(&scope, id.clone(), rel).await?;
    let done = Some("The relation was removed.".into());
    profile_page(&req, &actor, &state, id, done).await
}

/// `POST /clients/{id}/preferences`: the profile's communication form.
pub async fn save_preferences(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    actor.require("client", "write").await?;
    let access = client_access(&actor).await?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| AppError::BadRequest(format!("The form could not be read: {e}")))?;
    let source = pairs
        .iter()
        .find(|(k, _)| k == "source")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut channels = serde_json::Map::new();
    for ch in crate::domain::preferences::CHANNELS {
        if let Some((_, status)) = pairs.iter().find(|(k, _)| k == ch) {
            channels.insert(
                ch.to_string(),
                serde_json::json!({"status": status, "source": source}),
            );
        }
    }
    let mut body = serde_json::Map::new();
    body.insert("channels".into(), serde_json::Value::Object(channels));
    body.insert(
        "doNotContact".into(),
        serde_json::Value::Bool(
            pairs
                .iter()
                .any(|(k, v)| k == "doNotContact" && v == "true"),
        ),
    );
    let ctx = actor.audit();
    let client = id.into_inner();
    let target = client.clone();
    db::run(&state.pool, move |c| {
        crate::domain::preferences::update(c, &ctx, &access, &target, &body).map(drop)
    })
    .await?;
    redirect_with_flash(
        &req,
        &format!("/clients/{client}"),
        "Communication preferences saved.",
    )
}
