//! The client profile, and the changes made on it (tags, relations, communication preferences).

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{json, Map, Value};

use super::{choices, fmt_time, parse_form, posted, Choice, PersonView, TagView};
use crate::auth::ConsoleActor;
use crate::domain::audit::AuditRow;
use crate::domain::clients::{status_label, ClientRow, RELATION_LABELS};
use crate::domain::money;
use crate::domain::preferences::{Preferences, CHANNELS};
use crate::error::{AppError, AppResult};
use crate::ops::clients::{self as ops, FieldGroup, FieldLine};
use crate::ops::Scope;
use crate::plugins::ComputedValue;
use crate::state::AppState;
use crate::web::console::{admin, files, redirect_with_flash, render, timeline};

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

pub struct DealRow {
    pub id: String,
    pub name: String,
    pub via: Option<(String, String)>,
    pub stage: String,
    pub status: String,
    pub value: String,
    /// Expected close (open) or actual close (won, lost), or "".
    pub close: String,
}

pub struct QuoteRow {
    pub deal_id: String,
    pub deal_name: String,
    pub number: i32,
    pub status: String,
    pub total: String,
    pub valid_until: String,
}

pub struct ContractRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub value: String,
    pub end: String,
}

#[derive(Template)]
#[template(path = "partials/clients/deals_card.html")]
struct DealsCard {
    client_id: String,
    can_add: bool,
    open: Vec<DealRow>,
    closed: Vec<DealRow>,
    more: bool,
    quotes: Vec<QuoteRow>,
    contracts: Vec<ContractRow>,
}

fn deal_row(d: ops::DealLine, local: &crate::locale::Local) -> DealRow {
    let close = if d.status == "open" {
        d.expected_close
    } else {
        d.actual_close
    };
    DealRow {
        value: local.cents(d.value_cents, &d.currency),
        close: close.map(|c| local.date(c)).unwrap_or_default(),
        id: d.id,
        name: d.name,
        via: d.via,
        stage: d.stage,
        status: d.status,
    }
}

#[derive(Template)]
#[template(path = "partials/clients/scores_card.html")]
struct ScoresCard {
    id: String,
    s: Option<crate::ops::scores::ScoreView>,
    ltv: String,
    realised: String,
    basis: String,
    reasons: Vec<String>,
    /// The churn risk came from the model learned on the organization's history.
    learned: bool,
    engagement: Vec<(String, i64)>,
    computed: String,
    can_plan: bool,
    segments: Vec<(String, String)>,
}

