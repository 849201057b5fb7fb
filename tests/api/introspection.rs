//! RFC 7662 introspection of every token state.

use diesel::RunQueryDsl;
use serde_json::Value;

use crate::helpers::{assert_oauth_error, claims_of, spawn_app, tokens_of, TestApp, ISSUER};

/// A confidential client an administrator allowed to introspect any token.
async fn resource_server(app: &TestApp) -> (String, String) {
    let (_, secret) = app
        .create_client(serde_json::json!({
            "client_id": "orders-api", "confidential": true,
            "grant_types": ["client_credentials"], "audiences": ["orders-api"],
            "introspect_any": true,
        }))
        .await;
    ("orders-api".to_owned(), secret.unwrap())
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
    let keys = app.tessera.key_set();
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
        "UPDATE sessions SET refresh_expires_at = now() - interval '1 second' WHERE id = '{}'",
        app.chain_of(&expired.refresh_token).session_id
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

/// A confidential client with the given audiences, allowed only the default rule.
async fn plain_client(app: &TestApp, id: &str, audiences: &[&str]) -> (String, String) {
    let (_, secret) = app
        .create_client(serde_json::json!({
            "client_id": id, "confidential": true,
            "grant_types": ["client_credentials"], "audiences": audiences,
        }))
        .await;
    (id.to_owned(), secret.unwrap())
}

async fn client_credentials(app: &TestApp, client: &(String, String)) -> String {
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    tokens_of(res).await.access_token
}

#[tokio::test]
async fn a_client_learns_only_about_tokens_issued_to_it_or_meant_for_its_audiences() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let alice = app.login("alice").await;
    let orders = plain_client(&app, "orders", &["orders-api"]).await;
    let reports = plain_client(&app, "reports", &["orders-api"]).await;
    let billing = plain_client(&app, "billing", &["billing-api"]).await;
    // Lists Tessera's issuer so its tokens work here: that does not make it a server of
    // every first-party token.
    let shared = plain_client(&app, "shared", &[ISSUER, "https://other.api"]).await;
    let orders_token = client_credentials(&app, &orders).await;
    let inactive = serde_json::json!({"active": false});

    // Issued to it, or meant for an audience it serves.
    assert_eq!(
        introspect(&app, &orders, &orders_token).await["active"],
        true
    );
    assert_eq!(
        introspect(&app, &reports, &orders_token).await["active"],
        true
    );
    // Neither.
    assert_eq!(introspect(&app, &billing, &orders_token).await, inactive);
    for client in [&orders, &billing, &shared] {
        assert_eq!(
            introspect(&app, client, &alice.access_token).await,
            inactive
        );
        assert_eq!(
            introspect(&app, client, &alice.refresh_token).await,
            inactive
        );
    }
    // An administrator's explicit permission opens everything.
    let any = resource_server(&app).await;
    assert_eq!(
        introspect(&app, &any, &alice.access_token).await["active"],
        true
    );
    assert_eq!(introspect(&app, &any, &orders_token).await["active"], true);
}

#[tokio::test]
async fn a_token_naming_the_client_as_audience_introspects_for_it() {
    let app = spawn_app().await;
    let billing = plain_client(&app, "billing", &["billing-api"]).await;
    let caller = plain_client(&app, "orders-worker", &["orders-api"]).await;
    // A service whose tokens are meant for another client, named by its id.
    let (_, secret) = app
        .create_client(serde_json::json!({
            "client_id": "invoicer", "confidential": true,
            "grant_types": ["client_credentials"], "audiences": ["orders-worker"],
        }))
        .await;
    let token = client_credentials(&app, &("invoicer".to_owned(), secret.unwrap())).await;
    assert_eq!(introspect(&app, &caller, &token).await["active"], true);
    assert_eq!(
        introspect(&app, &billing, &token).await,
        serde_json::json!({"active": false})
    );
}

#[tokio::test]
async fn probing_another_clients_refresh_token_never_spends_it_nor_counts_as_reuse() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let (_, web_secret) = app
        .create_client(serde_json::json!({
            "client_id": "web", "confidential": true,
            "grant_types": ["password", "refresh_token"], "scopes": ["profile"],
        }))
        .await;
    let web = ("web".to_owned(), web_secret.unwrap());
    let prober = plain_client(&app, "prober", &["orders-api"]).await;
    let token_request = |form: Vec<(&'static str, String)>| {
        app.api
            .post(app.url("/oauth/token"))
            .basic_auth(&web.0, Some(&web.1))
            .form(&form)
            .send()
    };
    let first = tokens_of(
        token_request(vec![
            ("grant_type", "password".to_owned()),
            ("username", "alice".to_owned()),
            ("password", crate::helpers::PASSWORD.to_owned()),
        ])
        .await
        .unwrap(),
    )
    .await;

    for _ in 0..3 {
        assert_eq!(
            introspect(&app, &prober, &first.refresh_token).await,
            serde_json::json!({"active": false})
        );
    }
    // Its own client sees it, and can still use it.
    assert_eq!(
        introspect(&app, &web, &first.refresh_token).await["active"],
        true
    );
    let res = token_request(vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", first.refresh_token.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let second = tokens_of(res).await;
    // Probing the spent one long after does not end the session either.
    diesel::sql_query(
        "UPDATE sessions SET rotated_at = now() - interval '1 hour' WHERE rotated_at IS NOT NULL",
    )
    .execute(&mut app.db())
    .unwrap();
    assert_eq!(
        introspect(&app, &prober, &first.refresh_token).await["active"],
        false
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL"),
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'refresh.reuse_detected'"),
        0
    );
    assert_eq!(
        introspect(&app, &web, &second.refresh_token).await["active"],
        true
    );
}

#[tokio::test]
async fn introspect_any_is_an_admin_setting_for_confidential_clients_only() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let call = |method: reqwest::Method, path: &str, body: Value| {
        app.api
            .request(method, app.url(path))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let res = call(
        reqwest::Method::POST,
        "/v1/admin/clients",
        serde_json::json!({
            "client_id": "auditor", "confidential": true,
            "grant_types": ["client_credentials"], "introspect_any": true,
        }),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["introspect_any"], true);
    let auditor = (
        "auditor".to_owned(),
        body["client_secret"].as_str().unwrap().to_owned(),
    );
    app.create_user("alice", &[]).await;
    let alice = app.login("alice").await;
    assert_eq!(
        introspect(&app, &auditor, &alice.access_token).await["active"],
        true
    );

    let res = call(
        reqwest::Method::PATCH,
        "/v1/admin/clients/auditor",
        serde_json::json!({"introspect_any": false}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["introspect_any"], false);
    // Other instances may hold the client for a moment; this one forgot it.
    assert_eq!(
        introspect(&app, &auditor, &alice.access_token).await,
        serde_json::json!({"active": false})
    );

    let res = call(
        reqwest::Method::POST,
        "/v1/admin/clients",
        serde_json::json!({
            "client_id": "spa", "grant_types": ["password"], "introspect_any": true,
        }),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(
        app.count("SELECT count(*) FROM clients WHERE client_id = 'spa'"),
        0
    );

    // A public client that exists: the request is fine, its type conflicts with it.
    app.create_client(serde_json::json!({
        "client_id": "spa", "confidential": false, "grant_types": ["password"],
    }))
    .await;
    let res = call(
        reqwest::Method::PATCH,
        "/v1/admin/clients/spa",
        serde_json::json!({"introspect_any": true}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 409);
    assert_eq!(
        app.count("SELECT count(*) FROM clients WHERE client_id = 'spa' AND introspect_any"),
        0
    );
}
