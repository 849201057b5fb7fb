//! The `tessera` binary itself: start-up with no configuration, and the CLI.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::helpers::{
    assert_oauth_error, claims_of, database_url, postgres_server_url, redis_url, spawn_app,
    tokens_of,
};

fn tessera() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TESSERA_BCRYPT_COST", "4");
    cmd
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tessera-test-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a CLI command with `stdin` as its input; returns (success, stdout, stderr).
fn run_cli(database_url: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    run_cli_env(&[("DATABASE_URL", database_url)], None, args, stdin)
}

struct DropDatabase(String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&database_url("postgres")) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.0
            ))
            .execute(&mut conn);
        }
    }
}

#[tokio::test]
async fn serve_starts_on_a_fresh_machine_with_no_configuration() {
    let name = format!("tessera_cli_{}", Uuid::new_v4().simple());
    let _cleanup = DropDatabase(name.clone());
    let dir = temp_dir();
    let port = free_port();
    let log = std::fs::File::create(dir.join("tessera.log")).unwrap();
    let mut child = tessera()
        .current_dir(&dir)
        .env("DATABASE_URL", format!("{}/{name}", postgres_server_url()))
        .env("REDIS_URL", redis_url())
        .env("TESSERA_REDIS_PREFIX", format!("test:{name}:"))
        // Only the port differs from the defaults, so tests can run side by side.
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..300 {
        if let Ok(res) = client.get(format!("{base}/readyz")).send().await {
            up = res.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jwks: serde_json::Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let output = std::fs::read_to_string(dir.join("tessera.log")).unwrap();

    assert!(up, "Tessera did not become ready:\n{output}");
    assert!(
        status.success(),
        "SIGTERM should stop it cleanly: {status}\n{output}"
    );
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        1,
        "a signing key was created"
    );
    assert!(output.contains("DEVELOPMENT ONLY"), "{output}");
    assert_eq!(
        output.matches("tessera user create").count(),
        1,
        "logs once how to create the first user:\n{output}"
    );
    let key_file = dir.join(".tessera/master.key");
    assert!(
        key_file.exists(),
        "a development master key file was generated"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the key file is private to its owner");
    }
    // The private key is stored encrypted, never in the clear.
    let mut conn = PgConnection::establish(&database_url(&name)).unwrap();
    let sealed: Vec<Vec<u8>> =
        diesel::dsl::sql::<diesel::sql_types::Bytea>("SELECT private_key_sealed FROM signing_keys")
            .load(&mut conn)
            .unwrap();
    assert_eq!(sealed.len(), 1);
    assert_eq!(sealed[0][0], 1, "sealed format version");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn user_create_reads_the_password_from_stdin() {
    let app = spawn_app().await;
    let (ok, stdout, stderr) = run_cli(
        &app.database_url,
        &["user", "create", "--username", "Bob", "--role", "admin"],
        "a long enough password\n",
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("created user bob"), "{stdout}");
    assert!(
        !stdout.contains("a long enough password") && !stderr.contains("a long enough password")
    );

    let res = app.password_grant("bob", "a long enough password").await;
    assert_eq!(res.status(), 200);
    let tokens = tokens_of(res).await;
    assert_eq!(
        claims_of(&tokens.access_token)["roles"],
        serde_json::json!(["admin"])
    );
}

#[tokio::test]
async fn user_create_refuses_a_password_over_72_bytes() {
    let app = spawn_app().await;
    let (ok, _, stderr) = run_cli(
        &app.database_url,
        &["user", "create", "--username", "carol"],
        &format!("{}\n", "p".repeat(73)),
    );
    assert!(!ok);
    assert!(stderr.contains("72 bytes"), "{stderr}");
    assert!(stderr.contains("never truncated"), "{stderr}");
    assert_eq!(app.count("SELECT count(*) FROM users"), 0);
    let res = app.password_grant("carol", &"p".repeat(73)).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn user_create_refuses_duplicates_and_has_no_password_flag() {
    let app = spawn_app().await;
    app.create_user("dave", &[]).await;
    let (ok, _, stderr) = run_cli(
        &app.database_url,
        &["user", "create", "--username", "dave"],
        "another password\n",
    );
    assert!(!ok);
    assert!(stderr.contains("already exists"), "{stderr}");
    // A good password on stdin too: the flag alone is what must fail.
    let (ok, _, stderr) = run_cli(
        &app.database_url,
        &[
            "user",
            "create",
            "--username",
            "erin",
            "--password",
            "on-the-command-line",
        ],
        "a long enough password\n",
    );
    assert!(!ok, "passwords are never taken from argv");
    assert!(stderr.contains("'--password'"), "{stderr}");
    assert!(!stderr.contains("on-the-command-line"), "{stderr}");
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE username = 'erin'"),
        0
    );
}

#[tokio::test]
async fn a_bad_configuration_value_names_the_variable() {
    let out = tessera()
        .env("TESSERA_ACCESS_TOKEN_TTL", "forever")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TESSERA_ACCESS_TOKEN_TTL"), "{stderr}");
}

/// Runs a CLI command with extra environment, in `dir` if given; returns (success,
/// stdout, stderr).
fn run_cli_env(
    env: &[(&str, &str)],
    dir: Option<&std::path::Path>,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    let mut cmd = tessera();
    cmd.envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The environment under which the CLI acts on `app`'s database, keys and Redis.
fn env_of(app: &crate::helpers::TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", app.database_url.clone()),
        ("REDIS_URL", redis_url()),
        ("TESSERA_REDIS_PREFIX", app.redis_prefix.clone()),
        ("TESSERA_MASTER_KEY", app.master_key.clone()),
    ]
}

fn as_pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn check_config_refuses_a_short_master_key() {
    let (ok, stdout, stderr) = run_cli_env(
        &[("TESSERA_MASTER_KEY", "short")],
        None,
        &["check-config"],
        "",
    );
    assert!(!ok, "{stdout}");
    assert!(!stdout.contains("configuration is valid"), "{stdout}");
    assert!(stderr.contains("TESSERA_MASTER_KEY"), "{stderr}");
    assert!(stderr.contains("32 bytes"), "{stderr}");
}

#[tokio::test]
async fn check_config_refuses_a_broken_log_filter() {
    let (ok, stdout, stderr) = run_cli_env(
        &[("TESSERA_LOG", "tessera=loud")],
        None,
        &["check-config"],
        "",
    );
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("TESSERA_LOG"), "{stderr}");
}

#[tokio::test]
async fn an_unknown_tessera_variable_is_warned_about_with_the_nearest_name() {
    let (ok, stdout, stderr) = run_cli_env(
        &[("TESSERA_BIDN", "127.0.0.1:9999")],
        None,
        &["check-config"],
        "",
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(
            "TESSERA_BIDN is not a Tessera variable and is ignored (did you mean TESSERA_BIND?)"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn logs_carry_no_colour_codes_when_not_on_a_terminal() {
    let (_, stdout, _) = run_cli_env(
        &[("TESSERA_BIDN", "127.0.0.1:9999")],
        None,
        &["check-config"],
        "",
    );
    assert!(stdout.contains("WARN"), "a log line was written: {stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "ANSI escape codes in: {stdout:?}"
    );
}

#[tokio::test]
async fn a_port_in_use_is_reported_once_with_a_hint() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (ok, _, stderr) = run_cli_env(&[("TESSERA_BIND", &address)], None, &["serve"], "");
    assert!(!ok);
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("set TESSERA_BIND"), "{stderr}");
}

#[tokio::test]
async fn a_wrong_master_key_is_reported_once() {
    let app = spawn_app().await;
    let mut env = env_of(&app);
    env[3].1 = tessera::auth::master_key::MasterKey::generate_encoded();
    let (ok, _, stderr) = run_cli_env(&as_pairs(&env), None, &["keys", "rotate"], "");
    assert!(!ok);
    assert_eq!(
        stderr.matches("cannot decrypt signing key").count(),
        1,
        "{stderr}"
    );
    assert_eq!(app.count("SELECT count(*) FROM signing_keys"), 1);
}

#[tokio::test]
async fn keys_rotate_elsewhere_creates_no_development_key_and_says_where_it_looked() {
    let app = spawn_app().await;
    let dir = temp_dir();
    let env = env_of(&app);
    let (ok, _, stderr) = run_cli_env(&as_pairs(&env[..3]), Some(&dir), &["keys", "rotate"], "");
    assert!(!ok);
    let expected = dir.join(".tessera/master.key");
    assert!(
        stderr.contains(&expected.display().to_string()),
        "names the absolute path it looked for: {stderr}"
    );
    assert!(!expected.exists(), "no development key was created");
    assert_eq!(app.count("SELECT count(*) FROM signing_keys"), 1);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn keys_rotate_names_the_new_kid_and_a_rotation_already_pending() {
    let app = spawn_app().await;
    let env = env_of(&app);
    let (ok, first, stderr) = run_cli_env(&as_pairs(&env), None, &["keys", "rotate"], "");
    assert!(ok, "{stderr}");
    let mut conn = app.db();
    let next: Vec<String> = diesel::dsl::sql::<diesel::sql_types::Text>(
        "SELECT kid FROM signing_keys WHERE state = 'next'",
    )
    .load(&mut conn)
    .unwrap();
    assert_eq!(next.len(), 1);
    assert!(
        first.contains(&format!(
            "rotation started: key {} is published now",
            next[0]
        )),
        "{first}"
    );

    let (ok, second, stderr) = run_cli_env(&as_pairs(&env), None, &["keys", "rotate"], "");
    assert!(ok, "{stderr}");
    assert!(
        second.contains(&format!("a rotation was already pending: key {}", next[0])),
        "{second}"
    );
    assert!(!second.contains("rotation started"), "{second}");
    assert_eq!(app.count("SELECT count(*) FROM signing_keys"), 2);
}

#[tokio::test]
async fn an_emergency_rotation_from_the_cli_takes_effect_at_once_on_a_running_server() {
    // Without an announcement this server would keep the old key for an hour.
    let app = crate::helpers::spawn()
        .with("TESSERA_KEY_REFRESH_INTERVAL", "3600s")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let token = app.login("alice").await.access_token;
    let old_kid = crate::helpers::header_of(&token)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Let the server subscribe to announcements.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let env = env_of(&app);
    let (ok, stdout, stderr) = run_cli_env(
        &as_pairs(&env),
        None,
        &["keys", "rotate", "--emergency"],
        "",
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains(&format!("key {old_kid} is gone from the JWKS")),
        "names the dropped kid: {stdout}"
    );
    assert!(
        stdout.contains(&format!("signing key {old_kid} was dropped")),
        "the log line names the dropped kid: {stdout}"
    );

    let mut refused = false;
    for _ in 0..30 {
        if app.get_with_token("/v1/me", &token).await.status() == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(refused, "the running server still accepts the dropped key");
    let jwks: serde_json::Value = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks.to_string().contains(&old_kid), "{jwks}");
}

#[tokio::test]
async fn sigint_lets_the_request_in_flight_finish() {
    let name = format!("tessera_cli_{}", Uuid::new_v4().simple());
    let _cleanup = DropDatabase(name.clone());
    let dir = temp_dir();
    let port = free_port();
    let db = format!("{}/{name}", postgres_server_url());
    let prefix = format!("test:{name}:");
    let address = format!("127.0.0.1:{port}");
    // An expensive hash keeps the login in flight for a while.
    let env = [
        ("DATABASE_URL", db.as_str()),
        ("REDIS_URL", &redis_url()),
        ("TESSERA_REDIS_PREFIX", prefix.as_str()),
        ("TESSERA_BIND", address.as_str()),
        ("TESSERA_BCRYPT_COST", "14"),
    ]
    .map(|(k, v)| (k, v.to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (ok, _, stderr) = run_cli_env(
        &env,
        Some(&dir),
        &["user", "create", "--username", "alice"],
        "a long enough password\n",
    );
    assert!(ok, "{stderr}");
    let log = std::fs::File::create(dir.join("tessera.log")).unwrap();
    let mut child = tessera()
        .current_dir(&dir)
        .envs(env.iter().copied())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://{address}");
    for _ in 0..300 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = tokio::spawn(
        client
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "a long enough password"),
            ])
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let answer = login.await.unwrap();
    let status = child.wait().unwrap();
    let output = std::fs::read_to_string(dir.join("tessera.log")).unwrap();
    let answer = answer.unwrap_or_else(|e| panic!("the login was dropped: {e}\n{output}"));
    assert_eq!(answer.status(), 200, "{output}");
    assert!(status.success(), "{status}\n{output}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn serve_says_at_start_up_that_redis_is_unreachable_and_what_answers_503() {
    let name = format!("tessera_cli_{}", Uuid::new_v4().simple());
    let _cleanup = DropDatabase(name.clone());
    let dir = temp_dir();
    let port = free_port();
    let log = std::fs::File::create(dir.join("tessera.log")).unwrap();
    let mut child = tessera()
        .current_dir(&dir)
        .env("DATABASE_URL", format!("{}/{name}", postgres_server_url()))
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("TESSERA_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let output = std::fs::read_to_string(dir.join("tessera.log")).unwrap();
    assert!(output.contains("Tessera is listening"), "{output}");
    assert!(output.contains("Redis (the revocation list"), "{output}");
    assert!(output.contains("answer 503"), "{output}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn client_create_prints_audiences_and_browser_mode() {
    let app = spawn_app().await;
    let (ok, stdout, stderr) = run_cli(
        &app.database_url,
        &[
            "client",
            "create",
            "--id",
            "spa",
            "--grant",
            "password",
            "--audience",
            "https://orders.example.com",
            "--browser-mode",
        ],
        "",
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("audiences:     https://orders.example.com"),
        "{stdout}"
    );
    assert!(stdout.contains("browser mode:  on"), "{stdout}");
}

#[tokio::test]
async fn the_cli_flags_have_help_text() {
    for (args, flag, words) in [
        (
            &["user", "create", "--help"][..],
            "--username",
            "login name",
        ),
        (
            &["client", "create", "--help"][..],
            "--name",
            "display name",
        ),
        (
            &["keys", "rotate", "--help"][..],
            "--emergency",
            "compromised",
        ),
    ] {
        let (ok, stdout, _) = run_cli_env(&[], None, args, "");
        assert!(ok);
        let line = stdout
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(flag))
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(line.contains(words), "{flag}: {stdout}");
    }
}

#[tokio::test]
async fn user_list_shows_every_user_with_state_and_roles() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    app.create_user("root", &["admin"]).await;
    let (ok, stdout, stderr) = run_cli(&app.database_url, &["user", "list"], "");
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert!(
        rows[0].contains("alice") && rows[0].contains("active"),
        "{stdout}"
    );
    assert!(
        rows[1].contains("root") && rows[1].contains("admin"),
        "{stdout}"
    );
    let (ok, stdout, _) = run_cli(&app.database_url, &["user", "list", "--search", "ROO"], "");
    assert!(ok);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
}

#[tokio::test]
async fn user_disable_revokes_the_users_live_tokens_at_once() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;
    assert_eq!(
        app.get_with_token("/v1/me", &tokens.access_token)
            .await
            .status(),
        200
    );
    let env = env_of(&app);
    let (ok, stdout, stderr) = run_cli_env(
        &as_pairs(&env),
        None,
        &["user", "disable", "--username", "alice"],
        "",
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("disabled user alice"), "{stdout}");
    assert_eq!(
        app.get_with_token("/v1/me", &tokens.access_token)
            .await
            .status(),
        401
    );
    let res = app.refresh_grant(&tokens.refresh_token).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'admin.user.disabled'"),
        1
    );
}

#[tokio::test]
async fn user_disable_of_an_unknown_user_fails_and_says_so() {
    let app = spawn_app().await;
    let env = env_of(&app);
    let (ok, _, stderr) = run_cli_env(
        &as_pairs(&env),
        None,
        &["user", "disable", "--username", "nobody"],
        "",
    );
    assert!(!ok);
    assert!(stderr.contains("no such user"), "{stderr}");
}

#[tokio::test]
async fn audit_lists_events_filtered_by_user_and_action() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    app.create_user("bob", &[]).await;
    let _ = app.password_grant("alice", "wrong password").await;
    let (ok, stdout, stderr) = run_cli(
        &app.database_url,
        &["audit", "--user", "alice", "--action", "login.failed"],
        "",
    );
    assert!(ok, "{stderr}");
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    assert!(rows[0].contains("login.failed"), "{stdout}");
}

#[tokio::test]
async fn audit_names_the_parameter_and_format_of_a_bad_time() {
    let app = spawn_app().await;
    let (ok, _, stderr) = run_cli(&app.database_url, &["audit", "--since", "yesterday"], "");
    assert!(!ok);
    assert!(
        stderr.contains("since must be an RFC 3339 time such as 2026-12-01T00:00:00Z"),
        "{stderr}"
    );
}

#[tokio::test]
async fn user_create_takes_72_bytes_and_refuses_73_of_any_characters() {
    let app = spawn_app().await;
    let cases = [
        ("a".repeat(72), true),
        ("a".repeat(73), false),
        ("é".repeat(36), true),
        (format!("{}a", "é".repeat(36)), false),
        ("😀".repeat(18), true),
        (format!("{}a", "😀".repeat(18)), false),
        ("😀".repeat(25), false),
    ];
    for (i, (password, accepted)) in cases.iter().enumerate() {
        let name = format!("user{i}");
        let (ok, _, stderr) = run_cli(
            &app.database_url,
            &["user", "create", "--username", &name],
            &format!("{password}\n"),
        );
        let what = format!("{} bytes", password.len());
        assert_eq!(ok, *accepted, "{what}: {stderr}");
        if *accepted {
            assert_eq!(
                app.password_grant(&name, password).await.status(),
                200,
                "{what}"
            );
        } else {
            assert!(stderr.contains("72 bytes"), "{what}: {stderr}");
            assert!(!stderr.contains("bcrypt failed"), "{what}: {stderr}");
        }
    }
}

#[tokio::test]
async fn client_create_can_allow_introspecting_any_token() {
    let app = spawn_app().await;
    let (ok, stdout, stderr) = run_cli(
        &app.database_url,
        &[
            "client",
            "create",
            "--id",
            "gateway",
            "--confidential",
            "--grant",
            "client_credentials",
            "--introspect-any",
        ],
        "",
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("introspection: any token"), "{stdout}");
    assert_eq!(
        app.count("SELECT count(*) FROM clients WHERE client_id = 'gateway' AND introspect_any"),
        1
    );
    // A public client cannot introspect, so it cannot be given the permission.
    let (ok, _, stderr) = run_cli(
        &app.database_url,
        &[
            "client",
            "create",
            "--id",
            "spa",
            "--grant",
            "password",
            "--introspect-any",
        ],
        "",
    );
    assert!(!ok);
    assert!(stderr.contains("introspect_any"), "{stderr}");
}