/// The Scores card: engagement, lifetime value and churn risk with their reasons, the
/// segments the client is in, and the prevent-churn action.
async fn scores_card(scope: &Scope, id: &str) -> AppResult<String> {
    let s = crate::ops::scores::of_client(scope, id.to_string())
        .await
        .ok();
    let list = |v: &serde_json::Value| -> Vec<(String, i64)> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|f| {
                        (
                            f["factor"].as_str().unwrap_or_default().to_string(),
                            f["points"].as_i64().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let segments = if scope.can("segment", "read") {
        let (org, client) = (scope.org_id.clone(), id.to_string());
        scope
            .read(move |c| Ok(crate::domain::segments::of_client(c, &org, &client)?))
            .await?
    } else {
        vec![]
    };
    let card = ScoresCard {
        id: id.to_string(),
        ltv: s
            .as_ref()
            .map(|s| {
                scope.local.cents(
                    money::parse_cents(&s.lifetime_value).unwrap_or(0),
                    &s.currency,
                )
            })
            .unwrap_or_default(),
        realised: s
            .as_ref()
            .map(|s| {
                scope.local.cents(
                    money::parse_cents(&s.realised_value).unwrap_or(0),
                    &s.currency,
                )
            })
            .unwrap_or_default(),
        basis: s
            .as_ref()
            .and_then(|s| {
                s.factors["lifetimeValue"]["basis"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default(),
        reasons: s
            .as_ref()
            .map(|s| {
                list(&s.factors["churnRisk"])
                    .into_iter()
                    .map(|(f, _)| f)
                    .collect()
            })
            .unwrap_or_default(),
        learned: s
            .as_ref()
            .is_some_and(|s| s.factors["churnBasis"] == "learned"),
        engagement: s
            .as_ref()
            .map(|s| list(&s.factors["engagement"]))
            .unwrap_or_default(),
        computed: s
            .as_ref()
            .map(|s| s.computed_at.replace('T', " ").replace('Z', " UTC"))
            .unwrap_or_default(),
        can_plan: scope.can("interaction", "write"),
        segments,
        s,
    };
    card.render()
        .map_err(|e| crate::error::AppError::Internal(format!("template: {e}")))
}

/// `POST /clients/{id}/scores`: computes the client's scores now.
pub async fn rescore(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    let s = crate::ops::scores::refresh(&scope, id.clone()).await?;
    crate::web::console::redirect_with_flash(
        &req,
        &format!("/clients/{id}#scores"),
        &format!(
            "Scored now: engagement {}, churn risk {}.",
            s.engagement, s.churn_risk
        ),
    )
}

/// `POST /clients/{id}/prevent-churn`: plans a check-in task for the client's owner.
pub async fn prevent_churn(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let id = id.into_inner();
    crate::ops::scores::prevent_churn(&scope, id.clone()).await?;
    crate::web::console::redirect_with_flash(
        &req,
        &format!("/clients/{id}"),
        "A check-in task is planned for the client's owner, due in two days.",
    )
}

/// The Deals card: open deals, won and lost folded, quotes and contracts, and "+ Add deal"
/// pre-filled with this client for those who may create deals. Empty without the right to
/// see deals or contracts.
async fn deals_card(scope: &Scope, id: &str) -> AppResult<String> {
    let d = ops::deals(scope, id.to_string()).await?;
    if !d.deals_shown && d.contracts.is_empty() {
        return Ok(String::new());
    }
    let card = DealsCard {
        client_id: id.to_string(),
        can_add: scope.can("opportunity", "write"),
        open: d
            .open
            .into_iter()
            .map(|x| deal_row(x, &scope.local))
            .collect(),
        closed: d
            .closed
            .into_iter()
            .map(|x| deal_row(x, &scope.local))
            .collect(),
        more: d.more,
        quotes: d
            .quotes
            .into_iter()
            .map(|q| QuoteRow {
                total: scope.local.cents(q.total_cents, &q.currency),
                valid_until: q
                    .valid_until
                    .map(|v| scope.local.date(v))
                    .unwrap_or_default(),
                deal_id: q.deal_id,
                deal_name: q.deal_name,
                number: q.number,
                status: q.status,
            })
            .collect(),
        contracts: d
            .contracts
            .into_iter()
            .map(|k| ContractRow {
                value: scope.local.cents(k.value_cents, &k.currency),
                end: scope.local.date(k.end_date),
                id: k.id,
                name: k.name,
                status: k.status,
            })
            .collect(),
    };
    card.render().map_err(|e| AppError::Internal(e.to_string()))
}

#[derive(Template)]
#[template(path = "partials/clients/profile.html")]
struct ProfileCard {
    /// The rendered Deals card ("" when the caller sees neither deals nor contracts).
    deals: String,
    /// The rendered Scores card.
    scores: String,
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
    /// "Write e-mail" for those who may write e-mail.
    can_email: bool,
    /// Writing a text message logs it on the timeline, so it needs both rights.
    can_text: bool,
    /// "History" (the audit log narrowed to this client) for those who may read the log.
    can_audit: bool,
    notice: Option<String>,
}

fn history_of(rows: Vec<AuditRow>, local: &crate::locale::Local) -> Vec<HistoryView> {
    rows.into_iter()
        .map(|r| HistoryView {
            at: fmt_time(r.created_at, local),
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
                admin::audit::describe_changes(&r.changes)
            },
        })
        .collect()
}

/// The profile, with `notice` above it (what the change just made did).
async fn profile_page(
    req: &HttpRequest,
    actor: &ConsoleActor,
    state: &AppState,
    scope: &Scope,
    id: String,
    notice: Option<String>,
) -> AppResult<HttpResponse> {
    let found = ops::profile(scope, id).await?;
    // "Log" in the client list opens the profile ready to type.
    let focus_log = req.query_string().split('&').any(|p| p == "log=1");
    let (timeline, files) = cards(scope, state, &found.row.id, focus_log).await?;
    let deals = deals_card(scope, &found.row.id).await?;
    let scores = scores_card(scope, &found.row.id).await?;
    let page = ProfileCard {
        deals,
        scores,
        timeline,
        files,
        notice,
        ..profile_view(scope, found)
    };
    let title = page.name.clone();
    render(req, actor, &title, &page).await
}

/// The timeline card (for those who may read interactions) and the Files card, rendered.
async fn cards(
    scope: &Scope,
    state: &AppState,
    id: &str,
    focus: bool,
) -> AppResult<(String, String)> {
    let view = timeline::View {
        can_write: scope.can("interaction", "write"),
        focus,
        ..Default::default()
    };
    let target = crate::domain::interactions::Scope::Client(id.to_string());
    let timeline = timeline::card(scope, target, view).await?;
    let parent = crate::domain::attachments::Parent::Client(id.to_string());
    let can_write = scope.can("client", "write");
    let files = files::card(scope, parent, can_write, state.config.max_upload_bytes).await?;
    Ok((timeline, files))
}

/// The profile's fragment from the read model (without its cards and notice).
fn profile_view(scope: &Scope, p: ops::ClientProfile) -> ProfileCard {
    let can_write = scope.can("client", "write");
    let row = &p.row;
    ProfileCard {
        deals: String::new(),
        scores: String::new(),
        files: String::new(),
        timeline: String::new(),
        notice: None,
        twins: p
            .twins
            .into_iter()
            .map(|t| (t.id, t.name, t.reason))
            .collect(),
        consents: consents(&p.preferences),
        do_not_contact: p.preferences.do_not_contact,
        groups: with_computed(p.groups, p.computed),
        addable_tags: choices(
            p.all_tags
                .iter()
                .filter(|t| !p.tags.iter().any(|x| x.id == t.id))
                .map(|t| (t.id.clone(), t.name.clone())),
            &[],
        ),
        tags: p.tags.iter().map(TagView::from).collect(),
        status_label: status_label(&row.status),
        is_company: row.is_company(),
        created: fmt_time(row.created_at, &scope.local),
        updated: fmt_time(row.updated_at, &scope.local),
        id: row.id.clone(),
        name: row.display_name.clone(),
        status: row.status.clone(),
        owner: p.owner,
        email: row.email.clone().unwrap_or_default(),
        phone: row.phone.clone().unwrap_or_default(),
        website: row.website.clone().unwrap_or_default(),
        address: address_of(row),
        industry: row.industry.clone().unwrap_or_default(),
        source: row.source.clone().unwrap_or_default(),
        employer: p.employer.map(|e| PersonView::of(e, String::new())),
        people: p.people.into_iter().map(person).collect(),
        relations: p
            .relations
            .into_iter()
            .map(|r| relation_view(row, r))
            .collect(),
        relation_labels: RELATION_LABELS.to_vec(),
        history: history_of(p.history, &scope.local),
        can_write,
        can_delete: scope.can("client", "delete"),
        can_tag: can_write,
        can_email: scope.can("message", "send"),
        can_text: scope.can("message", "send") && scope.can("interaction", "write"),
        can_audit: scope.can("audit", "read"),
    }
}

fn person(p: ClientRow) -> PersonView {
    let detail = p.email.clone().unwrap_or_default();
    PersonView::of(p, detail)
}

/// A relation as a sentence: "A is the accountant of B", whichever way it points.
fn relation_view(row: &ClientRow, r: ops::Relation) -> RelationView {
    RelationView {
        text: if r.direction == "outgoing" {
            format!("{} {}", row.display_name, r.label)
        } else {
            format!("{} {}", r.display_name, r.label)
        },
        id: r.id,
        other_id: r.client_id,
        other_name: r.display_name,
    }
}

/// The custom values' groups, then what plugins compute as a group of its own.
fn with_computed(mut groups: Vec<FieldGroup>, computed: Vec<ComputedValue>) -> Vec<FieldGroup> {
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
}

/// The address lines: street; postal code and city; region; country (empty ones left out).
fn address_of(row: &ClientRow) -> Vec<String> {
    [
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
    .collect()
}

/// Each channel's consent: (channel, label, opt_in | opt_out | unknown, source).
fn consents(prefs: &Preferences) -> Vec<(String, &'static str, String, String)> {
    CHANNELS
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
        .collect()
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    profile_page(&req, &actor, &state, &scope, id.into_inner(), None).await
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
    profile_page(&req, &actor, &state, &scope, id, None).await
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
            profile_page(&req, &actor, &state, &scope, id, done).await
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
    profile_page(&req, &actor, &state, &scope, id, done).await
}

/// `POST /clients/{id}/preferences`: the profile's communication form.
pub async fn save_preferences(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let body = preferences_body(&parse_form(&body)?);
    let client = id.into_inner();
    ops::set_preferences(&scope, client.clone(), body).await?;
    redirect_with_flash(
        &req,
        &format!("/clients/{client}"),
        "Communication preferences saved.",
    )
}

/// The posted form as the preferences' JSON: each channel's status from one source, and
/// "do not contact" (an unchecked box is not posted: no means false).
fn preferences_body(pairs: &[(String, String)]) -> Map<String, Value> {
    let source = posted(pairs, "source");
    let mut channels = Map::new();
    for ch in CHANNELS {
        if let Some((_, status)) = pairs.iter().find(|(k, _)| k == ch) {
            channels.insert(ch.to_string(), json!({"status": status, "source": source}));
        }
    }
    let mut body = Map::new();
    body.insert("channels".into(), Value::Object(channels));
    let dnc = pairs
        .iter()
        .any(|(k, v)| k == "doNotContact" && v == "true");
    body.insert("doNotContact".into(), Value::Bool(dnc));
    body
}
