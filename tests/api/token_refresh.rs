use std::collections::HashSet;

use diesel::RunQueryDsl;

use crate::helpers::{assert_oauth_error, claims_of, spawn, spawn_app, tokens_of, PASSWORD};

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
    // Both tokens name the session; the successor is the next generation, and the
    // session row, the only one there is, says it is the live one.
    let (old, new) = (
        app.chain_of(&first.refresh_token),
        app.chain_of(&second.refresh_token),
    );
    assert_eq!(old.session_id.to_string(), a["sid"].as_str().unwrap());
    assert_eq!(new.session_id, old.session_id);
    assert_eq!((old.generation, new.generation), (0, 1));
    assert_eq!(
        app.count(&format!(
            "SELECT generation FROM sessions WHERE id = '{}'",
            old.session_id
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
    assert_eq!(
        app.count("SELECT generation FROM sessions WHERE revoked_at IS NULL"),
        1,
        "one live session, rotated once"
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
        app.count("SELECT generation FROM sessions"),
        1,
        "exactly one rotation"
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
    diesel::sql_query("UPDATE sessions SET refresh_expires_at = now() - interval '1 second'")
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
            "SELECT count(*) FROM sessions
              WHERE id = '{}' AND generation = 1 AND refresh_expires_at <= expires_at",
            app.chain_of(&second.refresh_token).session_id
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
    // Genuine, but of a session that does not exist (deleted, or never was).
    let res = app
        .refresh_grant(&app.mint_refresh(uuid::Uuid::now_v7(), 0))
        .await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_token_of_the_retired_random_format_is_invalid_grant_not_malformed() {
    // What versions before generations issued: rt_ and 256 random bits.
    let app = spawn_app().await;
    let res = app
        .refresh_grant("rt_W3IBR7aRjfwZuqDXdnyrdbduF5mIN9BK9D8vNGPFNQ8")
        .await;
    let body = assert_oauth_error(res, 400, "invalid_grant").await;
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("invalid, expired or revoked"));
}

#[tokio::test]
async fn a_forged_link_of_a_real_session_is_refused_and_ends_nothing() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    let chain = app.chain_of(&first.refresh_token);
    // The right session and generation under another key: what someone who read the
    // database, but not the master key, could put together.
    let other_key = tessera::auth::refresh_mac::RefreshMac::from_master(
        &tessera::auth::master_key::MasterKey::from_bytes([7; 32]),
    );
    let forged = other_key.issue(chain);

    let res = app.refresh_grant(forged.expose()).await;

    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND generation = 0"),
        1,
        "the session lives on, not rotated"
    );
    app.refresh(&first.refresh_token).await;
}

#[tokio::test]
async fn a_link_from_ahead_of_the_database_is_refused_without_ending_the_session() {
    // A genuine token the database has not reached: it was restored from a backup
    // older than the token. Refused, and not taken for a replay.
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    let ahead = app.mint_refresh(app.chain_of(&first.refresh_token).session_id, 5);

    let res = app.refresh_grant(&ahead).await;

    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE revoked_at IS NULL"),
        1
    );
    app.refresh(&first.refresh_token).await;
}

#[tokio::test]
async fn a_refresh_updates_the_session_row_and_writes_nothing_else() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let mut token = app.login("alice").await.refresh_token;
    let rows = "SELECT (SELECT count(*) FROM sessions) + (SELECT count(*) FROM audit_log)
                     + (SELECT count(*) FROM revocations) + (SELECT count(*) FROM users)";
    let before = app.count(rows);
    for _ in 0..5 {
        token = app.refresh(&token).await.refresh_token;
    }
    assert_eq!(app.count(rows), before, "no row added by a refresh");
    assert_eq!(app.count("SELECT generation FROM sessions"), 5);
    assert_eq!(app.chain_of(&token).generation, 5);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'refresh_tokens'"
        ),
        0,
        "no table of spent tokens to grow"
    );
}

