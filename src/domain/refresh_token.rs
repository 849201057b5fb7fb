use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

/// An opaque refresh token: `rt_` followed by 256 random bits, base64url. The prefix lets
/// secret scanners find leaked tokens; only the SHA-256 of the whole string is stored.
pub struct RefreshToken(SecretString);

/// SHA-256 of a refresh token: what the database keeps and looks up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshTokenHash(pub [u8; 32]);

impl RefreshToken {
    pub(crate) const PREFIX: &'static str = "rt_";
    const RANDOM_BYTES: usize = 32;
    /// `rt_` + 43 base64url characters.
    pub(crate) const LEN: usize = 3 + 43;

    /// A new token from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
        Self(SecretString::from(format!(
            "{}{}",
            Self::PREFIX,
            URL_SAFE_NO_PAD.encode(bytes)
        )))
    }

    /// Accepts only the exact shape Tessera issues.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let well_formed = raw.len() == Self::LEN
            && raw.starts_with(Self::PREFIX)
            && URL_SAFE_NO_PAD
                .decode(&raw[Self::PREFIX.len()..])
                .is_ok_and(|b| b.len() == Self::RANDOM_BYTES);
        if well_formed {
            Ok(Self(SecretString::from(raw.to_owned())))
        } else {
            Err("refresh_token is malformed".to_owned())
        }
    }

    /// Tells apart something that looks like a refresh token (e.g. to route a
    /// revocation) from anything else, without validating it.
    pub(crate) fn looks_like(raw: &str) -> bool {
        raw.starts_with(Self::PREFIX)
    }

    pub fn hash(&self) -> RefreshTokenHash {
        let d = digest::digest(&digest::SHA256, self.expose().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        RefreshTokenHash(out)
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::RefreshToken;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = RefreshToken::generate();
        let b = RefreshToken::generate();
        assert_eq!(a.expose().len(), RefreshToken::LEN);
        assert!(a.expose().starts_with("rt_"));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(RefreshToken::parse(a.expose()).unwrap().hash(), a.hash());
    }

    #[test]
    fn wrong_shapes_are_rejected() {
        let good = RefreshToken::generate();
        let good = good.expose();
        for bad in [
            "",
            "rt_",
            &good[3..],
            &format!("xx_{}", &good[3..]),
            &format!("{good}A"),
            &good.replace(&good[5..6], "!"),
        ] {
            assert!(RefreshToken::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::RefreshToken;

    proptest! {
        #[test]
        fn parsing_arbitrary_input_never_panics(raw in "\\PC{0,100}") {
            let _ = RefreshToken::parse(&raw);
        }

        #[test]
        fn any_change_to_a_token_changes_its_hash(index in 3usize..46, c in "[A-Za-z0-9_-]") {
            let token = RefreshToken::generate();
            let mut altered = token.expose().to_owned();
            altered.replace_range(index..index + 1, &c);
            if let Ok(other) = RefreshToken::parse(&altered) {
                prop_assert_eq!(other.hash() == token.hash(), altered == token.expose());
            }
        }
    }
}
