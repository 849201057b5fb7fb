//! The two settings that carry secrets: where the master key comes from, and the
//! first administrator's password. Both print as `[redacted]`.

use std::path::PathBuf;

use secrecy::SecretString;

use super::{ConfigError, Source, DEVELOPMENT_MASTER_KEY_FILE};

/// Where the master key that encrypts private signing keys comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// `TESSERA_MASTER_KEY`: 32 bytes, base64 (standard or URL-safe) or 64 hex digits.
    Inline(SecretString),
    /// `TESSERA_MASTER_KEY_FILE` set explicitly: the file must exist.
    File(PathBuf),
    /// Nothing configured: a development key file, generated on first start.
    DevelopmentFile(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline([redacted])"),
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::DevelopmentFile(path) => write!(f, "DevelopmentFile({})", path.display()),
        }
    }
}

impl MasterKeySource {
    pub(super) fn read(src: &Source) -> Result<Self, ConfigError> {
        match (
            src.get("TESSERA_MASTER_KEY"),
            src.get("TESSERA_MASTER_KEY_FILE"),
        ) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                "TESSERA_MASTER_KEY",
                "set either TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE, not both",
            )),
            (Some(key), None) => {
                if crate::domain::decode_key(key).is_none() {
                    return Err(ConfigError::new(
                        "TESSERA_MASTER_KEY",
                        "must be 32 bytes, as base64 or 64 hex digits \
                         (`tessera keys generate-master-key` prints one)",
                    ));
                }
                Ok(Self::Inline(SecretString::from(key.to_owned())))
            }
            (None, Some(path)) => Ok(Self::File(PathBuf::from(path))),
            // Absolute, so messages say where it was looked for; it depends on the
            // working directory, which is why it is for development only.
            (None, None) => Ok(Self::DevelopmentFile(
                std::env::current_dir()
                    .unwrap_or_default()
                    .join(DEVELOPMENT_MASTER_KEY_FILE),
            )),
        }
    }
}

/// The first administrator, created on a first start (no users yet).
#[derive(Clone)]
pub struct BootstrapAdmin {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BootstrapAdmin {{ username: {:?}, password: [redacted] }}",
            self.username
        )
    }
}

impl BootstrapAdmin {
    pub(super) fn read(src: &Source) -> Result<Option<Self>, ConfigError> {
        const PASSWORD_FILE: &str = "TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE";
        const PASSWORD: &str = "TESSERA_BOOTSTRAP_ADMIN_PASSWORD";
        let Some(username) = src.get("TESSERA_BOOTSTRAP_ADMIN") else {
            for orphan in [PASSWORD_FILE, PASSWORD] {
                if src.get(orphan).is_some() {
                    return Err(ConfigError::new(
                        orphan,
                        "needs TESSERA_BOOTSTRAP_ADMIN (the username)",
                    ));
                }
            }
            return Ok(None);
        };
        let password = match (src.get(PASSWORD_FILE), src.get_untrimmed(PASSWORD)) {
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::new(PASSWORD_FILE, format!("{path}: {e}")))?;
                text.trim_end_matches(['\r', '\n']).to_owned()
            }
            (None, Some(password)) => password.to_owned(),
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    PASSWORD,
                    "set either the password or the password file, not both",
                ))
            }
            (None, None) => {
                return Err(ConfigError::new(
                    PASSWORD_FILE,
                    "TESSERA_BOOTSTRAP_ADMIN needs a password file \
                     (or TESSERA_BOOTSTRAP_ADMIN_PASSWORD)",
                ))
            }
        };
        Ok(Some(Self {
            username: username.to_owned(),
            password: SecretString::from(password),
        }))
    }
}
