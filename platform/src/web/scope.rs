//! The request's [`Scope`]: who acts, with which rights, and the handles the operations
//! need. API handlers take an [`ApiScope`]; console handlers, which also render the
//! signed-in user's navigation, build one from their `ConsoleActor` with [`of`].

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::auth::{Actor, ApiActor};
use crate::error::{AppError, AppResult};
use crate::ops::Scope;
use crate::state::AppState;

/// The scope of an actor in this process.
pub async fn of(actor: &Actor, state: &AppState) -> AppResult<Scope> {
    let rights = actor.permissions().await?;
    let mut scope = Scope::user(actor.audit(), &actor.user_id, rights, handles(state));
    scope.token_scoped = !actor.full_token();
    if actor.token_scopes.is_none() {
        scope.local = actor.local;
    }
    Ok(scope)
}

/// The process's handles the operations use.
pub fn handles(state: &AppState) -> crate::ops::Handles {
    crate::ops::Handles {
        pool: state.pool.clone(),
        plugins: state.plugins.clone(),
        blobs: state.blobs.clone(),
        data_dir: state.config.data_dir.clone(),
        secret: state.secret.clone(),
    }
}

/// An API caller's scope (authenticated by its bearer token).
pub struct ApiScope(pub Scope);

impl std::ops::Deref for ApiScope {
    type Target = Scope;
    fn deref(&self) -> &Scope {
        &self.0
    }
}

impl FromRequest for ApiScope {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let actor = ApiActor::from_request(req, payload);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let actor = actor.await?;
            let state =
                state.ok_or_else(|| AppError::Internal("application state missing".into()))?;
            Ok(ApiScope(of(&actor, &state).await?))
        })
    }
}
