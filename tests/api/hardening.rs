//! Brute force, browsers, response hardening.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{assert_oauth_error, spawn, tokens_of, Spawn, TestApp, PASSWORD};

fn throttled(delay_after: u32, lockout_after: u32) -> Spawn {
    spawn()
        .with("TESSERA_LOGIN_DELAY_AFTER", &delay_after.to_string())
        .with("TESSERA_LOGIN_LOCKOUT_AFTER", &lockout_after.to_string())
        .with("TESSERA_LOGIN_LOCKOUT", "60s")
}

async fn attempt(app: &TestApp, user: &str, password: &str) -> (u16, Option<u64>, Value) {
    let res = app.password_grant(user, password).await;
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, res.json().await.unwrap())
}

#[tokio::test]
async fn repeated_failures_lock_an_account_and_never_reveal_it_exists() {
    let app = throttled(3, 3).start().await;
    app.create_user("alice", &[]).await;
    let mut seen = Vec::new();
    for user in ["alice", "ghost"] {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(attempt(&app, user, "wrong").await);
        }
        // Locked: even the right password is refused, without checking it.
        statuses.push(attempt(&app, user, PASSWORD).await);
        seen.push(statuses);
    }
    for run in &seen {
        let codes: Vec<u16> = run.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(codes, [400, 400, 400, 429], "{run:?}");
        let (_, retry, body) = &run[3];
        assert!(retry.is_some_and(|r| (55..=60).contains(&r)), "{retry:?}");
        assert_eq!(body["error"], "slow_down");
    }
    let strip = |run: &Vec<(u16, Option<u64>, Value)>| -> Vec<(u16, Value)> {
        run.iter().map(|(s, _, b)| (*s, b.clone())).collect()
    };
    assert_eq!(
        strip(&seen[0]),
        strip(&seen[1]),
        "a real and an unknown account look alike"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'login.locked'"),
        2
    );
}

