//! Clients: the read model both surfaces show, and every command and query on clients,
//! their tags and relations, with the rights and the record rule applied here once.
//! What the console's pages gather beside them is in `pages` and `profile`.

mod deals;
mod pages;
mod profile;

pub use deals::{of_client as deals, ClientDeals, ContractLine, DealLine, QuoteLine};
pub use pages::{
    delete_view, editing, fields, form_choices, list_page, lookup, preferences, save_view,
    set_preferences, trash_page, Editing, FormChoices, ListPage, RowPage,
};
pub use profile::{profile, ClientProfile, FieldGroup, FieldLine};

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::Scope;
use crate::db::DbConn;
use crate::domain::audit;
use crate::domain::clients::duplicates::{self, Candidate};
use crate::domain::clients::query;
use crate::domain::clients::service::{self, Access, BulkAction, WriteContext, WriteMode};
use crate::domain::clients::{store, ClientRow, TagRow};
use crate::domain::custom_fields::{self, FieldRow};
use crate::error::{AppError, AppResult};

/// A client as people and integrations see it: the row, its tags, the custom values the
/// reader may see, and what plugins compute for it.
#[derive(Debug, Clone)]
pub struct ClientView {
    pub row: ClientRow,
    pub tags: Vec<TagRow>,
    /// Active custom fields' values, sensitive ones only for those allowed.
    pub custom: Map<String, Value>,
    /// Plugin-computed fields (only where a single client is shown).
    pub computed: Option<Value>,
    /// Clients this one may be the same as (answered by create).
    pub possible_duplicates: Option<Vec<Candidate>>,
}

impl ClientView {
    pub fn new(row: ClientRow, tags: Vec<TagRow>, defs: &[FieldRow], access: &Access) -> Self {
        let stored = row.custom_map();
        let custom = defs
            .iter()
            .filter(|d| d.is_active() && (!d.sensitive || access.read_sensitive))
            .filter_map(|d| {
                stored
                    .get(&d.field_key)
                    .map(|v| (d.field_key.clone(), v.clone()))
            })
            .collect();
        Self {
            row,
            tags,
            custom,
            computed: None,
            possible_duplicates: None,
        }
    }

    /// The API's JSON form.
    pub fn to_json(&self) -> Value {
        let c = &self.row;
        let mut v = json!({
            "id": c.id,
            "type": c.kind,
            "firstName": c.first_name,
            "lastName": c.last_name,
            "companyName": c.company_name,
            "displayName": c.display_name,
            "email": c.email,
            "phone": c.phone,
            "phoneE164": c.phone.as_deref().and_then(|p| duplicates::e164(p, c.country.as_deref())),
            "address": {
                "street": c.street, "city": c.city, "region": c.region,
                "postalCode": c.postal_code, "country": c.country,
            },
            "website": c.website,
            "industry": c.industry,
            "source": c.source,
            "status": c.status,
            "assignedTo": c.assigned_to,
            "employerId": c.employer_id,
            "tags": self.tags.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            "customFields": self.custom,
            "version": c.version,
            "createdAt": rfc3339(c.created_at),
            "updatedAt": rfc3339(c.updated_at),
            "deletedAt": c.deleted_at.map(rfc3339),
        });
        if let Some(computed) = &self.computed {
            v["computed"] = computed.clone();
        }
        if let Some(twins) = &self.possible_duplicates {
            v["possibleDuplicates"] = candidates_json(twins);
        }
        v
    }
}

impl serde::Serialize for ClientView {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

pub fn rfc3339(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub fn candidates_json(list: &[Candidate]) -> Value {
    Value::Array(
        list.iter()
            .map(|c| json!({"id": c.id, "displayName": c.name, "reason": c.reason}))
            .collect(),
    )
}

/// Whether showing `row` shows a sensitive value (that view is audited).
fn shows_sensitive(row: &ClientRow, defs: &[FieldRow], access: &Access) -> bool {
    access.read_sensitive && {
        let stored = row.custom_map();
        defs.iter()
            .any(|d| d.sensitive && d.is_active() && stored.contains_key(&d.field_key))
    }
}

/// Views of rows already read, with their tags in one query; audits a view of sensitive
/// values (one entry for the lot).
pub fn views(
    c: &mut DbConn,
    ctx: &audit::AuditContext,
    access: &Access,
    defs: &[FieldRow],
    rows: Vec<ClientRow>,
    single: bool,
) -> AppResult<Vec<ClientView>> {
    let mut tags = tags_by_client(c, &rows)?;
    let sensitive: Vec<&str> = rows
        .iter()
        .filter(|r| shows_sensitive(r, defs, access))
        .map(|r| r.id.as_str())
        .collect();
    if !sensitive.is_empty() {
        let (id, changes) = if single {
            (Some(sensitive[0]), json!({}))
        } else {
            (None, json!({"clients": sensitive}))
        };
        audit::record(c, ctx, "client.view_sensitive", "client", id, changes)?;
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let t = tags.remove(&r.id).unwrap_or_default();
            ClientView::new(r, t, defs, access)
        })
        .collect())
}

