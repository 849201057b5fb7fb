use std::collections::HashSet;

use diesel::RunQueryDsl;

use crate::helpers::{assert_oauth_error, claims_of, spawn, spawn_app, tokens_of, PASSWORD};

fn hash_sql(token: &str) -> String {
    format!("sha256('{token}'::bytea)")
}

#[tokio::test]
async fn refresh_rotates_the_token_within_one_session() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;

    let res = app.refresh_grant(&first.refresh_token).await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let second = tokens_of(res).await;
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    let (a, b) = (
        claims_of(&first.access_token),
        claims_of(&second.access_token),
    );
    assert_eq!(a["sid"], b["sid"], "one login, one session");
    assert_ne!(a["jti"], b["jti"]);
    assert_eq!(second.body["scope"], "profile");
    // The old token is spent and points at its successor.
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refresh_tokens WHERE token_hash = {} AND used_at IS NOT NULL
               AND successor_hash = {}",
            hash_sql(&first.refresh_token),
            hash_sql(&second.refresh_token)
        )),
        1
    );
    // And the chain goes on.
    let third = app.refresh(&second.refresh_token).await;
    assert_eq!(claims_of(&third.access_token)["sid"], a["sid"]);
}

#[tokio::test]
async fn retry_within_the_grace_window_returns_the_same_successor() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;

    let a = app.refresh(&first.refresh_token).await;
    let b = app.refresh(&first.refresh_token).await;

    assert_eq!(
        a.refresh_token, b.refresh_token,
        "the chain must not branch"
    );
    assert_eq!(app.count("SELECT count(*) FROM refresh_tokens"), 2);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL"),
        1
    );
    // The successor still works: nobody was logged out.
    app.refresh(&a.refresh_token).await;
}

#[tokio::test]
async fn a_retry_after_the_successor_was_used_is_a_replay_even_within_the_grace_window() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    let second = app.refresh(&first.refresh_token).await;
    let third = app.refresh(&second.refresh_token).await;

    // Within the window, but the chain has moved on: nobody who lost the first answer
    // could have used its successor, so someone else holds the chain.
    let replay = app.refresh_grant(&first.refresh_token).await;

    assert_oauth_error(replay, 400, "invalid_grant").await;
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL"),
        0,
        "the session is revoked"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'refresh.reuse_detected'"),
        1
    );
    assert_oauth_error(
        app.refresh_grant(&third.refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn reused_refresh_token_after_the_grace_window_revokes_the_session() {
    let app = spawn()
        .with("TESSERA_REFRESH_REUSE_GRACE", "0")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    let second = app.refresh(&first.refresh_token).await;

    let replay = app.refresh_grant(&first.refresh_token).await;

    let body = assert_oauth_error(replay, 400, "invalid_grant").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(
        app.count(
            "SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL
               AND revoked_reason = 'refresh_token_reuse'"
        ),
        1
    );
    // Every token of the session is dead, including the honest successor.
    let res = app.refresh_grant(&second.refresh_token).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn reuse_is_detected_once_the_grace_window_has_passed() {
    let app = spawn()
        .with("TESSERA_REFRESH_REUSE_GRACE", "1")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    app.refresh(&first.refresh_token).await;
    // Within the window: the same answer.
    app.refresh(&first.refresh_token).await;

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;

    let res = app.refresh_grant(&first.refresh_token).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL"),
        1
    );
}

#[tokio::test]
async fn fifty_parallel_refreshes_share_one_successor() {
    let app = spawn()
        .with("TESSERA_DATABASE_POOL_SIZE", "16")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;

    let requests = (0..50).map(|_| app.refresh_grant(&first.refresh_token));
    let responses = futures_util::future::join_all(requests).await;

    let mut successors = HashSet::new();
    for res in responses {
        assert_eq!(res.status(), 200, "every racer succeeds");
        successors.insert(tokens_of(res).await.refresh_token);
    }
    assert_eq!(successors.len(), 1, "one and the same new refresh token");
    assert_eq!(
        app.count("SELECT count(*) FROM refresh_tokens"),
        2,
        "exactly one new token"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL"),
        1
    );
    let successor = successors.into_iter().next().unwrap();
    app.refresh(&successor).await;
}

#[tokio::test]
async fn idle_lifetime_is_enforced() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    // Simulate two idle weeks.
    diesel::sql_query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&mut app.db())
        .unwrap();

    let res = app.refresh_grant(&first.refresh_token).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    // Expiry is not reuse: the session was not revoked for it.
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NOT NULL"),
        0
    );
}

#[tokio::test]
async fn absolute_session_lifetime_is_enforced() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    diesel::sql_query("UPDATE sessions SET expires_at = now() - interval '1 second'")
        .execute(&mut app.db())
        .unwrap();
    let res = app.refresh_grant(&first.refresh_token).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn refresh_never_extends_a_session_past_its_absolute_end() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    // Ten minutes of session left, far less than the 14-day idle lifetime.
    diesel::sql_query("UPDATE sessions SET expires_at = now() + interval '10 minutes'")
        .execute(&mut app.db())
        .unwrap();
    let second = app.refresh(&first.refresh_token).await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
              WHERE rt.token_hash = {} AND rt.expires_at <= s.expires_at",
            hash_sql(&second.refresh_token)
        )),
        1
    );
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    diesel::sql_query(
        "INSERT INTO clients (client_id, name, confidential, grant_types, scopes)
         VALUES ('mobile', 'Mobile app', false, '{password,refresh_token}', '{profile}')",
    )
    .execute(&mut app.db())
    .unwrap();
    let tokens = tokens_of(
        app.post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "mobile"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await,
    )
    .await;

    // The built-in client may not spend the mobile app's token...
    let res = app.refresh_grant(&tokens.refresh_token).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    // ...and trying did not spend it.
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "mobile"),
                ("refresh_token", &tokens.refresh_token),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn refresh_may_narrow_the_scope_but_not_widen_it() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    diesel::sql_query("UPDATE clients SET scopes = '{profile,email}' WHERE client_id = 'tessera'")
        .execute(&mut app.db())
        .unwrap();
    let first = app.login("alice").await;
    assert_eq!(first.body["scope"], "email profile");

    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first.refresh_token),
                ("scope", "email"),
            ],
        )
        .await;
    let narrowed = tokens_of(res).await;
    assert_eq!(narrowed.body["scope"], "email");
    assert_eq!(claims_of(&narrowed.access_token)["scope"], "email");

    // The session keeps its full scope: the next refresh without `scope` gets it all.
    let again = app.refresh(&narrowed.refresh_token).await;
    assert_eq!(again.body["scope"], "email profile");

    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &again.refresh_token),
                ("scope", "profile admin"),
            ],
        )
        .await;
    assert_oauth_error(res, 400, "invalid_scope").await;
}

#[tokio::test]
async fn unknown_refresh_token_is_invalid_grant() {
    let app = spawn_app().await;
    let res = app
        .refresh_grant("rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn disabled_user_cannot_refresh() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    diesel::sql_query("UPDATE users SET disabled = true")
        .execute(&mut app.db())
        .unwrap();
    let res = app.refresh_grant(&first.refresh_token).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}
