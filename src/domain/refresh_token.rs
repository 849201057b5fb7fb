use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// An opaque refresh token: `rt_` followed by base64url of
/// `version (1) || session id (16) || generation (8, big-endian) || tag (32)`.
///
/// The token names the session it continues and the generation of that session's chain
/// it is; the tag (HMAC-SHA256 over the first 25 bytes, `auth::refresh_mac`) makes it
/// unforgeable: 256 bits that only the holder of the master key can compute. Clients
/// treat it as opaque. The prefix lets secret scanners find leaked tokens.
///
/// This type only knows the shape; [`RefreshToken::unverified_chain`] reads the fields
/// and is meaningless until the tag was checked.
pub struct RefreshToken(SecretString);

/// Which link of which chain a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    pub session_id: Uuid,
    pub generation: u64,
}

impl RefreshToken {
    pub(crate) const PREFIX: &'static str = "rt_";
    pub(crate) const VERSION: u8 = 1;
    /// The bytes the tag covers: version, session id, generation.
    pub(crate) const SIGNED_LEN: usize = 1 + 16 + 8;
    pub(crate) const TAG_LEN: usize = 32;
    const BYTES: usize = Self::SIGNED_LEN + Self::TAG_LEN;
    /// The random tokens issued before generations (256 bits, no structure). They are
    /// still recognised as refresh tokens, and refused as invalid, never as malformed.
    const RETIRED_BYTES: usize = 32;
    /// `rt_` + 76 base64url characters.
    pub(crate) const LEN: usize = 3 + 76;

    /// The token for a chain link and its tag.
    pub(crate) fn assemble(chain: Chain, tag: &[u8; Self::TAG_LEN]) -> Self {
        let mut bytes = zeroize::Zeroizing::new([0u8; Self::BYTES]);
        bytes[..Self::SIGNED_LEN].copy_from_slice(&Self::signed_bytes(chain));
        bytes[Self::SIGNED_LEN..].copy_from_slice(tag);
        let mut text = String::with_capacity(Self::LEN);
        text.push_str(Self::PREFIX);
        URL_SAFE_NO_PAD.encode_string(&bytes[..], &mut text);
        Self(SecretString::from(text))
    }

    /// What the tag of `chain`'s token covers.
    pub(crate) fn signed_bytes(chain: Chain) -> [u8; Self::SIGNED_LEN] {
        let mut out = [0u8; Self::SIGNED_LEN];
        out[0] = Self::VERSION;
        out[1..17].copy_from_slice(chain.session_id.as_bytes());
        out[17..].copy_from_slice(&chain.generation.to_be_bytes());
        out
    }

    /// Accepts the shapes Tessera issues (and has issued): the prefix and base64url of
    /// the right length. Whether the token is genuine is the MAC's to say.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let well_formed = raw.starts_with(Self::PREFIX)
            && raw.len() <= Self::LEN
            && URL_SAFE_NO_PAD
                .decode(&raw[Self::PREFIX.len()..])
                .is_ok_and(|b| b.len() == Self::BYTES || b.len() == Self::RETIRED_BYTES);
        if well_formed {
            Ok(Self(SecretString::from(raw.to_owned())))
        } else {
            Err("refresh_token is malformed".to_owned())
        }
    }

    /// The signed bytes and the tag, if this is a token of the current version.
    pub(crate) fn split(&self) -> Option<([u8; Self::SIGNED_LEN], [u8; Self::TAG_LEN])> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.expose()[Self::PREFIX.len()..])
            .ok()
            .filter(|b| b.len() == Self::BYTES && b[0] == Self::VERSION)?;
        let mut signed = [0u8; Self::SIGNED_LEN];
        let mut tag = [0u8; Self::TAG_LEN];
        signed.copy_from_slice(&bytes[..Self::SIGNED_LEN]);
        tag.copy_from_slice(&bytes[Self::SIGNED_LEN..]);
        Some((signed, tag))
    }

    /// The chain link the signed bytes name (trust it only once the tag was checked).
    pub(crate) fn chain_of(signed: &[u8; Self::SIGNED_LEN]) -> Chain {
        let mut id = [0u8; 16];
        id.copy_from_slice(&signed[1..17]);
        let mut generation = [0u8; 8];
        generation.copy_from_slice(&signed[17..]);
        Chain {
            session_id: Uuid::from_bytes(id),
            generation: u64::from_be_bytes(generation),
        }
    }

    /// Tells apart something that looks like a refresh token (e.g. to route a
    /// revocation) from anything else, without validating it.
    pub(crate) fn looks_like(raw: &str) -> bool {
        raw.starts_with(Self::PREFIX)
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
    use super::*;

    fn sample() -> RefreshToken {
        let chain = Chain {
            session_id: Uuid::now_v7(),
            generation: 7,
        };
        RefreshToken::assemble(chain, &[0x5a; 32])
    }

    #[test]
    fn assembled_tokens_parse_and_name_their_chain() {
        let chain = Chain {
            session_id: Uuid::now_v7(),
            generation: u64::MAX - 1,
        };
        let token = RefreshToken::assemble(chain, &[9; 32]);
        assert_eq!(token.expose().len(), RefreshToken::LEN);
        assert!(token.expose().starts_with("rt_"));
        let parsed = RefreshToken::parse(token.expose()).unwrap();
        let (signed, tag) = parsed.split().unwrap();
        assert_eq!(RefreshToken::chain_of(&signed), chain);
        assert_eq!(tag, [9; 32]);
    }

    #[test]
    fn retired_random_tokens_parse_but_do_not_split() {
        let retired = format!("rt_{}", URL_SAFE_NO_PAD.encode([3u8; 32]));
        let parsed = RefreshToken::parse(&retired).expect("still a refresh token's shape");
        assert!(parsed.split().is_none());
    }

    #[test]
    fn wrong_shapes_are_rejected() {
        let good = sample();
        let good = good.expose();
        for bad in [
            "",
            "rt_",
            &good[3..],
            &format!("xx_{}", &good[3..]),
            &format!("{good}A"),
            &good[..good.len() - 1],
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
            if let Ok(token) = RefreshToken::parse(&raw) {
                let _ = token.split();
            }
        }
    }
}
