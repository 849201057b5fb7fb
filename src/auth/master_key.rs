//! The master key: 32 bytes that encrypt every private signing key at rest.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::{hkdf, hmac};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use secrecy::ExposeSecret;

use super::sealing::{OpenError, SealingKey};
use crate::config::MasterKeySource;
use crate::domain::decode_key;

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("TESSERA_MASTER_KEY must be 32 bytes, as base64 or 64 hex digits")]
    BadInline,
    #[error("TESSERA_MASTER_KEY_FILE {path}: {reason}")]
    BadFile { path: String, reason: String },
}

/// HKDF salt of the keys derived from the master key.
const DERIVATION_SALT: &[u8] = b"tessera/master-key";

pub struct MasterKey {
    sealing: SealingKey,
    /// HKDF's pseudo-random key from the master key, for keys derived by purpose.
    derivation: hkdf::Prk,
}

impl MasterKey {
    /// Loads the key. With nothing configured, a development key file is created on
    /// first use (and a loud warning logged); an explicitly named file must exist.
    pub fn load(source: &MasterKeySource) -> Result<Self, MasterKeyError> {
        match source {
            MasterKeySource::Inline(text) => decode_key(text.expose_secret())
                .map(Self::from_bytes)
                .ok_or(MasterKeyError::BadInline),
            MasterKeySource::File(path) => read_key_file(path),
            MasterKeySource::DevelopmentFile(path) => {
                if !path.exists() {
                    create_key_file(path)?;
                    tracing::warn!(
                        path = %path.display(),
                        "DEVELOPMENT ONLY: no TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE is set, \
                         so a new master key was written to {}. Private signing keys are encrypted \
                         under it; in production set TESSERA_MASTER_KEY (see README).",
                        path.display()
                    );
                } else {
                    tracing::warn!(
                        path = %path.display(),
                        "DEVELOPMENT ONLY: using the generated master key file {}; \
                         set TESSERA_MASTER_KEY in production",
                        path.display()
                    );
                }
                read_key_file(path)
            }
        }
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let bytes = zeroize::Zeroizing::new(bytes);
        Self {
            sealing: SealingKey::from_bytes(&bytes),
            derivation: hkdf::Salt::new(hkdf::HKDF_SHA256, DERIVATION_SALT).extract(&bytes[..]),
        }
    }

    /// An HMAC-SHA256 key for one purpose, derived with HKDF (RFC 5869); another
    /// purpose gives an unrelated key.
    pub(crate) fn derive_hmac_key(&self, purpose: &[u8]) -> hmac::Key {
        let purposes = [purpose];
        let okm = self
            .derivation
            .expand(&purposes, hmac::HMAC_SHA256)
            .expect("HKDF output of one SHA-256 block is always possible");
        hmac::Key::from(okm)
    }

    /// An AES-256-GCM key for one purpose, derived with HKDF like
    /// [`MasterKey::derive_hmac_key`] (another purpose gives an unrelated key).
    pub(crate) fn derive_sealing_key(&self, purpose: &[u8]) -> SealingKey {
        let purposes = [purpose];
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        self.derivation
            .expand(&purposes, hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut bytes[..]))
            .expect("HKDF output of one SHA-256 block is always possible");
        SealingKey::from_bytes(&bytes)
    }

    /// A fresh random key, printed as base64: what `tessera keys generate-master-key` shows.
    pub fn generate_encoded() -> String {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
        STANDARD.encode(bytes)
    }

    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        self.sealing.seal(plaintext, aad)
    }

    pub(crate) fn open(
        &self,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<secrecy::SecretSlice<u8>, OpenError> {
        self.sealing.open(sealed, aad)
    }
}

fn read_key_file(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let bad = |reason: String| MasterKeyError::BadFile {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    decode_key(&text)
        .map(MasterKey::from_bytes)
        .ok_or_else(|| bad("must hold 32 bytes as base64 or 64 hex digits".to_owned()))
}

fn create_key_file(path: &Path) -> Result<(), MasterKeyError> {
    let bad = |reason: String| MasterKeyError::BadFile {
        path: path.display().to_string(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| bad(e.to_string()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => file
            .write_all(format!("{}\n", MasterKey::generate_encoded()).as_bytes())
            .map_err(|e| bad(e.to_string())),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(bad(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_base64_and_hex() {
        let b64 = MasterKey::generate_encoded();
        assert!(decode_key(&b64).is_some());
        assert_eq!(decode_key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(decode_key(&"AB".repeat(32)), Some([0xab; 32]));
        assert!(decode_key(&"ab".repeat(31)).is_none(), "31 bytes of hex");
        assert!(decode_key("too short").is_none());
        assert!(decode_key(&STANDARD.encode([1u8; 31])).is_none());
    }
}
