use secrecy::{ExposeSecret, SecretString};

/// bcrypt reads at most 72 bytes; longer passwords are refused, never truncated.
pub const BCRYPT_MAX_BYTES: usize = 72;

/// A password presented at login. Anything goes in (up to a sanity limit); one that
/// could never have been set simply fails to match.
#[derive(Clone)]
pub struct Password(SecretString);

/// A password being set: at least the configured minimum length, at most 72 bytes.
pub struct NewPassword(SecretString);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must not be empty")]
    Empty,
    #[error("password must be at least {0} characters")]
    TooShort(usize),
    #[error("password must be at most 72 bytes (bcrypt's limit); it is never truncated")]
    TooLong,
}

impl Password {
    /// Generous upper bound for login input, so a huge value cannot reach bcrypt.
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(raw: String) -> Result<Self, PasswordError> {
        if raw.is_empty() {
            return Err(PasswordError::Empty);
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl NewPassword {
    pub fn parse(raw: String, min_chars: usize) -> Result<Self, PasswordError> {
        if raw.is_empty() {
            return Err(PasswordError::Empty);
        }
        if raw.len() > BCRYPT_MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        if raw.chars().count() < min_chars {
            return Err(PasswordError::TooShort(min_chars));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_password_over_72_bytes_is_refused() {
        assert_eq!(
            NewPassword::parse("é".repeat(37), 8).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(NewPassword::parse("a".repeat(72), 8).is_ok());
    }

    #[test]
    fn new_password_has_a_minimum_length() {
        assert_eq!(
            NewPassword::parse("short".into(), 8).unwrap_err(),
            PasswordError::TooShort(8)
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let p = Password::parse("hunter2hunter2".into()).unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
