//! `GET /api/me`: who the token acts as, where, and what it may do.

use actix_web::HttpResponse;
use serde_json::json;

use crate::auth::ApiActor;
use crate::error::AppResult;

pub async fn show(actor: ApiActor) -> AppResult<HttpResponse> {
    let permissions: Vec<String> = actor
        .permissions()
        .await?
        .into_iter()
        .map(|(r, a)| format!("{r}:{a}"))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "user": {"id": actor.user_id, "email": actor.email, "name": actor.name},
        "organization": {"id": actor.org.id, "slug": actor.org.slug, "name": actor.org.name},
        "role": actor.role.as_str(),
        "permissions": permissions,
    })))
}
