//! The plugin bundle: one file holding `plugin.toml` and `plugin.wasm`.
//!
//! Layout: the line `RAPPORT-PLUGIN 1`, then for each part a line `<name> <length>` and
//! that many bytes: first `manifest` (the TOML), then `wasm`, then optionally `signature`
//! (`ed25519 <public key hex> <signature hex>` over every byte before the signature part).
//! Plain, streamable, and readable with `head`.

use rapport_plugin_sdk::Manifest;

const MAGIC: &[u8] = b"RAPPORT-PLUGIN 1\n";

pub struct Bundle {
    pub manifest_toml: String,
    pub manifest: Manifest,
    pub wasm: Vec<u8>,
    /// The signer's public key (hex) when the bundle carries a valid signature.
    pub signer: Option<String>,
}

pub fn pack(manifest_toml: &str, wasm: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(format!("manifest {}\n", manifest_toml.len()).as_bytes());
    out.extend_from_slice(manifest_toml.as_bytes());
    out.extend_from_slice(format!("wasm {}\n", wasm.len()).as_bytes());
    out.extend_from_slice(wasm);
    out
}

fn part<'a>(bytes: &'a [u8], at: &mut usize, name: &str) -> Result<&'a [u8], String> {
    let rest = &bytes[*at..];
    let nl = rest
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("the bundle is cut short")?;
    let header = std::str::from_utf8(&rest[..nl]).map_err(|_| "the bundle is damaged")?;
    let len: usize = header
        .strip_prefix(name)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("the bundle lacks its {name}"))?;
    let start = *at + nl + 1;
    let end = start
        .checked_add(len)
        .filter(|e| *e <= bytes.len())
        .ok_or("the bundle is cut short")?;
    *at = end;
    Ok(&bytes[start..end])
}

pub fn parse_manifest(toml_text: &str) -> Result<Manifest, String> {
    toml::from_str(toml_text).map_err(|e| format!("plugin.toml is not valid: {e}"))
}

pub fn unpack(bytes: &[u8]) -> Result<Bundle, String> {
    if !bytes.starts_with(MAGIC) {
        return Err(
            "this file is not a Rapport plugin bundle (make one with `rapport plugin pack`)".into(),
        );
    }
    let mut at = MAGIC.len();
    let toml_bytes = part(bytes, &mut at, "manifest")?;
    let wasm = part(bytes, &mut at, "wasm")?.to_vec();
    let signed_len = at;
    let signer = if at == bytes.len() {
        None
    } else {
        let text = part(bytes, &mut at, "signature")?;
        if at != bytes.len() {
            return Err("the bundle has bytes after its signature".into());
        }
        Some(super::signature::verify_part(&bytes[..signed_len], text)?)
    };
    let manifest_toml =
        String::from_utf8(toml_bytes.to_vec()).map_err(|_| "plugin.toml is not UTF-8")?;
    let manifest = parse_manifest(&manifest_toml)?;
    Ok(Bundle {
        manifest_toml,
        manifest,
        wasm,
        signer,
    })
}

/// The bundle without its signature part (what a signature covers).
pub fn unsigned_part(bytes: &[u8]) -> Result<&[u8], String> {
    if !bytes.starts_with(MAGIC) {
        return Err("this file is not a Rapport plugin bundle".into());
    }
    let mut at = MAGIC.len();
    part(bytes, &mut at, "manifest")?;
    part(bytes, &mut at, "wasm")?;
    Ok(&bytes[..at])
}

/// Appends a signature part to an unsigned bundle.
pub fn with_signature(unsigned: &[u8], signature_text: &str) -> Vec<u8> {
    let mut out = unsigned.to_vec();
    out.extend_from_slice(format!("signature {}\n", signature_text.len()).as_bytes());
    out.extend_from_slice(signature_text.as_bytes());
    out
}

/// Builds the plugin crate in `dir` for wasm32 (unless `wasm` names a module already
/// built) and writes `<id>-<version>.rapport-plugin` next to it. Returns its path.
pub fn pack_dir(
    dir: &std::path::Path,
    wasm: Option<&std::path::Path>,
    signing_key: Option<&std::path::Path>,
) -> Result<std::path::PathBuf, String> {
    let toml_text = std::fs::read_to_string(dir.join("plugin.toml"))
        .map_err(|e| format!("cannot read {}: {e}", dir.join("plugin.toml").display()))?;
    let manifest = parse_manifest(&toml_text)?;
    let wasm_path = match wasm {
        Some(p) => p.to_path_buf(),
        None => {
            let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml"))
                .map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
            let crate_name = toml::from_str::<toml::Table>(&cargo_toml)
                .ok()
                .and_then(|t| t.get("package")?.get("name")?.as_str().map(str::to_string))
                .ok_or("Cargo.toml names no package")?;
            let target_dir = std::env::var("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|_| dir.join("target"));
            let status = std::process::Command::new(
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            )
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "--manifest-path",
            ])
            .arg(dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !status.success() {
                return Err("building the plugin for wasm32-unknown-unknown failed (is the target installed? `rustup target add wasm32-unknown-unknown`)".into());
            }
            target_dir
                .join("wasm32-unknown-unknown/release")
                .join(format!("{}.wasm", crate_name.replace('-', "_")))
        }
    };
    let wasm_bytes = std::fs::read(&wasm_path)
        .map_err(|e| format!("cannot read {}: {e}", wasm_path.display()))?;
    let out = dir.join(format!(
        "{}-{}.rapport-plugin",
        manifest.id, manifest.version
    ));
    let mut bytes = pack(&toml_text, &wasm_bytes);
    if let Some(key) = signing_key {
        bytes = super::signature::sign(&bytes, &super::signature::read_key_file(key)?)?;
    }
    std::fs::write(&out, bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(out)
}
