use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use tessera::auth::keys::{self, KeyRing};
use tessera::auth::master_key::MasterKey;
use tessera::auth::passwords::PasswordHasher;
use tessera::config::{Settings, VARIABLES};
use tessera::domain::{NewPassword, Role, Username};
use tessera::startup::{self, Application};
use tessera::{auth, telemetry};

/// Tessera: log people and services in, hand out short-lived access tokens and
/// rotating refresh tokens, publish keys, revoke access.
///
/// Configuration comes from the environment (DATABASE_URL, REDIS_URL, TESSERA_*), see
/// the README. Every command creates and migrates the database if needed.
#[derive(Parser)]
#[command(name = "tessera", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default): migrate, ensure a signing key, listen.
    Serve,
    /// Create the database if needed and apply pending migrations, then exit.
    Migrate,
    /// Validate the configuration and print it (secrets hidden).
    CheckConfig,
    /// Exit 0 if the local server answers /healthz (for container health checks).
    Healthcheck,
    /// Print the OpenAPI 3.1 document (YAML), as committed in openapi/openapi.yaml.
    Openapi,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create a client. A confidential client's secret is printed once; only its hash
    /// is stored.
    Create {
        /// The client_id (letters, digits, . _ : -); generated when omitted.
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// A confidential client (it gets a secret); otherwise public.
        #[arg(long)]
        confidential: bool,
        /// An allowed grant type; repeat for several (password, refresh_token, client_credentials).
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
        /// An allowed scope; repeat for several.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// An audience of the tokens issued to it; repeat for several.
        #[arg(long = "audience")]
        audiences: Vec<String>,
        /// Access-token lifetime for this client (e.g. 15m), instead of the default.
        #[arg(long)]
        access_token_ttl: Option<String>,
        /// Browser mode for single-page apps: the refresh token only in an HttpOnly cookie.
        #[arg(long)]
        browser_mode: bool,
        /// Let this confidential client introspect every token, not only its own and
        /// those meant for its audiences.
        #[arg(long)]
        introspect_any: bool,
    },
    /// List clients.
    List,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (one line) or, on a
    /// terminal, prompted for twice; it is never taken from the command line.
    Create {
        #[arg(long)]
        username: String,
        /// A role to give the user; repeat for several (e.g. --role admin).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys with their state and dates (no private material).
    List,
    /// Start a rotation: a new key is published now and signs after the publish-ahead
    /// time. With --emergency the old key stops signing and leaves the JWKS at once.
    Rotate {
        #[arg(long)]
        emergency: bool,
    },
    /// Print a new random master key (base64) for TESSERA_MASTER_KEY.
    GenerateMasterKey,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tessera: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format, &settings.log_filter);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings.clone()).await?;
            tracing::info!(
                address = %settings.bind,
                issuer = %settings.issuer,
                "Tessera is listening"
            );
            app.run_until_stopped().await?;
            tracing::info!("stopped");
            Ok(())
        }
        Command::Healthcheck => healthcheck(settings.bind),
        Command::Openapi => {
            print!("{}", tessera::http::docs::document_yaml());
            Ok(())
        }
        Command::Migrate => {
            startup::open_database(&settings).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::CheckConfig => {
            println!("configuration is valid:\n{:#?}", settings.redacted());
            println!("\nvariables read: {}", VARIABLES.join(", "));
            Ok(())
        }
        Command::User(UserCommand::Create { username, roles }) => {
            let username = Username::parse(&username).map_err(anyhow::Error::msg)?;
            let roles = roles
                .iter()
                .map(|r| Role::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(anyhow::Error::msg)?;
            let password = read_new_password(settings.password_min_length)?;
            let db = startup::open_database(&settings).await?;
            let hasher = PasswordHasher::new(settings.bcrypt_cost, 1, 0).await?;
            let user = auth::users::create(
                &db,
                &hasher,
                username,
                password,
                roles,
                &auth::Actor::command_line(),
            )
            .await?;
            println!(
                "created user {} (id {}, roles: {})",
                user.username,
                user.id,
                if user.roles.is_empty() {
                    "none".to_owned()
                } else {
                    user.roles.join(", ")
                }
            );
            Ok(())
        }
        Command::Client(ClientCommand::Create {
            id,
            name,
            confidential,
            grants,
            scopes,
            audiences,
            access_token_ttl,
            browser_mode,
            introspect_any,
        }) => {
            let ttl = access_token_ttl
                .map(|t| tessera::config::parse_duration(&t).map(|d| d.as_secs() as i64))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let db = startup::open_database(&settings).await?;
            let spec = auth::clients::ClientSpec {
                client_id: id,
                name,
                confidential: Some(confidential),
                grant_types: Some(grants),
                scopes: Some(scopes),
                audiences: Some(audiences),
                access_token_ttl_seconds: Some(ttl),
                browser_mode: Some(browser_mode),
                introspect_any: Some(introspect_any),
            };
            let (row, secret) =
                auth::clients::create(&db, spec, &auth::Actor::command_line()).await?;
            println!("client_id:     {}", row.client_id);
            println!(
                "type:          {}",
                if row.confidential {
                    "confidential"
                } else {
                    "public"
                }
            );
            println!("grant types:   {}", row.grant_types.join(" "));
            println!("scopes:        {}", row.scopes.join(" "));
            if row.introspect_any {
                println!("introspection: any token");
            }
            if let Some(secret) = secret {
                use secrecy::ExposeSecret;
                println!("client_secret: {}", secret.expose_secret());
                println!("(shown once: store it now; only its hash is kept)");
            }
            Ok(())
        }
        Command::Client(ClientCommand::List) => {
            let db = startup::open_database(&settings).await?;
            let rows = db
                .run(|conn| tessera::store::clients::list(conn, None, 10_000))
                .await?;
            println!(
                "{:<32} {:<13} {:<40} scopes",
                "client_id", "type", "grant types"
            );
            for row in rows {
                println!(
                    "{:<32} {:<13} {:<40} {}",
                    row.client_id,
                    if row.confidential {
                        "confidential"
                    } else {
                        "public"
                    },
                    row.grant_types.join(","),
                    row.scopes.join(" ")
                );
            }
            Ok(())
        }
        Command::Keys(KeysCommand::List) => {
            let db = startup::open_database(&settings).await?;
            let rows = keys::list(&db).await?;
            println!(
                "{:<44} {:<6} {:<8} {:<25} {:<25} {:<25}",
                "kid", "alg", "state", "created", "activated", "published until"
            );
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| "-".to_owned())
            };
            for row in rows {
                println!(
                    "{:<44} {:<6} {:<8} {:<25} {:<25} {:<25}",
                    row.kid,
                    row.algorithm,
                    row.state,
                    when(Some(row.created_at)),
                    when(row.activated_at),
                    when(row.publish_until)
                );
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate { emergency }) => {
            let db = startup::open_database(&settings).await?;
            let master = MasterKey::load(&settings.master_key)?;
            let ring = KeyRing::start(db, master, startup::key_policy(&settings)).await?;
            ring.rotate(emergency).await?;
            if emergency {
                println!("emergency rotation done: a new key signs now; the old one is gone from the JWKS");
            } else {
                println!(
                    "rotation started: the new key is published now and signs in {}s",
                    settings.key_publish_ahead.as_secs()
                );
            }
            Ok(())
        }
        Command::Keys(KeysCommand::GenerateMasterKey) => {
            println!("{}", MasterKey::generate_encoded());
            Ok(())
        }
    }
}

/// A plain HTTP/1.0 GET of /healthz on the configured address, so the container
/// image needs no curl.
fn healthcheck(bind: std::net::SocketAddr) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut addr = bind;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    if &head[9..12] == b"200" {
        println!("ok");
        Ok(())
    } else {
        bail!("unhealthy: {}", String::from_utf8_lossy(&head))
    }
}

/// Reads a new password: prompted twice on a terminal, else one line of stdin.
fn read_new_password(min_len: usize) -> anyhow::Result<NewPassword> {
    let raw = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let second = rpassword::prompt_password("Repeat: ").context("reading the password")?;
        if first != second {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    NewPassword::parse(raw, min_len).map_err(anyhow::Error::msg)
}
