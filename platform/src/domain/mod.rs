//! Business areas, one folder each: `model.rs` (Diesel structs), `store.rs`
//! (queries), `service.rs` (rules). Stores take a connection and return
//! `QueryResult`; services own validation, authorization-independent rules and audit.

pub mod appointments;
pub mod attachments;
pub mod audit;
pub mod blob_s3;
pub mod calendar;
pub mod clients;
pub mod custom_fields;
pub mod imports;
pub mod interactions;
pub mod money;
pub mod notifications;
pub mod orgs;
pub mod pipeline;
pub mod preferences;
