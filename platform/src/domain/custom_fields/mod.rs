//! Custom fields: admin-defined fields per entity (clients now, opportunities later).
//!
//! Storage (see ARCHITECTURE.md): the record keeps its values as a JSON object, which is
//! what is shown; each value is also written, typed and normalised, to
//! `custom_field_values` — one row per value, indexed by (field, value, record) — which is
//! what filters and sorts use. Both are written by [`store::write_values`] in the same
//! transaction as the record.

pub mod model;
pub mod service;
pub mod store;
pub mod value;

pub use model::*;
