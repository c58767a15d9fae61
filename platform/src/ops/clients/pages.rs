//! What the console's client pages gather beside the read model: the list with what its
//! filters, columns and bulk actions offer, the trash, the pickers' matches, the form's
//! choices, saved views and communication preferences.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{page_of, tags_by_client, Scope};
use crate::db::DbConn;
use crate::domain::clients::query::{self, Column, Sort, SortKey};
use crate::domain::clients::service::{self, Access};
use crate::domain::clients::{store, ClientRow, SavedViewRow, TagRow};
use crate::domain::custom_fields::{self, FieldRow};
use crate::domain::orgs;
use crate::domain::preferences::{self, Preferences};
use crate::error::{AppError, AppResult, FieldError};

/// One page of the console's client list, and what its filters, columns and bulk
/// actions offer.
pub struct ListPage {
    pub rows: Vec<ClientRow>,
    /// Each row's tags, by client id.
    pub tags: HashMap<String, Vec<TagRow>>,
    /// The rows' employers' names, by id.
    pub employers: HashMap<String, String>,
    /// Active members (id, name): the owner column and filter, bulk assignment.
    pub owners: Vec<(String, String)>,
    /// The custom fields the caller may see (columns and filters).
    pub fields: Vec<FieldRow>,
    /// Every tag of the organization.
    pub all_tags: Vec<TagRow>,
    /// The caller's saved views of the list.
    pub views: Vec<SavedViewRow>,
    /// The sort applied (the default when the query was refused).
    pub sort: Sort,
    pub next_cursor: Option<String>,
    /// How many clients the filters match; none when the query was refused.
    pub total: Option<super::Total>,
    /// Why the query was refused; there are no rows then.
    pub errors: Vec<FieldError>,
    /// The rows' scores (as of the last scoring), by client id; unscored clients are absent.
    pub scores: HashMap<String, crate::domain::scores::ScoreRow>,
}

/// The client list as the caller may see it, by the query's `filter[...]`, `sort`,
/// `limit`, `cursor` and `q`. A query that does not parse answers its errors with the
/// rest of the page, so the console can show them beside the filters.
pub async fn list_page(scope: &Scope, mut pairs: Vec<(String, String)>) -> AppResult<ListPage> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    if let Some(user) = &scope.user_id {
        query::resolve_me(&mut pairs, user);
    }
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            // why: a sensitive field the caller may not read is no column and no filter.
            let fields: Vec<FieldRow> = custom_fields::store::list(c, &org, "client", false)?
                .into_iter()
                .filter(|d| !d.sensitive || access.read_sensitive)
                .collect();
            let (params, errors) = match query::parse_params(c, &org, &fields, &pairs) {
                Ok(p) => (Some(p), Vec::new()),
                Err(AppError::Validation(_, errs)) => (None, errs),
                Err(e) => return Err(e),
            };
            let sort = params.as_ref().map(|p| p.sort.clone()).unwrap_or_default();
            let (rows, next_cursor, total) = match params {
                Some(mut params) => {
                    if !access.oversee {
                        params.only_assigned_to = Some(access.user_id.clone());
                    }
                    // A text filter's list is not counted (see `query::parse_params`).
                    let total = match params.q {
                        None => Some(super::total_of(c, &org, &params)?),
                        Some(_) => None,
                    };
                    let (rows, next) = page_of(c, &org, params)?;
                    (rows, next, total)
                }
                None => (Vec::new(), None, None),
            };
            let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
            Ok(ListPage {
                scores: crate::domain::scores::of_clients(c, &org, &ids)?,
                tags: tags_by_client(c, &rows)?,
                employers: employer_names(c, &org, &rows)?,
                owners: owner_names(c, &org)?,
                all_tags: store::list_tags(c, &org)?,
                views: store::list_views(c, &org, &access.user_id, "client")?,
                fields,
                rows,
                sort,
                next_cursor,
                total,
                errors,
            })
        })
        .await
}

fn employer_names(
    c: &mut DbConn,
    org: &str,
    rows: &[ClientRow],
) -> AppResult<HashMap<String, String>> {
    let ids: Vec<String> = rows.iter().filter_map(|r| r.employer_id.clone()).collect();
    Ok(store::find_many(c, org, &ids)?
        .into_iter()
        .map(|e| (e.id, e.display_name))
        .collect())
}

/// The organization's active members (id, name).
fn owner_names(c: &mut DbConn, org_id: &str) -> AppResult<Vec<(String, String)>> {
    let filter = orgs::store::MemberFilter {
        is_active: Some(true),
        limit: 1000,
        ..Default::default()
    };
    Ok(orgs::store::list_members(c, org_id, &filter)?
        .into_iter()
        .map(|m| (m.user.id, m.user.name))
        .collect())
}

/// Rows of a page and the cursor of the next.
pub struct RowPage {
    pub rows: Vec<ClientRow>,
    pub next_cursor: Option<String>,
}

/// The console's trash: the latest trashed first, fifty a page, every client (emptying
/// the trash is an admin's work, so the record rule does not narrow it).
pub async fn trash_page(scope: &Scope, pairs: Vec<(String, String)>) -> AppResult<RowPage> {
    scope.require("client", "admin")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let mut params = query::parse_params(c, &org, &[], &pairs)?;
            params.trash = true;
            params.sort = Sort {
                key: SortKey::Column(Column::UpdatedAt),
                descending: true,
            };
            params.limit = 50;
            let (rows, next_cursor) = page_of(c, &org, params)?;
            Ok(RowPage { rows, next_cursor })
        })
        .await
}

