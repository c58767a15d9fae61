//! Who is asking: console sessions, API tokens, CSRF, sign-in throttling and the
//! Casbin enforcer. Handlers take an [`ApiActor`] or a [`ConsoleActor`] and call
//! [`Actor::require`] with a resource kind and a verb before doing anything.

pub mod csrf;
pub mod session;

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpMessage, HttpRequest};

use crate::db::{self, now};
use crate::domain::audit::AuditContext;
use crate::domain::orgs::{store, OrganizationRow, Role};
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// A user acting within one organization, by session or by token.
#[derive(Clone)]
pub struct Actor {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub org: OrganizationRow,
    pub role: Role,
    pub ip: String,
    pub request_id: String,
    /// The policy revision in the database when this request started.
    pub policy_revision: i64,
    authz: crate::domain::policy::Authorizer,
    /// For an API token: its scopes, which narrow the user's rights (never widen them).
    pub token_scopes: Option<Vec<String>>,
    /// How the person reads times and figures (the console formats with it).
    pub local: crate::locale::Local,
}

impl Actor {
    pub fn org_id(&self) -> &str {
        &self.org.id
    }

    fn scoped(&self, resource: &str, action: &str) -> bool {
        self.token_scopes
            .as_ref()
            .is_none_or(|s| crate::domain::orgs::scopes::allows(s, resource, action))
    }

    pub async fn can(&self, resource: &str, action: &str) -> AppResult<bool> {
        if !self.scoped(resource, action) {
            return Ok(false);
        }
        self.authz.refresh(self.policy_revision).await?;
        self.authz
            .allows(&self.user_id, &self.org.id, resource, action)
            .await
    }

    /// Refuses with 403 unless policy grants `action` on `resource` in this organization.
    pub async fn require(&self, resource: &str, action: &str) -> AppResult<()> {
        if self.can(resource, action).await? {
            Ok(())
        } else if !self.scoped(resource, action) {
            Err(AppError::Forbidden(format!(
                "This API token's scopes do not allow it to {action} {}.",
                crate::ops::resource_label(resource)
            )))
        } else {
            Err(AppError::Forbidden(format!(
                "Your role may not {action} {}.",
                crate::ops::resource_label(resource)
            )))
        }
    }

    pub async fn permissions(&self) -> AppResult<crate::domain::policy::Granted> {
        self.authz.refresh(self.policy_revision).await?;
        let rights = self.authz.permissions(&self.user_id, &self.org.id).await?;
        if self.full_token() {
            return Ok(rights);
        }
        Ok(std::sync::Arc::new(
            rights
                .iter()
                .filter(|(r, a)| self.scoped(r, a))
                .cloned()
                .collect(),
        ))
    }

    /// Whether this is a token carrying every right of its user (only such a token may
    /// make other tokens: a narrow one must not mint a wide one).
    pub fn full_token(&self) -> bool {
        self.token_scopes
            .as_ref()
            .is_none_or(|s| s.iter().any(|x| x == "*"))
    }

    pub fn audit(&self) -> AuditContext {
        AuditContext {
            org_id: self.org.id.clone(),
            actor_user_id: Some(self.user_id.clone()),
            actor_label: self.email.clone(),
            ip: self.ip.clone(),
            request_id: self.request_id.clone(),
            import_batch: None,
        }
    }
}

/// The id of the request, set by the request-id middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub fn request_id(req: &HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default()
}

/// The peer address, or the forwarded one when the operator trusts a proxy.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> String {
    let info = req.connection_info();
    let addr = if trust_proxy {
        info.realip_remote_addr().map(str::to_string)
    } else {
        req.peer_addr().map(|a| a.ip().to_string())
    };
    addr.unwrap_or_else(|| "unknown".into())
}

fn state_of(req: &HttpRequest) -> AppResult<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Internal("application state missing".into()))
}

/// An API caller authenticated by `Authorization: Bearer <token>`.
pub struct ApiActor(pub Actor);

impl std::ops::Deref for ApiActor {
    type Target = Actor;
    fn deref(&self) -> &Actor {
        &self.0
    }
}