/// An administrator's change of a user (`PATCH /v1/admin/users/{id}`), which succeeds.
async fn change_user(
    app: &crate::helpers::TestApp,
    admin: &str,
    user: uuid::Uuid,
    change: serde_json::Value,
) {
    let res = app
        .api
        .patch(app.url(&format!("/v1/admin/users/{user}")))
        .bearer_auth(admin)
        .json(&change)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_user_disabled_by_an_administrator_cannot_refresh() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let alice = app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    change_user(&app, &admin, alice, serde_json::json!({"disabled": true})).await;
    let res = app.refresh_grant(&first.refresh_token).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn disabling_a_user_ends_sessions_left_open_even_when_the_flag_was_already_set() {
    // The state a disable racing an enable could once leave: the flag set, a session
    // still open. Disabling again ends it.
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let alice = app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    diesel::sql_query(format!(
        "UPDATE users SET disabled = true WHERE id = '{alice}'"
    ))
    .execute(&mut app.db())
    .unwrap();
    change_user(&app, &admin, alice, serde_json::json!({"disabled": true})).await;
    assert_oauth_error(
        app.refresh_grant(&first.refresh_token).await,
        400,
        "invalid_grant",
    )
    .await;
    let me = app.get_with_token("/v1/me", &first.access_token).await;
    assert_eq!(me.status(), 401, "and its access tokens");
}

#[tokio::test]
async fn a_role_change_reaches_the_next_refresh_of_every_session() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let bob = app.create_user("bob", &[]).await;
    let (phone, laptop) = (app.login("bob").await, app.login("bob").await);
    change_user(&app, &admin, bob, serde_json::json!({"roles": ["viewer"]})).await;
    for session in [phone, laptop] {
        let next = app.refresh(&session.refresh_token).await;
        assert_eq!(
            claims_of(&next.access_token)["roles"],
            serde_json::json!(["viewer"])
        );
    }
}

#[tokio::test]
async fn a_retry_within_the_grace_window_is_audited_and_counted() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    let sid = claims_of(&first.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh_from = |user_agent: &'static str| {
        app.api
            .post(app.url("/oauth/token"))
            .header("user-agent", user_agent)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", first.refresh_token.as_str()),
            ])
            .send()
    };
    let rotated = tokens_of(refresh_from("the-owners-tab").await.unwrap()).await;

    // The same spent token again, from another device, within the window.
    let retried = tokens_of(refresh_from("another-device").await.unwrap()).await;

    assert_eq!(retried.refresh_token, rotated.refresh_token);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'refresh.grace_retry'
                AND session_id = '{sid}' AND user_agent = 'another-device'
                AND ip = '127.0.0.1' AND client_id IS NOT NULL AND user_id IS NOT NULL"
        )),
        1
    );
    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "tessera_refresh_grace_retries_total 1"),
        "{metrics}"
    );
}

