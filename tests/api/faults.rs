//! Revocation survives Redis going away: each test runs its own `redis-server` on a
//! free port, so the shared one is never touched.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{spawn, TestApp, Tokens};

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
    /// Where `SAVE` writes its snapshot and a restart loads it from, if anywhere.
    snapshots: Option<std::path::PathBuf>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that keeps a snapshot on disk only when told (`save`), and loads it on
    /// restart: a Redis restored from an old backup.
    pub fn start_with_snapshots() -> Self {
        let dir = std::env::temp_dir().join(format!("tessera-redis-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self::start_with(Some(dir))
    }

    fn start_with(snapshots: Option<std::path::PathBuf>) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            port,
            child: None,
            snapshots,
        };
        redis.launch();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let mut args = vec![
            "--port".to_owned(),
            self.port.to_string(),
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--save".to_owned(),
            String::new(),
            "--appendonly".to_owned(),
            "no".to_owned(),
        ];
        if let Some(dir) = &self.snapshots {
            args.extend(["--dir".to_owned(), dir.display().to_string()]);
        }
        let child = Command::new("redis-server")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
        for _ in 0..100 {
            if self.command("PING").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private redis-server did not start");
    }

    fn command(&self, cmd: &str) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let mut conn = client.get_connection_with_timeout(Duration::from_millis(500))?;
        redis::cmd(cmd).query(&mut conn)
    }

    pub fn flushall(&self) {
        self.command("FLUSHALL").unwrap();
    }

    /// Writes a snapshot now (see [`Self::start_with_snapshots`]).
    pub fn save(&self) {
        self.command("SAVE").unwrap();
    }

    pub fn get(&self, key: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .unwrap();
        redis::cmd("GET").arg(key).query(&mut conn).unwrap()
    }

    /// Kills the server (its data is gone: it keeps nothing on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.snapshots {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn app_on(redis: &PrivateRedis) -> TestApp {
    spawn().with("REDIS_URL", &redis.url()).start().await
}

async fn revoke_access_token(app: &TestApp, tokens: &Tokens) {
    let res = app
        .post_form("/oauth/revoke", &[("token", &tokens.access_token)])
        .await;
    assert_eq!(res.status(), 200, "the revocation is accepted");
}

/// Polls /v1/me until it answers something other than 503, for at most 5 s.
async fn me_status(app: &TestApp, token: &str) -> u16 {
    for _ in 0..50 {
        let status = app.get_with_token("/v1/me", token).await.status().as_u16();
        if status != 503 {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    503
}

#[tokio::test]
async fn a_revocation_survives_a_redis_flush() {
    let redis = PrivateRedis::start();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    let revoked = app.login("alice").await;
    revoke_access_token(&app, &revoked).await;

    redis.flushall();

    assert_eq!(me_status(&app, &revoked.access_token).await, 401);
    let fresh = app.login("alice").await;
    assert_eq!(me_status(&app, &fresh.access_token).await, 200);
}

#[tokio::test]
async fn a_revocation_survives_a_redis_restart() {
    let mut redis = PrivateRedis::start();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    let revoked = app.login("alice").await;
    let other = app.login("alice").await;
    revoke_access_token(&app, &revoked).await;

    redis.restart();

    assert_eq!(me_status(&app, &revoked.access_token).await, 401);
    assert_eq!(me_status(&app, &other.access_token).await, 200);
}

#[tokio::test]
async fn token_checks_fail_closed_while_redis_is_down() {
    let mut redis = PrivateRedis::start();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;

    redis.stop();

    let res = app.get_with_token("/v1/me", &tokens.access_token).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // Password checks fail closed too: without Redis there is no brute-force protection.
    let res = app.password_grant("alice", crate::helpers::PASSWORD).await;
    assert!(res.headers().contains_key("retry-after"));
    crate::helpers::assert_oauth_error(res, 503, "temporarily_unavailable").await;
    // Sessions live in PostgreSQL: refreshing goes on.
    app.refresh(&tokens.refresh_token).await;
}

#[tokio::test]
async fn a_revocation_made_while_redis_is_down_holds_once_it_is_back() {
    let mut redis = PrivateRedis::start();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    let revoked = app.login("alice").await;
    let other = app.login("alice").await;
    // Both work before the outage.
    assert_eq!(me_status(&app, &revoked.access_token).await, 200);

    redis.stop();
    revoke_access_token(&app, &revoked).await;
    assert_eq!(
        app.count("SELECT count(*) FROM revocations WHERE synced_at IS NULL"),
        1,
        "recorded in PostgreSQL, waiting for Redis"
    );
    redis.restart();

    assert_eq!(me_status(&app, &revoked.access_token).await, 401);
    assert_eq!(me_status(&app, &other.access_token).await, 200);
    assert_eq!(
        app.count("SELECT count(*) FROM revocations WHERE synced_at IS NULL"),
        0
    );
}

#[tokio::test]
async fn a_revocation_made_while_redis_is_paused_holds_when_it_resumes() {
    // Redis keeps its data but does not answer for a while (a network blip): the entry
    // written to PostgreSQL must reach Redis before Redis is trusted again.
    let redis = PrivateRedis::start();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    let revoked = app.login("alice").await;
    assert_eq!(me_status(&app, &revoked.access_token).await, 200);

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(1500)
        .arg("ALL")
        .query::<()>(&mut conn)
        .unwrap();
    revoke_access_token(&app, &revoked).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;

    assert_eq!(me_status(&app, &revoked.access_token).await, 401);
}

/// A client whose access tokens live an hour: longer than every re-assertion window
/// of the denylist.
async fn create_long_lived_client(app: &TestApp) {
    app.create_client(serde_json::json!({
        "client_id": "long-lived", "confidential": false,
        "grant_types": ["password", "refresh_token"], "scopes": [],
        "access_token_ttl_seconds": 3600,
    }))
    .await;
}

async fn long_lived_login(app: &TestApp, username: &str) -> Tokens {
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "long-lived"),
                ("username", username),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), 200);
    crate::helpers::tokens_of(res).await
}

