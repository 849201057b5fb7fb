//! RFC 7662 introspection of every token state.

use diesel::RunQueryDsl;
use serde_json::Value;

use crate::helpers::{assert_oauth_error, claims_of, spawn_app, tokens_of, TestApp, ISSUER};

/// A resource server: a confidential client that may introspect.
async fn resource_server(app: &TestApp) -> (String, String) {
    let secret = app.service_client("orders-api", &[]).await;
    ("orders-api".to_owned(), secret)
}

async fn introspect(app: &TestApp, rs: &(String, String), token: &str) -> Value {
    let res = app
        .api
        .post(app.url("/oauth/introspect"))
        .basic_auth(&rs.0, Some(&rs.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_live_access_token_is_active_with_its_claims() {
    let app = spawn_app().await;
    let rs = resource_server(&app).await;
    let user = app.create_user("alice", &["admin"]).await;
    let tokens = app.login("alice").await;
    let claims = claims_of(&tokens.access_token);

    let body = introspect(&app, &rs, &tokens.access_token).await;

    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], user.to_string());
    assert_eq!(body["username"], "alice");
    assert_eq!(body["client_id"], "tessera");
    assert_eq!(body["scope"], "profile");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], ISSUER);
    assert_eq!(body["aud"], ISSUER);
    for field in ["exp", "iat", "nbf", "jti", "sid"] {
        assert_eq!(body[field], claims[field], "{field}");
    }
}

#[tokio::test]
async fn a_client_credentials_token_is_active() {
    let app = spawn_app().await;
    let rs = resource_server(&app).await;
    let secret = app.service_client("billing", &["orders:read"]).await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth("billing", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let token = tokens_of(res).await.access_token;
    let body = introspect(&app, &rs, &token).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], "billing");
    assert_eq!(body["aud"], "orders-api");
    assert!(body.get("username").is_none());
}

#[tokio::test]
async fn revoked_expired_malformed_and_foreign_tokens_are_inactive() {
    let app = spawn_app().await;
    let rs = resource_server(&app).await;
    app.create_user("alice", &[]).await;
    let revoked = app.login("alice").await;
    app.post_form("/oauth/revoke", &[("token", &revoked.access_token)])
        .await;

    // Expired: signed with the real key, but an hour old.
    let keys = app.state.keys.snapshot();
    let key = keys.signing().unwrap();
    let mut header = jsonwebtoken::Header::new(key.algorithm.jwt_algorithm());
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    let mut claims = claims_of(&app.login("alice").await.access_token);
    claims["exp"] = (chrono::Utc::now().timestamp() - 3600).into();
    let expired = jsonwebtoken::encode(&header, &claims, key.encoding_key()).unwrap();

    // Foreign: a token from another issuer's key under the same kid.
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    claims["exp"] = (chrono::Utc::now().timestamp() + 3600).into();
    let foreign = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();

    for token in [
        revoked.access_token.as_str(),
        &expired,
        &foreign,
        "garbage",
        "a.b.c",
    ] {
        let body = introspect(&app, &rs, token).await;
        assert_eq!(body, serde_json::json!({"active": false}), "{token}");
    }
}

#[tokio::test]
async fn a_live_refresh_token_is_active() {
    let app = spawn_app().await;
    let rs = resource_server(&app).await;
    let user = app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;

    let body = introspect(&app, &rs, &tokens.refresh_token).await;

    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["sub"], user.to_string());
    assert_eq!(body["client_id"], "tessera");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["sid"], claims_of(&tokens.access_token)["sid"]);
    assert!(body["exp"].as_i64().unwrap() > chrono::Utc::now().timestamp());
}

#[tokio::test]
async fn spent_revoked_and_expired_refresh_tokens_are_inactive() {
    let app = spawn_app().await;
    let rs = resource_server(&app).await;
    app.create_user("alice", &[]).await;
    let spent = app.login("alice").await;
    let successor = app.refresh(&spent.refresh_token).await;
    let revoked = app.login("alice").await;
    app.post_form("/oauth/revoke", &[("token", &revoked.refresh_token)])
        .await;
    let expired = app.login("alice").await;
    diesel::sql_query(format!(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second'
          WHERE token_hash = sha256('{}'::bytea)",
        expired.refresh_token
    ))
    .execute(&mut app.db())
    .unwrap();

    for token in [
        &spent.refresh_token,
        &revoked.refresh_token,
        &expired.refresh_token,
    ] {
        assert_eq!(introspect(&app, &rs, token).await["active"], false);
    }
    assert_eq!(
        introspect(&app, &rs, &successor.refresh_token).await["active"],
        true
    );
}

#[tokio::test]
async fn only_authenticated_confidential_clients_may_introspect() {
    let app = spawn_app().await;
    let rs = resource_server(&app).await;
    app.create_user("alice", &[]).await;
    let token = app.login("alice").await.access_token;
    // No client authentication: the built-in public client.
    let res = app
        .post_form("/oauth/introspect", &[("token", &token)])
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // A public client by name.
    let res = app
        .post_form(
            "/oauth/introspect",
            &[("token", &token), ("client_id", "tessera")],
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // A wrong secret.
    let res = app
        .api
        .post(app.url("/oauth/introspect"))
        .basic_auth(&rs.0, Some("cs_wrong"))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
    // The secret in the body works as well as Basic.
    let res = app
        .post_form(
            "/oauth/introspect",
            &[
                ("token", &token),
                ("client_id", &rs.0),
                ("client_secret", &rs.1),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}
