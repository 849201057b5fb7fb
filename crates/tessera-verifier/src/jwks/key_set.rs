//! A JWK Set turned into verification keys, each bound to exactly one algorithm.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use tessera_token::VerificationKeys;

use crate::Algorithm;

/// RSA moduli outside this range are refused (NIST SP 800-131A; aws-lc verifies up to
/// 8192 bits, and larger ones would only cost us CPU).
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// A public key from the JWKS, usable with exactly one algorithm: the `alg` it was
/// published with.
pub(crate) struct VerifyingKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

/// The usable keys of one JWKS response, by `kid`.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: HashMap<String, VerifyingKey>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Keys that are not for signatures, lack a `kid` or `alg`, use an algorithm not in
    /// `allowed`, or do not fit their `alg` (wrong key type or curve, short RSA modulus)
    /// are left out, as are all keys sharing a `kid` (we would not know which one is
    /// meant). A document that is not a JWK Set at all is an error.
    pub(crate) fn parse(body: &[u8], allowed: &[Algorithm]) -> Result<KeySet, String> {
        let raw: RawSet = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let mut keys = HashMap::new();
        let mut duplicated = Vec::new();
        for value in raw.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            match usable_key(value, allowed) {
                Ok((kid, key)) => {
                    if keys.insert(kid.clone(), key).is_some() {
                        duplicated.push(kid);
                    }
                }
                Err(reason) => {
                    tracing::debug!(
                        kid = kid.as_deref().unwrap_or("(none)"),
                        reason,
                        "JWKS key ignored"
                    );
                }
            }
        }
        for kid in duplicated {
            tracing::warn!(
                kid,
                "JWKS publishes several keys under one kid; all of them are ignored"
            );
            keys.remove(&kid);
        }
        Ok(KeySet { keys })
    }

    pub(crate) fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

impl VerificationKeys for KeySet {
    fn key(&self, kid: &str) -> Option<(Algorithm, &DecodingKey)> {
        self.keys.get(kid).map(|k| (k.algorithm, &k.key))
    }
}

fn usable_key(
    value: serde_json::Value,
    allowed: &[Algorithm],
) -> Result<(String, VerifyingKey), &'static str> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|_| "not a valid JWK")?;
    let kid = match &jwk.common.key_id {
        Some(kid) if !kid.is_empty() => kid.clone(),
        _ => return Err("no kid"),
    };
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return Err("not a signature key (use)");
    }
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err("not a verification key (key_ops)");
    }
    let algorithm = match jwk.common.key_algorithm {
        Some(KeyAlgorithm::ES256) => Algorithm::Es256,
        Some(KeyAlgorithm::EdDSA) => Algorithm::EdDsa,
        Some(KeyAlgorithm::RS256) => Algorithm::Rs256,
        Some(_) => return Err("algorithm not supported"),
        // RFC 7517 makes `alg` optional, but without it the token would choose the
        // algorithm, which is exactly what must never happen.
        None => return Err("no alg"),
    };
    if !allowed.contains(&algorithm) {
        return Err("algorithm not allowed by this verifier");
    }
    check_key_type(&jwk.algorithm, algorithm)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "unusable key material")?;
    Ok((kid, VerifyingKey { algorithm, key }))
}

/// The key must be of the one type its `alg` is defined for (RFC 7518 §3.4, RFC 8037
/// §3.1, RFC 7518 §3.3), with coordinates of the right length.
fn check_key_type(params: &AlgorithmParameters, algorithm: Algorithm) -> Result<(), &'static str> {
    let decoded_len = |b64: &str| URL_SAFE_NO_PAD.decode(b64).map(|v| v.len()).ok();
    match (algorithm, params) {
        (Algorithm::Es256, AlgorithmParameters::EllipticCurve(ec)) => {
            if ec.curve != EllipticCurve::P256 {
                return Err("ES256 needs a P-256 key");
            }
            if decoded_len(&ec.x) != Some(32) || decoded_len(&ec.y) != Some(32) {
                return Err("P-256 coordinates must be 32 bytes");
            }
            Ok(())
        }
        (Algorithm::EdDsa, AlgorithmParameters::OctetKeyPair(okp)) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err("EdDSA needs an Ed25519 key");
            }
            if decoded_len(&okp.x) != Some(32) {
                return Err("an Ed25519 public key is 32 bytes");
            }
            Ok(())
        }
        (Algorithm::Rs256, AlgorithmParameters::RSA(rsa)) => {
            let n = URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .map_err(|_| "bad RSA modulus")?;
            let bits = modulus_bits(&n);
            if bits < RSA_MIN_BITS {
                return Err("RSA key shorter than 2048 bits");
            }
            if bits > RSA_MAX_BITS {
                return Err("RSA key longer than 8192 bits");
            }
            Ok(())
        }
        _ => Err("key type does not match alg"),
    }
}

fn modulus_bits(n: &[u8]) -> usize {
    let n = match n.iter().position(|b| *b != 0) {
        Some(first) => &n[first..],
        None => return 0,
    };
    n.len() * 8 - n[0].leading_zeros() as usize
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn parse(keys: serde_json::Value) -> KeySet {
        KeySet::parse(
            serde_json::to_vec(&json!({ "keys": keys }))
                .unwrap()
                .as_slice(),
            &Algorithm::ALL,
        )
        .unwrap()
    }

    fn ec_key(kid: &str) -> serde_json::Value {
        json!({"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": kid, "use": "sig", "alg": "ES256"})
    }

    #[test]
    fn a_p256_key_with_alg_es256_is_usable() {
        let set = parse(json!([ec_key("a")]));
        assert_eq!(set.key("a").unwrap().0, Algorithm::Es256);
    }

    #[test]
    fn keys_without_alg_are_ignored() {
        let mut key = ec_key("a");
        key.as_object_mut().unwrap().remove("alg");
        assert_eq!(parse(json!([key])).len(), 0);
    }

    #[test]
    fn symmetric_keys_are_ignored() {
        let set = parse(json!([{"kty": "oct", "k": "c2VjcmV0", "kid": "h", "alg": "HS256"}]));
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn an_ec_key_labelled_rs256_is_ignored() {
        let mut key = ec_key("a");
        key["alg"] = json!("RS256");
        assert_eq!(parse(json!([key])).len(), 0);
    }

    #[test]
    fn encryption_keys_are_ignored() {
        let mut key = ec_key("a");
        key["use"] = json!("enc");
        assert_eq!(parse(json!([key])).len(), 0);
    }

    #[test]
    fn a_short_rsa_key_is_ignored() {
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        let set = parse(json!([{"kty": "RSA", "n": n, "e": "AQAB", "kid": "r", "alg": "RS256"}]));
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn a_kid_published_twice_is_ignored() {
        let set = parse(json!([ec_key("a"), ec_key("a"), ec_key("b")]));
        assert!(!set.contains("a"));
        assert!(set.contains("b"));
    }

    #[test]
    fn disallowed_algorithms_are_ignored() {
        let body = serde_json::to_vec(&json!({ "keys": [ec_key("a")] })).unwrap();
        let set = KeySet::parse(&body, &[Algorithm::EdDsa]).unwrap();
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn modulus_bits_ignore_leading_zeros() {
        assert_eq!(modulus_bits(&[0, 0x01, 0xff]), 9);
        assert_eq!(modulus_bits(&[0x80; 256]), 2048);
        assert_eq!(modulus_bits(&[]), 0);
    }
}
