//! Revocation survives Redis going away: each test runs its own `redis-server` on a
//! free port, so the shared one is never touched.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{spawn, TestApp, Tokens};

pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.launch();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
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
