//! A vendor's first hour, without Rapport: copy an example plugin out of the repository
//! (depending on the SDK by path, as a vendor's crate would), pack it with
//! `cargo rapport-plugin`, check the bundle, and see the packer refuse what Rapport would
//! refuse and warn about a hook that is exported but not listed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn packer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cargo-rapport-plugin"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name.to_string_lossy().ends_with(".rapport-plugin") {
            continue;
        }
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The example plugin in a directory of its own, its SDK dependency pointing here.
fn vendor_crate(example: &str) -> PathBuf {
    let sdk = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("rapport-vendor-{example}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&sdk.join("../plugins").join(example), &dir);
    let cargo = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&cargo)
        .unwrap()
        .replace("../../plugin-sdk", sdk.to_str().unwrap());
    std::fs::write(&cargo, text).unwrap();
    dir
}

fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("vendor-plugins")
}

#[test]
fn a_vendor_packs_checks_and_signs_the_example_plugin() {
    let dir = vendor_crate("real-estate");
    let out = packer()
        .args(["rapport-plugin", "pack"])
        .arg(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pack failed: {stderr}");
    let bundle = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    assert_eq!(
        bundle,
        dir.join("com.rapport.real-estate-0.1.0.rapport-plugin")
    );
    assert!(!stderr.contains("warning:"), "{stderr}");

    let check = packer().arg("check").arg(&bundle).output().unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{said}");
    assert!(said.contains("Rapport will accept this bundle."), "{said}");
    assert!(said.contains("asks for: log"), "{said}");

    // Signed with a key of the vendor's: `check` names the signer, whose public key keygen
    // printed; the key file is refused as a second target.
    let key = dir.join("vendor.key");
    let made = packer().arg("keygen").arg(&key).output().unwrap();
    assert!(made.status.success());
    let public = String::from_utf8_lossy(&made.stdout).trim().to_string();
    assert_eq!(public.len(), 64);
    let again = packer().arg("keygen").arg(&key).output().unwrap();
    assert!(!again.status.success(), "a key is never overwritten");
    assert!(packer()
        .arg("sign")
        .arg(&bundle)
        .arg(&key)
        .output()
        .unwrap()
        .status
        .success());
    let check = packer().arg("check").arg(&bundle).output().unwrap();
    assert!(String::from_utf8_lossy(&check.stdout).contains(&public));

    // A manifest that forgets an exported hook: packed, with a warning. One that lists a
    // hook the module does not export: refused, and no bundle written.
    let manifest = dir.join("plugin.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::remove_file(&bundle).unwrap();
    std::fs::write(
        &manifest,
        original.replace(
            r#"hooks = ["opportunity_before_move", "opportunity_after_won", "compute"]"#,
            r#"hooks = ["opportunity_before_move", "compute"]"#,
        ),
    )
    .unwrap();
    let out = packer()
        .arg("pack")
        .arg(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "exports the hook opportunity_after_won but plugin.toml's hooks does not list it"
        ),
        "{stderr}"
    );
    std::fs::remove_file(&bundle).unwrap();
    std::fs::write(
        &manifest,
        original.replace(r#""compute"]"#, r#""compute", "format"]"#),
    )
    .unwrap();
    let out = packer()
        .arg("pack")
        .arg(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("lists the hook format but the module does not export it"),
        "{stderr}"
    );
    assert!(!bundle.exists(), "a refused bundle is not written");
    let _ = std::fs::remove_dir_all(&dir);
}