/// A lockout lasts `TESSERA_LOGIN_LOCKOUT`, not the (longer) failure window: once it
/// is served the right password goes through, and the next wrong one locks again.
#[tokio::test]
async fn a_served_lockout_lets_the_right_password_in_and_the_next_failure_locks_again() {
    let app = spawn()
        .with("TESSERA_LOGIN_DELAY_AFTER", "3")
        .with("TESSERA_LOGIN_LOCKOUT_AFTER", "3")
        .with("TESSERA_LOGIN_LOCKOUT", "1s")
        .with("TESSERA_LOGIN_FAILURE_WINDOW", "15m")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    for _ in 0..3 {
        assert_eq!(attempt(&app, "alice", "wrong").await.0, 400);
    }
    assert_eq!(attempt(&app, "alice", PASSWORD).await.0, 429);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(attempt(&app, "alice", "wrong").await.0, 400);
    let (status, retry, _) = attempt(&app, "alice", PASSWORD).await;
    assert_eq!((status, retry), (429, Some(1)), "locked again at once");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(attempt(&app, "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn parallel_guesses_cannot_overshoot_the_lockout() {
    let app = throttled(5, 5).start().await;
    app.create_user("alice", &[]).await;

    let guesses = (0..20).map(|i| {
        let app = &app;
        async move { attempt(app, "alice", &format!("guess {i}")).await.0 }
    });
    let mut statuses = futures_util::future::join_all(guesses).await;
    statuses.sort_unstable();

    // Each attempt is counted before its password is checked, so however the 20 race,
    // exactly five passwords are tried and the rest are turned away unchecked.
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'login.failed'"),
        5
    );
}

#[tokio::test]
async fn parallel_logins_with_the_right_password_are_not_slowed_down() {
    // A shared account logging in from several places at once: only failures earn
    // delays, so none of these waits even though more are in flight than the delay
    // threshold allows failures.
    let app = throttled(2, 10).start().await;
    app.create_user("alice", &[]).await;

    let logins = (0..8).map(|_| {
        let app = &app;
        async move { attempt(app, "alice", PASSWORD).await.0 }
    });
    let statuses = futures_util::future::join_all(logins).await;

    assert_eq!(statuses, [200; 8]);
}

#[tokio::test]
async fn thirty_parallel_logins_with_the_right_password_all_succeed_round_after_round() {
    // More at once than the lockout allows checks in flight (10 by default): the rest
    // wait their turn instead of being refused, since only failures earn delays.
    let app = spawn().start().await;
    app.create_user("alice", &[]).await;
    for round in 0..3 {
        let logins = (0..30).map(|_| {
            let app = &app;
            async move { attempt(app, "alice", PASSWORD).await }
        });
        let outcomes = futures_util::future::join_all(logins).await;
        let refused: Vec<_> = outcomes.iter().filter(|(s, _, _)| *s != 200).collect();
        assert!(refused.is_empty(), "round {round}: {refused:?}");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'login.succeeded'"),
        90
    );
}

/// The client IP as a proxy reports it (the app must trust X-Forwarded-For).
async fn attempt_from(
    app: &TestApp,
    ip: &str,
    user: &str,
    password: &str,
) -> (u16, Option<u64>, Value) {
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .header("x-forwarded-for", ip)
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    (status, retry, res.json().await.unwrap())
}

const ATTACKER: &str = "203.0.113.66";
const ALICE_AT_HOME: &str = "198.51.100.7";

#[tokio::test]
async fn an_attackers_guesses_from_one_ip_cannot_lock_the_owner_out_from_another() {
    let app = spawn()
        .with("TESSERA_TRUST_FORWARDED_FOR", "true")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let mut statuses = Vec::new();
    for i in 0..100 {
        statuses.push(
            attempt_from(&app, ATTACKER, "alice", &format!("guess {i}"))
                .await
                .0,
        );
    }
    assert!(
        statuses.iter().all(|s| [400, 429].contains(s)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "the attacker is slowed down");
    // The attacker's source stays refused even with the right password...
    assert_eq!(attempt_from(&app, ATTACKER, "alice", PASSWORD).await.0, 429);
    // ...while alice, from elsewhere, logs in at once.
    let (status, _, body) = attempt_from(&app, ALICE_AT_HOME, "alice", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_source_locked_out_of_an_account_is_locked_out_with_the_right_password_too() {
    let app = throttled(10, 10)
        .with("TESSERA_TRUST_FORWARDED_FOR", "true")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    for i in 0..10 {
        assert_eq!(
            attempt_from(&app, ATTACKER, "alice", &format!("g{i}"))
                .await
                .0,
            400
        );
    }
    let (status, retry, body) = attempt_from(&app, ATTACKER, "alice", PASSWORD).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("slow_down")));
    assert!(retry.is_some_and(|r| (55..=60).contains(&r)), "{retry:?}");
    assert_eq!(
        attempt_from(&app, ALICE_AT_HOME, "alice", PASSWORD).await.0,
        200
    );
    let locked = app.count(
        "SELECT count(*) FROM audit_log WHERE action = 'login.locked' \
         AND details->>'scope' = 'source'",
    );
    assert_eq!(locked, 1);
}

#[tokio::test]
async fn guessing_spread_over_many_ips_is_spaced_out_account_wide_but_spares_known_sources() {
    let app = spawn()
        .with("TESSERA_TRUST_FORWARDED_FOR", "true")
        .with("TESSERA_LOGIN_ACCOUNT_DELAY_AFTER", "5")
        .with("TESSERA_LOGIN_ACCOUNT_DELAY", "10s")
        .start()
        .await;
    let alice = app.create_user("alice", &[]).await;
    // Alice has logged in from home before.
    assert_eq!(
        attempt_from(&app, ALICE_AT_HOME, "alice", PASSWORD).await.0,
        200
    );
    for n in 1..=5 {
        let ip = format!("192.0.2.{n}");
        assert_eq!(
            attempt_from(&app, &ip, "alice", "guess").await.0,
            400,
            "{ip}"
        );
    }
    // A sixth fresh source must wait: the account-wide spacing, capped at 10 s.
    let (status, retry, body) = attempt_from(&app, "192.0.2.6", "alice", "guess").await;
    assert_eq!((status, body["error"].as_str()), (429, Some("slow_down")));
    assert!(retry.is_some_and(|r| (1..=10).contains(&r)), "{retry:?}");
    // Alice at home is not slowed down by it.
    assert_eq!(
        attempt_from(&app, ALICE_AT_HOME, "alice", PASSWORD).await.0,
        200
    );
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'login.throttled' \
             AND user_id = '{alice}'"
        )),
        1
    );
}

async fn unlock(app: &TestApp, admin: &str, user: &str) -> reqwest::Response {
    app.api
        .post(app.url(&format!("/v1/admin/users/{user}/unlock")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap()
}

fn redis_keys(app: &TestApp, pattern: &str) -> Vec<String> {
    let client = redis::Client::open(crate::helpers::redis_url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    redis::cmd("KEYS")
        // An account's keys start with its hash tag: `{<prefix>bf:acct:<hash>}`.
        .arg(format!("{{{}{pattern}", app.redis_prefix))
        .query(&mut conn)
        .unwrap()
}

#[tokio::test]
async fn an_admin_unlock_lets_every_locked_out_source_try_again() {
    let app = throttled(3, 3)
        .with("TESSERA_TRUST_FORWARDED_FOR", "true")
        .start()
        .await;
    let admin = app.admin_token().await;
    let alice = app.create_user("alice", &[]).await;
    for ip in [ATTACKER, ALICE_AT_HOME] {
        for _ in 0..3 {
            assert_eq!(attempt_from(&app, ip, "alice", "wrong").await.0, 400);
        }
        assert_eq!(
            attempt_from(&app, ip, "alice", PASSWORD).await.0,
            429,
            "{ip}"
        );
    }
    assert_eq!(redis_keys(&app, "bf:acct:*:src:*").len(), 2);

    let res = unlock(&app, &admin, &alice.to_string()).await;
    assert_eq!(res.status(), 204);
    assert!(redis_keys(&app, "bf:acct:*:src:*").is_empty());
    assert_eq!(
        attempt_from(&app, ALICE_AT_HOME, "alice", PASSWORD).await.0,
        200
    );
    // The other source may guess again (and is counted afresh).
    assert_eq!(attempt_from(&app, ATTACKER, "alice", "wrong").await.0, 400);
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM audit_log WHERE action = 'admin.user.unlocked' \
             AND user_id = '{alice}' AND actor_id IS NOT NULL"
        )),
        1
    );
}

