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
    let mut child = tessera()
        .env("DATABASE_URL", database_url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let (ok, _, _) = run_cli(
        &app.database_url,
        &[
            "user",
            "create",
            "--username",
            "erin",
            "--password",
            "on-the-command-line",
        ],
        "",
    );
    assert!(!ok, "passwords are never taken from argv");
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
