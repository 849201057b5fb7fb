use crate::helpers::{spawn, spawn_app};

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let res = app.api.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_checks_postgres_and_redis() {
    let app = spawn_app().await;
    let res = app.api.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
}

#[tokio::test]
async fn readyz_is_unavailable_without_redis() {
    // Nothing listens on port 1: Redis is "down" for this instance only.
    let app = spawn()
        .with("REDIS_URL", "redis://127.0.0.1:1")
        .start()
        .await;
    let res = app.api.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "unavailable");
}

#[tokio::test]
async fn unknown_routes_are_problem_documents() {
    let app = spawn_app().await;
    let res = app.api.get(app.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let res = app
        .api
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app.api.get(app.url("/healthz")).send().await.unwrap();
    assert!(!res.headers()["x-request-id"].is_empty());
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        res.headers()["content-security-policy"],
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    assert!(!res.headers().contains_key("server"));
}

#[tokio::test]
async fn a_login_without_redis_says_which_dependency_is_missing() {
    let app = spawn()
        .with("REDIS_URL", "redis://127.0.0.1:1")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let res = app.password_grant("alice", crate::helpers::PASSWORD).await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("(Redis) "), "{description}");
    assert!(
        !description.contains("127.0.0.1"),
        "no internals: {description}"
    );
}

#[tokio::test]
async fn a_token_check_without_redis_names_the_revocation_list() {
    let healthy = spawn_app().await;
    healthy.create_user("alice", &[]).await;
    let token = healthy.login("alice").await.access_token;
    let cut_off = spawn()
        .sharing_database_of(&healthy)
        .with("REDIS_URL", "redis://127.0.0.1:1")
        .start()
        .await;
    let res = cut_off.get_with_token("/v1/me", &token).await;
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        body["detail"],
        "the revocation list (Redis) is unreachable; retry later"
    );
}
