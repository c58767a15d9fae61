//! The Users page: add people, change roles, deactivate, reset passwords.
//! Everything here needs `user:admin`.

use actix_web::{http::StatusCode, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::orgs::{service, store, Member, Role};
use crate::error::{AppError, AppResult, FieldError};
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

async fn load_invitations(
    state: &AppState,
    actor: &ConsoleActor,
) -> AppResult<Vec<InvitationLine>> {
    let org = actor.org_id().to_string();
    let rows = db::run(&state.pool, move |c| service::org_invitations(c, &org)).await?;
    Ok(rows
        .into_iter()
        .map(|i| InvitationLine {
            id: i.row.id,
            email: i.email,
            role: Role::parse(&i.row.role).map_or("", Role::label),
            expires: i.row.expires_at.format("%-d %B %Y").to_string(),
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

async fn load_members(state: &AppState, actor: &ConsoleActor) -> AppResult<Vec<MemberView>> {
    let org = actor.org_id().to_string();
    let (rows, shared) = db::run(&state.pool, move |c| {
        Ok((
            store::list_members(
                c,
                &org,
                &store::MemberFilter {
                    limit: 500,
                    ..Default::default()
                },
            )?,
            store::shared_accounts(c, &org)?,
        ))
    })
    .await?;
    Ok(rows
        .into_iter()
        .map(|m| MemberView::new(m, &actor.user_id, &shared))
        .collect())
}

pub async fn list(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    actor.require("user", "admin").await?;
    let panel = panel_with(&state, &actor, None, None).await?;
    render(&req, &actor, "Users", &panel).await
}

/// The Users page with an empty add form and, optionally, a notice (and a one-time secret).
async fn panel_with(
    state: &AppState,
    actor: &ConsoleActor,
    notice: Option<String>,
    secret: Option<String>,
) -> AppResult<UsersPanel> {
    Ok(UsersPanel {
        csrf: actor.csrf.clone(),
        members: load_members(state, actor).await?,
        invitations: load_invitations(state, actor).await?,
        roles: role_options(),
        form: AddForm {
            role: Role::SalesRep.as_str().into(),
            ..Default::default()
        },
        notice,
        secret,
    })
}

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
    actor.require("user", "admin").await?;
    let form = form.into_inner();
    let ctx = actor.audit();
    let (email, name, role, pw) = (
        form.email.clone(),
        form.name.clone(),
        form.role.clone(),
        form.password.clone(),
    );
    let result = db::run(&state.pool, move |c| {
        service::add_or_invite(
            c,
            &ctx,
            service::NewMember {
                email: &email,
                name: &name,
                password: Some(pw.as_str()).filter(|p| !p.is_empty()),
                role: &role,
            },
        )
    })
    .await;
    let (form_state, notice, secret, status) = match result {
        Ok(added) => {
            let (notice, generated) = match added {
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
            };
            (
                AddForm {
                    role: form.role,
                    ..Default::default()
                },
                Some(notice),
                generated,
                StatusCode::OK,
            )
        }
        Err(AppError::Validation(_, errors)) => (
            AddForm {
                email: form.email,
                name: form.name,
                role: form.role,
                errors,
            },
            None,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(other) => return Err(other),
    };
    let panel = UsersPanel {
        csrf: actor.csrf.clone(),
        members: load_members(&state, &actor).await?,
        invitations: load_invitations(&state, &actor).await?,
        roles: role_options(),
        form: form_state,
        notice,
        secret,
    };
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
    actor.require("user", "admin").await?;
    let ctx = actor.audit();
    let form = form.into_inner();
    let id = id.into_inner();
    let (member, shared) = db::run(&state.pool, move |c| {
        let m = service::update_member(
            c,
            &ctx,
            &id,
            Some(form.version),
            service::MemberChanges {
                name: None,
                role: form.role,
                is_active: form.is_active,
            },
        )?;
        let shared = store::shared_accounts(c, &ctx.org_id)?;
        Ok((m, shared))
    })
    .await?;
    let message = format!(
        "{} is now {} ({}).",
        member.user.email,
        Role::parse(&member.membership.role).map_or("", Role::label),
        if member.membership.is_active {
            "active"
        } else {
            "deactivated"
        }
    );
    if !wants_fragment(&req) {
        let mut res = redirect(&req, "/admin/users");
        res.add_cookie(&flash_cookie(&message))
            .map_err(|e| AppError::Internal(e.to_string()))?;
        return Ok(res);
    }
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

pub async fn reset_password(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("user", "admin").await?;
    let ctx = actor.audit();
    let id = id.into_inner();
    let uid = id.clone();
    let password = db::run(&state.pool, move |c| service::reset_password(c, &ctx, &uid)).await?;
    let org = actor.org_id().to_string();
    let member = db::run(&state.pool, move |c| service::get_member(c, &org, &id)).await?;
    let notice = format!(
        "The password of {} was reset and their sessions ended. Give them this one-time password; it is not shown again:",
        member.user.email
    );
    let panel = panel_with(&state, &actor, Some(notice), Some(password)).await?;
    render(&req, &actor, "Users", &panel).await
}

/// `POST /admin/users/invitations/{id}/cancel`: withdraws an open invitation.
pub async fn cancel_invitation(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require("user", "admin").await?;
    let ctx = actor.audit();
    db::run(&state.pool, move |c| {
        service::cancel_invitation(c, &ctx, &id)
    })
    .await?;
    let panel = panel_with(
        &state,
        &actor,
        Some("The invitation was withdrawn.".into()),
        None,
    )
    .await?;
    render(&req, &actor, "Users", &panel).await
}
