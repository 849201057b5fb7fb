//! RFC 7009 revocation and the denylist behind it.

use diesel::RunQueryDsl;

use crate::helpers::{assert_oauth_error, claims_of, spawn, spawn_app, TestApp};

async fn revoke(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.post_form("/oauth/revoke", form).await
}

fn redis_ttl(app: &TestApp, key: &str) -> i64 {
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    // Every denylist key carries the list's hash tag.
    redis::cmd("TTL")
        .arg(format!("{{{}deny}}:{key}", app.redis_prefix))
        .query(&mut conn)
        .unwrap()
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_whole_session() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    let second = app.refresh(&first.refresh_token).await;

    let res = revoke(&app, &[("token", &second.refresh_token)]).await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_oauth_error(
        app.refresh_grant(&second.refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
    // The session's live access tokens die with it.
    for token in [&first.access_token, &second.access_token] {
        let res = app.get_with_token("/v1/me", token).await;
        assert_eq!(res.status(), 401);
        assert!(res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("revoked"));
    }
    let sid = claims_of(&second.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM revocations WHERE kind = 'sid' AND value = '{sid}'
               AND reason = 'revoked_by_client' AND revoked_by = 'client:tessera'
               AND synced_at IS NOT NULL"
        )),
        1
    );
    let ttl = redis_ttl(&app, &format!("sid:{sid}"));
    assert!(
        ttl > 86_000 && ttl <= 86_405,
        "a session entry lives as long as any access token may: {ttl}"
    );
}

#[tokio::test]
async fn revoking_an_access_token_denies_just_that_token() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;

    let res = revoke(
        &app,
        &[
            ("token", &tokens.access_token),
            ("token_type_hint", "access_token"),
        ],
    )
    .await;

    assert_eq!(res.status(), 200);
    assert_eq!(
        app.get_with_token("/v1/me", &tokens.access_token)
            .await
            .status(),
        401
    );
    // The session lives on: refreshing gives a working token.
    let fresh = app.refresh(&tokens.refresh_token).await;
    assert_eq!(
        app.get_with_token("/v1/me", &fresh.access_token)
            .await
            .status(),
        200
    );
    let jti = claims_of(&tokens.access_token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let ttl = redis_ttl(&app, &format!("jti:{jti}"));
    assert!(ttl > 0 && ttl <= 305, "expires with the token: {ttl}");
}

