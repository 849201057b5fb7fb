//! The JOSE header of a compact JWS, read before any key is looked up.
//!
//! We read it ourselves (jsonwebtoken reads it again when it verifies) to tell apart
//! the ways a header can be unacceptable, and to make sure nothing but `kid` ever
//! chooses a key: `jku`, `x5u`, `jwk` and `x5c` are not even deserialised.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Deserializer};

use crate::VerifyError;

/// Longest token we will even try to parse; Tessera's are well under 2 KiB.
pub(crate) const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Deserialize)]
pub(crate) struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
    /// Present at all, whatever its value: `"crit": null` is no more acceptable.
    #[serde(default, deserialize_with = "present")]
    pub crit: bool,
    /// `enc` / `zip` belong to JWE: an encrypted or compressed token is not ours.
    #[serde(default, deserialize_with = "present")]
    pub enc: bool,
    #[serde(default, deserialize_with = "present")]
    pub zip: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// Checks the shape (three base64url segments, bounded length) and decodes
/// the header. Duplicate header parameters are refused by the deserialiser.
pub(crate) fn parse(token: &str) -> Result<Header, VerifyError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed);
    }
    let mut segments = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(VerifyError::Malformed);
    };
    let base64url = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    // An empty signature is let through here so that `alg: none` is reported as the
    // unsupported algorithm it is; it could never verify anyway.
    if header.is_empty()
        || payload.is_empty()
        || !base64url(header)
        || !base64url(payload)
        || !base64url(signature)
    {
        return Err(VerifyError::Malformed);
    }
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| VerifyError::Malformed)?;
    // serde would happily read a JSON array positionally into the struct; a JOSE
    // header is an object (RFC 7515 §4).
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(VerifyError::Malformed);
    }
    serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)
}

impl Header {
    /// RFC 9068 §2.1: `at+jwt`, or the full media type, case-insensitively.
    pub(crate) fn is_access_token(&self) -> bool {
        self.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    #[test]
    fn typ_is_case_insensitive() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
            let h = parse(&token(&format!(r#"{{"alg":"ES256","typ":"{typ}"}}"#))).unwrap();
            assert!(h.is_access_token(), "{typ}");
        }
        let h = parse(&token(r#"{"alg":"ES256","typ":"JWT"}"#)).unwrap();
        assert!(!h.is_access_token());
    }

    #[test]
    fn a_null_crit_still_counts() {
        assert!(
            parse(&token(r#"{"alg":"ES256","crit":null}"#))
                .unwrap()
                .crit
        );
        assert!(!parse(&token(r#"{"alg":"ES256"}"#)).unwrap().crit);
    }

    #[test]
    fn duplicate_parameters_are_malformed() {
        assert!(matches!(
            parse(&token(r#"{"alg":"ES256","alg":"none"}"#)),
            Err(VerifyError::Malformed)
        ));
    }

    #[test]
    fn a_header_must_be_an_object() {
        assert!(matches!(
            parse(&token(r#"["ES256", "at+jwt"]"#)),
            Err(VerifyError::Malformed)
        ));
    }

    #[test]
    fn shape_is_checked_before_decoding() {
        for bad in ["", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.c=", "a.b.c d"] {
            assert!(matches!(parse(bad), Err(VerifyError::Malformed)), "{bad:?}");
        }
        assert!(matches!(
            parse(&"a".repeat(MAX_TOKEN_LEN + 1)),
            Err(VerifyError::Malformed)
        ));
    }
}
