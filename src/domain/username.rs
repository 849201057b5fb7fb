use std::fmt;

/// A login name: 1 to 64 characters of `a-z 0-9 . _ @ + -`, stored lower-cased so that
/// `Alice` and `alice` are one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub(crate) const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, String> {
        let lowered = raw.trim().to_ascii_lowercase();
        if lowered.is_empty() {
            return Err("username must not be empty".to_owned());
        }
        if lowered.len() > Self::MAX_LEN {
            return Err(format!(
                "username must be at most {} characters",
                Self::MAX_LEN
            ));
        }
        if !lowered
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_@+".contains(&b))
        {
            return Err("username may contain only letters, digits and . _ @ + -".to_owned());
        }
        Ok(Self(lowered))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Username;

    #[test]
    fn usernames_are_case_insensitive() {
        assert_eq!(Username::parse(" Alice ").unwrap().as_str(), "alice");
    }

    #[test]
    fn bad_usernames_are_rejected() {
        for raw in ["", "a b", "ü", "x/y", &"a".repeat(65)] {
            assert!(Username::parse(raw).is_err(), "{raw:?} accepted");
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::Username;

    proptest! {
        #[test]
        fn accepted_names_are_canonical(raw in "\\PC{0,80}") {
            if let Ok(name) = Username::parse(&raw) {
                prop_assert!(name.as_str().len() <= Username::MAX_LEN);
                prop_assert_eq!(Username::parse(name.as_str()).unwrap(), name.clone());
                prop_assert!(!name.as_str().bytes().any(|b| b.is_ascii_uppercase()));
            }
        }
    }
}
