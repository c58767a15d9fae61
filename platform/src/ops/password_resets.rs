//! "Forgot password" for the console and the API alike: asking for a link (recorded and
//! throttled, then mailed from the installation's own mail server in the background) and
//! choosing the new password with it. Nobody is signed in, so there is no [`super::Scope`]:
//! the link's token is the credential.

use lettre::message::{header::ContentType, Mailbox};

use crate::config::SystemMail;
use crate::db::{self, Pool};
use crate::domain::orgs::reset::{self, Issued, Redeemer, VALID_MINUTES};
use crate::error::{AppError, AppResult};

/// What everyone who asks is told, whether or not the address has an account and whether
/// or not it was over its limit.
pub const REQUESTED: &str = "If an account uses this address, we sent it a link to choose a \
    new password. It is valid for 60 minutes.";

/// Why nobody can ask while the server has no mail settings of its own.
pub const NO_SYSTEM_MAIL: &str = "This server cannot send e-mail, so it cannot send you a link. \
    Ask an administrator of your organization: on the Users page they reset your password and \
    give you a one-time password.";

pub const SUBJECT: &str = "Reset your Rapport password";

/// Records the request and, when it issues a link, mails it. Answers as soon as the
/// request is recorded: the mail goes out in the background, so the time of the answer does
/// not tell whether the address has an account.
pub async fn request(
    pool: &Pool,
    mail: Option<&SystemMail>,
    public_url: &str,
    email: String,
    ip: String,
) -> AppResult<()> {
    let Some(mail) = mail.cloned() else {
        return Err(AppError::NotConfigured(NO_SYSTEM_MAIL.into()));
    };
    let issued = db::run(pool, move |c| reset::request(c, &email, &ip)).await?;
    if let Some(issued) = issued {
        let link = format!("{public_url}/password/reset/{}", issued.token);
        send_link(mail, issued, link);
    }
    Ok(())
}

fn body(name: &str, link: &str) -> String {
    format!(
        "Hello {name},\n\n\
         Someone (probably you) asked to reset the password of your Rapport account. Open \
         this link to choose a new one:\n\n\
         {link}\n\n\
         The link is valid for {VALID_MINUTES} minutes and works once. If you did not ask, \
         ignore this mail: your password stays as it is.\n"
    )
}

fn send_link(mail: SystemMail, issued: Issued, link: String) {
    let user_id = issued.user.id.clone();
    let message = mail
        .from
        .parse::<Mailbox>()
        .map_err(|e| format!("RAPPORT_MAIL_FROM: {e}"))
        .and_then(|from| {
            let to = issued
                .user
                .email
                .parse::<Mailbox>()
                .map_err(|e| format!("the account's address: {e}"))?;
            lettre::Message::builder()
                .from(from)
                .to(to)
                .subject(SUBJECT)
                .date_now()
                .header(ContentType::TEXT_PLAIN)
                .body(body(&issued.user.name, &link))
                .map_err(|e| e.to_string())
        });
    let message = match message {
        Ok(m) => m,
        Err(error) => {
            tracing::warn!(user = %user_id, %error, "the password reset mail could not be written");
            return;
        }
    };
    // why: on the blocking pool and not awaited: the answer must not wait for the mail
    // server (its time would tell that the address has an account), and a slow server
    // costs a pool thread for at most the transport's timeout.
    drop(actix_web::rt::task::spawn_blocking(move || {
        let sent = crate::integrations::mail::send(&mail.server, &mail.login, &message);
        match sent {
            Ok(()) => tracing::info!(user = %user_id, "password reset mail sent"),
            Err(e) => tracing::warn!(
                user = %user_id,
                permanent = e.permanent,
                reply = %e.reply,
                "the password reset mail was not sent"
            ),
        }
    }));
}

/// Whether the link still works.
pub async fn link_works(pool: &Pool, token: String) -> AppResult<bool> {
    db::run(pool, move |c| reset::link_works(c, &token)).await
}

/// Sets the new password with the link's token (see [`reset::redeem`]).
pub async fn redeem(
    pool: &Pool,
    token: String,
    password: String,
    ip: String,
    request_id: String,
) -> AppResult<()> {
    db::run(pool, move |c| {
        let user = reset::redeem(
            c,
            &token,
            &password,
            Redeemer {
                ip: &ip,
                request_id: &request_id,
            },
        )?;
        tracing::info!(user = %user.id, "password reset by e-mail link");
        Ok(())
    })
    .await
}
