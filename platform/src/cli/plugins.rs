//! `rapport plugin pack|keygen|sign|install`: what a plugin vendor and an operator do with
//! bundles from the command line.

use std::path::Path;

use crate::config::Config;
use crate::domain::audit::AuditContext;
use crate::plugins::signature;

use super::{find_org, open, with_conn};

/// Builds the plugin crate in `dir` for wasm32 and packs it; prints the bundle's path.
pub fn pack(dir: &Path, wasm: Option<&Path>, sign: Option<&Path>) -> anyhow::Result<()> {
    let (path, warnings) =
        crate::plugins::bundle::pack_dir(dir, wasm, sign).map_err(|e| anyhow::anyhow!(e))?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    println!("{}", path.display());
    Ok(())
}

/// Writes a new signing key (owner-only, never over an existing file) and prints its public
/// key.
pub fn keygen(out: &Path) -> anyhow::Result<()> {
    let (secret, public) = signature::generate();
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    let mut file = file
        .open(out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    std::io::Write::write_all(
        &mut file,
        signature::key_file_text(&secret, &public).as_bytes(),
    )?;
    println!("wrote the signing key to {}", out.display());
    println!("public key (add it to an organization's trusted vendor keys):");
    println!("{public}");
    Ok(())
}

/// Signs a bundle in place.
pub fn sign(bundle: &Path, key: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(bundle)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", bundle.display()))?;
    let key = signature::read_key_file(key).map_err(|e| anyhow::anyhow!(e))?;
    let signed = signature::sign(&bytes, &key).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::write(bundle, signed)?;
    println!("{}", bundle.display());
    Ok(())
}

/// Installs (or upgrades) a bundle in an organization with the capabilities granted (all
/// it requests with `grant_all`).
pub fn install(
    config: &Config,
    bundle: &Path,
    org: &str,
    grant: Vec<String>,
    grant_all: bool,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(bundle)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", bundle.display()))?;
    let pool = open(config)?;
    let org = find_org(&pool, org)?;
    let grants = if grant_all {
        crate::plugins::bundle::unpack(&bytes)
            .map_err(|e| anyhow::anyhow!(e))?
            .manifest
            .capabilities
    } else {
        grant
    };
    let ctx = AuditContext::cli(&org.id);
    let row = with_conn(&pool, |c| crate::plugins::install(c, &ctx, &bytes, &grants))?;
    println!(
        "installed {} {} in {} (granted: {})",
        row.plugin_id,
        row.version,
        org.slug,
        row.granted_list().join(", ")
    );
    Ok(())
}