async fn revoke_long_lived(app: &TestApp, tokens: &Tokens) {
    let res = app
        .post_form(
            "/oauth/revoke",
            &[("token", &tokens.access_token), ("client_id", "long-lived")],
        )
        .await;
    assert_eq!(res.status(), 200, "the revocation is accepted");
}

/// Moves every revocation six minutes into the past: older than the five minutes the
/// frequent re-assertion writes again whatever Redis says.
fn age_revocations(app: &TestApp) {
    use diesel::RunQueryDsl;
    diesel::sql_query("UPDATE revocations SET created_at = created_at - interval '6 minutes'")
        .execute(&mut app.db())
        .unwrap();
}

/// Waits until the denylist's `ready` marker is in Redis (the start-up rebuild ran).
async fn wait_until_ready(app: &TestApp, redis: &PrivateRedis) {
    let key = format!("{{{}deny}}:ready", app.redis_prefix);
    for _ in 0..100 {
        if redis.get(&key).is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the denylist never became ready");
}

/// The periodic re-assertion of the last five minutes, as the background job runs it.
async fn recent_pass(app: &TestApp) {
    for _ in 0..50 {
        let pass = tessera::auth::revocation::rebuild(
            &app.tessera,
            tessera::auth::revocation::Rebuild::Recent(Duration::from_secs(300)),
        )
        .await;
        if pass.is_ok() {
            return;
        }
        // Redis was just restarted: the connection comes back by itself.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the recent pass never completed");
}

#[tokio::test]
async fn an_old_revocation_survives_a_flush_that_the_recent_pass_sees_first() {
    let redis = PrivateRedis::start();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    create_long_lived_client(&app).await;
    let revoked = long_lived_login(&app, "alice").await;
    revoke_long_lived(&app, &revoked).await;
    age_revocations(&app);

    redis.flushall();
    // No traffic: the background pass is the first to see the empty Redis.
    recent_pass(&app).await;

    assert_eq!(me_status(&app, &revoked.access_token).await, 401);
    let fresh = long_lived_login(&app, "alice").await;
    assert_eq!(me_status(&app, &fresh.access_token).await, 200);
}

#[tokio::test]
async fn a_revocation_survives_redis_coming_back_from_an_older_snapshot() {
    let mut redis = PrivateRedis::start_with_snapshots();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    create_long_lived_client(&app).await;
    let revoked = long_lived_login(&app, "alice").await;
    let other = long_lived_login(&app, "alice").await;
    wait_until_ready(&app, &redis).await;
    // The backup is taken before the revocation: it has a `ready` marker but not the
    // entry.
    redis.save();
    revoke_long_lived(&app, &revoked).await;
    age_revocations(&app);
    assert_eq!(me_status(&app, &revoked.access_token).await, 401);

    redis.restart();
    recent_pass(&app).await;

    assert_eq!(me_status(&app, &revoked.access_token).await, 401);
    assert_eq!(me_status(&app, &other.access_token).await, 200);
    assert_eq!(
        redis.get(&format!("{{{}deny}}:ready", app.redis_prefix)),
        Some(
            app.count("SELECT generation FROM denylist_generation")
                .to_string()
        ),
        "the marker names the generation Redis now holds"
    );
}

/// The same restore, found by the token check itself: this instance has seen a newer
/// marker than the one the snapshot brings back, so the first check after the restore
/// writes what Redis lost before it answers, with no background pass in between.
#[tokio::test]
async fn a_token_check_notices_redis_went_back_to_an_older_snapshot() {
    let mut redis = PrivateRedis::start_with_snapshots();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    create_long_lived_client(&app).await;
    let revoked = long_lived_login(&app, "alice").await;
    wait_until_ready(&app, &redis).await;
    redis.save();
    revoke_long_lived(&app, &revoked).await;
    age_revocations(&app);
    // A pass moves the marker past the snapshot's, and a check sees it.
    recent_pass(&app).await;
    assert_eq!(me_status(&app, &revoked.access_token).await, 401);

    redis.restart();

    assert_eq!(me_status(&app, &revoked.access_token).await, 401);
    assert_eq!(
        redis.get(&format!("{{{}deny}}:ready", app.redis_prefix)),
        Some(
            app.count("SELECT generation FROM denylist_generation")
                .to_string()
        ),
        "the check brought Redis back to PostgreSQL's generation"
    );
}

/// One `/v1/me`: its status, and whether it carried `Retry-After`.
async fn me_once(api: &reqwest::Client, base: &str, token: &str) -> (u16, bool) {
    let res = api
        .get(format!("{base}/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.headers().contains_key("retry-after"),
    )
}

/// What the load below saw.
#[derive(Default)]
struct Seen {
    requests: u64,
    revoked_accepted: u64,
    bad_status: Vec<String>,
    unavailable_without_retry_after: u64,
    unavailable: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_under_refresh_and_me_traffic_lets_no_revoked_token_through() {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    let mut redis = PrivateRedis::start();
    let app = app_on(&redis).await;
    app.create_user("alice", &[]).await;
    let mut live = Vec::new();
    for _ in 0..4 {
        live.push(app.login("alice").await);
    }
    let mut to_revoke_later = Vec::new();
    for _ in 0..2 {
        to_revoke_later.push(app.login("alice").await);
    }
    let revoked: Arc<Mutex<Vec<String>>> = Arc::default();
    for _ in 0..3 {
        let tokens = app.login("alice").await;
        revoke_access_token(&app, &tokens).await;
        revoked.lock().unwrap().push(tokens.access_token);
    }
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let recovered_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(10);

    let mut workers = Vec::new();
    for (n, mut tokens) in live.into_iter().enumerate() {
        let (api, base) = (app.api.clone(), app.address.clone());
        let (revoked, seen, recovered_at) = (revoked.clone(), seen.clone(), recovered_at.clone());
        workers.push(tokio::spawn(async move {
            let record = |status: u16, retry_after: bool, what: &str| {
                let mut s = seen.lock().unwrap();
                s.requests += 1;
                if status == 503 {
                    s.unavailable += 1;
                    if !retry_after {
                        s.unavailable_without_retry_after += 1;
                    }
                }
                if !(200..300).contains(&status) && status != 401 && status != 503 {
                    s.bad_status.push(format!("{what}: {status}"));
                }
            };
            let mut i = n;
            for _ in 0..2_000 {
                if Instant::now() >= stop_at {
                    break;
                }
                // Refresh: PostgreSQL only, goes on whatever Redis does.
                let res = api
                    .post(format!("{base}/oauth/token"))
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", tokens.refresh_token.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let retry_after = res.headers().contains_key("retry-after");
                if status == 200 {
                    tokens = crate::helpers::tokens_of(res).await;
                } else {
                    record(status, retry_after, "refresh");
                    if status == 401 {
                        // A refresh never needs Redis: only 503 (a lost connection
                        // to PostgreSQL) would be acceptable here.
                        seen.lock()
                            .unwrap()
                            .bad_status
                            .push("refresh: 401".to_owned());
                    }
                    continue;
                }
                record(status, retry_after, "refresh");
                // The caller's own, live token.
                let (status, retry_after) = me_once(&api, &base, &tokens.access_token).await;
                record(status, retry_after, "me (live)");
                if status == 200 {
                    let mut at = recovered_at.lock().unwrap();
                    if at.is_none() {
                        *at = Some(Instant::now());
                    }
                }
                // A revoked token.
                let token = {
                    let list = revoked.lock().unwrap();
                    i += 1;
                    list[i % list.len()].clone()
                };
                let (status, retry_after) = me_once(&api, &base, &token).await;
                record(status, retry_after, "me (revoked)");
                if status == 200 {
                    seen.lock().unwrap().revoked_accepted += 1;
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| redis.stop());
    // Revocations accepted while Redis is down: PostgreSQL has them.
    for tokens in &to_revoke_later {
        revoke_access_token(&app, tokens).await;
        revoked.lock().unwrap().push(tokens.access_token.clone());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    *recovered_at.lock().unwrap() = None;
    tokio::task::block_in_place(|| redis.restart());
    let back_at = Instant::now();
    for worker in workers {
        worker.await.unwrap();
    }

    {
        let seen = seen.lock().unwrap();
        let recovered = recovered_at.lock().unwrap().map(|at| at - back_at);
        println!(
            "{} requests, {} answered 503; Redis back empty, first live 200 after {:?}",
            seen.requests, seen.unavailable, recovered
        );
        assert_eq!(seen.revoked_accepted, 0, "a revoked token was accepted");
        assert!(seen.bad_status.is_empty(), "{:?}", seen.bad_status);
        assert_eq!(seen.unavailable_without_retry_after, 0);
        assert!(
            recovered.is_some(),
            "the service recovered once Redis was back"
        );
    }
    let revoked = revoked.lock().unwrap().clone();
    for token in &revoked {
        assert_eq!(me_status(&app, token).await, 401);
    }
}
