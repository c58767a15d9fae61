//! Bundle signatures: a vendor signs a bundle with an ed25519 key (`rapport plugin keygen`,
//! `rapport plugin pack --sign`); an organization lists the vendor keys it trusts and may
//! refuse every bundle not signed by one of them.
//!
//! The signing and verifying live in the SDK (`rapport_plugin_sdk::pack`), shared with the
//! vendors' packer; this module keeps what the host stores: trusted keys and the policy.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use crate::db::schema::{organizations, plugin_trusted_keys};
use crate::db::{new_id, now, DbConn};
use crate::domain::audit::{self, AuditContext};
use crate::error::{AppError, AppResult};

pub use rapport_plugin_sdk::pack::{
    from_hex, generate, key_file_text, parse_public_key, read_key_file, sign, to_hex, verify_part,
};

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
        let key = ed25519_dalek::SigningKey::from_bytes(
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
