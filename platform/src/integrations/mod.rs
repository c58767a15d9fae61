//! What Rapport talks to outside itself: mail servers (SMTP out, IMAP in) and the key that
//! keeps their passwords sealed at rest. Transport only: what a message means for clients
//! and timelines is `domain::mail`'s business.

pub mod mail;
pub mod secret;

/// An HTTP client for calls that leave Rapport (plugin host calls, webhooks): the system's
/// TLS (native-tls, no second TLS stack to build), no redirects (one could lead past the
/// address that was checked or approved), statuses as answers rather than errors, and one
/// time limit for the whole exchange.
pub fn outbound_agent(timeout: std::time::Duration) -> ureq::Agent {
    use ureq::tls::{TlsConfig, TlsProvider};
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .tls_config(
            TlsConfig::builder()
                .provider(TlsProvider::NativeTls)
                .build(),
        )
        .build()
        .into()
}
