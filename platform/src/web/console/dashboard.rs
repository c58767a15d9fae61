//! The dashboard: the first page after sign-in. Later areas add their cards here.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::render;
use crate::auth::ConsoleActor;
use crate::db;
use crate::domain::orgs::store;
use crate::error::AppResult;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "partials/dashboard.html")]
struct Dashboard<'a> {
    csrf: &'a str,
    /// Organizations that invited this person and wait for an answer.
    invitations: Vec<InvitationView>,
    clients: Option<ClientStats>,
    /// Open tasks due today or overdue.
    due_tasks: Vec<super::tasks::TaskView>,
    renewals: Vec<super::sales::ContractLine>,
    name: &'a str,
    org_name: &'a str,
    role: &'a str,
    member_count: Option<i64>,
    manages_users: bool,
    permission_count: usize,
    org_count: usize,
}

pub struct InvitationView {
    pub id: String,
    pub organization: String,
    pub role: &'static str,
    pub expires: String,
}

pub struct StatusCount {
    pub status: &'static str,
    pub label: &'static str,
    pub count: i64,
}

pub struct ClientStats {
    pub by_status: Vec<StatusCount>,
    pub total: i64,
    pub new_this_week: i64,
    pub mine: i64,
    /// Counts cover only the user's own clients.
    pub own_only: bool,
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let member_count = if actor.can("user", "read").await? {
        let org = actor.org_id().to_string();
        Some(
            db::run(&state.pool, move |c| {
                Ok(store::count_active_members(c, &org)?)
            })
            .await?,
        )
    } else {
        None
    };
    let clients = if actor.can("client", "read").await? {
        let oversee = actor.can("client", "oversee").await?;
        let (org, me) = (actor.org_id().to_string(), actor.user_id.clone());
        Some(
            db::run(&state.pool, move |c| {
                use crate::domain::clients::{status_label, store as clients, STATUSES};
                let only = (!oversee).then_some(me.as_str());
                let counts = clients::counts_by_status(c, &org, only)?;
                let by_status: Vec<StatusCount> = STATUSES
                    .iter()
                    .map(|s| StatusCount {
                        status: s,
                        label: status_label(s),
                        count: counts.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| *n),
                    })
                    .collect();
                let week_ago = crate::db::now() - chrono::Duration::days(7);
                Ok(ClientStats {
                    total: by_status.iter().map(|s| s.count).sum(),
                    by_status,
                    new_this_week: clients::count_created_since(c, &org, week_ago, only)?,
                    mine: clients::count_assigned(c, &org, &me)?,
                    own_only: !oversee,
                })
            })
            .await?,
        )
    } else {
        None
    };
    let renewals = if actor.can("client", "read").await? {
        let access = crate::web::record_access(&actor, "client").await?;
        let org = actor.org_id().to_string();
        db::run(&state.pool, move |c| {
            super::sales::renewals_due(c, &org, &access)
        })
        .await?
    } else {
        Vec::new()
    };
    let scope = crate::web::scope::of(&actor, &state).await?;
    let due_tasks = if scope.can("client", "read") && scope.can("interaction", "read") {
        super::tasks::buckets(crate::ops::interactions::my_tasks(&scope).await?)
            .into_iter()
            .filter(|b| b.key != "upcoming")
            .flat_map(|b| b.tasks)
            .collect()
    } else {
        Vec::new()
    };
    let uid = actor.user_id.clone();
    let invitations = db::run(&state.pool, move |c| {
        crate::domain::orgs::service::my_invitations(c, &uid)
    })
    .await?
    .into_iter()
    .map(|i| InvitationView {
        id: i.row.id,
        organization: i.organization_name,
        role: crate::domain::orgs::Role::parse(&i.row.role).map_or("", |r| r.label()),
        expires: i.row.expires_at.format("%-d %B %Y").to_string(),
    })
    .collect();
    let fragment = Dashboard {
        csrf: &actor.csrf,
        invitations,
        due_tasks,
        clients,
        renewals,
        name: &actor.name,
        org_name: &actor.org.name,
        role: actor.role.label(),
        member_count,
        manages_users: actor.can("user", "admin").await?,
        permission_count: actor.permissions().await?.len(),
        org_count: actor.orgs.len(),
    };
    render(&req, &actor, "Dashboard", &fragment).await
}
