//! The Permissions page: the role × resource × action matrix. Reading needs
//! `policy:read`, changing a cell `policy:write`; every change is audited and
//! reaches every instance on its next request.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::ConsoleActor;
use crate::domain::orgs::Role;
use crate::domain::policy;
use crate::error::AppResult;
use crate::ops::policies as ops;
use crate::state::AppState;
use crate::web::console::{render, Toast};

pub struct Cell {
    pub action: &'static str,
    pub allowed: bool,
    /// Checked somewhere in Rapport; a cell that is not shows no box.
    pub enforced: bool,
}

pub struct MatrixRow {
    pub resource: &'static str,
    pub label: String,
    /// What the row's rights govern.
    pub about: &'static str,
    pub cells: Vec<Cell>,
}

pub struct RoleTab {
    pub value: &'static str,
    pub label: &'static str,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "partials/admin/permissions.html")]
struct PermissionsPanel {
    role: &'static str,
    role_label: &'static str,
    locked: bool,
    editable: bool,
    tabs: Vec<RoleTab>,
    actions: &'static [&'static str],
    rows: Vec<MatrixRow>,
}

#[derive(Template)]
#[template(path = "partials/admin/permission_cell_fragment.html")]
struct CellFragment<'a> {
    role: &'a str,
    resource: &'a str,
    cell: Cell,
    locked: bool,
    editable: bool,
    toast: Toast<'a>,
}

#[derive(Deserialize)]
pub struct RoleQuery {
    role: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    query: web::Query<RoleQuery>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let grants = ops::grants(&scope).await?;
    let role = query
        .role
        .as_deref()
        .and_then(Role::parse)
        .unwrap_or(Role::Manager);
    let editable = scope.can("policy", "write");
    // Only the rights the code checks (`policy::ENFORCED`); other cells stay empty.
    let rows = policy::ENFORCED
        .iter()
        .map(|(resource, enforced, about)| MatrixRow {
            resource,
            label: crate::web::console::label(resource),
            about,
            cells: policy::ACTIONS
                .iter()
                .map(|action| Cell {
                    action,
                    allowed: grants
                        .iter()
                        .any(|(r, res, a)| r == role.as_str() && res == resource && a == action),
                    enforced: enforced.contains(action),
                })
                .collect(),
        })
        .collect();
    let panel = PermissionsPanel {
        role: role.as_str(),
        role_label: role.label(),
        locked: role == Role::Admin,
        editable,
        tabs: Role::ALL
            .into_iter()
            .map(|r| RoleTab {
                value: r.as_str(),
                label: r.label(),
                active: r == role,
            })
            .collect(),
        actions: policy::ACTIONS,
        rows,
    };
    render(&req, &actor, "Permissions", &panel).await
}

#[derive(Deserialize)]
pub struct ToggleForm {
    role: String,
    resource: String,
    action: String,
    /// Present when the box is ticked.
    allowed: Option<String>,
}

pub async fn toggle(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    form: web::Form<ToggleForm>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let form = form.into_inner();
    let allowed = form.allowed.is_some();
    let (role, resource, action) = (
        form.role.clone(),
        form.resource.clone(),
        form.action.clone(),
    );
    ops::set_grant(&scope, role, resource, action, allowed).await?;
    let message = format!(
        "{} {} {} on {}.",
        Role::parse(&form.role).map_or("", Role::label),
        if allowed { "may now" } else { "may no longer" },
        form.action,
        form.resource
    );
    let action = policy::ACTIONS
        .iter()
        .copied()
        .find(|a| *a == form.action)
        .unwrap_or("read");
    let fragment = CellFragment {
        role: &form.role,
        resource: &form.resource,
        cell: Cell {
            action,
            allowed,
            enforced: true,
        },
        locked: false,
        editable: true,
        toast: Toast {
            kind: "ok",
            message: &message,
            oob: true,
        },
    };
    render(&req, &actor, "Permissions", &fragment).await
}
