//! Secrets at rest (mailbox passwords): AES-256-GCM under one key per instance, from
//! `RAPPORT_SECRET_KEY` (64 hex digits), or the file `RAPPORT_SECRET_KEY_FILE` names, or
//! `<data dir>/secret.key`, made on first start (mode 0600) for a single-machine install.
//! Every instance of a deployment must share the key; a sealed value the key cannot open
//! asks for the password again instead of failing the server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

use crate::error::{AppError, AppResult};

const PREFIX: &str = "v1:";
const AAD: &[u8] = b"rapport-secret-v1";

#[derive(Clone)]
pub struct Key(Arc<[u8; 32]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Key {
    /// The instance's key (see the module's note), made on first use when no key is set.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(v) = env("RAPPORT_SECRET_KEY") {
            return Self::parse(&v).map_err(|e| anyhow::anyhow!("RAPPORT_SECRET_KEY: {e}"));
        }
        let (path, explicit) = match env("RAPPORT_SECRET_KEY_FILE") {
            Some(p) => (PathBuf::from(p), true),
            None => (data_dir.join("secret.key"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(s) => Self::parse(&s).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Self::create(&path),
            Err(e) => anyhow::bail!("cannot read the secret key {}: {e}", path.display()),
        }
    }

    fn create(path: &Path) -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        openssl::rand::rand_bytes(&mut bytes)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut f) => {
                f.write_all(hex(&bytes).as_bytes())?;
                f.sync_all()?;
                Ok(Self(Arc::new(bytes)))
            }
            // Another process of the same install made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::parse(&std::fs::read_to_string(path)?)
            }
            Err(e) => anyhow::bail!("cannot write the secret key {}: {e}", path.display()),
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            anyhow::bail!("the key must be 64 hexadecimal digits (32 bytes)");
        }
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)?;
        }
        Ok(Self(Arc::new(bytes)))
    }

    /// Seals `plain` (a fresh nonce each time).
    pub fn seal(&self, plain: &str) -> AppResult<String> {
        let mut nonce = [0u8; 12];
        let mut tag = [0u8; 16];
        let sealed = openssl::rand::rand_bytes(&mut nonce)
            .and_then(|()| {
                encrypt_aead(
                    Cipher::aes_256_gcm(),
                    &self.0[..],
                    Some(&nonce),
                    AAD,
                    plain.as_bytes(),
                    &mut tag,
                )
            })
            .map_err(|e| AppError::Internal(format!("sealing a secret: {e}")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out.extend_from_slice(&tag);
        Ok(format!("{PREFIX}{}", openssl::base64::encode_block(&out)))
    }

    /// Opens what [`Key::seal`] made with this key.
    pub fn open(&self, sealed: &str) -> AppResult<String> {
        let unreadable = || {
            AppError::Conflict(
                "The stored password cannot be read with this server's key (was \
                 RAPPORT_SECRET_KEY changed?). Enter the password again."
                    .into(),
            )
        };
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| openssl::base64::decode_block(b).ok())
            .filter(|r| r.len() >= 28)
            .ok_or_else(unreadable)?;
        let (nonce, rest) = raw.split_at(12);
        let (body, tag) = rest.split_at(rest.len() - 16);
        let plain = decrypt_aead(
            Cipher::aes_256_gcm(),
            &self.0[..],
            Some(nonce),
            AAD,
            body,
            tag,
        )
        .map_err(|_| unreadable())?;
        String::from_utf8(plain).map_err(|_| unreadable())
    }
}

impl Key {
    /// A short HMAC-SHA256 tag of `data` for `purpose` (links in e-mail: unsubscribe, opens,
    /// clicks), under a key derived from the instance key so the two uses never mix.
    pub fn tag(&self, purpose: &str, data: &str) -> String {
        use openssl::{hash::MessageDigest, pkey::PKey, sign::Signer};
        let tag = PKey::hmac(&self.0[..])
            .and_then(|k| {
                let mut s = Signer::new(MessageDigest::sha256(), &k)?;
                s.update(b"rapport-link-v1\0")?;
                s.update(purpose.as_bytes())?;
                s.update(b"\0")?;
                s.update(data.as_bytes())?;
                s.sign_to_vec()
            })
            .unwrap_or_default();
        hex(&tag[..tag.len().min(16)])
    }

    /// Whether `tag` is [`Key::tag`] of `data` (compared in constant time).
    pub fn verify(&self, purpose: &str, data: &str, tag: &str) -> bool {
        let want = self.tag(purpose, data);
        want.len() == tag.len() && openssl::memcmp::eq(want.as_bytes(), tag.as_bytes())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_its_key_only() {
        let dir = std::env::temp_dir().join(format!("rapport-key-{}", uuid::Uuid::new_v4()));
        let key = Key::load(&dir).expect("made");
        let again = Key::load(&dir).expect("read back");
        let sealed = key.seal("hunter2").expect("sealed");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, key.seal("hunter2").expect("sealed"), "fresh nonce");
        assert_eq!(again.open(&sealed).expect("opens"), "hunter2");
        let other = Key::parse(&"ab".repeat(32)).expect("key");
        assert!(other.open(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.replace_range(10..11, if &sealed[10..11] == "A" { "B" } else { "A" });
        assert!(key.open(&tampered).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secret.key"))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only the owner reads the key");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
