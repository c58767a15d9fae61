//! Plugin bundles for vendors and for the host, one implementation: the file format,
//! signatures, the static checks of a module against its manifest, and packing a plugin
//! crate. Behind the `pack` feature so a plugin built for wasm32 carries none of it; the
//! `cargo-rapport-plugin` binary (this crate, `--features pack`) packs and checks a plugin
//! without building Rapport.
//!
//! The bundle: the line `RAPPORT-PLUGIN 1`, then for each part a line `<name> <length>` and
//! that many bytes: first `manifest` (the TOML), then `wasm`, then optionally `signature`
//! (`ed25519 <public key hex> <signature hex>` over every byte before the signature part).
//! Plain, streamable, and readable with `head`.
//!
//! ed25519-dalek because it is the maintained pure-Rust ed25519 (RustCrypto's `signature`
//! traits, constant-time, no C); keys and signatures travel as hex so a key fits on one line.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::{capabilities, hooks, Manifest, API_VERSION};

pub struct Bundle {
    pub manifest_toml: String,
    pub manifest: Manifest,
    pub wasm: Vec<u8>,
    /// The signer's public key (hex) when the bundle carries a valid signature.
    pub signer: Option<String>,
}

/// Stage kinds and colours a pipeline template may use (the host's own).
pub const STAGE_KINDS: &[&str] = &["open", "won", "lost"];
pub const STAGE_COLORS: &[&str] = &[
    "gray", "blue", "green", "yellow", "orange", "red", "purple", "teal",
];

/// One thing wrong with a bundle: the manifest key (or `wasm`) and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
}

impl Problem {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Host API versions this SDK's host runs: the same major and minor.
pub fn supports(api_version: &str) -> bool {
    let major_minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    major_minor(api_version) == major_minor(API_VERSION)
}

const MAGIC: &[u8] = b"RAPPORT-PLUGIN 1\n";

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
            "this file is not a Rapport plugin bundle (make one with `cargo rapport-plugin pack` or `rapport plugin pack`)".into(),
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
        Some(verify_part(&bytes[..signed_len], text)?)
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
/// built), checks the bundle as Rapport will at install, and writes
/// `<id>-<version>.rapport-plugin` next to it. Returns its path and the warnings (what
/// Rapport accepts but ignores); a bundle Rapport would refuse is not written.
pub fn pack_dir(
    dir: &std::path::Path,
    wasm: Option<&std::path::Path>,
    signing_key: Option<&std::path::Path>,
) -> Result<(std::path::PathBuf, Vec<String>), String> {
    pack_dir_with(dir, wasm, signing_key, true)
}

/// [`pack_dir`], optionally without refusing what the host would refuse (the host's own
/// tests pack misbehaving plugins on purpose).
pub fn pack_dir_with(
    dir: &std::path::Path,
    wasm: Option<&std::path::Path>,
    signing_key: Option<&std::path::Path>,
    refuse: bool,
) -> Result<(std::path::PathBuf, Vec<String>), String> {
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
    let bundle = unpack(&bytes)?;
    let problems = check(&bundle);
    if refuse && !problems.is_empty() {
        return Err(problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.message))
            .collect::<Vec<_>>()
            .join("\n"));
    }
    let warnings = warnings(&bundle);
    if let Some(key) = signing_key {
        bytes = sign(&bytes, &read_key_file(key)?)?;
    }
    std::fs::write(&out, bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok((out, warnings))
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The public key in hex, or why the text is not one.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = from_hex(text)
        .and_then(|b| b.try_into().ok())
        .ok_or("A public key is 64 hexadecimal characters (from `rapport plugin keygen`).")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "This is not a valid ed25519 public key.".into())
}

/// A new signing key: (secret hex, public hex).
pub fn generate() -> (String, String) {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let key = SigningKey::from_bytes(&secret);
    (to_hex(&secret), to_hex(key.verifying_key().as_bytes()))
}

