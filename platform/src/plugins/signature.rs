//! Bundle signatures: a vendor signs a bundle with an ed25519 key (`rapport plugin keygen`,
//! `rapport plugin pack --sign`); an organization lists the vendor keys it trusts and may
//! refuse every bundle not signed by one of them.
//!
//! ed25519-dalek because it is the maintained pure-Rust ed25519 (RustCrypto's `signature`
//! traits, constant-time, no C); keys and signatures travel as hex so a key fits on one line.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::json;

use crate::db::schema::{organizations, plugin_trusted_keys};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult};

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
    let unsigned = super::bundle::unsigned_part(bundle)?;
    let signature = key.sign(unsigned);
    let text = format!(
        "ed25519 {} {}",
        to_hex(key.verifying_key().as_bytes()),
        to_hex(&signature.to_bytes())
    );
    Ok(super::bundle::with_signature(unsigned, &text))
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

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = plugin_trusted_keys)]
pub struct TrustedKey {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub public_key: String,
    pub created_at: NaiveDateTime,
}

impl TrustedKey {
    /// The key shortened for tables: first 16 and last 8 hex digits.
    pub fn short(&self) -> String {
        let k = &self.public_key;
        match (k.get(..16), k.get(k.len().saturating_sub(8)..)) {
            (Some(a), Some(b)) if k.len() > 24 => format!("{a}…{b}"),
            _ => k.clone(),
        }
    }
}

pub fn trusted_keys(conn: &mut DbConn, org_id: &str) -> AppResult<Vec<TrustedKey>> {
    Ok(plugin_trusted_keys::table
        .filter(plugin_trusted_keys::organization_id.eq(org_id))
        .order(plugin_trusted_keys::name.asc())
        .select(TrustedKey::as_select())
        .load(conn)?)
}

pub fn add_trusted_key(
    conn: &mut DbConn,
    ctx: &AuditContext,
    name: &str,
    public_key: &str,
) -> AppResult<TrustedKey> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::invalid(
            "name",
            "Name the vendor (1 to 100 characters).",
        ));
    }
    let key = parse_public_key(public_key).map_err(|e| AppError::invalid("publicKey", &e))?;
    let row = TrustedKey {
        id: new_id(),
        organization_id: ctx.org_id.clone(),
        name: name.to_string(),
        public_key: to_hex(key.as_bytes()),
        created_at: now(),
    };
    crate::db::transaction(conn, |c| {
        let known = trusted_keys(c, &ctx.org_id)?
            .into_iter()
            .any(|k| k.public_key == row.public_key);
        if known {
            return Err(AppError::invalid(
                "publicKey",
                "This key is already trusted.",
            ));
        }
        diesel::insert_into(plugin_trusted_keys::table)
            .values(&row)
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "plugin.key.trust",
            "plugin_key",
            Some(&row.id),
            json!({"name": row.name, "publicKey": row.public_key}),
        )?;
        Ok(row)
    })
}

pub fn remove_trusted_key(conn: &mut DbConn, ctx: &AuditContext, id: &str) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        let row = trusted_keys(c, &ctx.org_id)?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or(AppError::NotFound)?;
        diesel::delete(plugin_trusted_keys::table.find(&row.id)).execute(c)?;
        audit::record(
            c,
            ctx,
            "plugin.key.distrust",
            "plugin_key",
            Some(&row.id),
            json!({"name": row.name, "publicKey": row.public_key}),
        )?;
        Ok(())
    })
}

pub fn signatures_required(conn: &mut DbConn, org_id: &str) -> AppResult<bool> {
    Ok(organizations::table
        .find(org_id)
        .select(organizations::plugin_signatures_required)
        .first(conn)?)
}

pub fn require_signatures(conn: &mut DbConn, ctx: &AuditContext, required: bool) -> AppResult<()> {
    crate::db::transaction(conn, |c| {
        diesel::update(organizations::table.find(&ctx.org_id))
            .set(organizations::plugin_signatures_required.eq(required))
            .execute(c)?;
        audit::record(
            c,
            ctx,
            "plugin.signatures",
            "organization",
            Some(&ctx.org_id),
            json!({"required": required}),
        )?;
        Ok(())
    })
}

/// How an install's signature reads for admins, given the organization's trusted keys.
pub fn status(signer: Option<&str>, trusted: &[TrustedKey]) -> (String, &'static str) {
    match signer {
        None => ("Unsigned".into(), "unsigned"),
        Some(key) => match trusted.iter().find(|t| t.public_key == key) {
            Some(t) => (format!("Signed by {} (trusted key)", t.name), "trusted"),
            None => (
                format!("Signed by an untrusted key {}…", &key[..key.len().min(16)]),
                "untrusted",
            ),
        },
    }
}

/// Refuses a bundle an organization that requires signatures would not run.
pub fn admit(conn: &mut DbConn, org_id: &str, signer: Option<&str>) -> AppResult<()> {
    if !signatures_required(conn, org_id)? {
        return Ok(());
    }
    let trusted = trusted_keys(conn, org_id)?;
    match signer {
        Some(key) if trusted.iter().any(|t| t.public_key == key) => Ok(()),
        Some(key) => Err(AppError::invalid(
            "signature",
            &format!("This organization installs only plugins signed by a trusted vendor key; this bundle is signed by the unknown key {key}. Add the vendor's key under Trusted vendor keys first."),
        )),
        None => Err(AppError::invalid(
            "signature",
            "This organization installs only plugins signed by a trusted vendor key; this bundle is unsigned.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_bundle_verifies_and_a_changed_one_does_not() {
        let (secret, public) = generate();
        let key = SigningKey::from_bytes(
            &from_hex(&secret)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 32]),
        );
        let bundle = super::super::bundle::pack("id = \"x\"", b"\0asm");
        let signed = sign(&bundle, &key).unwrap_or_default();
        let unsigned = super::super::bundle::unsigned_part(&signed).unwrap_or_default();
        let part = &signed[unsigned.len()..];
        let text = part.splitn(2, |b| *b == b'\n').nth(1).unwrap_or_default();
        assert_eq!(verify_part(unsigned, text), Ok(public));
        let mut changed = unsigned.to_vec();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        assert!(verify_part(&changed, text)
            .unwrap_err()
            .contains("changed after signing"));
    }
}
