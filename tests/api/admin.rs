//! The admin API: authorization on every route, users, clients, revocations, audit.

use serde_json::{json, Value};

use crate::helpers::{
    assert_oauth_error, claims_of, spawn, spawn_app, tokens_of, TestApp, PASSWORD,
};

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.api.request(method, app.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    let got = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

#[tokio::test]
async fn every_admin_route_needs_a_token_and_the_admin_role() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let user_id = app.create_user("alice", &[]).await;
    let user = app.login("alice").await.access_token;
    let uid = user_id.to_string();
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/admin/users".into(), None),
        (
            "POST",
            "/v1/admin/users".into(),
            Some(json!({"username": "zed", "password": PASSWORD})),
        ),
        ("GET", format!("/v1/admin/users/{uid}"), None),
        (
            "PATCH",
            format!("/v1/admin/users/{uid}"),
            Some(json!({"roles": ["viewer"]})),
        ),
        (
            "POST",
            format!("/v1/admin/users/{uid}/password"),
            Some(json!({"password": "another password"})),
        ),
        ("GET", format!("/v1/admin/users/{uid}/sessions"), None),
        ("POST", format!("/v1/admin/users/{uid}/revoke"), None),
        ("GET", "/v1/admin/revocations".into(), None),
        (
            "POST",
            "/v1/admin/revocations".into(),
            Some(json!({"jti": "abc", "reason": "test"})),
        ),
        ("GET", "/v1/admin/clients".into(), None),
        (
            "POST",
            "/v1/admin/clients".into(),
            Some(
                json!({"client_id": "x1", "confidential": true, "grant_types": ["client_credentials"]}),
            ),
        ),
        ("GET", "/v1/admin/clients/tessera".into(), None),
        (
            "PATCH",
            "/v1/admin/clients/x1".into(),
            Some(json!({"name": "X"})),
        ),
        ("POST", "/v1/admin/clients/x1/secret".into(), None),
        ("DELETE", "/v1/admin/clients/x1".into(), None),
        ("GET", "/v1/admin/audit".into(), None),
        ("GET", "/v1/admin/keys".into(), None),
        ("POST", "/v1/admin/keys/rotate".into(), None),
    ];
    for (method, path, body) in &routes {
        let res = call(&app, method, path, None, body.clone()).await;
        assert_eq!(res.status(), 401, "{method} {path} without a token");
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        let res = call(&app, method, path, Some(&user), body.clone()).await;
        assert_eq!(res.status(), 403, "{method} {path} with a user token");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="insufficient_scope""#));
    }
    // In this order every route has something to act on: the admin role is enough.
    for (method, path, body) in &routes {
        let res = call(&app, method, path, Some(&admin), body.clone()).await;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        assert!(
            (200..300).contains(&status),
            "{method} {path} as admin: {status} {text}"
        );
    }
}