pub fn read_key_file(path: &std::path::Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the signing key {}: {e}", path.display()))?;
    let secret: [u8; 32] = text
        .lines()
        .find_map(|l| l.strip_prefix("secret "))
        .and_then(from_hex)
        .and_then(|b| b.try_into().ok())
        .ok_or("the signing key file is damaged (make one with `rapport plugin keygen`)")?;
    Ok(SigningKey::from_bytes(&secret))
}

pub fn key_file_text(secret_hex: &str, public_hex: &str) -> String {
    format!(
        "# Rapport plugin signing key: keep it secret.\npublic {public_hex}\nsecret {secret_hex}\n"
    )
}

/// Signs a bundle (replacing any signature it had).
pub fn sign(bundle: &[u8], key: &SigningKey) -> Result<Vec<u8>, String> {
    let unsigned = unsigned_part(bundle)?;
    let signature = key.sign(unsigned);
    let text = format!(
        "ed25519 {} {}",
        to_hex(key.verifying_key().as_bytes()),
        to_hex(&signature.to_bytes())
    );
    Ok(with_signature(unsigned, &text))
}

/// Checks a bundle's signature part against the bytes it covers; returns the signer's
/// public key in hex.
pub fn verify_part(signed: &[u8], part: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(part).map_err(|_| "the bundle's signature is damaged")?;
    let mut words = text.split_whitespace();
    let (Some("ed25519"), Some(key), Some(sig), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err("the bundle's signature is not an ed25519 signature".into());
    };
    let key = parse_public_key(key)?;
    let sig: [u8; 64] = from_hex(sig)
        .and_then(|b| b.try_into().ok())
        .ok_or("the bundle's signature is damaged")?;
    key.verify(signed, &Signature::from_bytes(&sig))
        .map_err(|_| {
            "the bundle's signature does not match its contents: it was changed after signing"
                .to_string()
        })?;
    Ok(to_hex(key.as_bytes()))
}

/// Import modules a plugin may use: Extism's runtime functions. Host functions behind
/// capabilities will add `extism:host/user` when they exist.
pub const ALLOWED_IMPORT_MODULES: &[&str] = &["extism:host/env"];

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.at).ok_or("the module ends early")?;
        self.at += 1;
        Ok(v)
    }

    fn leb(&mut self) -> Result<u64, String> {
        let mut result = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            result |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(result);
            }
            shift += 7;
            if shift > 63 {
                return Err("a number in the module is too long".into());
            }
        }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or("the module ends early")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn name(&mut self) -> Result<String, String> {
        let n = usize::try_from(self.leb()?).map_err(|_| "a name is too long")?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| "a name is not UTF-8".into())
    }

    fn limits(&mut self) -> Result<(), String> {
        let flags = self.byte()?;
        self.leb()?;
        if flags & 1 == 1 {
            self.leb()?;
        }
        Ok(())
    }
}

/// What the checks found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModuleFacts {
    pub api_version: Option<String>,
    pub imports: Vec<(String, String)>,
    pub exports: Vec<String>,
}

/// Reads the module's version section, imports and exported names.
pub fn inspect(wasm: &[u8]) -> Result<ModuleFacts, String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err("this is not a WebAssembly module".into());
    }
    let mut r = Reader { b: wasm, at: 8 };
    let mut facts = ModuleFacts::default();
    while r.at < wasm.len() {
        let id = r.byte()?;
        let size = usize::try_from(r.leb()?).map_err(|_| "a section is too large")?;
        let body = r.bytes(size)?;
        let mut s = Reader { b: body, at: 0 };
        match id {
            0 => {
                let name = s.name()?;
                if name == crate::API_VERSION_SECTION {
                    facts.api_version = Some(
                        String::from_utf8_lossy(&body[s.at..])
                            .trim_end_matches('\0')
                            .to_string(),
                    );
                }
            }
            2 => {
                for _ in 0..s.leb()? {
                    let module = s.name()?;
                    let field = s.name()?;
                    match s.byte()? {
                        0x00 => {
                            s.leb()?;
                        }
                        0x01 => {
                            s.byte()?;
                            s.limits()?;
                        }
                        0x02 => s.limits()?,
                        0x03 => {
                            s.byte()?;
                            s.byte()?;
                        }
                        0x04 => {
                            s.byte()?;
                            s.leb()?;
                        }
                        other => return Err(format!("unknown import kind {other}")),
                    }
                    facts.imports.push((module, field));
                }
            }
            7 => {
                for _ in 0..s.leb()? {
                    let name = s.name()?;
                    s.byte()?;
                    s.leb()?;
                    facts.exports.push(name);
                }
            }
            _ => {}
        }
    }
    Ok(facts)
}