/// The tags of `rows`, by client id, in one query.
fn tags_by_client(c: &mut DbConn, rows: &[ClientRow]) -> AppResult<HashMap<String, Vec<TagRow>>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut tags: HashMap<String, Vec<TagRow>> = HashMap::new();
    for (client_id, tag) in store::tags_of(c, &ids)? {
        tags.entry(client_id).or_default().push(tag);
    }
    Ok(tags)
}

/// One client the caller may see, as a view.
pub fn view_of(
    c: &mut DbConn,
    ctx: &audit::AuditContext,
    access: &Access,
    id: &str,
) -> AppResult<ClientView> {
    let row = service::get(c, &ctx.org_id, access, id)?;
    let defs = custom_fields::store::list(c, &ctx.org_id, "client", false)?;
    let mut v = views(c, ctx, access, &defs, vec![row], true)?;
    v.pop().ok_or(AppError::NotFound)
}

fn with_computed(plugins: &crate::plugins::PluginFieldTypes, mut view: ClientView) -> ClientView {
    view.computed = Some(crate::plugins::computed_json(&plugins.computed(
        &rapport_plugin_sdk::ComputeRequest::Client(crate::plugins::client_snapshot(&view.row)),
    )));
    view
}

/// A client by id, with its plugin-computed fields.
pub async fn get(scope: &Scope, id: String) -> AppResult<ClientView> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, plugins| Ok(with_computed(plugins, view_of(c, &ctx, &access, &id)?)))
        .await
}

/// Runs a client write with what the service needs (the client custom fields, the
/// plugins' field types); answers its result and the fields.
pub(super) fn writing<T>(
    c: &mut DbConn,
    ctx: &audit::AuditContext,
    access: &Access,
    ext: &crate::plugins::PluginFieldTypes,
    f: impl FnOnce(&mut DbConn, &WriteContext<'_>) -> AppResult<T>,
) -> AppResult<(T, Vec<FieldRow>)> {
    let defs = custom_fields::store::list(c, &ctx.org_id, "client", false)?;
    let w = WriteContext {
        external: ext,
        ctx,
        access,
        defs: &defs,
    };
    let out = f(c, &w)?;
    Ok((out, defs))
}

/// A page of the list and the cursor of the next one.
pub struct Page {
    pub data: Vec<ClientView>,
    pub next_cursor: Option<String>,
    /// Asked for with `count=true`: how many clients match.
    pub total: Option<Total>,
}

/// How many clients a list's filters match, counted up to 1 000 (`query::COUNT_CAP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Total {
    /// The count, or the cap when there are more.
    pub count: i64,
    /// True when more than `count` clients match.
    pub at_least: bool,
}

impl Total {
    pub fn of(counted: Option<i64>) -> Self {
        match counted {
            Some(count) => Self {
                count,
                at_least: false,
            },
            None => Self {
                count: query::COUNT_CAP,
                at_least: true,
            },
        }
    }
}

/// The capped count of what `params` match (its sort, cursor and limit aside).
pub fn total_of(c: &mut DbConn, org_id: &str, params: &query::ListParams) -> AppResult<Total> {
    Ok(Total::of(query::count_capped(c, org_id, params)?))
}

/// The client list (or the trash) as the caller may see it, filtered, sorted and paged
/// by the query's `filter[...]`, `sort`, `limit`, `cursor` and `q`.
pub async fn list(scope: &Scope, mut pairs: Vec<(String, String)>, trash: bool) -> AppResult<Page> {
    scope.require("client", if trash { "admin" } else { "read" })?;
    let access = scope.access("client");
    if let Some(user) = &scope.user_id {
        query::resolve_me(&mut pairs, user);
    }
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let defs = custom_fields::store::list(c, &ctx.org_id, "client", false)?;
            let mut params = query::parse_params(c, &ctx.org_id, &defs, &pairs)?;
            params.trash = trash;
            if !access.oversee {
                params.only_assigned_to = Some(access.user_id.clone());
            }
            let total = if params.count {
                Some(total_of(c, &ctx.org_id, &params)?)
            } else {
                None
            };
            let (rows, next_cursor) = page_of(c, &ctx.org_id, params)?;
            let data = views(c, &ctx, &access, &defs, rows, false)?;
            Ok(Page {
                data,
                next_cursor,
                total,
            })
        })
        .await
}

