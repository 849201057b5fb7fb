//! The JOSE header of a compact JWS, judged before any key is looked up.
//!
//! We read it ourselves (jsonwebtoken reads it again when it verifies) to tell apart
//! the ways a header can be unacceptable, and to make sure nothing but `kid` ever
//! chooses a key: `jku`, `x5u`, `jwk` and `x5c` are not even deserialised.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Deserializer};

use crate::{Algorithm, VerifyError, MAX_TOKEN_LEN};

/// The header of a token that passed every header rule: the key it names and the one
/// algorithm that key must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenHeader {
    algorithm: Algorithm,
    kid: String,
}

impl TokenHeader {
    /// Checks, in this order, so that nothing is looked up or fetched for a token its
    /// header already condemns: the shape ([`check_shape`]); a JSON object without
    /// duplicate parameters; `typ` is `at+jwt` or `application/at+jwt`
    /// (case-insensitively, RFC 9068 §2.1); no `crit` (RFC 7515 §4.1.11); no JWE `enc`
    /// or `zip`; `alg` is one of `allowed`; a `kid` is there.
    pub fn parse(token: &str, allowed: &[Algorithm]) -> Result<Self, VerifyError> {
        let header = RawHeader::parse(token)?;
        if !header.is_access_token() {
            return Err(VerifyError::WrongType);
        }
        if header.crit {
            return Err(VerifyError::CriticalHeader);
        }
        if header.enc || header.zip {
            return Err(VerifyError::Malformed);
        }
        let algorithm = header
            .alg
            .parse::<Algorithm>()
            .ok()
            .filter(|alg| allowed.contains(alg))
            .ok_or(VerifyError::UnsupportedAlgorithm)?;
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        Ok(Self { algorithm, kid })
    }

    /// The key the token names; the only thing that ever selects one.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm the header claims, already known to be allowed.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Three non-empty base64url segments (the signature may be empty, so that `alg: none`
/// is reported as the unsupported algorithm it is), at most [`MAX_TOKEN_LEN`] long.
/// Cheap: nothing is decoded.
pub fn check_shape(token: &str) -> Result<(), VerifyError> {
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
    if header.is_empty()
        || payload.is_empty()
        || !base64url(header)
        || !base64url(payload)
        || !base64url(signature)
    {
        return Err(VerifyError::Malformed);
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    /// Present at all, whatever its value: `"crit": null` is no more acceptable.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
    /// `enc` / `zip` belong to JWE: an encrypted or compressed token is not ours.
    #[serde(default, deserialize_with = "present")]
    enc: bool,
    #[serde(default, deserialize_with = "present")]
    zip: bool,
}

fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(|_| true)
}

impl RawHeader {
    /// Duplicate header parameters are refused by the deserialiser.
    fn parse(token: &str) -> Result<Self, VerifyError> {
        check_shape(token)?;
        let encoded = token.split('.').next().unwrap_or_default();
        let json = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| VerifyError::Malformed)?;
        // serde would happily read a JSON array positionally into the struct; a JOSE
        // header is an object (RFC 7515 §4).
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(VerifyError::Malformed);
        }
        serde_json::from_slice(&json).map_err(|_| VerifyError::Malformed)
    }

    fn is_access_token(&self) -> bool {
        self.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(crate::ACCESS_TOKEN_TYP)
                || t.eq_ignore_ascii_case("application/at+jwt")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token with this header and an empty payload and signature of the right shape.
    fn token(header: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(header))
    }

    fn parse(header: &str) -> Result<TokenHeader, VerifyError> {
        TokenHeader::parse(&token(header), &Algorithm::ALL)
    }

    #[test]
    fn a_tessera_header_passes() {
        let header = parse(r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#).unwrap();
        assert_eq!(header.kid(), "k1");
        assert_eq!(header.algorithm(), Algorithm::Es256);
    }

    #[test]
    fn typ_must_be_at_jwt_in_either_spelling_and_any_case() {
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/AT+JWT",
        ] {
            let header = format!(r#"{{"alg":"ES256","typ":"{typ}","kid":"k"}}"#);
            assert!(parse(&header).is_ok(), "{typ}");
        }
        for typ in [r#""JWT""#, r#""id+jwt""#, r#""""#, "null", "7"] {
            let header = format!(r#"{{"alg":"ES256","typ":{typ},"kid":"k"}}"#);
            assert!(
                matches!(
                    parse(&header),
                    Err(VerifyError::WrongType | VerifyError::Malformed)
                ),
                "{typ}"
            );
        }
        assert_eq!(
            parse(r#"{"alg":"ES256","kid":"k"}"#),
            Err(VerifyError::WrongType)
        );
    }

    #[test]
    fn crit_is_refused_even_when_null() {
        for crit in [r#"["exp"]"#, "[]", "null"] {
            let header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"k","crit":{crit}}}"#);
            assert_eq!(parse(&header), Err(VerifyError::CriticalHeader), "{crit}");
        }
    }

    #[test]
    fn jwe_parameters_are_malformed() {
        for extra in [r#""enc":"A256GCM""#, r#""zip":"DEF""#] {
            let header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"k",{extra}}}"#);
            assert_eq!(parse(&header), Err(VerifyError::Malformed), "{extra}");
        }
    }

    #[test]
    fn alg_must_be_in_the_allow_list() {
        for alg in ["none", "HS256", "es256", "PS256"] {
            let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"k"}}"#);
            assert_eq!(
                parse(&header),
                Err(VerifyError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
        let rs256 = token(r#"{"alg":"RS256","typ":"at+jwt","kid":"k"}"#);
        assert_eq!(
            TokenHeader::parse(&rs256, &[Algorithm::Es256]),
            Err(VerifyError::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn a_kid_is_required() {
        assert_eq!(
            parse(r#"{"alg":"ES256","typ":"at+jwt"}"#),
            Err(VerifyError::UnknownKey)
        );
    }

    #[test]
    fn key_locating_parameters_are_ignored() {
        let header = parse(
            r#"{"alg":"ES256","typ":"at+jwt","kid":"ours","jku":"https://evil.test/jwks",
                "x5u":"https://evil.test/cert","jwk":{"kty":"EC"},"x5c":["MII"]}"#,
        )
        .unwrap();
        assert_eq!(header.kid(), "ours");
    }

    #[test]
    fn duplicate_parameters_are_malformed() {
        assert_eq!(
            parse(r#"{"alg":"ES256","alg":"none","typ":"at+jwt","kid":"k"}"#),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn a_header_must_be_a_json_object() {
        for header in [r#"["ES256", "at+jwt"]"#, "not json", r#""ES256""#] {
            assert_eq!(parse(header), Err(VerifyError::Malformed), "{header}");
        }
    }

    #[test]
    fn shape_is_checked_before_decoding() {
        for bad in [
            "", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.c=", "a.b.c d", "a+b.c.d",
        ] {
            assert_eq!(check_shape(bad), Err(VerifyError::Malformed), "{bad:?}");
        }
        assert_eq!(
            check_shape(&format!("{}.b.c", "a".repeat(MAX_TOKEN_LEN))),
            Err(VerifyError::Malformed)
        );
        assert!(
            check_shape("a.b.").is_ok(),
            "an empty signature has a shape"
        );
        assert!(check_shape("a-_.b.c").is_ok());
    }
}
