//! Admin areas of the console: users, permissions and the audit log.

pub mod audit;
pub mod permissions;
pub mod users;