impl FromRequest for ApiActor {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            let token = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(AppError::Unauthorized)?
                .to_string();
            let hash = crate::domain::orgs::password::sha256_hex(&token);
            let (user, org, role, revision, token) = db::run(&state.pool, move |c| {
                let token = store::find_live_token(c, &hash)?.ok_or(AppError::Unauthorized)?;
                let member = store::find_member(c, &token.organization_id, &token.user_id)?
                    .filter(|m| m.membership.is_active)
                    .ok_or(AppError::Unauthorized)?;
                let role = Role::parse(&member.membership.role).ok_or(AppError::Unauthorized)?;
                let org =
                    store::find_org(c, &token.organization_id)?.ok_or(AppError::Unauthorized)?;
                let at = now();
                // why: one write per minute at most keeps API reads from serialising on SQLite.
                if token
                    .last_used_at
                    .is_none_or(|t| at - t > chrono::Duration::seconds(60))
                {
                    store::touch_token(c, &token.id, at)?;
                }
                let revision = crate::domain::policy::store::revision(c)?;
                Ok((member.user, org, role, revision, token))
            })
            .await?;
            rate::admit(&token.id, token.rate_limit)?;
            Ok(ApiActor(Actor {
                local: crate::locale::Local::of(&user.time_zone, &user.locale),
                user_id: user.id,
                email: user.email,
                name: user.name,
                org,
                role,
                ip: client_ip(&req, state.config.trust_proxy),
                request_id: request_id(&req),
                policy_revision: revision,
                authz: state.authz.clone(),
                token_scopes: Some(crate::domain::orgs::scopes::parse(&token.scopes)),
            }))
        })
    }
}

/// A console user, authenticated by the session cookie.
pub struct ConsoleActor {
    pub actor: Actor,
    pub session_id: String,
    pub csrf: String,
    /// Every organization the user may switch to, with their role there.
    pub orgs: Vec<(OrganizationRow, String)>,
}

impl std::ops::Deref for ConsoleActor {
    type Target = Actor;
    fn deref(&self) -> &Actor {
        &self.actor
    }
}

impl FromRequest for ConsoleActor {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            let token = req
                .cookie(session::SESSION_COOKIE)
                .map(|c| c.value().to_string())
                .ok_or(AppError::Unauthorized)?;
            let session_id = crate::domain::orgs::password::sha256_hex(&token);
            let sid = session_id.clone();
            let (user, org, role, orgs, revision) = db::run(&state.pool, move |c| {
                let s = session::load(c, &sid)?.ok_or(AppError::Unauthorized)?;
                let member = store::find_member(c, &s.organization_id, &s.user_id)?
                    .filter(|m| m.membership.is_active)
                    .ok_or(AppError::Unauthorized)?;
                let role = Role::parse(&member.membership.role).ok_or(AppError::Unauthorized)?;
                let org = store::find_org(c, &s.organization_id)?.ok_or(AppError::Unauthorized)?;
                let orgs = store::orgs_of_user(c, &s.user_id)?;
                let revision = crate::domain::policy::store::revision(c)?;
                Ok((member.user, org, role, orgs, revision))
            })
            .await?;
            Ok(ConsoleActor {
                actor: Actor {
                    local: crate::locale::Local::of(&user.time_zone, &user.locale),
                    user_id: user.id,
                    email: user.email,
                    name: user.name,
                    org,
                    role,
                    ip: client_ip(&req, state.config.trust_proxy),
                    request_id: request_id(&req),
                    policy_revision: revision,
                    authz: state.authz.clone(),
                    token_scopes: None,
                },
                session_id,
                csrf: csrf::token_of(&req).unwrap_or_default(),
                orgs,
            })
        })
    }
}

/// Per-token rate limits: a fixed one-minute window per token, in this process (each
/// instance counts its own requests; behind a balancer the limit is per instance).
mod rate {
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};
    use std::time::{Duration, Instant};

    use crate::error::AppError;

    const WINDOW: Duration = Duration::from_secs(60);
    static WINDOWS: LazyLock<Mutex<HashMap<String, (Instant, i32)>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));

    pub fn admit(token: &str, limit: i32) -> Result<(), AppError> {
        let now = Instant::now();
        let mut map = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 50_000 {
            map.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = map.entry(token.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            let wait = WINDOW.saturating_sub(now.duration_since(entry.0)).as_secs() + 1;
            return Err(AppError::RateLimited(
                format!(
                    "This API token may make {limit} requests a minute; try again in {wait} s."
                ),
                wait,
            ));
        }
        entry.1 += 1;
        Ok(())
    }
}
