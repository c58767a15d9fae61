//! The organization's role × resource × action grants: reading needs `policy:read`,
//! changing `policy:write` (admins by default). The admin role's grants cannot be taken
//! away (the domain refuses).

use super::Scope;
use crate::domain::orgs::service;
use crate::domain::policy;
use crate::error::AppResult;

/// Every grant of the organization: (role, resource, action).
pub async fn grants(scope: &Scope) -> AppResult<Vec<(String, String, String)>> {
    scope.require("policy", "read")?;
    let org = scope.org_id.clone();
    scope
        .read(move |c| Ok(policy::store::grants_of_org(c, &org)?))
        .await
}

/// Grants or revokes one right; answers whether anything changed.
pub async fn set_grant(
    scope: &Scope,
    role: String,
    resource: String,
    action: String,
    allowed: bool,
) -> AppResult<bool> {
    scope.require("policy", "write")?;
    let ctx = scope.audit.clone();
    scope
        .read(move |c| service::set_grant(c, &ctx, &role, &resource, &action, allowed))
        .await
}