#[tokio::test]
async fn the_hint_is_honoured_but_not_trusted() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    let res = revoke(
        &app,
        &[
            ("token", &tokens.access_token),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.get_with_token("/v1/me", &tokens.access_token)
            .await
            .status(),
        401
    );

    let res = revoke(
        &app,
        &[
            ("token", &tokens.refresh_token),
            ("token_type_hint", "access_token"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_oauth_error(
        app.refresh_grant(&tokens.refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn unknown_and_already_revoked_tokens_answer_200() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    for token in [
        "not-a-token",
        "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        &tokens.refresh_token,
        &tokens.refresh_token,
    ] {
        let res = revoke(
            &app,
            &[("token", token), ("token_type_hint", "something_else")],
        )
        .await;
        assert_eq!(res.status(), 200, "{token}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM revocations"),
        1,
        "revoked once"
    );
}

#[tokio::test]
async fn a_client_may_revoke_only_its_own_tokens() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    diesel::sql_query(
        "INSERT INTO clients (client_id, name, confidential, grant_types, scopes)
         VALUES ('mobile', 'Mobile app', false, '{password,refresh_token}', '{profile}')",
    )
    .execute(&mut app.db())
    .unwrap();
    let tokens = app.login("alice").await; // issued to the built-in client

    for token in [&tokens.refresh_token, &tokens.access_token] {
        let res = revoke(&app, &[("token", token), ("client_id", "mobile")]).await;
        assert_oauth_error(res, 400, "unauthorized_client").await;
    }
    assert_eq!(
        app.get_with_token("/v1/me", &tokens.access_token)
            .await
            .status(),
        200
    );
    app.refresh(&tokens.refresh_token).await;
}

#[tokio::test]
async fn a_confidential_client_that_fails_authentication_gets_invalid_client() {
    let app = spawn_app().await;
    diesel::sql_query(
        "INSERT INTO clients (client_id, name, confidential, secret_hash, grant_types, scopes)
         VALUES ('backend', 'Backend', true, sha256('cs_right'::bytea), '{client_credentials}', '{}')",
    )
    .execute(&mut app.db())
    .unwrap();
    let res = app
        .api
        .post(app.url("/oauth/revoke"))
        .basic_auth("backend", Some("cs_wrong"))
        .form(&[("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("www-authenticate"));
    assert_oauth_error(res, 401, "invalid_client").await;
    // Without its secret at all.
    let res = revoke(&app, &[("token", "whatever"), ("client_id", "backend")]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
    // With it: fine.
    let res = app
        .api
        .post(app.url("/oauth/revoke"))
        .basic_auth("backend", Some("cs_right"))
        .form(&[("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn revoke_without_a_token_is_invalid_request() {
    let app = spawn_app().await;
    let res = revoke(&app, &[("token_type_hint", "access_token")]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
}

#[tokio::test]
async fn refresh_reuse_also_kills_the_sessions_access_tokens() {
    let app = spawn()
        .with("TESSERA_REFRESH_REUSE_GRACE", "0")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    let second = app.refresh(&first.refresh_token).await;
    assert_eq!(
        app.get_with_token("/v1/me", &second.access_token)
            .await
            .status(),
        200
    );

    assert_oauth_error(
        app.refresh_grant(&first.refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;

    assert_eq!(
        app.get_with_token("/v1/me", &second.access_token)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'refresh.reuse_detected'"),
        1
    );
}

#[tokio::test]
async fn revocations_are_recorded_with_what_why_who_and_until_when() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    revoke(&app, &[("token", &tokens.access_token)]).await;
    let exp = claims_of(&tokens.access_token)["exp"].as_i64().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM revocations WHERE kind = 'jti' AND reason = 'revoked_by_client'
               AND revoked_by = 'client:tessera'
               AND expires_at >= to_timestamp({exp}) AND expires_at <= to_timestamp({exp} + 10)"
        )),
        1
    );
}

/// A pass whose batches did not all stay in Redis (a failover to a replica that missed
/// the last of them, a snapshot taken half-way) never marks the list complete. On a
/// prefix of its own: no instance's background pass runs there.
#[tokio::test]
async fn a_pass_that_lost_a_batch_does_not_mark_the_denylist_complete() {
    use std::time::Duration;
    use tessera::domain::{RedisEndpoint, RevocationKind};
    use tessera::store::denylist::{DenyEntry, Denylist};

    let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
    let denylist =
        Denylist::new(&RedisEndpoint::Single(crate::helpers::redis_url()), &prefix).unwrap();
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut redis = |cmd: &str, arg: &str| -> redis::Value {
        redis::cmd(cmd).arg(arg).query(&mut conn).unwrap()
    };
    let ready_key = format!("{{{prefix}deny}}:ready");
    let marker = |redis: &mut dyn FnMut(&str, &str) -> redis::Value| match redis("GET", &ready_key)
    {
        redis::Value::BulkString(b) => Some(String::from_utf8(b).unwrap()),
        _ => None,
    };
    let entry = |jti: &str| DenyEntry {
        kind: RevocationKind::Token,
        value: jti.to_owned(),
        not_before: None,
        ttl: Duration::from_secs(60),
    };

    // A pass that kept everything completes.
    let mut pass = denylist.begin().await.unwrap();
    denylist.deny_in(&mut pass, &[entry("a")]).await.unwrap();
    assert!(denylist.complete(pass, None, 1_000, false).await.unwrap());
    assert_eq!(marker(&mut redis).as_deref(), Some("1000"));

    // One whose batch count in Redis falls short of what it wrote does not.
    let mut pass = denylist.begin().await.unwrap();
    denylist.deny_in(&mut pass, &[entry("b")]).await.unwrap();
    let keys = match redis("KEYS", &format!("{{{prefix}deny}}:pass:*")) {
        redis::Value::Array(keys) => keys,
        other => panic!("{other:?}"),
    };
    assert_eq!(keys.len(), 1, "{keys:?}");
    let redis::Value::BulkString(key) = &keys[0] else {
        panic!("{keys:?}")
    };
    redis("DECR", std::str::from_utf8(key).unwrap());
    assert!(!denylist.complete(pass, None, 2_000, false).await.unwrap());
    assert_eq!(marker(&mut redis).as_deref(), Some("1000"));

    // A complete pass never lowers a marker that moved past it, unless told to.
    let pass = denylist.begin().await.unwrap();
    assert!(denylist.complete(pass, None, 500, false).await.unwrap());
    assert_eq!(marker(&mut redis).as_deref(), Some("1000"));
    let pass = denylist.begin().await.unwrap();
    assert!(denylist.complete(pass, None, 500, true).await.unwrap());
    assert_eq!(marker(&mut redis).as_deref(), Some("500"));

    for key in [
        ready_key.clone(),
        format!("{{{prefix}deny}}:jti:a"),
        format!("{{{prefix}deny}}:jti:b"),
    ] {
        redis("DEL", &key);
    }
}

#[tokio::test]
async fn a_refresh_token_past_its_idle_lifetime_still_ends_its_session() {
    // Its session's access tokens may outlive the idle refresh token: revoking it must
    // still end them.
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    diesel::sql_query("UPDATE sessions SET refresh_expires_at = now() - interval '1 second'")
        .execute(&mut app.db())
        .unwrap();

    let res = revoke(&app, &[("token", &tokens.refresh_token)]).await;

    assert_eq!(res.status(), 200);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL"),
        1
    );
    let me = app.get_with_token("/v1/me", &tokens.access_token).await;
    assert_eq!(me.status(), 401);
}
