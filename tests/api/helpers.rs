//! Spawns Tessera on a random port against its own fresh database and Redis key
//! prefix, so tests run in parallel without touching each other.

use std::collections::HashMap;
use std::net::TcpListener;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::Value;
use uuid::Uuid;

use tessera::auth::master_key::MasterKey;
use tessera::auth::refresh_mac::RefreshMac;
use tessera::auth::{users, Tessera};
use tessera::config::{Settings, Source};
use tessera::domain::{Chain, NewPassword, RefreshToken, Role, Username};
use tessera::startup::Application;

pub const PASSWORD: &str = "correct horse battery staple";
pub const ISSUER: &str = "http://tessera.test";

/// The PostgreSQL server tests use (a database per test is created on it).
pub fn postgres_server_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// libpq options for this process's connections: no TLS and no GSSAPI probe. The
/// server is on loopback with trust auth, and a handshake still running on a pool
/// thread when the test binary exits would race OpenSSL's (or Kerberos's) exit-time
/// clean-up: a crash after every test passed. Tessera's binary, started by the CLI
/// tests, keeps libpq's defaults.
pub const LOCAL_LIBPQ_OPTIONS: &str = "sslmode=disable&gssencmode=disable";

/// A database on the test server, as this process connects to it.
pub fn database_url(name: &str) -> String {
    format!("{}/{name}?{LOCAL_LIBPQ_OPTIONS}", postgres_server_url())
}

