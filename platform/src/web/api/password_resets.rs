//! `/api/password-resets`: "forgot password" without a token. Asking answers the same
//! whether or not the address has an account; the link's token is what lets its holder
//! choose the new password.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{client_ip, request_id};
use crate::error::AppResult;
use crate::ops::password_resets as ops;
use crate::state::AppState;

#[derive(utoipa::OpenApi)]
#[openapi(paths(request_reset, confirm_reset))]
pub struct Doc;

/// Whose password to reset.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordResetRequest {
    /// The address the person signs in with.
    email: String,
}

/// The request was taken (said alike for every address).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetRequested {
    /// Always `requested`.
    #[schema(value_type = String, example = "requested")]
    status: &'static str,
    /// What to tell the person.
    message: &'static str,
}

/// The token from the link and the new password.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordResetConfirmation {
    token: String,
    /// At least 10 characters.
    password: String,
}

/// Mails a link to choose a new password (no token needed).
///
/// When the address belongs to an account, it receives a link to
/// `/password/reset/{token}`, valid for 60 minutes. The answer is the same for every
/// address, and for requests over the limit (3 an hour per address, 10 per client), which
/// send nothing. 422 for a malformed address; 503 when this server has no mail settings of
/// its own (an administrator of the person's organization resets the password instead).
#[utoipa::path(post, path = "/api/password-resets", tag = "Users",
    security(()),
    request_body = PasswordResetRequest,
    responses((status = 202, description = "Taken; a link is mailed if the address has an account.", body = PasswordResetRequested)))]
pub async fn request_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<PasswordResetRequest>,
) -> AppResult<HttpResponse> {
    ops::request(
        &state.pool,
        state.config.system_mail.as_ref(),
        &crate::config::public_url(&state.config),
        body.into_inner().email,
        client_ip(&req, state.config.trust_proxy),
    )
    .await?;
    Ok(HttpResponse::Accepted().json(PasswordResetRequested {
        status: "requested",
        message: ops::REQUESTED,
    }))
}

/// Sets the new password with the token from the link (no token needed).
///
/// Every session of the person ends and the link stops working. 422 with an error on
/// `token` when the link expired or was used, on `password` when it is too weak.
#[utoipa::path(post, path = "/api/password-resets/confirm", tag = "Users",
    security(()),
    request_body = PasswordResetConfirmation,
    responses((status = 204, description = "The password was changed.")))]
pub async fn confirm_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<PasswordResetConfirmation>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    ops::redeem(
        &state.pool,
        body.token,
        body.password,
        client_ip(&req, state.config.trust_proxy),
        request_id(&req),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