/// Waits until `n` statements of this app's database wait for a row lock.
async fn wait_for_lock_waiters(app: &crate::helpers::TestApp, n: i64) {
    for _ in 0..100 {
        let waiting = app.count(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        if waiting >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no statement waited for the lock");
}

#[tokio::test]
async fn a_refresh_racing_a_role_change_never_outlives_the_change_with_the_old_roles() {
    use diesel::Connection;
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let bob = app.create_user("bob", &[]).await;
    let first = app.login("bob").await;

    // Hold the session row, so the refresh below stalls inside its statement after it
    // has started (and, before the fix, read the roles).
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (url, sid) = (
        app.database_url.clone(),
        app.chain_of(&first.refresh_token).session_id,
    );
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        let _ = conn.transaction::<(), diesel::result::Error, _>(|conn| {
            diesel::sql_query(format!(
                "SELECT 1 FROM sessions WHERE id = '{sid}' FOR UPDATE"
            ))
            .execute(conn)?;
            locked_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            Err(diesel::result::Error::RollbackTransaction)
        });
    });
    locked_rx.recv().unwrap();
    let refresh = tokio::spawn(
        app.api
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", first.refresh_token.as_str()),
            ])
            .send(),
    );
    wait_for_lock_waiters(&app, 1).await;

    let patch = tokio::spawn(
        app.api
            .patch(app.url(&format!("/v1/admin/users/{bob}")))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"roles": ["viewer"]}))
            .send(),
    );
    // The change either commits now or waits behind the refresh; either way let the
    // clock pass a second boundary before the refresh goes on.
    for _ in 0..50 {
        if patch.is_finished() {
            break;
        }
        let waiting = app.count(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        if waiting >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    release_tx.send(()).unwrap();
    holder.join().unwrap();

    let refreshed = tokens_of(refresh.await.unwrap().unwrap()).await;
    assert_eq!(patch.await.unwrap().unwrap().status(), 200);
    let claims = claims_of(&refreshed.access_token);
    let has_new_roles = claims["roles"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r == "viewer"));
    if !has_new_roles {
        let not_before = app.count(&format!(
            "SELECT ceil(extract(epoch FROM not_before))::bigint FROM revocations
              WHERE kind = 'user' AND value = '{bob}'"
        ));
        assert!(
            claims["iat"].as_i64().unwrap() < not_before,
            "a token with the old roles issued at {} is not older than the change at {not_before}",
            claims["iat"]
        );
        let me = app
            .get_with_token("/v1/me", &refreshed.access_token)
            .await
            .status();
        assert_eq!(me, 401, "the old roles do not outlive the change");
    }
    // The next refresh carries the new roles.
    let next = app.refresh(&refreshed.refresh_token).await;
    assert_eq!(
        claims_of(&next.access_token)["roles"],
        serde_json::json!(["viewer"])
    );
}

/// The refresh rotation's own async connections of this app's database, and whether
/// they use TLS.
fn rotation_connections(app: &crate::helpers::TestApp, ssl: bool) -> i64 {
    app.count(&format!(
        "SELECT count(*) FROM pg_stat_activity AS a JOIN pg_stat_ssl AS s USING (pid)
          WHERE a.datname = current_database() AND a.application_name = 'tessera refresh'
            AND s.ssl = {ssl}"
    ))
}

#[tokio::test]
async fn refreshes_run_on_the_async_connections_of_the_http_workers() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    app.refresh(&first.refresh_token).await;
    assert!(rotation_connections(&app, false) >= 1);
}

#[tokio::test]
async fn with_sslmode_require_the_async_connections_use_tls() {
    // libpq's `require`: encrypted, the certificate not checked. The local PostgreSQL
    // has TLS on (Debian's default, a snakeoil certificate).
    let template = spawn();
    let url = template.settings().database.url.clone();
    let app = template
        .with(
            "DATABASE_URL",
            &url.replace("sslmode=disable", "sslmode=require"),
        )
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;
    app.refresh(&first.refresh_token).await;
    assert!(rotation_connections(&app, true) >= 1);
    assert_eq!(rotation_connections(&app, false), 0);
}

/// Holds every session row of `app` locked until the returned sender is used (or
/// dropped), so the refreshes sent meanwhile stall inside their statement or queue
/// behind it.
fn hold_session_rows(app: &crate::helpers::TestApp) -> std::sync::mpsc::Sender<()> {
    use diesel::Connection;
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let url = app.database_url.clone();
    std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        let _ = conn.transaction::<(), diesel::result::Error, _>(|conn| {
            diesel::sql_query("SELECT 1 FROM sessions FOR UPDATE").execute(conn)?;
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
            Err(diesel::result::Error::RollbackTransaction)
        });
    });
    locked_rx.recv().unwrap();
    release_tx
}

/// `tessera_refresh_rotations_per_statement`'s count (statements) and sum (rotations).
async fn rotation_statements(app: &crate::helpers::TestApp) -> (u64, u64) {
    let metrics = app.metrics().await;
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    (
        value("tessera_refresh_rotations_per_statement_count"),
        value("tessera_refresh_rotations_per_statement_sum"),
    )
}

