//! The actix-web extractors and the responses they give.

use actix_web::http::{header, StatusCode};
use actix_web::{test, web, App, HttpResponse};
use serde_json::{json, Value};
use tessera_verifier::{
    BearerClaims, InsufficientScope, OnlineBearerClaims, Verifier, VerifierConfig,
};

use crate::helpers::{
    claims, closed_port_url, now, tessera_with_es256_key, TestKey, AUDIENCE, ISSUER,
};

async fn orders(token: BearerClaims) -> Result<HttpResponse, InsufficientScope> {
    token.require_scope("orders:read")?;
    Ok(HttpResponse::Ok().json(json!({ "sub": token.sub })))
}

async fn admin_orders(token: BearerClaims) -> Result<HttpResponse, InsufficientScope> {
    token.require_scope("orders:admin")?;
    Ok(HttpResponse::Ok().finish())
}

async fn online_orders(token: OnlineBearerClaims) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "sub": token.sub }))
}

/// Calls `GET {path}` on an app that has the extractors on three routes.
async fn call(
    verifier: Verifier,
    path: &str,
    authorization: Option<&str>,
) -> actix_web::dev::ServiceResponse {
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(verifier))
            .route("/orders", web::get().to(orders))
            .route("/admin/orders", web::get().to(admin_orders))
            .route("/online/orders", web::get().to(online_orders)),
    )
    .await;
    let mut req = test::TestRequest::get().uri(path);
    if let Some(value) = authorization {
        req = req.insert_header((header::AUTHORIZATION, value));
    }
    test::call_service(&app, req.to_request()).await
}

fn header_of(res: &actix_web::dev::ServiceResponse, name: header::HeaderName) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[actix_web::test]
async fn valid_token_is_let_through() {
    let (tessera, key) = tessera_with_es256_key().await;
    let token = key.token(&claims());

    let res = call(
        tessera.verifier(),
        "/orders",
        Some(&format!("Bearer {token}")),
    )
    .await;

    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = test::read_body_json(res).await;
    assert_eq!(body["sub"], "0190d5a4-1111-7000-8000-000000000001");
}

#[actix_web::test]
async fn bearer_scheme_is_case_insensitive() {
    let (tessera, key) = tessera_with_es256_key().await;
    let token = key.token(&claims());

    let res = call(
        tessera.verifier(),
        "/orders",
        Some(&format!("bearer {token}")),
    )
    .await;

    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn expired_token_gets_401_invalid_token() {
    let (tessera, key) = tessera_with_es256_key().await;
    let mut c = claims();
    c["exp"] = json!(now() - 60);
    let token = key.token(&c);

    let res = call(
        tessera.verifier(),
        "/orders",
        Some(&format!("Bearer {token}")),
    )
    .await;

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_of(&res, header::WWW_AUTHENTICATE),
        r#"Bearer error="invalid_token", error_description="the token has expired""#
    );
    assert_eq!(
        header_of(&res, header::CONTENT_TYPE),
        "application/problem+json"
    );
    let body = test::read_body(res).await;
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], 401);
    assert_eq!(problem["detail"], "the token has expired");
    assert!(!String::from_utf8_lossy(&body).contains(&token));
}

#[actix_web::test]
async fn forged_token_gets_401_invalid_token() {
    let (tessera, key) = tessera_with_es256_key().await;
    let token = TestKey::es256(&key.kid).token(&claims());

    let res = call(
        tessera.verifier(),
        "/orders",
        Some(&format!("Bearer {token}")),
    )
    .await;

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        header_of(&res, header::WWW_AUTHENTICATE).starts_with(r#"Bearer error="invalid_token""#)
    );
}

#[actix_web::test]
async fn missing_token_gets_a_bare_bearer_challenge() {
    let (tessera, _key) = tessera_with_es256_key().await;

    let res = call(tessera.verifier(), "/orders", None).await;

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // RFC 6750 §3.1: no error code when no credentials were sent.
    assert_eq!(header_of(&res, header::WWW_AUTHENTICATE), "Bearer");
}

#[actix_web::test]
async fn basic_credentials_get_a_bearer_challenge() {
    let (tessera, _key) = tessera_with_es256_key().await;

    let res = call(
        tessera.verifier(),
        "/orders",
        Some("Basic YWxpY2U6cGFzcw=="),
    )
    .await;

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header_of(&res, header::WWW_AUTHENTICATE), "Bearer");
}

#[actix_web::test]
async fn missing_scope_gets_403_insufficient_scope() {
    let (tessera, key) = tessera_with_es256_key().await;
    let token = key.token(&claims());

    let res = call(
        tessera.verifier(),
        "/admin/orders",
        Some(&format!("Bearer {token}")),
    )
    .await;

    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        header_of(&res, header::WWW_AUTHENTICATE),
        r#"Bearer error="insufficient_scope", error_description="the token lacks the `orders:admin` scope", scope="orders:admin""#
    );
}

#[actix_web::test]
async fn unavailable_keys_get_503_with_retry_after() {
    let key = TestKey::es256("k");
    let verifier = Verifier::new(
        VerifierConfig::new(ISSUER, AUDIENCE)
            .jwks_url(format!("{}/.well-known/jwks.json", closed_port_url())),
    )
    .unwrap();
    let token = key.token(&claims());

    let res = call(verifier, "/orders", Some(&format!("Bearer {token}"))).await;

    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header_of(&res, header::RETRY_AFTER), "10");
    assert_eq!(header_of(&res, header::WWW_AUTHENTICATE), "");
    let problem: Value = test::read_body_json(res).await;
    // The cause (URL, connection refused) goes to the log, not to the caller.
    assert!(!problem["detail"].as_str().unwrap().contains("127.0.0.1"));
}

#[actix_web::test]
async fn online_extractor_refuses_a_revoked_token() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_active(false);
    let token = key.token(&claims());

    let res = call(
        tessera.online_verifier(),
        "/online/orders",
        Some(&format!("Bearer {token}")),
    )
    .await;

    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header_of(&res, header::WWW_AUTHENTICATE),
        r#"Bearer error="invalid_token", error_description="the token has been revoked""#
    );
}

#[actix_web::test]
async fn online_extractor_lets_an_active_token_through() {
    let (tessera, key) = tessera_with_es256_key().await;
    let token = key.token(&claims());

    let res = call(
        tessera.online_verifier(),
        "/online/orders",
        Some(&format!("Bearer {token}")),
    )
    .await;

    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(tessera.introspections().len(), 1);
}
