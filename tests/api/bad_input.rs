//! Bad input gets a clear RFC 6749 answer: never a 500, never a panic.

use crate::helpers::{assert_oauth_error, spawn_app, TestApp, PASSWORD};

async fn post_raw(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.api
        .post(app.url("/oauth/token"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn unknown_grant_type_is_unsupported_grant_type() {
    let app = spawn_app().await;
    let res = app
        .post_form("/oauth/token", &[("grant_type", "implicit")])
        .await;
    assert_oauth_error(res, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn missing_grant_type_is_invalid_request() {
    let app = spawn_app().await;
    let res = app
        .post_form("/oauth/token", &[("username", "alice")])
        .await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("grant_type"));
}

#[tokio::test]
async fn missing_password_parameters_are_invalid_request() {
    let app = spawn_app().await;
    for form in [
        vec![("grant_type", "password"), ("username", "alice")],
        vec![("grant_type", "password"), ("password", PASSWORD)],
        vec![("grant_type", "refresh_token")],
    ] {
        let res = app.post_form("/oauth/token", &form).await;
        assert_oauth_error(res, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn repeated_parameters_are_invalid_request() {
    let app = spawn_app().await;
    let res = post_raw(
        &app,
        FORM,
        "grant_type=password&grant_type=password&username=a&password=b",
    )
    .await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("repeated"));
}

#[tokio::test]
async fn wrong_content_type_is_invalid_request() {
    let app = spawn_app().await;
    let res = post_raw(&app, "text/plain", "grant_type=password").await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("Content-Type"));
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn oversized_body_is_413_invalid_request() {
    let app = spawn_app().await;
    let body = format!("grant_type=password&username={}", "a".repeat(64 * 1024));
    let res = post_raw(&app, FORM, body).await;
    let body = assert_oauth_error(res, 413, "invalid_request").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("larger"));
}

#[tokio::test]
async fn invalid_utf8_in_a_form_is_invalid_request() {
    let app = spawn_app().await;
    let res = post_raw(&app, FORM, "grant_type=password&username=%FF%FE&password=x").await;
    let body = assert_oauth_error(res, 400, "invalid_request").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    let res = post_raw(
        &app,
        FORM,
        b"grant_type=password&username=\xff&password=x".to_vec(),
    )
    .await;
    assert_oauth_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn invalid_utf8_in_json_is_invalid_request() {
    let app = spawn_app().await;
    let res = post_raw(
        &app,
        "application/json",
        b"{\"grant_type\":\"password\",\"username\":\"\xff\"}".to_vec(),
    )
    .await;
    assert_oauth_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn malformed_json_is_invalid_request() {
    let app = spawn_app().await;
    for body in ["{", "[]", "{\"grant_type\": 5}", "null"] {
        let res = post_raw(&app, "application/json", body).await;
        assert_oauth_error(res, 400, "invalid_request").await;
    }
}

#[tokio::test]
async fn refresh_token_of_the_wrong_shape_is_invalid_request() {
    let app = spawn_app().await;
    for token in [
        "abc",
        "rt_short",
        "eyJhbGciOiJFUzI1NiJ9.e30.sig",
        &"rt_".repeat(40),
    ] {
        let res = app.refresh_grant(token).await;
        let body = assert_oauth_error(res, 400, "invalid_request").await;
        assert!(!body.to_string().contains(token), "the token is not echoed");
    }
}

#[tokio::test]
async fn malformed_basic_credentials_are_invalid_client() {
    let app = spawn_app().await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .header("authorization", "Basic !!!not-base64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_not_a_500() {
    let app = spawn_app().await;
    let res = app.api.get(app.url("/oauth/token")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_wrong_method_is_told_which_methods_the_path_allows() {
    let app = spawn_app().await;
    let res = app
        .api
        .delete(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET");
    // What `Allow` lists is really allowed.
    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
