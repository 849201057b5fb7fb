//! The caller's own account: sessions, logout, password change, and the audit trail.

use serde_json::{json, Value};

use crate::helpers::{assert_oauth_error, claims_of, spawn, spawn_app, TestApp, Tokens, PASSWORD};

async fn logout(app: &TestApp, token: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = app.api.post(app.url("/v1/logout")).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn assert_dead(app: &TestApp, tokens: &Tokens) {
    assert_eq!(
        app.get_with_token("/v1/me", &tokens.access_token)
            .await
            .status(),
        401
    );
    assert_oauth_error(
        app.refresh_grant(&tokens.refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
}

async fn assert_alive(app: &TestApp, tokens: &Tokens) {
    assert_eq!(
        app.get_with_token("/v1/me", &tokens.access_token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn logout_ends_this_session_only() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let (laptop, phone) = (app.login("alice").await, app.login("alice").await);

    let res = logout(&app, &laptop.access_token, None).await;

    assert_eq!(res.status(), 204);
    assert_dead(&app, &laptop).await;
    assert_alive(&app, &phone).await;
}

#[tokio::test]
async fn global_logout_ends_every_session() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let (laptop, phone) = (app.login("alice").await, app.login("alice").await);

    let res = logout(&app, &laptop.access_token, Some(json!({"scope": "global"}))).await;

    assert_eq!(res.status(), 204);
    assert_dead(&app, &laptop).await;
    assert_dead(&app, &phone).await;
}

#[tokio::test]
async fn logout_of_the_others_keeps_this_session() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let (laptop, phone, tablet) = (
        app.login("alice").await,
        app.login("alice").await,
        app.login("alice").await,
    );

    let res = logout(&app, &laptop.access_token, Some(json!({"scope": "others"}))).await;

    assert_eq!(res.status(), 204);
    assert_alive(&app, &laptop).await;
    assert_dead(&app, &phone).await;
    assert_dead(&app, &tablet).await;
}

#[tokio::test]
async fn logout_with_a_bad_scope_is_400() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    let res = logout(
        &app,
        &tokens.access_token,
        Some(json!({"scope": "everything"})),
    )
    .await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = app
        .api
        .post(app.url("/v1/logout"))
        .bearer_auth(&tokens.access_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_alive(&app, &tokens).await;
}

#[tokio::test]
async fn sessions_lists_the_callers_live_sessions() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    app.create_user("bob", &[]).await;
    let laptop = app.login("alice").await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .header("user-agent", "TesseraPhone/1.0")
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.login("bob").await;
    let ended = app.login("alice").await;
    logout(&app, &ended.access_token, None).await;

    let res = app
        .get_with_token("/v1/me/sessions", &laptop.access_token)
        .await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list.len(), 2, "alice's two live sessions: {list:?}");
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], claims_of(&laptop.access_token)["sid"]);
    assert!(list.iter().any(|s| s["user_agent"] == "TesseraPhone/1.0"));
    for s in &list {
        assert_eq!(s["client_id"], "tessera");
        assert_eq!(s["ip"], "127.0.0.1");
        for field in ["created_at", "last_used_at", "expires_at"] {
            assert!(s[field].is_string(), "{field}");
        }
    }
}

#[tokio::test]
async fn a_session_can_be_ended_by_id() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let (laptop, phone) = (app.login("alice").await, app.login("alice").await);
    let phone_sid = claims_of(&phone.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    let res = app
        .api
        .delete(app.url(&format!("/v1/me/sessions/{phone_sid}")))
        .bearer_auth(&laptop.access_token)
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 204);
    assert_dead(&app, &phone).await;
    assert_alive(&app, &laptop).await;
}

#[tokio::test]
async fn someone_elses_session_is_not_found() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    app.create_user("mallory", &[]).await;
    let alice = app.login("alice").await;
    let mallory = app.login("mallory").await;
    let sid = claims_of(&alice.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/v1/me/sessions/{sid}"),
        "/v1/me/sessions/not-a-uuid".to_owned(),
    ] {
        let res = app
            .api
            .delete(app.url(&path))
            .bearer_auth(&mallory.access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    assert_alive(&app, &alice).await;
}

async fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> reqwest::Response {
    app.api
        .post(app.url("/v1/me/password"))
        .bearer_auth(token)
        .json(&json!({"current_password": current, "new_password": new}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let (laptop, phone) = (app.login("alice").await, app.login("alice").await);

    let res = change_password(&app, &laptop.access_token, PASSWORD, "a brand new password").await;

    assert_eq!(res.status(), 204);
    assert_alive(&app, &laptop).await;
    assert_dead(&app, &phone).await;
    assert_oauth_error(
        app.password_grant("alice", PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.password_grant("alice", "a brand new password")
            .await
            .status(),
        200
    );
    // The current session can still refresh.
    app.refresh(&laptop.refresh_token).await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    let res = change_password(&app, &tokens.access_token, "wrong", "a brand new password").await;
    assert_eq!(res.status(), 403);
    assert_eq!(app.password_grant("alice", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_new_password_over_72_bytes_is_refused_clearly() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    let res = change_password(&app, &tokens.access_token, PASSWORD, &"é".repeat(40)).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("72 bytes") && detail.contains("never truncated"),
        "{detail}"
    );
    let res = change_password(&app, &tokens.access_token, PASSWORD, "short").await;
    assert_eq!(res.status(), 400);
    assert_eq!(app.password_grant("alice", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn security_events_are_audited_without_secrets() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    app.password_grant("alice", "wrong password").await;
    app.password_grant("nobody", "wrong password").await;
    change_password(&app, &tokens.access_token, PASSWORD, "a brand new password").await;
    logout(&app, &tokens.access_token, None).await;

    for (action, count) in [
        ("login.succeeded", 1),
        ("login.failed", 2),
        ("password.changed", 1),
        ("logout", 1),
    ] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM audit_log WHERE action = '{action}'"
            )),
            count,
            "{action}"
        );
    }
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'login.succeeded'
               AND user_id = '{alice}' AND client_id = 'tessera' AND session_id IS NOT NULL
               AND ip = '127.0.0.1'"
        )),
        1
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_log WHERE action = 'login.failed'
               AND details->>'reason' = 'unknown_user' AND NOT details ? 'username'"
        ),
        1
    );
    let leaks = app.count(&format!(
        "SELECT count(*) FROM audit_log WHERE details::text LIKE '%{PASSWORD}%'
            OR details::text LIKE '%wrong password%' OR details::text LIKE '%brand new%'
            OR details::text LIKE '%{}%'",
        &tokens.refresh_token
    ));
    assert_eq!(leaks, 0, "no secret reaches the audit log");
}