/// Everything that can be checked before a bundle is stored.
pub fn check(bundle: &Bundle) -> Vec<Problem> {
    let m = &bundle.manifest;
    let mut errors = Vec::new();
    if m.id.is_empty()
        || m.id.len() > 100
        || !m
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
    {
        errors.push(Problem::new(
            "id",
            "Use a plugin id of letters, digits, dots and dashes (at most 100).",
        ));
    }
    if !supports(&m.api_version) {
        errors.push(Problem::new(
            "api_version",
            format!("The plugin was built for API {}; this Rapport runs plugin API {API_VERSION}. Ask the vendor for a build against it.", m.api_version),
        ));
    }
    for c in &m.capabilities {
        if !capabilities::ALL.contains(&c.as_str()) {
            errors.push(Problem::new(
                "capabilities",
                format!("Unknown capability {c:?}."),
            ));
        }
    }
    for t in &m.pipeline_templates {
        let bad_stage = t.stages.iter().any(|s| {
            !STAGE_KINDS.contains(&s.kind.as_str())
                || !STAGE_COLORS.contains(&s.color.as_str())
                || !(0..=100).contains(&s.probability)
        });
        let missing_kind = STAGE_KINDS
            .iter()
            .any(|k| !t.stages.iter().any(|s| s.kind == *k));
        if bad_stage || missing_kind {
            errors.push(Problem::new(
                "pipeline_templates",
                format!(
                    "The pipeline template {:?} needs open, won and lost stages with known kinds, colours and probabilities 0 to 100.",
                    t.key
                ),
            ));
        }
    }
    for h in &m.hooks {
        if !hooks::ALL.contains(&h.as_str()) {
            errors.push(Problem::new("hooks", format!("Unknown hook {h:?}.")));
        }
    }
    for f in &m.computed_fields {
        if !["client", "opportunity"].contains(&f.entity.as_str()) || f.key.is_empty() {
            errors.push(Problem::new(
                "computed_fields",
                format!(
                    "The computed field {:?} needs a key and the entity client or opportunity.",
                    f.key
                ),
            ));
        }
    }
    if !m.computed_fields.is_empty() && !m.hooks.iter().any(|h| h == hooks::COMPUTE) {
        errors.push(Problem::new(
            "hooks",
            "A plugin with computed fields exports the compute hook; list it in hooks.",
        ));
    }
    let mut keys = std::collections::HashSet::new();
    for d in &m.settings {
        if !crate::setting_kinds::ALL.contains(&d.kind.as_str())
            || d.key.is_empty()
            || !keys.insert(d.key.as_str())
        {
            errors.push(Problem::new(
                "settings",
                format!(
                    "The setting {:?} needs a unique key and one of the kinds {}.",
                    d.key,
                    crate::setting_kinds::ALL.join(", ")
                ),
            ));
        }
    }
    let mut action_keys = std::collections::HashSet::new();
    for a in &m.actions {
        let mut setting_keys = std::collections::HashSet::new();
        let bad_setting = a.settings.iter().any(|d| {
            !crate::setting_kinds::ALL.contains(&d.kind.as_str())
                || d.key.is_empty()
                || d.is_secret()
                || !setting_keys.insert(d.key.as_str())
        });
        if a.key.is_empty() || a.label.is_empty() || !action_keys.insert(a.key.as_str()) {
            errors.push(Problem::new(
                "actions",
                format!("The action {:?} needs a unique key and a label.", a.key),
            ));
        }
        if bad_setting {
            errors.push(Problem::new(
                "actions",
                format!(
                    "The action {:?} has a setting without a unique key, of an unknown kind, or secret (a workflow shows its steps' settings).",
                    a.key
                ),
            ));
        }
    }
    if !m.actions.is_empty() && !m.hooks.iter().any(|h| h == hooks::RUN_ACTION) {
        errors.push(Problem::new(
            "hooks",
            "A plugin with actions exports the run_action hook; list it in hooks.",
        ));
    }
    let mut trigger_keys = std::collections::HashSet::new();
    for t in &m.triggers {
        if t.key.is_empty() || t.label.is_empty() || !trigger_keys.insert(t.key.as_str()) {
            errors.push(Problem::new(
                "triggers",
                format!("The trigger {:?} needs a unique key and a label.", t.key),
            ));
        }
    }
    for h in &m.allowed_hosts {
        let bare = h.rsplit_once(':').map_or(h.as_str(), |(host, _)| host);
        if bare.is_empty() || h.contains('/') || h.contains('*') {
            errors.push(Problem::new(
                "allowed_hosts",
                format!("{h:?} is not a host name (write `api.example.com` or `host:port`)."),
            ));
        }
    }
    match inspect(&bundle.wasm) {
        Err(e) => errors.push(Problem::new("wasm", e)),
        Ok(facts) => {
            match facts.api_version.as_deref() {
                Some(v) if v == m.api_version => {}
                Some(v) => errors.push(Problem::new(
                    "wasm",
                    format!(
                        "The module says API {v} but plugin.toml says {}.",
                        m.api_version
                    ),
                )),
                None => errors.push(Problem::new(
                    "wasm",
                    "The module carries no API version; build it with rapport-plugin-sdk.",
                )),
            }
            for (module, name) in &facts.imports {
                if module == "extism:host/user" {
                    // A host function: known, and its capability requested in the manifest.
                    match crate::host_functions::ALL
                        .iter()
                        .find(|(f, _)| f == name)
                    {
                        Some((_, None)) => {}
                        Some((_, Some(cap))) if m.capabilities.iter().any(|c| c == cap) => {}
                        Some((_, Some(cap))) => errors.push(Problem::new(
                            "capabilities",
                            format!("The module uses {name}, which needs the {cap} capability; request it in plugin.toml."),
                        )),
                        None => errors.push(Problem::new(
                            "wasm",
                            format!("The module imports the host function {name}, which Rapport does not provide."),
                        )),
                    }
                } else if module == "extism:host/env"
                    && (name.starts_with("log_") || name == "get_log_level")
                {
                    // why: Extism's own log functions write to our log with no capability
                    // check, no size cap and no plugin named; plugins log through the SDK's
                    // `log`, which needs the log capability.
                    errors.push(Problem::new(
                        "wasm",
                        format!("The module imports Extism's {name}; log through rapport_plugin_sdk::log (needs the log capability) instead."),
                    ));
                } else if !ALLOWED_IMPORT_MODULES.contains(&module.as_str()) {
                    errors.push(Problem::new("wasm", format!("The module imports {module}::{name}, which plugins may not use (no WASI, no other host functions).")));
                }
            }
            for h in &m.hooks {
                if !facts.exports.contains(h) {
                    errors.push(Problem::new(
                        "hooks",
                        format!(
                            "plugin.toml lists the hook {h} but the module does not export it."
                        ),
                    ));
                }
            }
        }
    }
    errors
}

/// What a bundle does that Rapport accepts but probably did not mean: exported hooks that
/// `hooks` does not list (Rapport never calls them).
pub fn warnings(bundle: &Bundle) -> Vec<String> {
    let Ok(facts) = inspect(&bundle.wasm) else {
        return Vec::new();
    };
    facts
        .exports
        .iter()
        .filter(|e| hooks::ALL.contains(&e.as_str()) && !bundle.manifest.hooks.contains(e))
        .map(|e| {
            format!("the module exports the hook {e} but plugin.toml's hooks does not list it: Rapport will never call it")
        })
        .collect()
}