/// One page by `params` (up to its `limit`) and the cursor of the next, if there is one.
fn page_of(
    c: &mut DbConn,
    org_id: &str,
    mut params: query::ListParams,
) -> AppResult<(Vec<ClientRow>, Option<String>)> {
    let limit = params.limit;
    params.limit = limit + 1;
    let mut rows = query::list(c, org_id, &params)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = match (more, rows.last()) {
        (true, Some(r)) => Some(query::cursor_for(c, r, &params.sort)?.encode()),
        _ => None,
    };
    Ok((rows, next_cursor))
}

/// Creates a client from the API's or the form's fields; the view answers which
/// existing clients it may duplicate (flagged, not refused: the caller decides).
pub async fn create(scope: &Scope, body: Map<String, Value>) -> AppResult<ClientView> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            let (row, defs) = writing(c, &ctx, &access, ext, |c, w| service::create(c, w, &body))?;
            let twins = duplicates::candidates(c, &access, &row)?;
            let mut view = views(c, &ctx, &access, &defs, vec![row], true)?
                .pop()
                .ok_or(AppError::NotFound)?;
            view.possible_duplicates = Some(twins);
            Ok(with_computed(ext, view))
        })
        .await
}

/// Changes a client: `Merge` keeps fields the body leaves out, `Replace` clears them.
/// `expected` is the version the caller saw (a stale one is refused).
pub async fn update(
    scope: &Scope,
    id: String,
    body: Map<String, Value>,
    mode: WriteMode,
    expected: Option<i64>,
) -> AppResult<ClientView> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            let (row, defs) = writing(c, &ctx, &access, ext, |c, w| {
                service::update(c, w, &id, &body, mode, expected)
            })?;
            let view = views(c, &ctx, &access, &defs, vec![row], true)?
                .pop()
                .ok_or(AppError::NotFound)?;
            Ok(with_computed(ext, view))
        })
        .await
}

/// Moves a client to the trash; answers the row as it was.
pub async fn trash(scope: &Scope, id: String, expected: Option<i64>) -> AppResult<ClientRow> {
    scope.require("client", "delete")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| service::trash(c, &ctx, &access, &id, expected, ext))
        .await
}

/// Brings a client back from the trash.
pub async fn restore(scope: &Scope, id: String) -> AppResult<ClientView> {
    scope.require("client", "admin")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            service::restore(c, &ctx, &id)?;
            view_of(c, &ctx, &access, &id)
        })
        .await
}

/// Deletes a trashed client for good, with its files in the store.
pub async fn purge(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("client", "admin")?;
    let ctx = scope.audit.clone();
    let keys = scope
        .read(move |c| {
            let keys = crate::domain::attachments::storage_keys_of_client(c, &ctx.org_id, &id)?;
            service::purge(c, &ctx, &id)?;
            Ok(keys)
        })
        .await?;
    let store = scope.blobs.clone();
    actix_web::web::block(move || {
        for key in keys {
            if let Err(e) = store.delete(&key) {
                tracing::warn!(key = %key, error = %e, "a purged client's file stayed in the store");
            }
        }
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))
}

/// A client's tags.
pub async fn tags(scope: &Scope, id: String) -> AppResult<Vec<TagRow>> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let row = service::get(c, &org, &access, &id)?;
            Ok(store::tags_of(c, &[row.id])?
                .into_iter()
                .map(|(_, t)| t)
                .collect())
        })
        .await
}

/// What putting a tag on (or taking it off) a client did.
pub enum TagChange {
    Changed(TagRow),
    /// The client already carried it (or did not, when taking it off).
    Unchanged(TagRow),
    NoSuchTag,
}

/// Puts a tag (by id or name) on a client, or takes it off.
pub async fn set_tag(
    scope: &Scope,
    id: String,
    reference: String,
    on: bool,
) -> AppResult<TagChange> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            service::get(c, &ctx.org_id, &access, &id)?;
            let Some(tag) = service::resolve_tag(c, &ctx.org_id, &reference)? else {
                return Ok(TagChange::NoSuchTag);
            };
            Ok(
                if service::tag_client(c, &ctx, &access, &id, &tag.id, on)? {
                    TagChange::Changed(tag)
                } else {
                    TagChange::Unchanged(tag)
                },
            )
        })
        .await
}

