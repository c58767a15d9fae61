//! The dashboard: the first page after sign-in, per role (`ops::dashboard`), with the
//! invitations waiting for the person and contracts up for renewal.

use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::render;
use crate::auth::ConsoleActor;
use crate::db;
use crate::error::AppResult;
use crate::ops::dashboard as ops;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "partials/dashboard.html")]
struct Dashboard<'a> {
    csrf: &'a str,
    /// Organizations that invited this person and wait for an answer.
    invitations: Vec<InvitationView>,
    d: ops::Dashboard,
    renewals: Vec<super::sales::ContractLine>,
    name: &'a str,
    org_name: &'a str,
    role: &'a str,
    /// Links and buttons shown only to roles that may follow them.
    can_add_deal: bool,
    can_forecast: bool,
    /// The caller's clients most likely to leave (the team's for those who oversee).
    at_risk: Vec<crate::ops::scores::AtRisk>,
    can_plan: bool,
    local: crate::locale::Local,
}

impl Dashboard<'_> {
    /// Open deals in every currency.
    fn deals_in(&self, figures: &[ops::Figures]) -> i64 {
        ops::open_deals(figures)
    }
}

pub struct InvitationView {
    pub id: String,
    pub organization: String,
    pub role: &'static str,
    pub expires: String,
}

pub async fn show(
    req: HttpRequest,
    actor: ConsoleActor,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let scope = crate::web::scope::of(&actor, &state).await?;
    let d = ops::show(&scope).await?;
    let renewals =
        super::sales::renewal_lines(d.renewals.as_deref().unwrap_or_default(), &scope.local);
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
        expires: scope.local.date(scope.local.wall(i.row.expires_at).date()),
    })
    .collect();
    let at_risk = if scope.can("client", "read") {
        crate::ops::scores::at_risk(&scope, 50, 5).await?
    } else {
        vec![]
    };
    let fragment = Dashboard {
        at_risk,
        can_plan: scope.can("interaction", "write"),
        local: scope.local,
        csrf: &actor.csrf,
        invitations,
        d,
        renewals,
        name: &actor.name,
        org_name: &actor.org.name,
        role: actor.role.label(),
        can_add_deal: scope.can("opportunity", "write") && scope.can("client", "read"),
        can_forecast: crate::ops::sales::require_reports(&scope).is_ok(),
    };
    render(&req, &actor, "Dashboard", &fragment).await
}