#[tokio::test]
async fn unlock_needs_an_admin_and_an_existing_user() {
    let app = spawn().start().await;
    let admin = app.admin_token().await;
    let user = app.create_user("alice", &[]).await;
    let alices = app.login("alice").await.access_token;
    assert_eq!(unlock(&app, &alices, &user.to_string()).await.status(), 403);
    let res = unlock(&app, &admin, &uuid::Uuid::now_v7().to_string()).await;
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(unlock(&app, &admin, "not-a-uuid").await.status(), 404);
}

#[tokio::test]
async fn delays_grow_with_each_failure() {
    let app = throttled(1, 10).start().await;
    app.create_user("alice", &[]).await;
    assert_eq!(attempt(&app, "alice", "wrong").await.0, 400);
    let (status, retry, _) = attempt(&app, "alice", "wrong").await;
    assert_eq!((status, retry), (429, Some(1)));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(attempt(&app, "alice", "wrong").await.0, 400);
    let (status, retry, _) = attempt(&app, "alice", "wrong").await;
    assert_eq!((status, retry), (429, Some(2)));
}

#[tokio::test]
async fn a_success_clears_the_account_failures() {
    let app = throttled(2, 10).start().await;
    app.create_user("alice", &[]).await;
    assert_eq!(attempt(&app, "alice", "wrong").await.0, 400);
    assert_eq!(attempt(&app, "alice", PASSWORD).await.0, 200);
    assert_eq!(attempt(&app, "alice", "wrong").await.0, 400);
    assert_eq!(attempt(&app, "alice", PASSWORD).await.0, 200);
}

#[tokio::test]
async fn one_client_ip_cannot_spray_many_accounts() {
    let app = throttled(5, 10)
        .with("TESSERA_LOGIN_IP_LIMIT", "3")
        .start()
        .await;
    for user in ["a1", "a2", "a3"] {
        assert_eq!(attempt(&app, user, "guess").await.0, 400);
    }
    let (status, retry, body) = attempt(&app, "a4", "guess").await;
    assert_eq!(status, 429);
    assert!(retry.is_some());
    assert_eq!(body["error"], "slow_down");
}

#[tokio::test]
async fn the_lockout_holds_across_instances() {
    let one = throttled(2, 2).start().await;
    let two = throttled(2, 2)
        .sharing_database_of(&one)
        .with("TESSERA_REDIS_PREFIX", &one.redis_prefix)
        .start()
        .await;
    one.create_user("alice", &[]).await;
    attempt(&one, "alice", "wrong").await;
    attempt(&one, "alice", "wrong").await;
    assert_eq!(attempt(&two, "alice", PASSWORD).await.0, 429);
}

#[tokio::test]
async fn password_changes_share_the_accounts_counters() {
    let app = throttled(2, 2).start().await;
    app.create_user("alice", &[]).await;
    let token = app.login("alice").await.access_token;
    let change = |current: &'static str| {
        app.api
            .post(app.url("/v1/me/password"))
            .bearer_auth(&token)
            .json(
                &serde_json::json!({"current_password": current, "new_password": "a new password"}),
            )
            .send()
    };
    assert_eq!(change("wrong").await.unwrap().status(), 403);
    assert_eq!(change("wrong").await.unwrap().status(), 403);
    let res = change(PASSWORD).await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(
        attempt(&app, "alice", PASSWORD).await.0,
        429,
        "login is locked too"
    );
}