/// A relation seen from one client.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    pub id: String,
    /// The other client's id.
    pub client_id: String,
    /// The other client's name.
    pub display_name: String,
    pub label: String,
    /// `outgoing`: this client is `label` of the other; `incoming`: the reverse.
    pub direction: &'static str,
}

/// A client's relations to clients the caller can see: one in the trash, or outside the
/// caller's reach, is left out, on every surface alike.
pub async fn relations(scope: &Scope, id: String) -> AppResult<(ClientRow, Vec<Relation>)> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let row = service::get(c, &org, &access, &id)?;
            let out = relations_in(c, &org, &access, &row)?;
            Ok((row, out))
        })
        .await
}

fn relations_in(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    row: &ClientRow,
) -> AppResult<Vec<Relation>> {
    let rels = store::relations_of(c, org, &row.id)?;
    let other = |r: &crate::domain::clients::RelationRow| {
        if r.from_client_id == row.id {
            r.to_client_id.clone()
        } else {
            r.from_client_id.clone()
        }
    };
    let ids: Vec<String> = rels.iter().map(other).collect();
    let names: HashMap<String, String> = store::find_many(c, org, &ids)?
        .into_iter()
        .filter(|o| o.deleted_at.is_none() && access.sees(o))
        .map(|o| (o.id, o.display_name))
        .collect();
    Ok(rels
        .iter()
        .filter_map(|r| {
            let client_id = other(r);
            Some(Relation {
                id: r.id.clone(),
                display_name: names.get(&client_id)?.clone(),
                client_id,
                label: r.label.clone(),
                direction: if r.from_client_id == row.id {
                    "outgoing"
                } else {
                    "incoming"
                },
            })
        })
        .collect())
}

/// Relates a client to another ("is the accountant of").
pub async fn relate(
    scope: &Scope,
    id: String,
    other: String,
    label: String,
) -> AppResult<crate::domain::clients::RelationRow> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::relate(c, &ctx, &access, &id, &other, &label))
        .await
}

pub async fn unrelate(scope: &Scope, id: String, relation: String) -> AppResult<()> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::unrelate(c, &ctx, &access, &id, &relation))
        .await
}

/// A bulk action as a caller names it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BulkInput {
    /// The clients' ids.
    pub ids: Vec<String>,
    /// `assign`, `tag`, `untag` or `delete`.
    pub action: String,
    /// For `assign`: a member's id, or `none` to unassign.
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// For `tag` and `untag`: a tag's id or name.
    #[serde(default)]
    pub tag: Option<String>,
}

/// Applies one action to many clients, all or nothing; answers how many changed.
pub async fn bulk(scope: &Scope, input: BulkInput) -> AppResult<usize> {
    scope.require(
        "client",
        if input.action == "delete" {
            "delete"
        } else {
            "write"
        },
    )?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .write(move |c, ext| {
            let action = parse_bulk(c, &ctx.org_id, &input)?;
            writing(c, &ctx, &access, ext, |c, w| {
                service::bulk(c, w, &input.ids, &action)
            })
            .map(|(n, _)| n)
        })
        .await
}

fn parse_bulk(c: &mut DbConn, org_id: &str, input: &BulkInput) -> AppResult<BulkAction> {
    Ok(match input.action.as_str() {
        // An owner must be chosen: an empty choice once unassigned everyone selected.
        "assign" => match input.assigned_to.as_deref().map(str::trim) {
            None | Some("") => {
                return Err(AppError::invalid(
                    "assignedTo",
                    "Choose the new owner, or “Nobody” to unassign them.",
                ))
            }
            Some("none") => BulkAction::Assign(None),
            Some(owner) => BulkAction::Assign(Some(owner.to_string())),
        },
        "tag" | "untag" => {
            let reference = input
                .tag
                .clone()
                .ok_or_else(|| AppError::invalid("tag", "Name the tag."))?;
            let t = service::resolve_tag(c, org_id, &reference)?
                .ok_or_else(|| AppError::invalid("tag", "There is no such tag."))?;
            if input.action == "tag" {
                BulkAction::Tag(t.id)
            } else {
                BulkAction::Untag(t.id)
            }
        }
        "delete" => BulkAction::Delete,
        _ => {
            return Err(AppError::invalid(
                "action",
                "Use assign, tag, untag or delete.",
            ))
        }
    })
}
