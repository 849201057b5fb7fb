//! The HTTP contract is the OpenAPI document: every answer's status is documented for
//! its operation, in the documented format, and checks run in one fixed order
//! (method and route, authentication, authorisation, body size and type, body).

use serde_json::{json, Value};

use crate::helpers::{spawn, spawn_app, TestApp};

/// What the test sends to every operation.
#[derive(Clone, Copy, Debug)]
enum Probe {
    NoBody,
    WrongContentType,
    Oversized,
    NoToken,
}

fn document() -> Value {
    serde_json::from_str(&tessera::http::docs::document().to_json().unwrap()).unwrap()
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "00000000-0000-0000-0000-000000000000")
        .replace("{sid}", "00000000-0000-0000-0000-000000000000")
}

async fn probe(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    probe: Probe,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut req = app.api.request(method, app.url(&concrete(path)));
    if !matches!(probe, Probe::NoToken) {
        req = req.bearer_auth(token);
    }
    req = match probe {
        Probe::NoBody | Probe::NoToken => req,
        Probe::WrongContentType => req.header("content-type", "text/plain").body("{}"),
        Probe::Oversized => req
            .header("content-type", "application/json")
            .body(format!(r#"{{"pad":"{}"}}"#, "a".repeat(64 * 1024))),
    };
    req.send().await.unwrap()
}

/// Checks one answer against the operation's documented responses; returns a
/// complaint, if any.
async fn check(path: &str, method: &str, op: &Value, res: reqwest::Response) -> Option<String> {
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.bytes().await.unwrap();
    let Some(documented) = op["responses"].get(status.to_string()) else {
        return Some(format!(
            "{method} {path}: {status} is not documented ({})",
            String::from_utf8_lossy(&body)
        ));
    };
    let media_types: Vec<&String> = documented["content"]
        .as_object()
        .map(|c| c.keys().collect())
        .unwrap_or_default();
    match (&content_type, media_types.is_empty()) {
        (None, true) => {}
        (Some(_), true) if body.is_empty() => {}
        (Some(given), false) if media_types.iter().any(|m| given.starts_with(m.as_str())) => {}
        _ => {
            return Some(format!(
                "{method} {path}: {status} came as {content_type:?}, documented {media_types:?}"
            ))
        }
    }
    if status >= 400 {
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let right_format = if path.starts_with("/oauth/") {
            parsed["error"].is_string() && parsed["error_description"].is_string()
        } else {
            content_type.as_deref() == Some("application/problem+json")
                && parsed["status"] == status
                && parsed["request_id"].is_string()
        };
        if !right_format {
            return Some(format!("{method} {path}: {status} body {parsed}"));
        }
    }
    None
}

/// Every operation of the generated document, probed with no body, a wrong content
/// type, an oversized body and no token: every answer is documented, in its format.
#[tokio::test]
async fn every_operation_answers_only_what_the_document_says() {
    let app = spawn()
        .with("TESSERA_ALLOW_REGISTRATION", "true")
        .start()
        .await;
    app.create_user("root", &["admin"]).await;
    let doc = document();
    let mut complaints = Vec::new();
    let mut probes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for kind in [
                Probe::NoBody,
                Probe::WrongContentType,
                Probe::Oversized,
                Probe::NoToken,
            ] {
                // A fresh token each time: some probes log out or rotate keys.
                let token = app.login("root").await.access_token;
                let res = probe(&app, &token, method, path, kind).await;
                probes += 1;
                if let Some(complaint) = check(path, method, op, res).await {
                    complaints.push(format!("{kind:?}: {complaint}"));
                }
            }
        }
    }
    assert!(probes >= 4 * 30, "{probes} probes");
    assert!(complaints.is_empty(), "{}", complaints.join("\n"));
}

/// A non-admin learns nothing about the body an admin operation takes: 403 first.
#[tokio::test]
async fn admin_operations_refuse_a_non_admin_before_judging_the_body() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let token = app.login("alice").await.access_token;
    let zero = "00000000-0000-0000-0000-000000000000";
    for (method, path) in [
        (reqwest::Method::POST, "/v1/admin/users".to_owned()),
        (reqwest::Method::POST, "/v1/admin/clients".to_owned()),
        (reqwest::Method::PATCH, format!("/v1/admin/users/{zero}")),
    ] {
        let res = app
            .api
            .request(method.clone(), app.url(&path))
            .bearer_auth(&token)
            .json(&json!({"no_such_field": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{method} {path}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("no_such_field"), "{method} {path}: {body}");
    }
}

#[tokio::test]
async fn a_10_mb_body_on_the_oauth_endpoints_is_413_in_rfc_6749_form() {
    let app = spawn_app().await;
    for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
        let res = app
            .api
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}", "a".repeat(10 * 1024 * 1024)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 413, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
    }
}

