//! Static checks of a plugin module (its API version and imports), shared with the SDK's
//! packer so a vendor sees at pack time what the host will refuse at install.

pub use rapport_plugin_sdk::pack::{inspect, ModuleFacts, ALLOWED_IMPORT_MODULES};
