use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{claims_of, spawn_app, TestApp, ISSUER};

/// Signs `claims` with the app's real signing key under `typ`.
fn sign_with_server_key(app: &TestApp, claims: &Value, typ: &str) -> String {
    let keys = app.tessera.key_set();
    let key = keys.signing().unwrap();
    let mut header = Header::new(key.algorithm.jwt_algorithm());
    header.kid = Some(key.kid.clone());
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding_key()).unwrap()
}

fn valid_claims(user_id: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": ISSUER, "sub": user_id, "aud": ISSUER, "exp": now + 300, "iat": now,
        "nbf": now, "jti": uuid::Uuid::new_v4().to_string(), "client_id": "tessera",
        "scope": "profile", "sid": uuid::Uuid::new_v4().to_string(), "roles": []
    })
}

fn assert_invalid_token(res: &reqwest::Response) {
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
}

#[tokio::test]
async fn me_returns_the_callers_profile() {
    let app = spawn_app().await;
    let id = app.create_user("alice", &["admin"]).await;
    let tokens = app.login("alice").await;

    let res = app.get_with_token("/v1/me", &tokens.access_token).await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["id"], id.to_string());
    assert_eq!(me["username"], "alice");
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(me["session_id"], claims_of(&tokens.access_token)["sid"]);
    assert!(me.get("password_hash").is_none());
}

/// RFC 6750 §3.1: a request with no credentials (or none of the Bearer scheme) gets a
/// challenge without an error code.
fn assert_bare_challenge(res: &reqwest::Response) {
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(
        res.headers()["www-authenticate"].to_str().unwrap(),
        r#"Bearer realm="tessera""#
    );
}

#[tokio::test]
async fn me_without_a_token_is_401_with_a_bare_challenge() {
    let app = spawn_app().await;
    let res = app.api.get(app.url("/v1/me")).send().await.unwrap();
    assert_bare_challenge(&res);
    let res = app
        .api
        .get(app.url("/v1/me"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_bare_challenge(&res);
}

#[tokio::test]
async fn admin_routes_without_a_token_get_a_bare_challenge() {
    let app = spawn_app().await;
    for path in ["/v1/admin/users", "/v1/me/sessions"] {
        let res = app.api.get(app.url(path)).send().await.unwrap();
        assert_bare_challenge(&res);
    }
    // A token that is there but no good still names the error.
    let res = app.get_with_token("/v1/admin/users", "abc").await;
    assert_invalid_token(&res);
}

#[tokio::test]
async fn me_with_a_malformed_token_is_401() {
    let app = spawn_app().await;
    for token in ["abc", "a.b.c", "x.y", "....", "eyJhbGciOiJub25lIn0.e30."] {
        let res = app.get_with_token("/v1/me", token).await;
        assert_invalid_token(&res);
    }
    let res = app
        .api
        .get(app.url("/v1/me"))
        .header("authorization", "Bearer has spaces in it")
        .send()
        .await
        .unwrap();
    assert_invalid_token(&res);
}

#[tokio::test]
async fn me_with_an_expired_token_is_401() {
    let app = spawn_app().await;
    let id = app.create_user("alice", &[]).await;
    let mut claims = valid_claims(&id.to_string());
    let past = chrono::Utc::now().timestamp() - 3600;
    claims["iat"] = past.into();
    claims["nbf"] = past.into();
    claims["exp"] = (past + 300).into();
    let res = app
        .get_with_token("/v1/me", &sign_with_server_key(&app, &claims, "at+jwt"))
        .await;
    assert_invalid_token(&res);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("expired"), "{challenge}");
}

#[tokio::test]
async fn me_with_a_token_signed_by_another_key_is_401() {
    let app = spawn_app().await;
    let id = app.create_user("alice", &[]).await;
    let kid = app.tessera.key_set().signing().unwrap().kid.clone();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid); // the real kid, the wrong key
    header.typ = Some("at+jwt".to_owned());
    let forged = jsonwebtoken::encode(
        &header,
        &valid_claims(&id.to_string()),
        &EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();
    let res = app.get_with_token("/v1/me", &forged).await;
    assert_invalid_token(&res);
}

#[tokio::test]
async fn me_with_the_wrong_typ_is_401() {
    let app = spawn_app().await;
    let id = app.create_user("alice", &[]).await;
    let claims = valid_claims(&id.to_string());
    for typ in ["JWT", "id+jwt", ""] {
        let res = app
            .get_with_token("/v1/me", &sign_with_server_key(&app, &claims, typ))
            .await;
        assert_invalid_token(&res);
    }
    // The right typ, same claims: accepted (so the refusals above were about typ).
    let res = app
        .get_with_token("/v1/me", &sign_with_server_key(&app, &claims, "at+jwt"))
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn me_with_the_wrong_issuer_or_audience_is_401() {
    let app = spawn_app().await;
    let id = app.create_user("alice", &[]).await;
    let mut wrong_iss = valid_claims(&id.to_string());
    wrong_iss["iss"] = "http://evil.test".into();
    let mut wrong_aud = valid_claims(&id.to_string());
    wrong_aud["aud"] = "some-other-api".into();
    let mut future = valid_claims(&id.to_string());
    future["nbf"] = (chrono::Utc::now().timestamp() + 3600).into();
    for claims in [wrong_iss, wrong_aud, future] {
        let res = app
            .get_with_token("/v1/me", &sign_with_server_key(&app, &claims, "at+jwt"))
            .await;
        assert_invalid_token(&res);
    }
}

#[tokio::test]
async fn a_refresh_token_is_not_a_bearer_token() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    let res = app.get_with_token("/v1/me", &tokens.refresh_token).await;
    assert_invalid_token(&res);
}