#[tokio::test]
async fn users_are_listed_page_by_page_and_searched() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for name in ["alice", "alicia", "bob", "carol", "dave"] {
        app.create_user(name, &[]).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/admin/users?limit=2&cursor={c}"),
            None => "/v1/admin/users?limit=2".to_owned(),
        };
        let page = json_of(call(&app, "GET", &path, Some(&admin), None).await, 200).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned()),
        );
        assert!(items.iter().all(|u| u.get("password_hash").is_none()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["alice", "alicia", "bob", "carol", "dave", "root"]);

    let page = json_of(
        call(&app, "GET", "/v1/admin/users?q=ALI", Some(&admin), None).await,
        200,
    )
    .await;
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "alicia"]);
    // Wildcards are taken literally.
    let page = json_of(
        call(&app, "GET", "/v1/admin/users?q=%25", Some(&admin), None).await,
        200,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let res = call(
        &app,
        "GET",
        "/v1/admin/users?limit=1000",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn admins_create_and_read_users() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let body =
        json!({"username": "Erin", "password": "erins password", "roles": ["support", "support"]});
    let created = json_of(
        call(
            &app,
            "POST",
            "/v1/admin/users",
            Some(&admin),
            Some(body.clone()),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(created["username"], "erin");
    assert_eq!(created["roles"], json!(["support"]));
    let id = created["id"].as_str().unwrap();
    let got = json_of(
        call(
            &app,
            "GET",
            &format!("/v1/admin/users/{id}"),
            Some(&admin),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(got, created);
    assert_eq!(
        app.password_grant("erin", "erins password").await.status(),
        200
    );

    assert_eq!(
        call(&app, "POST", "/v1/admin/users", Some(&admin), Some(body))
            .await
            .status(),
        409
    );
    let long = json!({"username": "fred", "password": "x".repeat(73)});
    let res = json_of(
        call(&app, "POST", "/v1/admin/users", Some(&admin), Some(long)).await,
        400,
    )
    .await;
    assert!(res["detail"].as_str().unwrap().contains("72 bytes"));
    let bad_role = json!({"username": "fred", "password": PASSWORD, "roles": ["Not A Role"]});
    assert_eq!(
        call(
            &app,
            "POST",
            "/v1/admin/users",
            Some(&admin),
            Some(bad_role)
        )
        .await
        .status(),
        400
    );
    let res = call(
        &app,
        "GET",
        "/v1/admin/users/00000000-0000-0000-0000-000000000000",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn disabling_a_user_revokes_everything_at_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app.create_user("alice", &[]).await;
    let (a, b) = (app.login("alice").await, app.login("alice").await);

    let res = call(
        &app,
        "PATCH",
        &format!("/v1/admin/users/{id}"),
        Some(&admin),
        Some(json!({"disabled": true})),
    )
    .await;

    assert_eq!(json_of(res, 200).await["disabled"], true);
    for tokens in [&a, &b] {
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
    assert_oauth_error(
        app.password_grant("alice", PASSWORD).await,
        400,
        "invalid_grant",
    )
    .await;

    call(
        &app,
        "PATCH",
        &format!("/v1/admin/users/{id}"),
        Some(&admin),
        Some(json!({"disabled": false})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = app.login("alice").await;
    assert_eq!(
        app.get_with_token("/v1/me", &fresh.access_token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_role_change_cuts_live_tokens_and_the_refresh_brings_the_new_roles() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app.create_user("alice", &["admin"]).await;
    let tokens = app.login("alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    call(
        &app,
        "PATCH",
        &format!("/v1/admin/users/{id}"),
        Some(&admin),
        Some(json!({"roles": ["support"]})),
    )
    .await;

    assert_eq!(
        app.get_with_token("/v1/admin/users", &tokens.access_token)
            .await
            .status(),
        401
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let refreshed = app.refresh(&tokens.refresh_token).await;
    assert_eq!(
        claims_of(&refreshed.access_token)["roles"],
        json!(["support"])
    );
    assert_eq!(
        app.get_with_token("/v1/admin/users", &refreshed.access_token)
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn an_admin_cannot_lock_themself_out() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let me = claims_of(&admin)["sub"].as_str().unwrap().to_owned();
    for body in [json!({"disabled": true}), json!({"roles": []})] {
        let res = call(
            &app,
            "PATCH",
            &format!("/v1/admin/users/{me}"),
            Some(&admin),
            Some(body),
        )
        .await;
        assert_eq!(res.status(), 409);
    }
}

#[tokio::test]
async fn a_password_reset_ends_every_session() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    let res = call(
        &app,
        "POST",
        &format!("/v1/admin/users/{id}/password"),
        Some(&admin),
        Some(json!({"password": "reset by admin"})),
    )
    .await;
    assert_eq!(res.status(), 204);
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
    assert_eq!(
        app.password_grant("alice", "reset by admin").await.status(),
        200
    );
}

#[tokio::test]
async fn a_users_sessions_are_listed_and_revoked_together() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let id = app.create_user("alice", &[]).await;
    let (a, b) = (app.login("alice").await, app.login("alice").await);
    let list = json_of(
        call(
            &app,
            "GET",
            &format!("/v1/admin/users/{id}/sessions"),
            Some(&admin),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 2);

    let res = call(
        &app,
        "POST",
        &format!("/v1/admin/users/{id}/revoke"),
        Some(&admin),
        Some(json!({"reason": "laptop stolen"})),
    )
    .await;

    assert_eq!(res.status(), 204);
    for tokens in [&a, &b] {
        assert_eq!(
            app.get_with_token("/v1/me", &tokens.access_token)
                .await
                .status(),
            401
        );
    }
    let list = json_of(
        call(
            &app,
            "GET",
            &format!("/v1/admin/users/{id}/sessions"),
            Some(&admin),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    assert_eq!(
        app.count(&format!("SELECT count(*) FROM revocations WHERE kind = 'user' AND value = '{id}' AND reason = 'laptop stolen'")),
        1
    );
}

#[tokio::test]
async fn admins_revoke_by_token_jti_or_sid_with_a_reason() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user("alice", &[]).await;
    let (a, b, c) = (
        app.login("alice").await,
        app.login("alice").await,
        app.login("alice").await,
    );
    let jti = claims_of(&b.access_token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let sid = claims_of(&c.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();

    for body in [
        json!({"token": a.access_token, "reason": "leaked in a log"}),
        json!({"jti": jti, "reason": "suspicious"}),
        json!({"sid": sid, "reason": "user request"}),
    ] {
        json_of(
            call(
                &app,
                "POST",
                "/v1/admin/revocations",
                Some(&admin),
                Some(body),
            )
            .await,
            201,
        )
        .await;
    }
    for tokens in [&a, &b, &c] {
        assert_eq!(
            app.get_with_token("/v1/me", &tokens.access_token)
                .await
                .status(),
            401
        );
    }
    assert_oauth_error(
        app.refresh_grant(&c.refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
    app.refresh(&a.refresh_token).await;

    let list = json_of(
        call(
            &app,
            "GET",
            "/v1/admin/revocations?kind=jti",
            Some(&admin),
            None,
        )
        .await,
        200,
    )
    .await;
    let reasons: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["suspicious", "leaked in a log"]);
    for bad in [
        json!({"reason": "nothing to revoke"}),
        json!({"jti": "x", "sid": sid, "reason": "two"}),
        json!({"jti": "x", "reason": ""}),
    ] {
        assert_eq!(
            call(
                &app,
                "POST",
                "/v1/admin/revocations",
                Some(&admin),
                Some(bad)
            )
            .await
            .status(),
            400
        );
    }
}

#[tokio::test]
async fn admins_manage_clients_and_see_the_secret_once() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let spec = json!({"client_id": "billing", "name": "Billing", "confidential": true,
                      "grant_types": ["client_credentials"], "scopes": ["orders:read"], "audiences": ["orders-api"]});
    let created = json_of(
        call(
            &app,
            "POST",
            "/v1/admin/clients",
            Some(&admin),
            Some(spec.clone()),
        )
        .await,
        201,
    )
    .await;
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cs_"));

    let got = json_of(
        call(&app, "GET", "/v1/admin/clients/billing", Some(&admin), None).await,
        200,
    )
    .await;
    assert!(got.get("client_secret").is_none(), "shown once only");
    let list = json_of(
        call(&app, "GET", "/v1/admin/clients", Some(&admin), None).await,
        200,
    )
    .await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["billing", "tessera"]);
    assert_eq!(
        call(&app, "POST", "/v1/admin/clients", Some(&admin), Some(spec))
            .await
            .status(),
        409
    );

    let updated = json_of(
        call(
            &app,
            "PATCH",
            "/v1/admin/clients/billing",
            Some(&admin),
            Some(
                json!({"scopes": ["orders:read", "orders:write"], "access_token_ttl_seconds": 120}),
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["scopes"], json!(["orders:read", "orders:write"]));
    assert_eq!(updated["access_token_ttl_seconds"], 120);
    for bad in [
        json!({"grant_types": ["implicit"]}),
        json!({"confidential": false}),
        json!({"access_token_ttl_seconds": 5}),
        json!({"scopes": ["bad\"scope"]}),
        json!({"unknown_field": 1}),
    ] {
        assert_eq!(
            call(
                &app,
                "PATCH",
                "/v1/admin/clients/billing",
                Some(&admin),
                Some(bad.clone())
            )
            .await
            .status(),
            400,
            "{bad}"
        );
    }
    let public_cc = json!({"client_id": "p", "grant_types": ["client_credentials"]});
    assert_eq!(
        call(
            &app,
            "POST",
            "/v1/admin/clients",
            Some(&admin),
            Some(public_cc)
        )
        .await
        .status(),
        400
    );
}

async fn cc_status(app: &TestApp, id: &str, secret: &str) -> u16 {
    app.api
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_rotated_secret_overlaps_with_the_old_one() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let old = app.service_client("billing", &[]).await;

    let rotated = json_of(
        call(
            &app,
            "POST",
            "/v1/admin/clients/billing/secret",
            Some(&admin),
            Some(json!({"overlap_seconds": 600})),
        )
        .await,
        200,
    )
    .await;
    let new = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(rotated["previous_secret_expires_at"].is_string());
    assert_eq!(cc_status(&app, "billing", &new).await, 200);
    assert_eq!(
        cc_status(&app, "billing", &old).await,
        200,
        "the old one during the overlap"
    );

    let again = json_of(
        call(
            &app,
            "POST",
            "/v1/admin/clients/billing/secret",
            Some(&admin),
            Some(json!({"overlap_seconds": 0})),
        )
        .await,
        200,
    )
    .await;
    let newest = again["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(cc_status(&app, "billing", &newest).await, 200);
    assert_eq!(
        cc_status(&app, "billing", &new).await,
        401,
        "no overlap: the old one is dead"
    );
    assert_eq!(cc_status(&app, "billing", &old).await, 401);
    let res = call(
        &app,
        "POST",
        "/v1/admin/clients/tessera/secret",
        Some(&admin),
        None,
    )
    .await;
    // The client exists; its type is what the request conflicts with.
    assert_eq!(res.status(), 409, "public clients have no secret");
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("public"),
        "{body}"
    );
    let res = call(
        &app,
        "POST",
        "/v1/admin/clients/nobody/secret",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(res.status(), 404, "an unknown client");
}

#[tokio::test]
async fn deleting_a_client_kills_its_tokens() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let rs_secret = app.service_client("orders-api", &[]).await;
    let secret = app.service_client("billing", &[]).await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth("billing", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let token = tokens_of(res).await.access_token;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    assert_eq!(
        call(
            &app,
            "DELETE",
            "/v1/admin/clients/billing",
            Some(&admin),
            None
        )
        .await
        .status(),
        204
    );

    let res = app
        .api
        .post(app.url("/oauth/introspect"))
        .basic_auth("orders-api", Some(&rs_secret))
        .form(&[("token", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["active"], false);
    assert_eq!(cc_status(&app, "billing", &secret).await, 401);
    assert_eq!(
        call(
            &app,
            "DELETE",
            "/v1/admin/clients/billing",
            Some(&admin),
            None
        )
        .await
        .status(),
        404
    );
}

#[tokio::test]
async fn the_audit_log_is_filtered_paginated_and_names_the_admin() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = claims_of(&admin)["sub"].as_str().unwrap().to_owned();
    let alice = app.create_user("alice", &[]).await;
    for _ in 0..3 {
        app.password_grant("alice", "wrong").await;
    }
    call(
        &app,
        "POST",
        &format!("/v1/admin/users/{alice}/revoke"),
        Some(&admin),
        None,
    )
    .await;

    let page = json_of(
        call(
            &app,
            "GET",
            "/v1/admin/audit?action=login.failed&limit=2",
            Some(&admin),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().unwrap();
    let rest = json_of(
        call(
            &app,
            "GET",
            &format!("/v1/admin/audit?action=login.failed&limit=2&cursor={next}"),
            Some(&admin),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest.get("next_cursor").is_none());

    let revoked = json_of(
        call(
            &app,
            "GET",
            &format!("/v1/admin/audit?user_id={alice}&action=admin.user.revoked"),
            Some(&admin),
            None,
        )
        .await,
        200,
    )
    .await;
    let item = &revoked["items"][0];
    assert_eq!(item["actor_id"], admin_id);
    assert_eq!(item["user_id"], alice.to_string());

    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let none = json_of(
        call(
            &app,
            "GET",
            &format!("/v1/admin/audit?since={future}"),
            Some(&admin),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    assert_eq!(
        call(
            &app,
            "GET",
            "/v1/admin/audit?since=yesterday",
            Some(&admin),
            None
        )
        .await
        .status(),
        400
    );
}

#[tokio::test]
async fn admins_list_and_rotate_keys_without_private_material() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let keys = json_of(
        call(&app, "GET", "/v1/admin/keys", Some(&admin), None).await,
        200,
    )
    .await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["state"], "current");
    assert!(!keys.to_string().contains("private"));

    let rotation = json_of(
        call(&app, "POST", "/v1/admin/keys/rotate", Some(&admin), None).await,
        200,
    )
    .await;
    assert_eq!(rotation["already_pending"], false);
    assert_eq!(rotation["dropped_kid"], Value::Null);
    let keys = &rotation["keys"];
    let next = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["state"] == "next")
        .expect("a next key");
    assert_eq!(rotation["kid"], next["kid"]);
    assert!(rotation["signs_at"].is_string(), "{rotation}");
    let states: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert!(
        states.contains(&"next") && states.contains(&"current"),
        "{states:?}"
    );
    let jwks: Value = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the next key is published before it signs"
    );

    // Asked again, the pending key is reported, and nothing new is created.
    let again = json_of(
        call(&app, "POST", "/v1/admin/keys/rotate", Some(&admin), None).await,
        200,
    )
    .await;
    assert_eq!(again["already_pending"], true);
    assert_eq!(again["kid"], rotation["kid"]);
    assert_eq!(again["keys"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_first_admin_can_be_bootstrapped_from_configuration() {
    let dir = std::env::temp_dir().join(format!("tessera-bootstrap-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("admin-password");
    std::fs::write(&file, "bootstrap password\n").unwrap();
    let app = spawn()
        .with("TESSERA_BOOTSTRAP_ADMIN", "boss")
        .with(
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE",
            file.to_str().unwrap(),
        )
        .start()
        .await;
    let res = app.password_grant("boss", "bootstrap password").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        claims_of(&tokens_of(res).await.access_token)["roles"],
        json!(["admin"])
    );

    // Only on a first start: a later start with other settings creates nobody.
    let second = spawn()
        .sharing_database_of(&app)
        .with("TESSERA_BOOTSTRAP_ADMIN", "other")
        .with("TESSERA_BOOTSTRAP_ADMIN_PASSWORD", "another password")
        .start()
        .await;
    assert_eq!(second.count("SELECT count(*) FROM users"), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_admins_token_for_another_api_cannot_use_the_admin_api() {
    let app = spawn_app().await;
    app.create_user("root", &["admin"]).await;
    app.create_client(json!({
        "client_id": "shop", "grant_types": ["password"], "audiences": ["https://shop.example"]
    }))
    .await;
    app.create_client(json!({
        "client_id": "console", "grant_types": ["password"],
        "audiences": ["https://shop.example", crate::helpers::ISSUER]
    }))
    .await;
    let login = |client: &'static str| {
        app.api
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", client),
                ("username", "root"),
                ("password", PASSWORD),
            ])
            .send()
    };
    let shop = tokens_of(login("shop").await.unwrap()).await.access_token;
    assert_eq!(
        call(&app, "GET", "/v1/admin/users", Some(&shop), None)
            .await
            .status(),
        401
    );
    // A client that names Tessera among its audiences gets tokens Tessera's own API
    // accepts, but not the admin API: the shop holds them too and could replay them.
    let console = tokens_of(login("console").await.unwrap())
        .await
        .access_token;
    assert_eq!(app.get_with_token("/v1/me", &console).await.status(), 200);
    assert_eq!(
        call(&app, "GET", "/v1/admin/users", Some(&console), None)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn an_admin_token_minted_also_for_another_api_cannot_drive_the_admin_api() {
    let app = spawn_app().await;
    app.create_user("root", &["admin"]).await;
    app.create_client(json!({
        "client_id": "shared-app", "confidential": false,
        "grant_types": ["password"], "scopes": [],
        "audiences": [crate::helpers::ISSUER, "https://other.api"],
    }))
    .await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "shared-app"),
                ("username", "root"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let shared = tokens_of(res).await.access_token;
    assert_eq!(
        claims_of(&shared)["aud"],
        json!([crate::helpers::ISSUER, "https://other.api"])
    );

    // What the other API could replay: create an admin, rotate the keys.
    let res = call(
        &app,
        "POST",
        "/v1/admin/users",
        Some(&shared),
        Some(json!({"username": "mallory", "password": PASSWORD, "roles": ["admin"]})),
    )
    .await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let keys = app.count("SELECT count(*) FROM signing_keys");
    let res = call(&app, "POST", "/v1/admin/keys/rotate", Some(&shared), None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE username = 'mallory'"),
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM signing_keys"),
        keys,
        "no key rotated"
    );

    // The same admin's token minted for Tessera alone still works.
    let own = app.login("root").await.access_token;
    assert_eq!(claims_of(&own)["aud"], crate::helpers::ISSUER);
    let res = call(&app, "GET", "/v1/admin/users", Some(&own), None).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_bad_audit_time_names_the_parameter_and_the_format() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let res = call(
        &app,
        "GET",
        "/v1/admin/audit?since=yesterday",
        Some(&admin),
        None,
    )
    .await;
    let body = json_of(res, 400).await;
    assert_eq!(
        body["detail"],
        "since must be an RFC 3339 time such as 2026-12-01T00:00:00Z"
    );
}

#[tokio::test]
async fn an_empty_audit_filter_value_is_refused_not_ignored() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    for (query, detail) in [
        ("user_id=", "user_id must be a user id (a UUID)"),
        (
            "until=",
            "until must be an RFC 3339 time such as 2026-12-01T00:00:00Z",
        ),
    ] {
        let path = format!("/v1/admin/audit?{query}");
        let res = call(&app, "GET", &path, Some(&admin), None).await;
        let body = json_of(res, 400).await;
        assert_eq!(body["detail"], detail, "{query}");
    }
}

#[tokio::test]
async fn a_bad_query_string_is_judged_only_after_the_caller() {
    let app = spawn_app().await;
    app.create_user("bob", &[]).await;
    let user = app.login("bob").await.access_token;
    for path in [
        "/v1/admin/users?q=a&q=b",
        "/v1/admin/clients?limit=many",
        "/v1/admin/revocations?kind=everything",
        "/v1/admin/audit?limit=-",
    ] {
        let res = call(&app, "GET", path, None, None).await;
        assert_eq!(res.status(), 401, "{path} without a token");
        let res = call(&app, "GET", path, Some(&user), None).await;
        assert_eq!(res.status(), 403, "{path} without the admin role");
    }
    let admin = app.admin_token().await;
    let res = call(&app, "GET", "/v1/admin/users?q=a&q=b", Some(&admin), None).await;
    let body = json_of(res, 400).await;
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("invalid query string"),
        "{body}"
    );
}
