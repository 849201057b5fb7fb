//! Metrics and logs: what operators watch, and what must never appear in it.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::helpers::{
    postgres_server_url, redis_url, spawn, spawn_app, tokens_of, TestApp, PASSWORD,
};

async fn metrics(app: &TestApp) -> String {
    let res = app.api.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    res.text().await.unwrap()
}

/// The value of one sample line, e.g. `tessera_login_failures_total`.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_requests_tokens_failures_and_revocations() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    app.refresh(&tokens.refresh_token).await;
    app.password_grant("alice", "wrong").await;
    app.post_form("/oauth/revoke", &[("token", &tokens.access_token)])
        .await;

    let text = metrics(&app).await;

    assert_eq!(
        sample(&text, r#"tessera_tokens_issued_total{grant="password"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"tessera_tokens_issued_total{grant="refresh_token"}"#
        ),
        1.0
    );
    assert_eq!(sample(&text, "tessera_login_failures_total"), 1.0);
    assert_eq!(
        sample(&text, r#"tessera_revocations_total{kind="jti"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            r#"tessera_http_requests_total{method="POST",route="/oauth/token",status="200"}"#
        ),
        2.0
    );
    assert!(text.contains(r#"tessera_http_request_duration_seconds_bucket{method="POST",route="/oauth/token",le="0.1"}"#));
    for gauge in [
        r#"tessera_bcrypt_jobs{state="waiting"}"#,
        r#"tessera_bcrypt_jobs{state="running"}"#,
        r#"tessera_db_pool_connections{state="in_use"}"#,
        r#"tessera_db_pool_connections{state="waiting"}"#,
        r#"tessera_db_pool_connections{state="max"}"#,
        "tessera_redis_errors_total",
        "tessera_refresh_reuse_detected_total",
        "tessera_lockouts_total",
    ] {
        sample(&text, gauge);
    }
}

#[tokio::test]
async fn an_unknown_user_costs_a_bcrypt_verification_too() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let before = sample(&metrics(&app).await, "tessera_bcrypt_jobs_total");
    app.password_grant("nobody", "whatever").await;
    app.password_grant("alice", "wrong").await;
    let after = sample(&metrics(&app).await, "tessera_bcrypt_jobs_total");
    assert_eq!(
        after - before,
        2.0,
        "one bcrypt job per attempt, account or not"
    );
}

