//! The JOSE header: `typ`, `crit`, and the key-locating parameters we must ignore.

use serde_json::json;
use tessera_verifier::VerifyError;

use crate::helpers::{claims, hand_built, tessera_with_es256_key, FakeTessera, TestKey};

#[tokio::test]
async fn jwt_typ_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut header = key.header();
    header.typ = Some("JWT".to_owned());

    let result = tessera
        .verifier()
        .verify(&key.token_with(header, &claims()))
        .await;

    assert!(matches!(result, Err(VerifyError::WrongType)), "{result:?}");
}

#[tokio::test]
async fn missing_typ_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut header = key.header();
    header.typ = None;

    let result = tessera
        .verifier()
        .verify(&key.token_with(header, &claims()))
        .await;

    assert!(matches!(result, Err(VerifyError::WrongType)), "{result:?}");
}

#[tokio::test]
async fn full_media_type_typ_is_accepted() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut header = key.header();
    header.typ = Some("Application/AT+JWT".to_owned());

    let result = tessera
        .verifier()
        .verify(&key.token_with(header, &claims()))
        .await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn crit_header_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut header = key.header();
    header.crit = Some(vec!["exp".to_owned()]);

    let result = tessera
        .verifier()
        .verify(&key.token_with(header, &claims()))
        .await;

    assert!(
        matches!(result, Err(VerifyError::CriticalHeader)),
        "{result:?}"
    );
}

#[tokio::test]
async fn jku_is_never_fetched_and_its_keys_never_trusted() {
    let (tessera, _key) = tessera_with_es256_key().await;
    let attacker = FakeTessera::start().await;
    let attacker_key = TestKey::es256("attacker-key");
    attacker.publish(&attacker_key);
    let mut header = attacker_key.header();
    header.jku = Some(attacker.jwks_url());
    header.x5u = Some(format!("{}/cert.pem", attacker.base_url));

    let result = tessera
        .verifier()
        .verify(&attacker_key.token_with(header, &claims()))
        .await;

    assert!(matches!(result, Err(VerifyError::UnknownKey)), "{result:?}");
    assert_eq!(attacker.jwks_hits(), 0);
}

#[tokio::test]
async fn jku_does_not_change_which_key_verifies() {
    let (tessera, key) = tessera_with_es256_key().await;
    let attacker = FakeTessera::start().await;
    let mut header = key.header();
    header.jku = Some(attacker.jwks_url());

    let result = tessera
        .verifier()
        .verify(&key.token_with(header, &claims()))
        .await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(attacker.jwks_hits(), 0);
}

#[tokio::test]
async fn embedded_jwk_is_not_trusted() {
    let (tessera, key) = tessera_with_es256_key().await;
    // The attacker embeds their own public key and claims our kid.
    let attacker_key = TestKey::es256(&key.kid);
    let mut header = attacker_key.header();
    header.jwk = Some(serde_json::from_value(attacker_key.jwk.clone()).unwrap());

    let result = tessera
        .verifier()
        .verify(&attacker_key.token_with(header, &claims()))
        .await;

    assert!(
        matches!(result, Err(VerifyError::BadSignature)),
        "{result:?}"
    );
}

#[tokio::test]
async fn garbage_is_malformed() {
    let (tessera, _key) = tessera_with_es256_key().await;
    let verifier = tessera.verifier();
    let not_json = format!("{}.e30.c2ln", "bm90IGpzb24");
    let header_array = hand_built(&json!(["at+jwt"]), &claims(), b"sig");
    for token in [
        "",
        "abc",
        "a.b.c.d",
        "a.b.c=",
        not_json.as_str(),
        header_array.as_str(),
    ] {
        let result = verifier.verify(token).await;
        assert!(
            matches!(result, Err(VerifyError::Malformed)),
            "{token:?}: {result:?}"
        );
    }
    assert_eq!(tessera.jwks_hits(), 0);
}