/// What the pickers' type-ahead finds for `q`: companies by name (any company: an
/// employer need not be assigned to the caller), or clients the caller may see.
pub async fn lookup(scope: &Scope, q: String, companies: bool) -> AppResult<Vec<ClientRow>> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    let q = q.trim().to_string();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    scope
        .read(move |c| {
            if companies {
                return Ok(store::companies_matching(c, &org, &q, 8)?);
            }
            let params = query::ListParams {
                q: Some(q),
                limit: 8,
                sort: Sort {
                    key: SortKey::Column(Column::Name),
                    descending: false,
                },
                only_assigned_to: (!access.oversee).then(|| access.user_id.clone()),
                ..Default::default()
            };
            Ok(query::list(c, &org, &params)?
                .into_iter()
                .filter(|r| access.sees(r))
                .collect())
        })
        .await
}

/// What the create and edit forms offer.
pub struct FormChoices {
    /// Every client custom field (the form shows those the caller may write).
    pub fields: Vec<FieldRow>,
    /// The members the caller may assign: everyone with `oversee`, else themselves.
    pub owners: Vec<(String, String)>,
    pub tags: Vec<TagRow>,
    /// The named employer's name ("" when none was named or it is unknown).
    pub employer_name: String,
    /// The client's current version, when it was asked for.
    pub current_version: Option<i64>,
}

fn form_choices_in(
    c: &mut DbConn,
    org: &str,
    access: &Access,
    employer: Option<&str>,
) -> AppResult<FormChoices> {
    let employer_name = match employer.filter(|e| !e.is_empty()) {
        Some(e) => store::find(c, org, e)?
            .map(|e| e.display_name)
            .unwrap_or_default(),
        None => String::new(),
    };
    Ok(FormChoices {
        fields: custom_fields::store::list(c, org, "client", false)?,
        owners: owner_names(c, org)?
            .into_iter()
            .filter(|(uid, _)| access.oversee || *uid == access.user_id)
            .collect(),
        tags: store::list_tags(c, org)?,
        employer_name,
        current_version: None,
    })
}

/// The form's choices, naming `employer`; with `current_of`, also that client's current
/// version (a form refused as stale comes back with it, so saving again overwrites).
pub async fn form_choices(
    scope: &Scope,
    employer: Option<String>,
    current_of: Option<String>,
) -> AppResult<FormChoices> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let mut choices = form_choices_in(c, &org, &access, employer.as_deref())?;
            if let Some(id) = current_of {
                choices.current_version = store::find(c, &org, &id)?.map(|r| r.version);
            }
            Ok(choices)
        })
        .await
}

/// A client as its edit form starts: the row, its tags and the form's choices.
pub struct Editing {
    pub row: ClientRow,
    pub tags: Vec<TagRow>,
    pub choices: FormChoices,
}

pub async fn editing(scope: &Scope, id: String) -> AppResult<Editing> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let row = service::get(c, &org, &access, &id)?;
            let tags = store::tags_of(c, std::slice::from_ref(&row.id))?
                .into_iter()
                .map(|(_, t)| t)
                .collect();
            let choices = form_choices_in(c, &org, &access, row.employer_id.as_deref())?;
            Ok(Editing { row, tags, choices })
        })
        .await
}

/// The client custom fields, to read a posted form by.
pub async fn fields(scope: &Scope) -> AppResult<Vec<FieldRow>> {
    scope.require("client", "write")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| Ok(custom_fields::store::list(c, &org, "client", false)?))
        .await
}

/// Saves the caller's view of the list (a name for a query string).
pub async fn save_view(scope: &Scope, name: String, query: String) -> AppResult<SavedViewRow> {
    scope.require("client", "read")?;
    let ctx = scope.audit.clone();
    let user = scope.user_id.clone().unwrap_or_default();
    scope
        .read(move |c| service::save_view(c, &ctx, &user, &name, &query))
        .await
}

/// Deletes one of the caller's saved views; another's is not found.
pub async fn delete_view(scope: &Scope, id: String) -> AppResult<()> {
    let org = scope.org_id.clone();
    let user = scope.user_id.clone().unwrap_or_default();
    let found = scope
        .read(move |c| Ok(store::delete_view(c, &org, &user, &id)?))
        .await?;
    if found {
        Ok(())
    } else {
        Err(AppError::NotFound)
    }
}

/// A client's communication preferences (consent per channel, do-not-contact).
pub async fn preferences(scope: &Scope, id: String) -> AppResult<Preferences> {
    scope.require("client", "read")?;
    let access = scope.access("client");
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            crate::domain::clients::service::get(c, &org, &access, &id)?;
            preferences::load(c, &org, &id)
        })
        .await
}

/// Changes a client's communication preferences (`channels`, `doNotContact`, …; the
/// parts sent), audited.
pub async fn set_preferences(
    scope: &Scope,
    id: String,
    body: Map<String, Value>,
) -> AppResult<Preferences> {
    scope.require("client", "write")?;
    let access = scope.access("client");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| preferences::update(c, &ctx, &access, &id, &body))
        .await
}
