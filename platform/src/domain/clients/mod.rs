//! Clients: people and companies, their tags, relations, trash, saved list views,
//! and the list query with filters, custom-field filters, sorts and keyset paging.

pub mod bulk;
pub mod duplicates;
pub mod keys;
pub mod model;
pub mod query;
pub mod service;
pub mod store;

pub use model::*;
