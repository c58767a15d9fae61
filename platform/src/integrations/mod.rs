//! What Rapport talks to outside itself: mail servers (SMTP out, IMAP in) and the key that
//! keeps their passwords sealed at rest. Transport only: what a message means for clients
//! and timelines is `domain::mail`'s business.

pub mod mail;
pub mod secret;
