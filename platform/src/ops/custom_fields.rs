//! Custom field definitions: listing (`custom_field:read`), defining and changing
//! (`custom_field:write`), archiving and bringing back (`custom_field:delete`), reordering.
//! Archiving hides a field and keeps its values.

use super::Scope;
use crate::domain::custom_fields::service::{self, FieldInput};
use crate::domain::custom_fields::{store, FieldRow};
use crate::error::{AppError, AppResult};

/// The definitions of an entity's fields (`client` or `opportunity`), in form order.
pub async fn list(scope: &Scope, entity: String, archived_too: bool) -> AppResult<Vec<FieldRow>> {
    scope.require("custom_field", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| Ok(store::list(c, &org, &entity, archived_too)?))
        .await
}

pub async fn get(scope: &Scope, id: String) -> AppResult<FieldRow> {
    scope.require("custom_field", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| store::find(c, &org, &id)?.ok_or(AppError::NotFound))
        .await
}

/// The field types the organization's enabled plugins add: (type, label, plugin).
pub async fn plugin_types(scope: &Scope) -> AppResult<Vec<(String, String, String)>> {
    scope.require("custom_field", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| crate::plugins::field_types(c, &org))
        .await
}

/// Defines a field; a money field takes the organization's currency unless given one.
pub async fn define(scope: &Scope, input: FieldInput) -> AppResult<FieldRow> {
    scope.require("custom_field", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let currency = super::default_currency(c, &ctx.org_id)?;
            let plugin_types: Vec<String> = crate::plugins::field_types(c, &ctx.org_id)?
                .into_iter()
                .map(|t| t.0)
                .collect();
            service::define(c, &ctx, &currency, &plugin_types, input)
        })
        .await
}

/// Changes what is sent; `expected` guards against a concurrent edit. Archiving a field or
/// bringing it back needs `custom_field:delete`; sending the state it already has (a
/// fetched definition sent back) does not.
pub async fn update(
    scope: &Scope,
    id: String,
    expected: Option<i64>,
    input: FieldInput,
) -> AppResult<FieldRow> {
    scope.require("custom_field", "write")?;
    let may_archive = scope.require("custom_field", "delete");
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let current = store::find(c, &ctx.org_id, &id)?.ok_or(AppError::NotFound)?;
            if input
                .archived
                .is_some_and(|a| a != current.archived_at.is_some())
            {
                may_archive?;
            }
            service::update(c, &ctx, &id, expected, input)
        })
        .await
}

/// Archives the field (`true`) or brings it back (`false`).
pub async fn set_archived(
    scope: &Scope,
    id: String,
    expected: Option<i64>,
    archived: bool,
) -> AppResult<FieldRow> {
    scope.require("custom_field", "delete")?;
    let input = FieldInput {
        archived: Some(archived),
        ..Default::default()
    };
    update(scope, id, expected, input).await
}

/// Moves a field one place up or down among its entity's active fields; answers the entity.
pub async fn move_field(scope: &Scope, id: String, up: bool) -> AppResult<String> {
    scope.require("custom_field", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let field = store::find(c, &ctx.org_id, &id)?.ok_or(AppError::NotFound)?;
            let mut ids: Vec<String> = store::list(c, &ctx.org_id, &field.entity, false)?
                .into_iter()
                .map(|f| f.id)
                .collect();
            let pos = ids
                .iter()
                .position(|i| *i == id)
                .ok_or(AppError::NotFound)?;
            let other = if up {
                pos.checked_sub(1)
            } else {
                Some(pos + 1).filter(|p| *p < ids.len())
            };
            if let Some(o) = other {
                ids.swap(pos, o);
                service::reorder(c, &ctx, &field.entity, &ids)?;
            }
            Ok(field.entity)
        })
        .await
}
