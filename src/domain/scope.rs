use std::collections::BTreeSet;
use std::fmt;

/// A set of scope tokens (RFC 6749 §3.3): space-separated, each made of the printable
/// ASCII characters other than space, `"` and `\`. Kept sorted and de-duplicated so
/// that equal sets compare and print equal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope(BTreeSet<String>);

impl Scope {
    pub(crate) const MAX_TOKENS: usize = 64;
    pub(crate) const MAX_TOKEN_LEN: usize = 128;

    pub(crate) fn parse(raw: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            Self::check_token(token)?;
            set.insert(token.to_owned());
        }
        if set.len() > Self::MAX_TOKENS {
            return Err(format!(
                "at most {} scopes may be requested",
                Self::MAX_TOKENS
            ));
        }
        Ok(Self(set))
    }

    pub(crate) fn from_tokens<I, S>(tokens: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = BTreeSet::new();
        for token in tokens {
            Self::check_token(token.as_ref())?;
            set.insert(token.as_ref().to_owned());
        }
        Ok(Self(set))
    }

    fn check_token(token: &str) -> Result<(), String> {
        let valid = token.len() <= Self::MAX_TOKEN_LEN
            && token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if valid {
            Ok(())
        } else {
            Err(format!("`{}` is not a valid scope", token.escape_default()))
        }
    }

    pub(crate) fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    pub(crate) fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// The scopes of `self` that `allowed` does not grant.
    pub(crate) fn excess_over<'a>(&'a self, allowed: &'a Scope) -> impl Iterator<Item = &'a str> {
        self.0.difference(&allowed.0).map(String::as_str)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Scope;

    #[test]
    fn scopes_are_a_sorted_set() {
        let s = Scope::parse("write  read write").unwrap();
        assert_eq!(s.to_string(), "read write");
    }

    #[test]
    fn invalid_characters_are_rejected() {
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("caf\u{e9}").is_err());
        assert!(Scope::parse("tab\there").is_err());
    }

    #[test]
    fn subset_checks() {
        let all = Scope::parse("a b c").unwrap();
        assert!(Scope::parse("a c").unwrap().is_subset(&all));
        assert!(!Scope::parse("a d").unwrap().is_subset(&all));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::Scope;

    proptest! {
        #[test]
        fn parsing_never_panics_and_round_trips(raw in "\\PC{0,200}") {
            if let Ok(scope) = Scope::parse(&raw) {
                let again = Scope::parse(&scope.to_string()).unwrap();
                prop_assert_eq!(again, scope);
            }
        }

        #[test]
        fn valid_tokens_always_parse(tokens in prop::collection::vec("[!#-\\[\\]-~]{1,20}", 0..10)) {
            let scope = Scope::parse(&tokens.join(" ")).unwrap();
            for t in &tokens {
                prop_assert!(scope.contains(t));
            }
        }
    }
}
