//! Organizations, users and memberships (a user's role in each organization),
//! sessions, API tokens and password reset links.

pub mod model;
pub mod password;
pub mod reset;
pub mod scopes;
pub mod service;
pub mod store;

pub use model::*;