#[tokio::test]
async fn metrics_routes_are_patterns_not_raw_paths() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.api
            .get(app.url(&format!("/v1/admin/users/{i}")))
            .send()
            .await
            .unwrap();
        app.api
            .get(app.url(&format!("/random/{i}")))
            .send()
            .await
            .unwrap();
    }
    let text = metrics(&app).await;
    assert!(text.contains(r#"route="/v1/admin/users/{id}""#));
    assert!(
        !text.contains("/random/"),
        "unmatched paths do not create series"
    );
}

/// The real binary serving with debug logs in JSON, its output (and that of the CLI
/// that created `alice` before it) going to one file.
struct LoggedServer {
    name: String,
    dir: std::path::PathBuf,
    log_path: std::path::PathBuf,
    server: Child,
    base: String,
    api: reqwest::Client,
    master: String,
}

impl LoggedServer {
    async fn start() -> Self {
        let name = format!("tessera_logs_{}", Uuid::new_v4().simple());
        let database_url = format!("{}/{name}", postgres_server_url());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("tessera-logs-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let master = tessera::auth::master_key::MasterKey::generate_encoded();
        let env = |cmd: &mut Command| {
            cmd.env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("DATABASE_URL", &database_url)
                .env("REDIS_URL", redis_url())
                .env("TESSERA_REDIS_PREFIX", format!("test:{name}:"))
                .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
                .env("TESSERA_MASTER_KEY", &master)
                .env("TESSERA_BCRYPT_COST", "4")
                .env("TESSERA_LOG", "debug")
                .env("TESSERA_LOG_FORMAT", "json")
                .current_dir(&dir);
        };
        let bin = env!("CARGO_BIN_EXE_tessera");
        let log_path = dir.join("log.jsonl");
        let log = std::fs::File::create(&log_path).unwrap();

        let mut create = Command::new(bin);
        env(&mut create);
        let mut child = create
            .args(["user", "create", "--username", "alice"])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());

        let mut serve = Command::new(bin);
        env(&mut serve);
        let server = serve
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let api = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..300 {
            if api.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            name,
            dir,
            log_path,
            server,
            base,
            api,
            master,
        }
    }

    async fn token(&self, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.api
            .post(format!("{}/oauth/token", self.base))
            .form(pairs)
            .send()
            .await
            .unwrap()
    }

    async fn login(&self) -> crate::helpers::Tokens {
        tokens_of(
            self.token(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .await,
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> crate::helpers::Tokens {
        tokens_of(
            self.token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .await,
        )
        .await
    }

    /// Stops the server (SIGTERM, as in production) and reads what was logged.
    fn stop(&mut self) -> String {
        Command::new("kill")
            .args(["-TERM", &self.server.id().to_string()])
            .status()
            .unwrap();
        self.server.wait().unwrap();
        std::fs::read_to_string(&self.log_path).unwrap()
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Ok(mut conn) = PgConnection::establish(&crate::helpers::database_url("postgres")) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// The JSON lines of a log (the CLI may print other lines too).
fn json_lines(logs: &str) -> Vec<serde_json::Value> {
    logs.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON log lines"))
        .collect()
}

/// Runs the real binary with debug logs in JSON through login -> call -> refresh ->
/// revoke, and greps everything it printed for the secrets that went through it.
#[tokio::test]
async fn no_secret_ever_reaches_the_logs() {
    let mut server = LoggedServer::start().await;
    let (api, base) = (&server.api, &server.base);
    let first = server.login().await;
    api.get(format!("{base}/v1/me"))
        .bearer_auth(&first.access_token)
        .send()
        .await
        .unwrap();
    let second = server.refresh(&first.refresh_token).await;
    // A failed login and a replayed refresh token log too.
    server
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "not-the-password-xyz"),
        ])
        .await;
    api.post(format!("{base}/oauth/revoke"))
        .form(&[("token", &second.refresh_token)])
        .send()
        .await
        .unwrap();
    api.get(format!("{base}/v1/me?access_token={}", first.access_token))
        .send()
        .await
        .unwrap();
    let logs = server.stop();

    assert!(
        logs.lines().count() > 10,
        "debug logs were written:\n{logs}"
    );
    for (what, secret) in [
        ("password", PASSWORD),
        ("wrong password", "not-the-password-xyz"),
        ("refresh token", first.refresh_token.as_str()),
        ("rotated refresh token", second.refresh_token.as_str()),
        ("access token", first.access_token.as_str()),
        (
            "access token signature",
            first.access_token.rsplit('.').next().unwrap(),
        ),
        ("master key", server.master.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} reached the logs");
    }
    let request_lines: Vec<serde_json::Value> = json_lines(&logs)
        .into_iter()
        .filter(|v| v.get("status").is_some())
        .collect();
    assert!(request_lines.len() >= 5);
    assert!(
        request_lines
            .iter()
            .all(|l| l["span"]["request_id"].is_string()),
        "{request_lines:?}"
    );
}

/// At debug level a refresh reads as a timed tree: the request, the grant, the
/// rotation and the signing each log a line when they close, with the time they took,
/// inside the spans that made them.
#[tokio::test]
async fn a_debug_log_times_each_step_of_a_refresh() {
    let mut server = LoggedServer::start().await;
    let first = server.login().await;
    let second = server.refresh(&first.refresh_token).await;
    let logs = server.stop();

    let lines = json_lines(&logs);
    // The spans a close line sits in, outermost first (the closing span itself is the
    // line's `span`).
    let ancestors = |line: &serde_json::Value| -> Vec<String> {
        line["spans"]
            .as_array()
            .map(|spans| {
                spans
                    .iter()
                    .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let closed_in = |name: &str, parents: &[&str]| {
        let line = lines
            .iter()
            .find(|l| {
                l["message"] == "close" && l["span"]["name"] == name && ancestors(l) == parents
            })
            .unwrap_or_else(|| panic!("no close of {name} within {parents:?}:\n{logs}"));
        assert!(line["time.busy"].is_string(), "{line}");
        assert!(line["time.idle"].is_string(), "{line}");
        line
    };
    let grant = closed_in("grant.refresh_token", &["request"]);
    assert!(grant["span"]["client_id"].is_string(), "{grant}");
    closed_in("refresh_token.rotate", &["request", "grant.refresh_token"]);
    let mint = closed_in("token.mint", &["request", "grant.refresh_token"]);
    assert!(mint["span"]["kid"].is_string(), "{mint}");
    let request_closed = lines.iter().any(|l| {
        l["message"] == "close"
            && l["span"]["name"] == "request"
            && l["span"]["route"] == "/oauth/token"
    });
    assert!(
        request_closed,
        "the request span closes with its route:\n{logs}"
    );

    for (what, secret) in [
        ("password", PASSWORD),
        ("refresh token", first.refresh_token.as_str()),
        ("rotated refresh token", second.refresh_token.as_str()),
        ("access token", first.access_token.as_str()),
        ("refreshed access token", second.access_token.as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} reached the logs");
    }
}

#[tokio::test]
async fn metrics_can_be_served_on_a_separate_listener_only() {
    let app = spawn()
        .with("TESSERA_METRICS_BIND", "127.0.0.1:0")
        .start()
        .await;
    app.api.get(app.url("/healthz")).send().await.unwrap();
    let private = app.metrics_address.clone().expect("a metrics listener");
    let res = app
        .api
        .get(format!("{private}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("tessera_http_requests"));

    let public = app.api.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404);
    assert_eq!(public.headers()["content-type"], "application/problem+json");
    let other = app
        .api
        .get(format!("{private}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves nothing else"
    );
}