const APP: &str = "https://app.example";

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let app = spawn().with("TESSERA_CORS_ORIGINS", APP).start().await;
    let preflight = |origin: &'static str| {
        app.api
            .request(reqwest::Method::OPTIONS, app.url("/oauth/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,x-tessera-csrf",
            )
            .send()
    };
    let res = preflight(APP).await.unwrap();
    assert!(res.status().is_success());
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    let res = preflight("https://evil.example").await.unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));

    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], APP);
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors() {
    let app = spawn().start().await;
    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

async fn spa_app() -> TestApp {
    let app = spawn().with("TESSERA_CORS_ORIGINS", APP).start().await;
    app.create_user("alice", &[]).await;
    app.create_client(serde_json::json!({
        "client_id": "spa", "grant_types": ["password", "refresh_token"],
        "scopes": ["profile"], "browser_mode": true
    }))
    .await;
    app
}

fn browser_post(app: &TestApp, path: &str, cookie: Option<&str>) -> reqwest::RequestBuilder {
    let mut req = app
        .api
        .post(app.url(path))
        .header("origin", APP)
        .header("x-tessera-csrf", "1");
    if let Some(cookie) = cookie {
        req = req.header("cookie", format!("__Host-tessera-rt={cookie}"));
    }
    req
}

/// The refresh token from a Set-Cookie header, checking its attributes.
fn refresh_cookie(res: &reqwest::Response) -> String {
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let attributes: Vec<&str> = set.split(';').skip(1).map(str::trim).collect();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(
            attributes.contains(&attribute),
            "{attribute} missing from {set}"
        );
    }
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "a __Host- cookie has no Domain: {set}"
    );
    set.strip_prefix("__Host-tessera-rt=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn browser_mode_keeps_the_refresh_token_in_an_httponly_cookie() {
    let app = spa_app().await;
    let res = browser_post(&app, "/oauth/token", None)
        .json(&serde_json::json!({"grant_type": "password", "client_id": "spa", "username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = refresh_cookie(&res);
    assert!(cookie.starts_with("rt_"));
    let body = tokens_of(res).await.body;
    assert!(
        body.get("refresh_token").is_none(),
        "never in a body JavaScript can read"
    );

    let res = browser_post(&app, "/oauth/token", Some(&cookie))
        .form(&[("grant_type", "refresh_token"), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rotated = refresh_cookie(&res);
    assert_ne!(rotated, cookie);

    // Logout: revoke what the cookie holds, and the cookie is cleared.
    let res = browser_post(&app, "/oauth/revoke", Some(&rotated))
        .form(&[("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cleared = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let res = browser_post(&app, "/oauth/token", Some(&rotated))
        .form(&[("grant_type", "refresh_token"), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn browser_mode_requests_need_the_csrf_header_and_an_allowed_origin() {
    let app = spa_app().await;
    let login = serde_json::json!({"grant_type": "password", "client_id": "spa", "username": "alice", "password": PASSWORD});
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .header("origin", APP)
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .header("origin", "https://evil.example")
        .header("x-tessera-csrf", "1")
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .header("x-tessera-csrf", "1")
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    // And its refresh token is never accepted from a body.
    let res = browser_post(&app, "/oauth/token", None)
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            (
                "refresh_token",
                "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
}

/// An exclusive lock on a table, held by another connection until released: whatever
/// reads the table waits.
struct TableLock {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl TableLock {
    fn hold(database_url: &str, table: &'static str) -> Self {
        let url = database_url.to_owned();
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            use diesel::{Connection, RunQueryDsl};
            let mut conn = diesel::PgConnection::establish(&url).unwrap();
            conn.transaction::<_, diesel::result::Error, _>(|conn| {
                diesel::sql_query(format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
                    .execute(conn)?;
                locked_tx.send(()).unwrap();
                release_rx.recv().ok();
                Ok(())
            })
            .unwrap();
        });
        locked_rx.recv().unwrap();
        Self { release, holder }
    }

    fn release(self) {
        self.release.send(()).unwrap();
        self.holder.join().unwrap();
    }
}

#[tokio::test]
async fn a_hung_request_is_cut_off_with_a_503() {
    let app = spawn().with("TESSERA_REQUEST_TIMEOUT", "1s").start().await;
    app.create_user("alice", &[]).await;
    // Hold a lock that the login's user lookup must wait for.
    let lock = TableLock::hold(&app.database_url, "users");
    let started = std::time::Instant::now();
    let res = app.password_grant("alice", PASSWORD).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(res.headers().contains_key("retry-after"));
    assert_oauth_error(res, 503, "temporarily_unavailable").await;
    lock.release();
    assert_eq!(app.password_grant("alice", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_hung_api_request_answers_a_problem_that_quotes_its_request_id() {
    let app = spawn().with("TESSERA_REQUEST_TIMEOUT", "1s").start().await;
    app.create_user("alice", &[]).await;
    let token = app.login("alice").await.access_token;
    // The profile is read from the users table, which is locked.
    let lock = TableLock::hold(&app.database_url, "users");
    let res = app
        .api
        .get(app.url("/v1/me"))
        .bearer_auth(&token)
        .header("x-request-id", "hung-request-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["request_id"], "hung-request-1", "{body}");
    lock.release();
}
