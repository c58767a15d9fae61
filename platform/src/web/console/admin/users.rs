//! The Users page: add people, change roles, deactivate, reset passwords.
//! Everything here needs `user:admin`.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::ConsoleActor;
use crate::domain::orgs::{service, store, Member, Role};
use crate::error::{AppError, AppResult, FieldError};
use crate::ops::users::{self as ops, NewMemberInput};
use crate::ops::Scope;
use crate::state::AppState;
use crate::web::console::{flash_cookie, redirect, render, render_with_status, Toast};
use crate::web::wants_fragment;

pub struct MemberView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub is_active: bool,
    pub version: i64,
    pub is_self: bool,
    /// Also a member elsewhere: the account (password, name) is the person's own.
    pub shared: bool,
}

impl MemberView {
    fn new(m: Member, me: &str, shared: &std::collections::HashSet<String>) -> Self {
        Self {
            is_self: m.user.id == me,
            shared: shared.contains(&m.user.id),
            id: m.user.id,
            email: m.user.email,
            name: m.user.name,
            role: m.membership.role,
            is_active: m.membership.is_active,
            version: m.membership.version,
        }
    }
}

pub struct RoleOption {
    pub value: &'static str,
    pub label: &'static str,
}

pub fn role_options() -> Vec<RoleOption> {
    Role::ALL
        .into_iter()
        .map(|r| RoleOption {
            value: r.as_str(),
            label: r.label(),
        })
        .collect()
}

#[derive(Default)]
pub struct AddForm {
    pub email: String,
    pub name: String,
    pub role: String,
    pub errors: Vec<FieldError>,
}

