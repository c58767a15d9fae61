//! The plugin bundle (`plugin.toml` + `plugin.wasm`, optionally signed): the format lives
//! in the SDK (`rapport_plugin_sdk::pack`, feature `pack`) so the host and the vendors'
//! packer read and write the same bytes.

pub use rapport_plugin_sdk::pack::{
    pack, pack_dir, pack_dir_with, parse_manifest, unpack, unsigned_part, with_signature, Bundle,
};