pub fn redis_url() -> String {
    std::env::var("TESSERA_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub struct TestApp {
    pub address: String,
    /// The separate metrics listener, when `TESSERA_METRICS_BIND` is set.
    pub metrics_address: Option<String>,
    pub api: reqwest::Client,
    pub database_url: String,
    pub database_name: String,
    pub redis_prefix: String,
    pub master_key: String,
    /// The service handle the server runs on, for steps no HTTP call can take.
    pub tessera: Tessera,
    server: tessera::startup::StopHandle,
    owns_database: bool,
}

/// Builder for a test app: defaults suited to tests, overridable per test.
pub struct Spawn {
    values: HashMap<String, String>,
    database_name: Option<String>,
}

pub fn spawn() -> Spawn {
    let id = Uuid::new_v4().simple().to_string();
    let values = [
        ("DATABASE_URL", database_url(&format!("tessera_test_{id}"))),
        ("REDIS_URL", redis_url()),
        ("TESSERA_REDIS_PREFIX", format!("test:{id}:")),
        ("TESSERA_BIND", "127.0.0.1:0".to_owned()),
        ("TESSERA_ISSUER", ISSUER.to_owned()),
        ("TESSERA_BCRYPT_COST", "4".to_owned()),
        ("TESSERA_WORKERS", "2".to_owned()),
        ("TESSERA_DATABASE_POOL_SIZE", "8".to_owned()),
        ("TESSERA_MASTER_KEY", MasterKey::generate_encoded()),
        (
            "TESSERA_LOG",
            std::env::var("TEST_LOG").unwrap_or_else(|_| "error".to_owned()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Spawn {
        values,
        database_name: None,
    }
}

impl Spawn {
    pub fn without(mut self, name: &str) -> Self {
        self.values.remove(name);
        self
    }

    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.values.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Another instance on the same database (and master key) as `other`.
    pub fn sharing_database_of(mut self, other: &TestApp) -> Self {
        self.values
            .insert("DATABASE_URL".to_owned(), other.database_url.clone());
        self.values
            .insert("TESSERA_MASTER_KEY".to_owned(), other.master_key.clone());
        self.database_name = Some(other.database_name.clone());
        self
    }

    /// Another instance on the database (and master key) of a spawn not started yet,
    /// which owns it: for instances that start at the same time.
    pub fn sharing_database_with(mut self, owner: &Spawn) -> Self {
        for name in ["DATABASE_URL", "TESSERA_MASTER_KEY"] {
            self.values
                .insert(name.to_owned(), owner.values[name].clone());
        }
        self.database_name = Some(database_name_of(&owner.values["DATABASE_URL"]));
        self
    }

    pub fn settings(&self) -> Settings {
        Settings::from_source(&Source::from_pairs(
            self.values.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
        .expect("test settings are valid")
    }

    pub async fn start(self) -> TestApp {
        let settings = self.settings();
        tessera::telemetry::init(settings.log.format, &settings.log.filter);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let app = Application::build_with_listener(settings.clone(), listener)
            .await
            .expect("the app starts");
        let port = app.port();
        let metrics_address = app
            .metrics_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let tessera = app.tessera();
        let server = app.handle();
        tokio::spawn(app.run_until_stopped());
        let database_url = settings.database.url.clone();
        let owns_database = self.database_name.is_none();
        let database_name = self
            .database_name
            .unwrap_or_else(|| database_name_of(&database_url));
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            metrics_address,
            api: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            database_url,
            database_name,
            redis_prefix: settings.redis.prefix.clone(),
            master_key: self.values["TESSERA_MASTER_KEY"].clone(),
            tessera,
            server,
            owns_database,
        }
    }
}

/// The database a `postgres://` URL names (by hand: one naming several hosts for
/// failover is no URL to `url::Url`).
fn database_name_of(url: &str) -> String {
    let (_, rest) = url.split_once("://").expect("a postgres:// URL");
    let rest = rest.split('?').next().unwrap_or_default();
    rest.split_once('/')
        .map(|(_, db)| db.to_owned())
        .unwrap_or_default()
}

pub async fn spawn_app() -> TestApp {
    spawn().start().await
}

/// A parsed token response.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
    pub body: Value,
}

impl TestApp {
    /// The refresh-token MAC of this app's master key: tests read and mint chain links
    /// with it, as the server does.
    pub fn refresh_mac(&self) -> RefreshMac {
        use base64::Engine;
        let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(&self.master_key)
            .expect("the tests' master key is base64")
            .try_into()
            .expect("32 bytes");
        RefreshMac::from_master(&MasterKey::from_bytes(bytes))
    }

    /// The session a refresh token continues and its generation.
    pub fn chain_of(&self, refresh_token: &str) -> Chain {
        let token = RefreshToken::parse(refresh_token).expect("a refresh token");
        self.refresh_mac()
            .verify(&token)
            .expect("a genuine refresh token")
    }

    /// A genuine token for any link of any chain.
    pub fn mint_refresh(&self, session_id: Uuid, generation: u64) -> String {
        self.refresh_mac()
            .issue(Chain {
                session_id,
                generation,
            })
            .expose()
            .to_owned()
    }

    /// Stops this instance (server and background jobs), keeping its database.
    pub async fn stop(&self) {
        self.server.stop(true).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn create_user(&self, username: &str, roles: &[&str]) -> Uuid {
        let roles = roles.iter().map(|r| Role::parse(r).unwrap()).collect();
        users::create(
            &self.tessera,
            Username::parse(username).unwrap(),
            NewPassword::parse(PASSWORD.to_owned(), 8).unwrap(),
            roles,
            &tessera::auth::Actor::command_line(),
        )
        .await
        .expect("user created")
        .id
    }

    /// Creates a client from a JSON spec (as the admin API takes it); returns the
    /// client id and, for a confidential client, its secret.
    pub async fn create_client(&self, spec: Value) -> (String, Option<String>) {
        let spec = serde_json::from_value(spec).expect("a valid client spec");
        let (row, secret) = tessera::auth::clients::create(
            &self.tessera,
            spec,
            &tessera::auth::Actor::command_line(),
        )
        .await
        .expect("client created");
        use secrecy::ExposeSecret;
        (row.client_id, secret.map(|s| s.expose_secret().to_owned()))
    }

    /// A confidential client allowed client_credentials with the given scopes.
    pub async fn service_client(&self, id: &str, scopes: &[&str]) -> String {
        let (_, secret) = self
            .create_client(serde_json::json!({
                "client_id": id, "confidential": true,
                "grant_types": ["client_credentials"], "scopes": scopes,
                "audiences": ["orders-api"],
            }))
            .await;
        secret.unwrap()
    }

    /// Logs in as a fresh admin and returns the access token.
    pub async fn admin_token(&self) -> String {
        self.create_user("root", &["admin"]).await;
        self.login("root").await.access_token
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.api
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn password_grant(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn refresh_grant(&self, refresh_token: &str) -> reqwest::Response {
        self.post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// Logs in and returns the tokens; panics unless it succeeds.
    pub async fn login(&self, username: &str) -> Tokens {
        let res = self.password_grant(username, PASSWORD).await;
        assert_eq!(res.status(), 200, "login of {username} failed");
        tokens_of(res).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Tokens {
        let res = self.refresh_grant(refresh_token).await;
        assert_eq!(res.status(), 200, "refresh failed");
        tokens_of(res).await
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> reqwest::Response {
        self.api
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        let res = self.api.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200, "/metrics");
        res.text().await.unwrap()
    }

    /// A direct connection to this app's database, to check rows as they end up.
    pub fn db(&self) -> PgConnection {
        PgConnection::establish(&self.database_url).expect("test database reachable")
    }

    /// Runs a statement on this app's database (a test's way to age a row).
    pub fn execute(&self, sql: &str) -> usize {
        diesel::sql_query(sql)
            .execute(&mut self.db())
            .expect("statement runs")
    }

    pub fn count(&self, sql: &str) -> i64 {
        diesel::select(diesel::dsl::sql::<BigInt>(&format!("({sql})")))
            .get_result(&mut self.db())
            .expect("count query")
    }
}

pub async fn tokens_of(res: reqwest::Response) -> Tokens {
    let body: Value = res.json().await.expect("a JSON token response");
    Tokens {
        access_token: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned(),
        refresh_token: body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body,
    }
}

/// Asserts an RFC 6749 error response and returns its body.
pub async fn assert_oauth_error(res: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(res.status(), status, "status");
    assert_eq!(
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let body: Value = res.json().await.expect("a JSON error body");
    assert_eq!(body["error"], error, "error code in {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "error_description in {body}"
    );
    body
}

/// The claims of a JWT, read without verification (tests only).
pub fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

pub fn header_of(jwt: &str) -> Value {
    use base64::Engine;
    let header = jwt.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url header");
    serde_json::from_slice(&bytes).expect("JSON header")
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent at once; the future only waits for completion.
        drop(self.server.stop(false));
        if let Ok(client) = redis::Client::open(redis_url()) {
            if let Ok(mut conn) = client.get_connection() {
                // Plain keys, and those behind a hash tag (`{<prefix>deny}:...`).
                for pattern in [
                    format!("{}*", self.redis_prefix),
                    format!("{{{}*", self.redis_prefix),
                ] {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(pattern)
                        .query(&mut conn)
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
                    }
                }
            }
        }
        if self.owns_database {
            if let Ok(mut conn) = PgConnection::establish(&database_url("postgres")) {
                let _ = diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.database_name
                ))
                .execute(&mut conn);
            }
        }
    }
}
