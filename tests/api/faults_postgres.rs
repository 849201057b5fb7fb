//! PostgreSQL going away, a pool running dry, and a graceful stop. The outage tests run
//! their own PostgreSQL on a free port (the shared one is never touched).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::helpers::{spawn, tokens_of, TestApp, PASSWORD};

/// A throwaway PostgreSQL cluster (initdb into a temp dir), run as the `postgres` user
/// when the tests run as root, since PostgreSQL refuses to run as root.
pub struct PrivatePostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

pub fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("an initdb")
}

pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Runs a PostgreSQL server tool from `bin`, as the `postgres` user when the tests run
/// as root, its output discarded.
pub fn run_pg_tool(bin: &std::path::Path, tool: &str, args: &[&str]) -> std::process::ExitStatus {
    let program = bin.join(tool);
    let mut cmd = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&program);
        c
    } else {
        Command::new(&program)
    };
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

impl PrivatePostgres {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("tessera-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if running_as_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap();
        }
        let pg = Self {
            port,
            dir,
            bin: pg_bin(),
        };
        let data = pg.dir.join("data");
        let ok = pg
            .run(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            )
            .success();
        assert!(ok, "initdb failed");
        pg.launch();
        pg
    }

    fn run(&self, tool: &str, args: &[&str]) -> std::process::ExitStatus {
        run_pg_tool(&self.bin, tool, args)
    }

    fn launch(&self) {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let ok = self
            .run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &options,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "start",
                ],
            )
            .success();
        assert!(ok, "pg_ctl start failed");
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?{}",
            self.port,
            crate::helpers::LOCAL_LIBPQ_OPTIONS
        )
    }

    /// Stops at once, as a crash or a network cut would look to Tessera.
    pub fn stop(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    pub fn restart(&self) {
        self.stop();
        self.launch();
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn app_on(pg: &PrivatePostgres) -> TestApp {
    spawn()
        .with("DATABASE_URL", &pg.url("tessera"))
        .with("TESSERA_DATABASE_POOL_TIMEOUT", "500ms")
        .start()
        .await
}

#[tokio::test]
async fn a_database_outage_is_a_503_and_heals_without_a_restart() {
    let pg = PrivatePostgres::start();
    let app = app_on(&pg).await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;

    pg.stop();

    let started = Instant::now();
    let res = app.refresh_grant(&tokens.refresh_token).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answers quickly"
    );
    let res = app.get_with_token("/v1/me", &tokens.access_token).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let ready = app.api.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);

    pg.restart();

    let mut healed = false;
    for _ in 0..50 {
        let res = app.refresh_grant(&tokens.refresh_token).await;
        if res.status() == 200 {
            healed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(healed, "refreshing works again once PostgreSQL is back");
    // The blocking pool's connections broken by the restart are dropped as they are
    // found (each answers one 503): readiness follows within moments.
    let mut ready = false;
    for _ in 0..50 {
        let status = app
            .api
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again once PostgreSQL is back");
}

/// Holds an exclusive lock on `users` until told to let go.
fn lock_users(database_url: &str) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let url = database_url.to_owned();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            diesel::sql_query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE").execute(conn)?;
            locked_tx.send(()).unwrap();
            release_rx.recv().ok();
            Ok(())
        })
        .unwrap();
    });
    locked_rx.recv().unwrap();
    (release_tx, holder)
}

#[tokio::test]
async fn an_exhausted_pool_answers_503_quickly_instead_of_hanging() {
    let app = spawn()
        .with("TESSERA_DATABASE_POOL_SIZE", "1")
        .with("TESSERA_DATABASE_POOL_TIMEOUT", "200ms")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    let (release, holder) = lock_users(&app.database_url);

    // This login takes the only connection and waits on the lock...
    let stuck = tokio::spawn({
        let api = app.api.clone();
        let url = app.url("/oauth/token");
        async move {
            api.post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...so this one finds no connection. (A refresh would not: the rotation has
    // async connections of its own, store::rotation.)
    let started = Instant::now();
    let res = app
        .get_with_token("/v1/me/sessions", &tokens.access_token)
        .await;
    assert_eq!(res.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(stuck.await.unwrap(), 200, "the waiting request completes");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    // The binary, on the shared PostgreSQL, with its own database.
    let app = spawn().start().await;
    app.create_user("alice", &[]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("REDIS_URL", crate::helpers::redis_url())
        .env("TESSERA_REDIS_PREFIX", &app.redis_prefix)
        .env("TESSERA_MASTER_KEY", &app.master_key)
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .env("TESSERA_BCRYPT_COST", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let api = reqwest::Client::new();
    for _ in 0..300 {
        if api.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (release, holder) = lock_users(&app.database_url);
    let in_flight = tokio::spawn({
        let api = api.clone();
        let base = base.clone();
        async move {
            api.post(format!("{base}/oauth/token"))
                .form(&[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = reqwest::Client::new()
        .get(format!("{base}/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "no new connections after SIGTERM");

    release.send(()).unwrap();
    holder.join().unwrap();
    let res = in_flight
        .await
        .unwrap()
        .expect("the in-flight request got its answer");
    assert_eq!(res.status(), 200);
    assert!(tokens_of(res).await.access_token.starts_with("ey"));
    let status = server.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}
