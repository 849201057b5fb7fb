//! The signature and claim rules, and the one thing they need from their caller: keys.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{DecodingKey, Validation};

use crate::claims::RawClaims;
use crate::{AccessClaims, Algorithm, TokenHeader, VerifyError};

/// The published keys, by `kid`. The server hands its own key set, a verifier the JWKS
/// it fetched; either way only a `kid` selects a key, and each key comes with the one
/// algorithm it was published for (a key without one is not a verification key).
pub trait VerificationKeys {
    /// The key published under `kid` and its algorithm, or `None` if there is none.
    fn key(&self, kid: &str) -> Option<(Algorithm, &DecodingKey)>;
}

/// The expensive step: the key the header names, the header's `alg` bound to that key,
/// the signature, and every required claim. What it returns does not change with time,
/// so a caller may remember it for this token and these keys, and later only
/// [`ClaimRules::check`] it again.
pub fn verify_signature<K: VerificationKeys + ?Sized>(
    token: &str,
    header: &TokenHeader,
    keys: &K,
) -> Result<AccessClaims, VerifyError> {
    let (algorithm, key) = keys.key(header.kid()).ok_or(VerifyError::UnknownKey)?;
    if algorithm != header.algorithm() {
        return Err(VerifyError::AlgorithmMismatch);
    }
    jsonwebtoken::decode::<RawClaims>(token, key, signature_only(algorithm))
        .map_err(|e| VerifyError::from_jwt(e.kind()))?
        .claims
        .into_claims()
}

/// [`TokenHeader::parse`] and [`verify_signature`] in one go, for keys at hand.
pub fn verify_signed<K: VerificationKeys + ?Sized>(
    token: &str,
    keys: &K,
    allowed: &[Algorithm],
) -> Result<AccessClaims, VerifyError> {
    let header = TokenHeader::parse(token, allowed)?;
    verify_signature(token, &header, keys)
}

/// What the claims of an acceptable token say, for one verifier. Borrowed, so that a
/// caller can build one per request for free.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRules<'a, A = String> {
    /// `iss` must be exactly this.
    pub issuer: &'a str,
    /// `aud` must name at least one of these; `None` accepts any audience (for callers
    /// that judge it themselves, like introspection, RFC 7662 §2.2).
    pub audiences: Option<&'a [A]>,
    /// Tolerated clock skew on `exp` and `nbf`; [`LEEWAY`](crate::LEEWAY) by default.
    pub leeway: Duration,
}

impl<A: AsRef<str>> ClaimRules<'_, A> {
    /// Checks, in order, `iss`, `exp` (expired once `now` reaches `exp` plus the leeway),
    /// `nbf` (if present, not before `nbf` minus the leeway) and `aud`. `now` is in
    /// seconds since the Unix epoch ([`unix_now`]).
    pub fn check(&self, claims: &AccessClaims, now: i64) -> Result<(), VerifyError> {
        let leeway = i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX);
        if claims.iss != self.issuer {
            return Err(VerifyError::WrongIssuer);
        }
        if claims.exp.saturating_add(leeway) <= now {
            return Err(VerifyError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf.saturating_sub(leeway) > now)
        {
            return Err(VerifyError::NotYetValid);
        }
        if let Some(accepted) = self.audiences {
            if !accepted.iter().any(|aud| claims.aud.contains(aud.as_ref())) {
                return Err(VerifyError::WrongAudience);
            }
        }
        Ok(())
    }
}

