//! Admin areas of the console: users, permissions and the audit log.

pub mod audit;
pub mod fields;
pub mod permissions;
pub mod pipelines;
pub mod plugins;
pub mod tags;
pub mod users;
pub mod webhooks;
pub mod workflows;