/// A refresh sent with its own user agent, as a task.
fn refresh_from(
    app: &crate::helpers::TestApp,
    token: &str,
    user_agent: String,
) -> tokio::task::JoinHandle<reqwest::Response> {
    let request = app
        .api
        .post(app.url("/oauth/token"))
        .header("user-agent", user_agent)
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send();
    tokio::spawn(async move { request.await.unwrap() })
}

#[tokio::test]
async fn refreshes_that_arrive_while_a_statement_runs_are_committed_together() {
    // One connection, so one statement in flight, per HTTP worker.
    let app = spawn()
        .with("TESSERA_DATABASE_POOL_SIZE", "2")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let mut logins = Vec::new();
    for _ in 0..12 {
        logins.push(app.login("alice").await);
    }
    // One of them revoked (RFC 7009): its link fails inside the group, alone.
    let revoked = logins.pop().unwrap();
    let res = app
        .post_form(
            "/oauth/revoke",
            &[
                ("token", revoked.refresh_token.as_str()),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    let (statements_before, rotations_before) = rotation_statements(&app).await;

    let release = hold_session_rows(&app);
    let refused = refresh_from(&app, &revoked.refresh_token, "tab-revoked".into());
    // Newest session first: session ids grow with time, and a group goes out sorted by
    // id, so its order differs from the order the links arrived in.
    let sent: Vec<_> = logins
        .iter()
        .enumerate()
        .rev()
        .map(|(i, login)| refresh_from(&app, &login.refresh_token, format!("tab-{i}")))
        .collect();
    // A statement waits for the rows; give the other requests time to queue behind it.
    wait_for_lock_waiters(&app, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    release.send(()).unwrap();

    for (i, (task, login)) in sent.into_iter().rev().zip(&logins).enumerate() {
        let res = task.await.unwrap();
        assert_eq!(res.status(), 200, "refresh {i}");
        let successor = tokens_of(res).await.refresh_token;
        // Each answer is its own session's next link, and its row recorded its request.
        let sid = app.chain_of(&login.refresh_token).session_id;
        assert_eq!(app.chain_of(&successor).session_id, sid);
        assert_eq!(app.chain_of(&successor).generation, 1);
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM sessions
                  WHERE id = '{sid}' AND generation = 1 AND user_agent = 'tab-{i}'"
            )),
            1,
            "session of refresh {i}"
        );
        app.refresh(&successor).await;
    }
    assert_oauth_error(refused.await.unwrap(), 400, "invalid_grant").await;

    // 12 rotations tried while the rows were held (11 of them succeeded), then the 11
    // successors one by one. With one statement at a time per worker, those that queued
    // shared one.
    let (statements, rotations) = rotation_statements(&app).await;
    assert_eq!(rotations - rotations_before, 12 + 11);
    let grouped = statements - statements_before - 11;
    assert!(grouped < 12, "{grouped} statements for 12 rotations");
}

#[tokio::test]
async fn one_link_presented_many_times_in_one_statement_has_one_successor() {
    let app = spawn()
        .with("TESSERA_DATABASE_POOL_SIZE", "2")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let first = app.login("alice").await;

    let release = hold_session_rows(&app);
    let sent: Vec<_> = (0..10)
        .map(|i| refresh_from(&app, &first.refresh_token, format!("tab-{i}")))
        .collect();
    wait_for_lock_waiters(&app, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    release.send(()).unwrap();

    let mut successors = HashSet::new();
    for task in sent {
        let res = task.await.unwrap();
        assert_eq!(res.status(), 200);
        successors.insert(tokens_of(res).await.refresh_token);
    }
    assert_eq!(successors.len(), 1, "one and the same new refresh token");
    assert_eq!(app.count("SELECT generation FROM sessions"), 1);
    let (statements, rotations) = rotation_statements(&app).await;
    assert_eq!(rotations, 10);
    assert!(statements < 10, "{statements} statements for 10 rotations");
}
