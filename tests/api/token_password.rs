use serde_json::Value;

use crate::helpers::{
    assert_oauth_error, claims_of, header_of, spawn, spawn_app, tokens_of, ISSUER, PASSWORD,
};

#[tokio::test]
async fn password_grant_returns_tokens_and_no_store() {
    let app = spawn_app().await;
    let user_id = app.create_user("alice", &[]).await;

    let res = app.password_grant("alice", PASSWORD).await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    let tokens = tokens_of(res).await;
    let body = &tokens.body;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "profile");
    assert!(tokens.refresh_token.starts_with("rt_"));
    assert_eq!(tokens.refresh_token.len(), 79);

    let header = header_of(&tokens.access_token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());
    let claims = claims_of(&tokens.access_token);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], user_id.to_string());
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["client_id"], "tessera");
    assert_eq!(claims["scope"], "profile");
    assert_eq!(claims["roles"], serde_json::json!([]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(claims["nbf"], claims["iat"]);
    for claim in ["jti", "sid"] {
        assert!(claims[claim].is_string(), "{claim} missing");
    }
    // The session is stored at generation 0, its first refresh token; the token
    // itself is stored nowhere (its MAC key is derived from the master key).
    let chain = app.chain_of(&tokens.refresh_token);
    assert_eq!(
        chain.session_id.to_string(),
        claims["sid"].as_str().unwrap()
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM sessions WHERE id = '{}' AND generation = 0",
            chain.session_id
        )),
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM sessions"), 1);
}

#[tokio::test]
async fn password_grant_accepts_json() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .json(&serde_json::json!({
            "grant_type": "password", "username": "alice", "password": PASSWORD
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens = tokens_of(res).await;
    assert!(tokens.refresh_token.starts_with("rt_"));
}

#[tokio::test]
async fn usernames_are_case_insensitive() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let res = app.password_grant("ALICE", PASSWORD).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn admin_role_is_in_the_token() {
    let app = spawn_app().await;
    app.create_user("root", &["admin"]).await;
    let tokens = app.login("root").await;
    assert_eq!(
        claims_of(&tokens.access_token)["roles"],
        serde_json::json!(["admin"])
    );
}

#[tokio::test]
async fn a_named_public_client_is_accepted() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let mut db = app.db();
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "INSERT INTO clients (client_id, name, confidential, grant_types, scopes, audiences)
         VALUES ('spa', 'Web app', false, '{password,refresh_token}', '{profile,orders:read}', '{orders-api}')",
    )
    .execute(&mut db)
    .unwrap();

    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "orders:read"),
            ],
        )
        .await;

    assert_eq!(res.status(), 200);
    let tokens = tokens_of(res).await;
    assert_eq!(tokens.body["scope"], "orders:read");
    let claims = claims_of(&tokens.access_token);
    assert_eq!(claims["client_id"], "spa");
    // The client names its API: the token is for that API alone, not for Tessera's own.
    assert_eq!(claims["aud"], "orders-api");
    let res = app.get_with_token("/v1/me", &tokens.access_token).await;
    assert_eq!(res.status(), 401, "a token for another API is refused here");
}

#[tokio::test]
async fn explicit_builtin_client_id_is_accepted() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "tessera"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn unknown_client_is_invalid_client() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "nobody"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    assert_oauth_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn scope_outside_the_client_is_invalid_scope() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "profile admin:everything"),
            ],
        )
        .await;
    let body = assert_oauth_error(res, 400, "invalid_scope").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("admin:everything"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;

    let wrong = app.password_grant("alice", "not the password").await;
    let wrong = assert_oauth_error(wrong, 400, "invalid_grant").await;
    let unknown = app.password_grant("mallory", "not the password").await;
    let unknown = assert_oauth_error(unknown, 400, "invalid_grant").await;
    let impossible = app.password_grant("no such name!", "x").await;
    let impossible = assert_oauth_error(impossible, 400, "invalid_grant").await;

    assert_eq!(wrong, unknown);
    assert_eq!(wrong, impossible);
    assert_eq!(app.count("SELECT count(*) FROM sessions"), 0);
}

#[tokio::test]
async fn disabled_user_cannot_log_in() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    use diesel::RunQueryDsl;
    diesel::sql_query("UPDATE users SET disabled = true")
        .execute(&mut app.db())
        .unwrap();
    let res = app.password_grant("alice", PASSWORD).await;
    let body = assert_oauth_error(res, 400, "invalid_grant").await;
    let unknown = assert_oauth_error(
        app.password_grant("bob", PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        body, unknown,
        "a disabled account looks like a wrong password"
    );
}

#[tokio::test]
async fn a_password_longer_than_72_bytes_never_matches() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    // bcrypt reads 72 bytes: a password of exactly 72, then attempts that start with it.
    let password = "p".repeat(72);
    let res = app
        .api
        .post(app.url("/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"username": "alice", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // (Two failures: a third would earn a delay before the last login.)
    for extra in ["x", &"x".repeat(80)] {
        let long = format!("{password}{extra}");
        let res = app.password_grant("alice", &long).await;
        assert_oauth_error(res, 400, "invalid_grant").await;
    }
    // The 72 bytes themselves log in: the refusals were about the extra bytes.
    assert_eq!(app.password_grant("alice", &password).await.status(), 200);
}

#[tokio::test]
async fn password_hash_is_upgraded_when_the_cost_changes() {
    // The user was created when the cost was 4; the service now runs at 5.
    let app = spawn().with("TESSERA_BCRYPT_COST", "5").start().await;
    let old_hash = bcrypt::hash(PASSWORD, 4).unwrap();
    use diesel::RunQueryDsl;
    diesel::sql_query(format!(
        "INSERT INTO users (id, username, password_hash) VALUES (gen_random_uuid(), 'alice', '{old_hash}')"
    ))
    .execute(&mut app.db())
    .unwrap();

    let res = app.password_grant("alice", PASSWORD).await;
    assert_eq!(res.status(), 200);

    // The re-hash runs after the response; give it a moment.
    let mut upgraded = false;
    for _ in 0..50 {
        if app.count("SELECT count(*) FROM users WHERE password_hash LIKE '$2b$05$%'") == 1 {
            upgraded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(upgraded, "hash was not upgraded to cost 5");
    assert_eq!(app.password_grant("alice", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn the_token_response_never_contains_the_password() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let res = app.password_grant("alice", PASSWORD).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["access_token"].is_string(), "a token response: {body}");
    assert!(!text.contains(PASSWORD));
}
