//! Organizations, users and memberships (a user's role in each organization),
//! sessions and API tokens.

pub mod model;
pub mod password;
pub mod scopes;
pub mod service;
pub mod store;

pub use model::*;
