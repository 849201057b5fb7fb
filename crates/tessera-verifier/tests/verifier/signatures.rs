//! Keys, algorithms and signatures.

use jsonwebtoken::Header;
use serde_json::json;
use tessera_verifier::VerifyError;

use crate::helpers::{
    claims, hand_built, tessera_with_es256_key, FakeTessera, TestKey, AUDIENCE, ISSUER,
};

async fn assert_valid_token_verifies(key: TestKey) {
    let tessera = FakeTessera::start().await;
    tessera.publish(&key);
    let verifier = tessera.verifier();

    let claims = verifier
        .verify(&key.token(&claims()))
        .await
        .expect("valid token");

    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud.as_slice(), [AUDIENCE]);
    assert_eq!(claims.sub, "0190d5a4-1111-7000-8000-000000000001");
    assert_eq!(
        claims.user_id(),
        Some("0190d5a4-1111-7000-8000-000000000001")
    );
    assert_eq!(
        claims.session_id(),
        Some("0190d5a4-3333-7000-8000-000000000003")
    );
    assert_eq!(claims.client_id, "tessera");
    assert_eq!(
        claims.scopes().collect::<Vec<_>>(),
        ["profile", "orders:read"]
    );
    assert!(claims.has_scope("orders:read"));
    assert!(claims.has_role("admin"));
    assert!(!claims.has_role("auditor"));
    assert_eq!(claims.preferred_username.as_deref(), Some("alice"));
}

#[tokio::test]
async fn valid_es256_token_verifies() {
    assert_valid_token_verifies(TestKey::es256("es")).await;
}

#[tokio::test]
async fn valid_eddsa_token_verifies() {
    assert_valid_token_verifies(TestKey::ed25519("ed")).await;
}

#[tokio::test]
async fn valid_rs256_token_verifies() {
    assert_valid_token_verifies(TestKey::rs256("rsa")).await;
}

#[tokio::test]
async fn client_credentials_token_has_no_user() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["sub"] = json!("svc-billing");
    c["client_id"] = json!("svc-billing");
    for claim in ["sid", "roles", "preferred_username"] {
        c.as_object_mut().unwrap().remove(claim);
    }

    let claims = tessera.verifier().verify(&key.token(&c)).await.unwrap();

    assert_eq!(claims.user_id(), None);
    assert!(claims.roles().is_empty());
}

#[tokio::test]
async fn forged_signature_under_a_known_kid_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let forger = TestKey::es256(&key.kid);

    let result = tessera.verifier().verify(&forger.token(&claims())).await;

    assert!(
        matches!(result, Err(VerifyError::BadSignature)),
        "{result:?}"
    );
}

#[tokio::test]
async fn tampered_claims_are_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let token = key.token(&claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut elevated = claims();
    elevated["roles"] = json!(["admin", "superuser"]);
    let payload = hand_built(&json!({}), &elevated, b"");
    parts[1] = payload.split('.').nth(1).unwrap();

    let result = tessera.verifier().verify(&parts.join(".")).await;

    assert!(
        matches!(result, Err(VerifyError::BadSignature)),
        "{result:?}"
    );
}

#[tokio::test]
async fn alg_none_is_refused_without_fetching_keys() {
    let (tessera, key) = tessera_with_es256_key().await;
    let token = hand_built(
        &json!({"typ": "at+jwt", "alg": "none", "kid": key.kid}),
        &claims(),
        b"",
    );

    let result = tessera.verifier().verify(&token).await;

    assert!(
        matches!(result, Err(VerifyError::UnsupportedAlgorithm)),
        "{result:?}"
    );
    assert_eq!(tessera.jwks_hits(), 0);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let verifier = tessera.verifier();
    // The classic confusion attack: the public key, which anyone can fetch, used as an
    // HMAC secret, in the forms a careless verifier might feed to HMAC.
    let jwk_text = serde_json::to_vec(&key.jwk).unwrap();
    let x = key.jwk["x"].as_str().unwrap().as_bytes().to_vec();
    for secret in [jwk_text, x] {
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(
            &header,
            &claims(),
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();

        let result = verifier.verify(&token).await;

        assert!(
            matches!(result, Err(VerifyError::UnsupportedAlgorithm)),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn token_algorithm_must_match_the_keys_algorithm() {
    let tessera = FakeTessera::start().await;
    let ec = TestKey::es256("ec");
    tessera.publish(&ec);
    // An Ed25519 signature presented under the P-256 key's kid.
    let ed = TestKey::ed25519("ec");

    let result = tessera.verifier().verify(&ed.token(&claims())).await;

    assert!(
        matches!(result, Err(VerifyError::AlgorithmMismatch)),
        "{result:?}"
    );
}

#[tokio::test]
async fn algorithm_outside_the_allow_list_is_refused() {
    let tessera = FakeTessera::start().await;
    let key = TestKey::rs256("rsa");
    tessera.publish(&key);
    let verifier = tessera_verifier::Verifier::new(
        tessera
            .config()
            .algorithms([tessera_verifier::Algorithm::Es256]),
    )
    .unwrap();

    let result = verifier.verify(&key.token(&claims())).await;

    assert!(
        matches!(result, Err(VerifyError::UnsupportedAlgorithm)),
        "{result:?}"
    );
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let (tessera, _key) = tessera_with_es256_key().await;
    let stranger = TestKey::es256("not-published");

    let result = tessera.verifier().verify(&stranger.token(&claims())).await;

    assert!(matches!(result, Err(VerifyError::UnknownKey)), "{result:?}");
}

#[tokio::test]
async fn token_without_kid_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut header = key.header();
    header.kid = None;

    let result = tessera
        .verifier()
        .verify(&key.token_with(header, &claims()))
        .await;

    assert!(matches!(result, Err(VerifyError::UnknownKey)), "{result:?}");
}

#[tokio::test]
async fn published_key_with_mismatched_alg_is_never_used() {
    let tessera = FakeTessera::start().await;
    let key = TestKey::es256("ec");
    let mut jwk = key.jwk.clone();
    jwk["alg"] = json!("RS256");
    tessera.publish_raw(jwk);

    let result = tessera.verifier().verify(&key.token(&claims())).await;

    assert!(matches!(result, Err(VerifyError::UnknownKey)), "{result:?}");
}

#[tokio::test]
async fn oversized_token_is_malformed() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["padding"] = json!("x".repeat(9 * 1024));

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(matches!(result, Err(VerifyError::Malformed)), "{result:?}");
    assert_eq!(tessera.jwks_hits(), 0);
}
