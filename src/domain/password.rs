use secrecy::{ExposeSecret, SecretString};

/// The longest password bcrypt hashes in full: it keys on at most 72 bytes, so a
/// 72-byte password is used whole (only its terminating NUL is left out). Longer
/// passwords are refused here, never truncated, so that nothing that passes this type
/// can fail hashing (`auth::passwords` hashes exactly 72 bytes with the crate's
/// truncating call, which refuses nothing of it).
pub const BCRYPT_MAX_BYTES: usize = 72;

/// A password presented at login. Anything goes in (up to a sanity limit); one that
/// could never have been set simply fails to match.
#[derive(Clone)]
pub struct Password(SecretString);

/// A password being set: at least the configured minimum length, at most
/// [`BCRYPT_MAX_BYTES`] bytes.
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
    pub(crate) const MAX_BYTES: usize = 1024;

    pub(crate) fn parse(raw: String) -> Result<Self, PasswordError> {
        if raw.is_empty() {
            return Err(PasswordError::Empty);
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub(crate) fn expose(&self) -> &str {
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

    pub(crate) fn expose(&self) -> &str {
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
    fn new_password_of_73_bytes_or_more_is_refused() {
        assert_eq!(
            NewPassword::parse(format!("{}a", "é".repeat(36)), 8).unwrap_err(),
            PasswordError::TooLong
        );
        assert_eq!(
            NewPassword::parse("a".repeat(73), 8).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(NewPassword::parse("a".repeat(72), 8).is_ok());
        assert!(NewPassword::parse("é".repeat(36), 8).is_ok());
    }

    /// Strings of 0 to 100 bytes, ASCII, 2-byte and 4-byte characters mixed.
    fn passwords() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![Just('a'), Just('é'), Just('😀'), any::<char>()],
            0..100,
        )
        .prop_map(|chars| {
            let mut s = String::new();
            for c in chars {
                if s.len() + c.len_utf8() > 100 {
                    break;
                }
                s.push(c);
            }
            s
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(300))]

        /// Whatever a caller sends, the domain type either refuses it with the reason
        /// that fits or lets through at most what bcrypt hashes in full (that those
        /// hash and verify is `auth::passwords`' test, on the real hashing path).
        #[test]
        fn a_new_password_is_refused_for_its_reason_or_fits_bcrypt(raw in passwords()) {
            match NewPassword::parse(raw.clone(), 1) {
                Ok(_) => proptest::prop_assert!(!raw.is_empty() && raw.len() <= BCRYPT_MAX_BYTES),
                Err(PasswordError::TooLong) => proptest::prop_assert!(raw.len() > BCRYPT_MAX_BYTES),
                Err(PasswordError::Empty) => proptest::prop_assert!(raw.is_empty()),
                Err(PasswordError::TooShort(_)) => proptest::prop_assert!(false, "min is 1"),
            }
        }
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
