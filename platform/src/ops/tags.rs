//! The organization's tag catalogue: listing with usage, defining, renaming and recolouring
//! (`tag:write`), deleting (`tag:delete`, which takes the tag off its clients).

use serde::Deserialize;

use super::Scope;
use crate::domain::clients::{service, store, TagRow};
use crate::error::AppResult;

/// A tag as it is defined or changed; a field left out stays as it is.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagInput {
    pub name: Option<String>,
    pub color: Option<String>,
}

/// Every tag with the number of clients wearing it, by name.
pub async fn catalogue(scope: &Scope) -> AppResult<Vec<(TagRow, i64)>> {
    scope.require("tag", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| {
            let usage: std::collections::HashMap<String, i64> =
                store::tag_usage(c, &org)?.into_iter().collect();
            Ok(store::list_tags(c, &org)?
                .into_iter()
                .map(|t| {
                    let n = usage.get(&t.id).copied().unwrap_or(0);
                    (t, n)
                })
                .collect())
        })
        .await
}

/// Defines a tag (gray unless a colour is given).
pub async fn define(scope: &Scope, input: TagInput) -> AppResult<TagRow> {
    scope.require("tag", "admin")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            let color = input.color.filter(|c| !c.is_empty());
            service::define_tag(
                c,
                &ctx,
                input.name.as_deref().unwrap_or_default(),
                color.as_deref().unwrap_or("gray"),
            )
        })
        .await
}

pub async fn update(scope: &Scope, id: String, input: TagInput) -> AppResult<TagRow> {
    scope.require("tag", "admin")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| {
            service::update_tag(c, &ctx, &id, input.name.as_deref(), input.color.as_deref())
        })
        .await
}

pub async fn delete(scope: &Scope, id: String) -> AppResult<()> {
    scope.require("tag", "delete")?;
    let ctx = scope.audit.clone();
    scope.read(move |c| service::delete_tag(c, &ctx, &id)).await
}
