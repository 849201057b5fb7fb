//! OAuth clients: authentication methods, grants, scopes, client_credentials.

use serde_json::json;

use crate::helpers::{assert_oauth_error, claims_of, spawn_app, tokens_of, TestApp, PASSWORD};

async fn client_credentials_basic(
    app: &TestApp,
    id: &str,
    secret: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    app.api
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn client_credentials_with_basic_auth_returns_a_token_without_refresh() {
    let app = spawn_app().await;
    let secret = app
        .service_client("billing", &["orders:read", "orders:write"])
        .await;

    let res = client_credentials_basic(&app, "billing", &secret, None).await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens = tokens_of(res).await;
    assert!(
        tokens.body.get("refresh_token").is_none(),
        "no refresh token"
    );
    assert_eq!(tokens.body["scope"], "orders:read orders:write");
    let claims = claims_of(&tokens.access_token);
    assert_eq!(claims["sub"], "billing");
    assert_eq!(claims["client_id"], "billing");
    assert_eq!(claims["aud"], "orders-api");
    assert!(claims.get("sid").is_none() && claims.get("roles").is_none());
}

#[tokio::test]
async fn client_credentials_with_the_secret_in_the_body() {
    let app = spawn_app().await;
    let secret = app.service_client("billing", &["orders:read"]).await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "billing"),
                ("client_secret", &secret),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn client_ids_and_secrets_in_basic_auth_are_form_decoded() {
    let app = spawn_app().await;
    let secret = app.service_client("svc:billing", &[]).await;
    // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
    let res = client_credentials_basic(&app, "svc%3Abilling", &secret, None).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_with_www_authenticate() {
    let app = spawn_app().await;
    app.service_client("billing", &[]).await;
    for (id, secret) in [
        ("billing", "cs_wrong"),
        ("nobody", "cs_wrong"),
        ("billing", ""),
    ] {
        let res = client_credentials_basic(&app, id, secret, None).await;
        assert_eq!(
            res.headers()["www-authenticate"].to_str().unwrap(),
            r#"Basic realm="tessera""#
        );
        assert_oauth_error(res, 401, "invalid_client").await;
    }
}

#[tokio::test]
async fn a_confidential_client_without_its_secret_is_invalid_client() {
    let app = spawn_app().await;
    app.service_client("billing", &[]).await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "billing"),
            ],
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_invalid_request() {
    let app = spawn_app().await;
    let secret = app.service_client("billing", &[]).await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth("billing", Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_grant_the_client_may_not_use_is_unauthorized_client() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let secret = app.service_client("billing", &[]).await;
    // The built-in public client has no client_credentials...
    let res = app
        .post_form("/oauth/token", &[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(res, 400, "unauthorized_client").await;
    // ...and the service client has no password grant.
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth("billing", Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn requested_scope_narrows_and_excess_is_invalid_scope() {
    let app = spawn_app().await;
    let secret = app
        .service_client("billing", &["orders:read", "orders:write"])
        .await;
    let res = client_credentials_basic(&app, "billing", &secret, Some("orders:read")).await;
    let tokens = tokens_of(res).await;
    assert_eq!(tokens.body["scope"], "orders:read");
    assert_eq!(claims_of(&tokens.access_token)["scope"], "orders:read");

    let res = client_credentials_basic(&app, "billing", &secret, Some("orders:read admin")).await;
    assert_oauth_error(res, 400, "invalid_scope").await;
}

#[tokio::test]
async fn a_confidential_client_can_log_users_in_and_refresh() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let (id, secret) = app
        .create_client(json!({
            "client_id": "web-backend", "confidential": true,
            "grant_types": ["password", "refresh_token"], "scopes": ["profile", "orders:read"],
            "audiences": ["orders-api"], "access_token_ttl_seconds": 60
        }))
        .await;
    let secret = secret.unwrap();
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "orders:read"),
        ])
        .send()
        .await
        .unwrap();
    let tokens = tokens_of(res).await;
    assert_eq!(
        tokens.body["expires_in"], 60,
        "the client's lifetime override"
    );
    let claims = claims_of(&tokens.access_token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    assert_eq!(claims["aud"], "orders-api");

    // Refreshing needs the client's authentication too.
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &tokens.refresh_token),
                ("client_id", &id),
            ],
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh_token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(tokens_of(res).await.body["scope"], "orders:read");
}

#[tokio::test]
async fn a_public_client_may_not_send_a_secret() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("client_id", "tessera"),
                ("client_secret", "anything"),
            ],
        )
        .await;
    assert_oauth_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn client_secrets_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let secret = app.service_client("billing", &[]).await;
    assert!(secret.starts_with("cs_") && secret.len() >= 46);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM clients WHERE client_id = 'billing' AND secret_hash = sha256('{secret}'::bytea)"
        )),
        1
    );
    // Nowhere in the clear: not in any column of the client's row, nor in the audit
    // record of its creation.
    for table in ["clients", "audit_log"] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM {table} t WHERE t::text LIKE '%{secret}%'"
            )),
            0,
            "{table}"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'admin.client.created'"),
        1
    );
}

#[tokio::test]
async fn cli_client_create_prints_the_secret_once() {
    let app = spawn_app().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .args([
            "client",
            "create",
            "--id",
            "reports",
            "--confidential",
            "--grant",
            "client_credentials",
            "--scope",
            "reports:read",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let secret = stdout
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("the secret is printed")
        .trim()
        .to_owned();
    let res = client_credentials_basic(&app, "reports", &secret, None).await;
    assert_eq!(res.status(), 200);
}

const UUID_SHAPED: &str = "0192f1e6-7b3c-7d2e-9f00-123456789abc";

#[tokio::test]
async fn admin_client_create_refuses_a_uuid_shaped_id() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for id in [UUID_SHAPED, "0192F1E67B3C7D2E9F00123456789ABC"] {
        let res = app
            .api
            .post(app.url("/v1/admin/clients"))
            .bearer_auth(&admin)
            .json(&json!({"client_id": id, "confidential": true, "grant_types": ["client_credentials"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{id}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("UUID"), "{body}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM clients WHERE client_id <> 'tessera'"),
        0
    );
}

#[tokio::test]
async fn cli_client_create_refuses_a_uuid_shaped_id() {
    let app = spawn_app().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .args([
            "client",
            "create",
            "--id",
            UUID_SHAPED,
            "--confidential",
            "--grant",
            "client_credentials",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("UUID"), "{stderr}");
    assert_eq!(
        app.count("SELECT count(*) FROM clients WHERE client_id <> 'tessera'"),
        0
    );
}
