//! The verifier crate against a real Tessera: what microservices will run.

use tessera_verifier::{IntrospectionConfig, Verifier, VerifierConfig, VerifyError};

use crate::helpers::{spawn, TestApp, ISSUER};

/// A verifier for `app`, fetching its JWKS from wherever the app listens.
fn verifier_for(app: &TestApp) -> VerifierConfig {
    VerifierConfig::new(ISSUER, ISSUER).jwks_url(app.url("/.well-known/jwks.json"))
}

#[tokio::test]
async fn tokens_of_every_algorithm_verify_with_the_verifier_crate() {
    for alg in ["ES256", "EdDSA", "RS256"] {
        let app = spawn().with("TESSERA_SIGNING_ALG", alg).start().await;
        let user = app.create_user("alice", &["admin"]).await;
        let token = app.login("alice").await.access_token;
        let verifier = Verifier::new(verifier_for(&app)).unwrap();

        let claims = verifier
            .verify(&token)
            .await
            .unwrap_or_else(|e| panic!("{alg}: {e}"));

        assert_eq!(claims.sub, user.to_string());
        assert_eq!(claims.client_id, "tessera");
        assert!(claims.has_scope("profile"));
        assert!(claims.has_role("admin"));
        assert_eq!(
            claims.user_id().map(|u| u.to_string()),
            Some(user.to_string())
        );
    }
}

#[tokio::test]
async fn a_service_audience_is_checked() {
    let app = spawn().start().await;
    app.create_user("alice", &[]).await;
    app.create_client(serde_json::json!({
        "client_id": "shop", "grant_types": ["password"], "scopes": ["orders:read"],
        "audiences": ["https://orders.example"]
    }))
    .await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "shop"),
                ("username", "alice"),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    let token = crate::helpers::tokens_of(res).await.access_token;
    let orders = Verifier::new(
        VerifierConfig::new(ISSUER, "https://orders.example")
            .jwks_url(app.url("/.well-known/jwks.json")),
    )
    .unwrap();
    assert!(orders
        .verify(&token)
        .await
        .unwrap()
        .has_scope("orders:read"));
    let billing = Verifier::new(
        VerifierConfig::new(ISSUER, "https://billing.example")
            .jwks_url(app.url("/.well-known/jwks.json")),
    )
    .unwrap();
    assert!(matches!(
        billing.verify(&token).await,
        Err(VerifyError::WrongAudience)
    ));
}

#[tokio::test]
async fn the_online_check_sees_revocations() {
    let app = spawn().start().await;
    app.create_user("alice", &[]).await;
    // The token is for Tessera's API, not orders-api's: only a client allowed to
    // introspect any token learns about it.
    let (_, secret) = app
        .create_client(serde_json::json!({
            "client_id": "orders-api", "confidential": true,
            "grant_types": ["client_credentials"], "introspect_any": true,
        }))
        .await;
    let secret = secret.unwrap();
    let tokens = app.login("alice").await;
    let verifier = Verifier::new(verifier_for(&app).introspection(
        IntrospectionConfig::new("orders-api", secret).url(app.url("/oauth/introspect")),
    ))
    .unwrap();
    verifier.verify_online(&tokens.access_token).await.unwrap();

    app.post_form("/oauth/revoke", &[("token", &tokens.access_token)])
        .await;

    assert!(matches!(
        verifier.verify_online(&tokens.access_token).await,
        Err(VerifyError::Revoked)
    ));
    // Offline verification cannot know: that is the trade-off the online check buys.
    verifier.verify(&tokens.access_token).await.unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_found_by_the_verifier() {
    let app = spawn()
        .with("TESSERA_JWKS_MAX_AGE", "0")
        .with("TESSERA_KEY_PUBLISH_AHEAD", "1s")
        .with("TESSERA_KEY_REFRESH_INTERVAL", "100ms")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let verifier = Verifier::new(
        verifier_for(&app).min_refresh_interval(std::time::Duration::from_millis(200)),
    )
    .unwrap();
    let before = app.login("alice").await.access_token;
    verifier.verify(&before).await.unwrap();

    tessera::auth::keys::rotate(&app.tessera, true, &tessera::auth::Actor::command_line())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = app.login("alice").await.access_token;
    let kid = |token: &str| crate::helpers::header_of(token)["kid"].clone();
    assert_ne!(
        kid(&after),
        kid(&before),
        "signed with a key the verifier has not seen"
    );

    verifier
        .verify(&after)
        .await
        .expect("the new kid is fetched");
}
