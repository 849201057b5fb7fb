//! `verify_online`: RFC 7662 introspection after the offline checks.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use tessera_verifier::{IntrospectionError, VerifyError};

use crate::helpers::{claims, now, tessera_with_es256_key, CLIENT_ID};

#[tokio::test]
async fn revoked_token_is_refused_online() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_active(false);

    let result = tessera
        .online_verifier()
        .verify_online(&key.token(&claims()))
        .await;

    assert!(matches!(result, Err(VerifyError::Revoked)), "{result:?}");
}

#[tokio::test]
async fn introspection_authenticates_with_http_basic() {
    let (tessera, key) = tessera_with_es256_key().await;
    let token = key.token(&claims());

    tessera
        .online_verifier()
        .verify_online(&token)
        .await
        .unwrap();

    let requests = tessera.introspections();
    assert_eq!(requests.len(), 1);
    // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:s3cret%3Awith%20space"))
    );
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(expected.as_str())
    );
    assert_eq!(requests[0].form.get("token"), Some(&token));
    assert_eq!(
        requests[0].form.get("token_type_hint").map(String::as_str),
        Some("access_token")
    );
}

#[tokio::test]
async fn invalid_token_is_refused_before_introspection() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["exp"] = json!(now() - 60);

    let result = tessera
        .online_verifier()
        .verify_online(&key.token(&c))
        .await;

    assert!(matches!(result, Err(VerifyError::Expired)), "{result:?}");
    assert!(tessera.introspections().is_empty());
}

#[tokio::test]
async fn verify_online_without_introspection_settings_is_unavailable() {
    let (tessera, key) = tessera_with_es256_key().await;

    let error = tessera
        .verifier()
        .verify_online(&key.token(&claims()))
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            VerifyError::IntrospectionUnavailable(IntrospectionError::NotConfigured)
        ),
        "{error:?}"
    );
    assert_eq!(error.status_code(), 503);
}

#[tokio::test]
async fn unreachable_introspection_is_unavailable_not_revoked() {
    let (tessera, key) = tessera_with_es256_key().await;
    let introspection = tessera_verifier::IntrospectionConfig::new(CLIENT_ID, "secret").url(
        format!("{}/oauth/introspect", crate::helpers::closed_port_url()),
    );
    let verifier =
        tessera_verifier::Verifier::new(tessera.config().introspection(introspection)).unwrap();

    let error = verifier
        .verify_online(&key.token(&claims()))
        .await
        .unwrap_err();

    assert!(
        matches!(error, VerifyError::IntrospectionUnavailable(_)),
        "{error:?}"
    );
    assert!(!error.is_caller_fault());
}

#[test]
fn client_secret_stays_out_of_debug_output() {
    let settings = tessera_verifier::IntrospectionConfig::new(CLIENT_ID, "hunter2-very-secret");

    let printed = format!("{settings:?}");

    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains(CLIENT_ID));
}