#[tokio::test]
async fn an_oversized_or_deeply_nested_logout_body_is_a_problem_document() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let oversized = format!(r#"{{"scope":"{}"}}"#, "a".repeat(64 * 1024));
    for (body, status) in [(deep, 413), (oversized, 413), ("[".repeat(200), 400)] {
        let token = app.login("alice").await.access_token;
        let res = app
            .api
            .post(app.url("/v1/logout"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["request_id"], request_id.as_str());
    }
}

#[tokio::test]
async fn registration_without_a_body_is_400_and_with_another_type_415() {
    let app = spawn()
        .with("TESSERA_ALLOW_REGISTRATION", "true")
        .start()
        .await;
    let res = app.api.post(app.url("/v1/users")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = app
        .api
        .post(app.url("/v1/users"))
        .header("content-type", "text/plain")
        .body(r#"{"username":"bob","password":"correct horse"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

/// A value of the wrong type is never echoed: it may be a secret typed into the wrong
/// field, and error bodies end up in logs.
#[tokio::test]
async fn oauth_errors_never_echo_a_value_that_was_sent() {
    let app = spawn_app().await;
    let secret = 31_415_926_535_897_932_u64;
    for (path, body) in [
        (
            "/oauth/token",
            json!({"grant_type": "password", "username": "alice", "password": secret}),
        ),
        (
            "/oauth/token",
            json!({"client_id": "c", "client_secret": secret}),
        ),
        ("/oauth/revoke", json!({"token": secret})),
        ("/oauth/introspect", json!({"token": secret})),
        (
            "/oauth/introspect",
            json!({"token": "t", "client_secret": 4.242424242424242}),
        ),
    ] {
        let res = app
            .api
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path} {body}");
        let text = res.text().await.unwrap();
        assert!(!text.contains("31415926535897932"), "{path}: {text}");
        assert!(!text.contains("4.242424242424242"), "{path}: {text}");
        assert!(text.contains("invalid_request"), "{path}: {text}");
    }
}

#[tokio::test]
async fn json_sent_as_a_form_is_told_which_content_type_to_use() {
    let app = spawn_app().await;
    let res = app
        .api
        .post(app.url("/oauth/introspect"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(r#"{"token":"abc"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("application/json"), "{description}");
    assert!(!description.contains("missing parameter"), "{description}");
}

/// An undeclared method on a documented path, scoped (admin) or not, is 405 with `Allow`.
#[tokio::test]
async fn an_undeclared_method_is_405_on_every_documented_path() {
    let app = spawn_app().await;
    let trace = reqwest::Method::from_bytes(b"TRACE").unwrap();
    for (path, allow) in [
        ("/v1/admin/users", "GET, POST"),
        (
            "/v1/admin/users/00000000-0000-0000-0000-000000000000",
            "GET, PATCH",
        ),
        ("/healthz", "GET"),
        ("/oauth/token", "POST"),
    ] {
        let res = app
            .api
            .request(trace.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{path}");
        assert_eq!(res.headers()["allow"], allow, "{path}");
    }
    let res = app
        .api
        .put(app.url("/v1/admin/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// Bodies are JSON objects; serde alone would read a struct from an array too.
#[tokio::test]
async fn an_array_is_not_an_object_body() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_client(
        json!({"client_id": "svc", "confidential": true, "grant_types": ["client_credentials"]}),
    )
    .await;
    for (path, body) in [
        ("/v1/admin/clients/svc/secret", "[null]"),
        ("/v1/admin/users", r#"["bob", "a long password", []]"#),
    ] {
        let res = app
            .api
            .post(app.url(path))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
    }
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(r#"["password", "root", "correct horse battery staple"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

/// bcrypt takes 72 bytes whole: such a password is set and logs in, never a 500.
#[tokio::test]
async fn a_password_of_exactly_72_bytes_works() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let password = "é".repeat(36);
    assert_eq!(password.len(), 72);
    let res = app
        .api
        .post(app.url("/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "bob", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(app.password_grant("bob", &password).await.status(), 200);
    let wrong = format!("{}e", "é".repeat(35));
    assert_eq!(app.password_grant("bob", &wrong).await.status(), 400);
}

/// Cursors and searches no id can match are refused or match nothing; a NUL never
/// reaches PostgreSQL.
#[tokio::test]
async fn cursors_and_searches_with_impossible_text_are_not_a_500() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (path, status) in [
        ("/v1/admin/clients?cursor=%00x", 400),
        ("/v1/admin/users?cursor=%00x", 400),
        ("/v1/admin/users?q=%00", 200),
        ("/v1/admin/users?q=%00&cursor=%00x", 400),
        ("/v1/admin/clients?limit=50.0", 200),
    ] {
        let res = app.get_with_token(path, &admin).await;
        assert_eq!(res.status(), status, "{path}");
    }
}

/// Any string is a schema-valid token; one that is not a live token of this issuer is
/// not there to revoke (404), like an unknown refresh token.
#[tokio::test]
async fn revoking_a_token_that_is_not_ours_is_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for token in ["0", "a.b.c", &format!("rt_{}", "A".repeat(43))] {
        let res = app
            .api
            .post(app.url("/v1/admin/revocations"))
            .bearer_auth(&admin)
            .json(&json!({"token": token, "reason": "test"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{token}");
    }
}