/// Seconds since the Unix epoch, as `exp`, `iat` and `nbf` count them.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// jsonwebtoken checks the signature with the key's algorithm and nothing else: no
/// claim is required or judged by it, so that every claim rule lives in
/// [`RawClaims::into_claims`] and [`ClaimRules`], in one place. Built once per
/// algorithm, not per token.
fn signature_only(algorithm: Algorithm) -> &'static Validation {
    static VALIDATIONS: LazyLock<[Validation; 3]> = LazyLock::new(|| {
        Algorithm::ALL.map(|algorithm| {
            let mut validation = Validation::new(algorithm.jwt());
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.validate_aud = false;
            validation.leeway = 0;
            validation
        })
    });
    let index = match algorithm {
        Algorithm::Es256 => 0,
        Algorithm::EdDsa => 1,
        Algorithm::Rs256 => 2,
    };
    debug_assert_eq!(Algorithm::ALL[index], algorithm);
    &VALIDATIONS[index]
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::{json, Value};

    use super::*;
    use crate::claims::tests::user_claims;
    use crate::{Audience, LEEWAY};

    const ISSUER: &str = "https://auth.example.com";
    const AUDIENCE: &str = "https://orders.example.com";
    /// The `iat` of [`user_claims`]; its `exp` is 300 s later.
    const IAT: i64 = 2_000_000_000;

    struct TestKey {
        alg: Algorithm,
        encoding: EncodingKey,
        decoding: DecodingKey,
    }

    impl TestKey {
        fn es256() -> Self {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("P-256 key");
            Self::new(Algorithm::Es256, EncodingKey::from_ec_der(pkcs8.as_ref()))
        }

        fn ed25519() -> Self {
            let pair = Ed25519KeyPair::generate().expect("Ed25519 key");
            let der = AsDer::<Pkcs8V1Der>::as_der(&pair).expect("PKCS#8");
            Self::new(Algorithm::EdDsa, EncodingKey::from_ed_der(der.as_ref()))
        }

        fn new(alg: Algorithm, encoding: EncodingKey) -> Self {
            let jwk = Jwk::from_encoding_key(&encoding, alg.jwt()).expect("public JWK");
            let decoding = DecodingKey::from_jwk(&jwk).expect("decoding key");
            Self {
                alg,
                encoding,
                decoding,
            }
        }

        fn sign(&self, kid: &str, claims: &Value) -> String {
            let mut header = Header::new(self.alg.jwt());
            header.typ = Some("at+jwt".to_owned());
            header.kid = Some(kid.to_owned());
            jsonwebtoken::encode(&header, claims, &self.encoding).expect("token signs")
        }
    }

    /// Published keys as a verifier holds them: kid -> key.
    struct Keys(HashMap<&'static str, TestKey>);

    impl VerificationKeys for Keys {
        fn key(&self, kid: &str) -> Option<(Algorithm, &DecodingKey)> {
            self.0.get(kid).map(|k| (k.alg, &k.decoding))
        }
    }

    fn published(keys: impl IntoIterator<Item = (&'static str, TestKey)>) -> Keys {
        Keys(keys.into_iter().collect())
    }

    fn verify(token: &str, keys: &Keys) -> Result<AccessClaims, VerifyError> {
        verify_signed(token, keys, &Algorithm::ALL)
    }

    fn rules<'a>(audiences: Option<&'a [&'a str]>) -> ClaimRules<'a, &'a str> {
        ClaimRules {
            issuer: ISSUER,
            audiences,
            leeway: LEEWAY,
        }
    }

    fn with(claim: &str, value: Value) -> Value {
        let mut claims = user_claims();
        claims[claim] = value;
        claims
    }

    fn checked(claims: Value, audiences: Option<&[&str]>, now: i64) -> Result<(), VerifyError> {
        let keys = published([("k", TestKey::es256())]);
        let token = keys.0["k"].sign("k", &claims);
        rules(audiences).check(&verify(&token, &keys)?, now)
    }

    #[test]
    fn a_token_signed_by_a_published_key_verifies() {
        for key in [TestKey::es256(), TestKey::ed25519()] {
            let token = key.sign("k", &user_claims());
            let keys = published([("k", key)]);
            let claims = verify(&token, &keys).unwrap();
            assert_eq!(claims.client_id, "web");
            assert_eq!(claims.aud, Audience::One(AUDIENCE.to_owned()));
            rules(Some(&[AUDIENCE])).check(&claims, IAT).unwrap();
        }
    }

    #[test]
    fn an_unpublished_kid_is_an_unknown_key() {
        let keys = published([("k", TestKey::es256())]);
        let token = keys.0["k"].sign("someone-else", &user_claims());
        assert_eq!(verify(&token, &keys), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn the_header_alg_must_be_the_keys_algorithm() {
        // An Ed25519 signature presented under the kid of a P-256 key.
        let keys = published([("k", TestKey::es256())]);
        let token = TestKey::ed25519().sign("k", &user_claims());
        assert_eq!(verify(&token, &keys), Err(VerifyError::AlgorithmMismatch));
    }

    #[test]
    fn another_key_under_our_kid_is_a_bad_signature() {
        let keys = published([("k", TestKey::es256())]);
        let token = TestKey::es256().sign("k", &user_claims());
        assert_eq!(verify(&token, &keys), Err(VerifyError::BadSignature));
    }

    #[test]
    fn a_tampered_payload_is_a_bad_signature() {
        let keys = published([("k", TestKey::es256())]);
        let token = keys.0["k"].sign("k", &user_claims());
        let forged = keys.0["k"].sign("k", &with("roles", json!(["admin", "root"])));
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = forged.split('.').nth(1).unwrap();
        assert_eq!(
            verify(&parts.join("."), &keys),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn a_missing_claim_is_named_after_the_signature_holds() {
        let mut claims = user_claims();
        claims.as_object_mut().unwrap().remove("jti");
        assert_eq!(
            checked(claims, None, IAT),
            Err(VerifyError::MissingClaim("jti"))
        );
    }

    #[test]
    fn a_claim_of_the_wrong_type_is_malformed() {
        assert_eq!(
            checked(with("exp", json!("tomorrow")), None, IAT),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn the_issuer_must_match_exactly() {
        for iss in [
            "https://evil.test",
            "https://auth.example.com/",
            "HTTPS://AUTH.EXAMPLE.COM",
        ] {
            assert_eq!(
                checked(with("iss", json!(iss)), None, IAT),
                Err(VerifyError::WrongIssuer),
                "{iss}"
            );
        }
    }

    #[test]
    fn expiry_is_judged_with_the_leeway() {
        let exp = IAT + 300;
        let leeway = LEEWAY.as_secs() as i64;
        assert_eq!(checked(user_claims(), None, exp + leeway - 1), Ok(()));
        assert_eq!(
            checked(user_claims(), None, exp + leeway),
            Err(VerifyError::Expired)
        );
    }

    #[test]
    fn not_before_is_judged_with_the_leeway_and_may_be_absent() {
        let leeway = LEEWAY.as_secs() as i64;
        assert_eq!(checked(user_claims(), None, IAT - leeway), Ok(()));
        assert_eq!(
            checked(user_claims(), None, IAT - leeway - 1),
            Err(VerifyError::NotYetValid)
        );
        let mut no_nbf = user_claims();
        no_nbf.as_object_mut().unwrap().remove("nbf");
        assert_eq!(checked(no_nbf, None, IAT - 3600), Ok(()));
    }

    #[test]
    fn the_audience_must_name_an_accepted_one() {
        let aud = Some(&[AUDIENCE][..]);
        assert_eq!(
            checked(with("aud", json!("https://billing.example.com")), aud, IAT),
            Err(VerifyError::WrongAudience)
        );
        let both = with("aud", json!(["https://billing.example.com", AUDIENCE]));
        assert_eq!(checked(both, aud, IAT), Ok(()));
        let legacy = Some(&["https://legacy.test", AUDIENCE][..]);
        assert_eq!(checked(user_claims(), legacy, IAT), Ok(()));
        assert_eq!(
            checked(with("aud", json!([])), aud, IAT),
            Err(VerifyError::WrongAudience)
        );
    }

    #[test]
    fn no_accepted_audience_means_any() {
        assert_eq!(
            checked(with("aud", json!("https://billing.example.com")), None, IAT),
            Ok(())
        );
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        assert_eq!(checked(with("exp", json!(i64::MAX)), None, IAT), Ok(()));
        assert_eq!(checked(with("nbf", json!(i64::MIN)), None, IAT), Ok(()));
    }

    #[test]
    fn the_clock_counts_seconds_since_the_epoch() {
        assert!(unix_now() > 1_700_000_000);
    }
}