#[tokio::test]
async fn self_registration_is_off_by_default() {
    let app = spawn_app().await;
    let res = app
        .api
        .post(app.url("/v1/users"))
        .json(&json!({"username": "newbie", "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(app.count("SELECT count(*) FROM users"), 0);
}

#[tokio::test]
async fn self_registration_creates_a_user_without_roles_when_enabled() {
    let app = crate::helpers::spawn()
        .with("TESSERA_ALLOW_REGISTRATION", "true")
        .start()
        .await;
    let register = |name: &str, password: &str| {
        app.api
            .post(app.url("/v1/users"))
            .json(&json!({"username": name, "password": password}))
            .send()
    };
    let res = register("Newbie", "a long password").await.unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], "newbie");
    assert_eq!(body["roles"], json!([]));
    assert_eq!(
        app.password_grant("newbie", "a long password")
            .await
            .status(),
        200
    );
    assert_eq!(
        register("newbie", "another password")
            .await
            .unwrap()
            .status(),
        409
    );
    assert_eq!(
        register("x y", "a long password").await.unwrap().status(),
        400
    );
    let too_long = "p".repeat(73);
    assert_eq!(register("other", &too_long).await.unwrap().status(), 400);
}

async fn register_from(app: &TestApp, ip: &str, name: &str) -> reqwest::Response {
    app.api
        .post(app.url("/v1/users"))
        .header("x-forwarded-for", ip)
        .json(&json!({"username": name, "password": "a long password"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn probing_taken_names_by_registering_is_throttled_like_logins() {
    let app = spawn()
        .with("TESSERA_ALLOW_REGISTRATION", "true")
        .with("TESSERA_TRUST_FORWARDED_FOR", "true")
        .with("TESSERA_LOGIN_DELAY_AFTER", "3")
        .with("TESSERA_LOGIN_LOCKOUT_AFTER", "3")
        .with("TESSERA_LOGIN_LOCKOUT", "60s")
        .start()
        .await;
    for name in ["alice", "bob", "carol"] {
        app.create_user(name, &[]).await;
    }
    let prober = "203.0.113.9";
    // Each taken name costs the source one attempt, like a wrong password would.
    for name in ["alice", "bob", "carol"] {
        assert_eq!(
            register_from(&app, prober, name).await.status(),
            409,
            "{name}"
        );
    }
    // Then the source must wait, whether the next name is taken or free: the answer
    // tells nothing more.
    for name in ["dave", "free-name"] {
        let res = register_from(&app, prober, name).await;
        assert_eq!(res.status(), 429, "{name}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let retry: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((55..=60).contains(&retry), "{retry}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE username = 'free-name'"),
        0
    );
    // Other sources register as usual.
    assert_eq!(
        register_from(&app, "198.51.100.20", "free-name")
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn successful_registrations_do_not_wipe_out_a_sources_failures() {
    let app = spawn()
        .with("TESSERA_ALLOW_REGISTRATION", "true")
        .with("TESSERA_TRUST_FORWARDED_FOR", "true")
        .with("TESSERA_LOGIN_DELAY_AFTER", "2")
        .with("TESSERA_LOGIN_LOCKOUT_AFTER", "2")
        .with("TESSERA_LOGIN_LOCKOUT", "60s")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    app.create_user("bob", &[]).await;
    let prober = "203.0.113.10";
    assert_eq!(register_from(&app, prober, "alice").await.status(), 409);
    assert_eq!(register_from(&app, prober, "throwaway").await.status(), 201);
    assert_eq!(register_from(&app, prober, "bob").await.status(), 409);
    assert_eq!(register_from(&app, prober, "carol").await.status(), 429);
}

async fn login_from(app: &TestApp, forwarded: &[&str]) {
    let mut req = app.api.post(app.url("/oauth/token")).form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ]);
    for line in forwarded {
        req = req.header("X-Forwarded-For", *line);
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
}

fn login_ip(app: &TestApp) -> String {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        ip: String,
    }
    diesel::sql_query("SELECT ip FROM audit_log WHERE action = 'login.succeeded'")
        .get_result::<Row>(&mut app.db())
        .unwrap()
        .ip
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_address_it_appended_is_recorded() {
    let app = spawn()
        .with("TESSERA_TRUST_FORWARDED_FOR", "true")
        .start()
        .await;
    app.create_user("alice", &[]).await;

    // The client sent a line of its own; the proxy appended a second one.
    login_from(&app, &["6.6.6.6", "198.51.100.7, 203.0.113.9"]).await;

    assert_eq!(login_ip(&app), "203.0.113.9");
}

#[tokio::test]
async fn forwarded_addresses_are_ignored_unless_the_proxy_is_trusted() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;

    login_from(&app, &["203.0.113.9"]).await;

    assert_eq!(login_ip(&app), "127.0.0.1");
}
