//! `cargo rapport-plugin`: pack, sign and check Rapport plugin bundles without building
//! Rapport. Install once with
//! `cargo install --path plugin-sdk --features pack` (or `--git <repo> rapport-plugin-sdk`).
//!
//! Hand-parsed arguments: four commands and two flags do not earn a parser crate in a tool
//! whose point is to build fast.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rapport_plugin_sdk::pack;

const USAGE: &str = "\
usage: cargo rapport-plugin <command>

  pack [DIR] [--wasm FILE] [--sign KEYFILE]
        build the plugin crate in DIR (default .) for wasm32-unknown-unknown, check it as
        Rapport checks it at install, and write <id>-<version>.rapport-plugin in DIR
  check BUNDLE
        what Rapport will say about a bundle: refusals, warnings, what it asks for
  keygen KEYFILE
        make a signing key; prints the public key to give your customers
  sign BUNDLE KEYFILE
        sign a bundle in place";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // Run as `cargo rapport-plugin …`, cargo passes the subcommand's name first.
    if args.first().map(String::as_str) == Some("rapport-plugin") {
        args.remove(0);
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn flag(args: &mut Vec<String>, name: &str) -> Result<Option<PathBuf>, String> {
    let Some(i) = args.iter().position(|a| a == name) else {
        return Ok(None);
    };
    if i + 1 >= args.len() {
        return Err(format!("{name} needs a file"));
    }
    let value = args.remove(i + 1);
    args.remove(i);
    Ok(Some(PathBuf::from(value)))
}

fn run(args: &[String]) -> Result<(), String> {
    let mut args = args.to_vec();
    let command = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    match command.as_str() {
        "pack" => {
            let wasm = flag(&mut args, "--wasm")?;
            let key = flag(&mut args, "--sign")?;
            let dir = PathBuf::from(args.first().map_or(".", String::as_str));
            let (path, warnings) = pack::pack_dir(&dir, wasm.as_deref(), key.as_deref())?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            println!("{}", path.display());
            Ok(())
        }
        "check" => {
            let path = args.first().ok_or("check needs a bundle")?;
            check(Path::new(path))
        }
        "keygen" => {
            let path = args
                .first()
                .ok_or("keygen needs a file to write the key to")?;
            let path = Path::new(path);
            let (secret, public) = pack::generate();
            // Owner-only, and never over an existing key.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            std::io::Write::write_all(&mut file, pack::key_file_text(&secret, &public).as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("{public}");
            Ok(())
        }
        "sign" => {
            let (Some(bundle), Some(key)) = (args.first(), args.get(1)) else {
                return Err("sign needs a bundle and a key file".into());
            };
            let bytes = std::fs::read(bundle).map_err(|e| format!("cannot read {bundle}: {e}"))?;
            let signed = pack::sign(&bytes, &pack::read_key_file(Path::new(key))?)?;
            std::fs::write(bundle, signed).map_err(|e| format!("cannot write {bundle}: {e}"))?;
            println!("{bundle}");
            Ok(())
        }
        "" | "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    }
}

fn check(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bundle = pack::unpack(&bytes)?;
    let m = &bundle.manifest;
    println!(
        "{} {} by {} (plugin API {})",
        m.id, m.version, m.vendor, m.api_version
    );
    println!("module: {} bytes", bundle.wasm.len());
    println!(
        "signed: {}",
        bundle
            .signer
            .as_deref()
            .unwrap_or("no (admins may require signatures)")
    );
    if !m.capabilities.is_empty() {
        println!("asks for: {}", m.capabilities.join(", "));
    }
    if !m.hooks.is_empty() {
        println!("hooks: {}", m.hooks.join(", "));
    }
    for w in pack::warnings(&bundle) {
        println!("warning: {w}");
    }
    let problems = pack::check(&bundle);
    if problems.is_empty() {
        println!("Rapport will accept this bundle.");
        Ok(())
    } else {
        for p in &problems {
            println!("refused: {}: {}", p.field, p.message);
        }
        Err(format!(
            "Rapport will refuse this bundle ({} problems)",
            problems.len()
        ))
    }
}
