//! `iss`, `aud`, `exp`, `nbf` and the claims every access token must carry.

use serde_json::json;
use tessera_verifier::VerifyError;

use crate::helpers::{claims, now, tessera_with_es256_key, AUDIENCE};

#[tokio::test]
async fn expired_token_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["iat"] = json!(now() - 600);
    c["nbf"] = json!(now() - 600);
    c["exp"] = json!(now() - 60);

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(matches!(result, Err(VerifyError::Expired)), "{result:?}");
}

#[tokio::test]
async fn expiry_within_leeway_is_tolerated() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["exp"] = json!(now() - 2);

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn token_not_yet_valid_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["nbf"] = json!(now() + 60);

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(
        matches!(result, Err(VerifyError::NotYetValid)),
        "{result:?}"
    );
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["aud"] = json!("https://billing.tessera.test");

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(
        matches!(result, Err(VerifyError::WrongAudience)),
        "{result:?}"
    );
}

#[tokio::test]
async fn audience_array_containing_ours_is_accepted() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["aud"] = json!(["https://auth.tessera.test", AUDIENCE]);

    let claims = tessera.verifier().verify(&key.token(&c)).await.unwrap();

    assert_eq!(
        claims.aud.as_slice(),
        ["https://auth.tessera.test", AUDIENCE]
    );
}

#[tokio::test]
async fn additional_accepted_audience_is_honoured() {
    let (tessera, key) = tessera_with_es256_key().await;
    let verifier =
        tessera_verifier::Verifier::new(tessera.config().accept_audience("https://legacy.test"))
            .unwrap();
    let mut c = claims();
    c["aud"] = json!("https://legacy.test");

    let result = verifier.verify(&key.token(&c)).await;

    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["iss"] = json!("https://evil.test");

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(
        matches!(result, Err(VerifyError::WrongIssuer)),
        "{result:?}"
    );
}

#[tokio::test]
async fn issuer_array_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["iss"] = json!([crate::helpers::ISSUER, "https://evil.test"]);

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(result.is_err(), "{result:?}");
}

#[tokio::test]
async fn missing_client_id_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c.as_object_mut().unwrap().remove("client_id");

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(
        matches!(result, Err(VerifyError::MissingClaim("client_id"))),
        "{result:?}"
    );
}

#[tokio::test]
async fn missing_exp_is_refused() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");

    let result = tessera.verifier().verify(&key.token(&c)).await;

    assert!(
        matches!(result, Err(VerifyError::MissingClaim("exp"))),
        "{result:?}"
    );
}
