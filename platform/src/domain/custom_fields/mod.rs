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

/// Field types whose values another component checks (plugins). The write paths take
/// one, so a plugin type is validated on every write, API and console alike.
pub trait ExternalTypes {
    /// The normalised value, or the message to show next to the field.
    fn validate(&self, field_type: &str, value: &str) -> Result<String, String>;

    /// A client was created; called inside the write's transaction, so implementations
    /// queue and act once it commits.
    fn client_created(&self, _client: &crate::domain::clients::ClientRow) {}

    /// A client was changed (the row as saved); like [`Self::client_created`].
    fn client_updated(&self, _client: &crate::domain::clients::ClientRow) {}

    /// A client was moved to the trash (the row as it was); like [`Self::client_created`].
    fn client_deleted(&self, _client: &crate::domain::clients::ClientRow) {}
}

/// For writes where no plugin may run (bulk loads, the CLI).
pub struct NoExternal;

impl ExternalTypes for NoExternal {
    fn validate(&self, _field_type: &str, _value: &str) -> Result<String, String> {
        Err("Plugin field types cannot be checked here.".into())
    }
}