impl AddForm {
    pub fn error(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

#[derive(Template)]
#[template(path = "partials/admin/users.html")]
struct UsersPanel {
    csrf: String,
    members: Vec<MemberView>,
    invitations: Vec<InvitationLine>,
    roles: Vec<RoleOption>,
    form: AddForm,
    notice: Option<String>,
    secret: Option<String>,
}

pub struct InvitationLine {
    pub id: String,
    pub email: String,
    pub role: &'static str,
    pub expires: String,
}

async fn load_invitations(scope: &Scope) -> AppResult<Vec<InvitationLine>> {
    Ok(ops::invitations(scope)
        .await?
        .into_iter()
        .map(|i| InvitationLine {
            id: i.row.id,
            email: i.email,
            role: Role::parse(&i.row.role).map_or("", Role::label),
            expires: scope.local.date(scope.local.wall(i.row.expires_at).date()),
        })
        .collect())
}

#[derive(Template)]
#[template(path = "partials/admin/user_row_fragment.html")]
struct UserRowFragment<'a> {
    csrf: String,
    m: MemberView,
    roles: Vec<RoleOption>,
    toast: Toast<'a>,
}

async fn load_members(scope: &Scope) -> AppResult<Vec<MemberView>> {
    let filter = store::MemberFilter {
        limit: 500,
        ..Default::default()
    };
    let (rows, shared) = ops::members(scope, filter).await?;
    let me = scope.user_id.clone().unwrap_or_default();
    Ok(rows
        .into_iter()
        .map(|m| MemberView::new(m, &me, &shared))
        .collect())
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    scope.require("user", "admin")?;
    let panel = panel_with(&scope, &actor, AddForm::default(), None, None).await?;
    render(&req, &actor, "Users", &panel).await
}

/// The Users page with the add form as given and, optionally, a notice (and a one-time
/// secret).
async fn panel_with(
    scope: &Scope,
    actor: &ConsoleActor,
    form: AddForm,
    notice: Option<String>,
    secret: Option<String>,
) -> AppResult<UsersPanel> {
    let role = if form.role.is_empty() {
        Role::SalesRep.as_str().into()
    } else {
        form.role.clone()
    };
    Ok(UsersPanel {
        csrf: actor.csrf.clone(),
        members: load_members(scope).await?,
        invitations: load_invitations(scope).await?,
        roles: role_options(),
        form: AddForm { role, ..form },
        notice,
        secret,
    })
}

/// What the admin is told after adding someone, and the one-time password if one was made.
fn added_notice(added: service::Added) -> (String, Option<String>) {
    match added {
        service::Added::Member(member, Some(pw)) => (
            format!(
                "{} was added. Give them this one-time password; it is not shown again:",
                member.user.email
            ),
            Some(pw),
        ),
        service::Added::Member(member, None) => (
            format!(
                "{} was added as {}.",
                member.user.email,
                Role::parse(&member.membership.role).map_or("", Role::label)
            ),
            None,
        ),
        service::Added::Invited(inv) => (
            format!(
                "{} already has a Rapport account, so they were invited as {}. They join when they accept the invitation on their dashboard (open for {} days).",
                inv.email,
                Role::parse(&inv.row.role).map_or("", Role::label),
                service::INVITATION_DAYS
            ),
            None,
        ),
    }
}

/// The add form (its CSRF token is checked before the handler runs).
#[derive(Deserialize)]
pub struct CreateForm {
    email: String,
    #[serde(default)]
    name: String,
    role: String,
    #[serde(default)]
    password: String,
}

pub async fn create(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    form: web::Form<CreateForm>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let f = form.into_inner();
    let form = NewMemberInput {
        email: f.email,
        name: f.name,
        role: f.role,
        password: Some(f.password),
    };
    let kept = AddForm {
        role: form.role.clone(),
        ..Default::default()
    };
    let (form, notice, secret, status) = match ops::add(&scope, form.clone()).await {
        Ok(added) => {
            let (notice, secret) = added_notice(added);
            (kept, Some(notice), secret, StatusCode::OK)
        }
        Err(AppError::Validation(_, errors)) => {
            let typed = AddForm {
                email: form.email,
                name: form.name,
                role: form.role,
                errors,
            };
            (typed, None, None, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(other) => return Err(other),
    };
    let panel = panel_with(&scope, &actor, form, notice, secret).await?;
    render_with_status(&req, &actor, "Users", &panel, status).await
}

#[derive(Deserialize)]
pub struct UpdateForm {
    version: i64,
    role: Option<String>,
    is_active: Option<bool>,
}

pub async fn update(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<UpdateForm>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let form = form.into_inner();
    let changes = service::MemberChanges {
        name: None,
        role: form.role,
        is_active: form.is_active,
    };
    let id = id.into_inner();
    let member = ops::update(&scope, id.clone(), Some(form.version), changes).await?;
    let message = changed_notice(&member);
    if !wants_fragment(&req) {
        let mut res = redirect(&req, "/admin/users");
        res.add_cookie(&flash_cookie(&message))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        return Ok(res);
    }
    let shared = ops::shared_accounts(&scope).await?;
    let fragment = UserRowFragment {
        csrf: actor.csrf.clone(),
        m: MemberView::new(member, &actor.user_id, &shared),
        roles: role_options(),
        toast: Toast {
            kind: "ok",
            message: &message,
            oob: true,
        },
    };
    render(&req, &actor, "Users", &fragment).await
}

fn changed_notice(member: &Member) -> String {
    format!(
        "{} is now {} ({}).",
        member.user.email,
        Role::parse(&member.membership.role).map_or("", Role::label),
        if member.membership.is_active {
            "active"
        } else {
            "deactivated"
        }
    )
}

pub async fn reset_password(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let (member, password) = ops::reset_password(&scope, id.into_inner()).await?;
    let notice = format!(
        "The password of {} was reset and their sessions ended. Give them this one-time password; it is not shown again:",
        member.user.email
    );
    let panel = panel_with(
        &scope,
        &actor,
        AddForm::default(),
        Some(notice),
        Some(password),
    )
    .await?;
    render(&req, &actor, "Users", &panel).await
}

/// `POST /admin/users/invitations/{id}/cancel`: withdraws an open invitation.
pub async fn cancel_invitation(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    ops::cancel_invitation(&scope, id.into_inner()).await?;
    let notice = Some("The invitation was withdrawn.".into());
    let panel = panel_with(&scope, &actor, AddForm::default(), notice, None).await?;
    render(&req, &actor, "Users", &panel).await
}
