use std::io::{BufRead, IsTerminal};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use tessera::auth::master_key::MasterKey;
use tessera::auth::{keys, Tessera};
use tessera::config::{MasterKeySource, Settings, Source, VARIABLES};
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
    /// Read the audit log, newest first (as GET /v1/admin/audit).
    Audit {
        /// Only events about or by this user (a username or a user id).
        #[arg(long)]
        user: Option<String>,
        /// Only this action, e.g. login.failed or admin.user.disabled.
        #[arg(long)]
        action: Option<String>,
        /// Only events at or after this RFC 3339 time, e.g. 2026-12-01T00:00:00Z.
        #[arg(long)]
        since: Option<String>,
        /// Only events before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// At most this many events (1 to 10000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Create a client. A confidential client's secret is printed once; only its hash
    /// is stored.
    Create {
        /// The client_id (letters, digits, . _ : -); generated when omitted.
        #[arg(long)]
        id: Option<String>,
        /// A display name (shown on consent pages and in lists); defaults to the id.
        #[arg(long)]
        name: Option<String>,
        /// A confidential client (it gets a secret); otherwise public.
        #[arg(long)]
        confidential: bool,
        /// An allowed grant type; repeat for several (authorization_code, refresh_token,
        /// client_credentials, password).
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
        /// Where the browser may be sent back with a code (authorization_code); repeat
        /// for several. Matched exactly; https, or http on localhost/127.0.0.1/[::1].
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Where the browser may be sent after signing out (/oauth/logout); repeat.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// The operator's own app: its users see no consent page.
        #[arg(long)]
        first_party: bool,
    },
    /// List clients.
    List,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from standard input (one line) or, on a
    /// terminal, prompted for twice; it is never taken from the command line.
    Create {
        /// The login name: letters, digits and . _ @ - (stored in lower case).
        #[arg(long)]
        username: String,
        /// A role to give the user; repeat for several (e.g. --role admin).
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    /// List users by username (as GET /v1/admin/users).
    List {
        /// Only users whose name contains this, case-insensitive.
        #[arg(long)]
        search: Option<String>,
    },
    /// Disable a user: every session and live token of theirs is revoked at once (as
    /// PATCH /v1/admin/users/{id} with {"disabled": true}). Needs Redis.
    Disable {
        /// The user's username.
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys with their state and dates (no private material).
    List,
    /// Start a rotation: a new key is published now and signs after the publish-ahead
    /// time. With --emergency the old key stops signing and leaves the JWKS at once.
    Rotate {
        /// The current key may be compromised: replace it now. The old key leaves the
        /// JWKS at once and every token it signed stops verifying, on every instance.
        #[arg(long)]
        emergency: bool,
    },
    /// Print a new random master key (base64) for TESSERA_MASTER_KEY.
    GenerateMasterKey,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let loaded = Source::from_env().and_then(|source| {
        let settings = Settings::from_source(&source)?;
        Ok((settings, source.unknown_variables()))
    });
    let (settings, unknown) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("tessera: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(settings.log.format, &settings.log.filter);
    for variable in &unknown {
        tracing::warn!(variable = %variable.name, "{variable}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {}", error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each once: many messages already quote their cause, and
/// printing the chain as well would say everything twice.
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings.clone()).await?;
            tracing::info!(
                address = %settings.http.bind,
                issuer = %settings.issuer,
                "Tessera is listening"
            );
            let signals = startup::stop_on_signals(app.handle());
            app.run_until_stopped().await?;
            signals.abort();
            tracing::info!("stopped");
            Ok(())
        }
        Command::Healthcheck => healthcheck(settings.http.bind),
        Command::Openapi => {
            print!("{}", tessera::http::docs::document_yaml());
            Ok(())
        }
        Command::Migrate => {
            Tessera::migrate(&settings).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::CheckConfig => {
            match &settings.keys.master_key {
                // Only read here: check-config never creates a key file.
                MasterKeySource::File(_) | MasterKeySource::Inline(_) => {
                    MasterKey::load(&settings.keys.master_key)?;
                }
                MasterKeySource::DevelopmentFile(path) => println!(
                    "master key: none configured; the development key file {} {} (dev only)",
                    path.display(),
                    if path.exists() {
                        "is used"
                    } else {
                        "will be created on the first start with an empty database"
                    }
                ),
            }
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
            let password = read_new_password(settings.passwords.min_length)?;
            let tessera = Tessera::open_admin(settings).await?;
            let user = auth::users::create(
                &tessera,
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
            redirect_uris,
            post_logout_redirect_uris,
            first_party,
        }) => {
            let ttl = access_token_ttl
                .map(|t| tessera::config::parse_duration(&t).map(|d| d.as_secs() as i64))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let tessera = Tessera::open_admin(settings.clone()).await?;
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
                redirect_uris: Some(redirect_uris),
                post_logout_redirect_uris: Some(post_logout_redirect_uris),
                first_party: first_party.then_some(true),
            };
            let (row, secret) =
                auth::clients::create(&tessera, spec, &auth::Actor::command_line()).await?;
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
            if row.audiences.is_empty() {
                println!(
                    "audiences:     none: its tokens are for Tessera itself (aud {})",
                    settings.own_audience()
                );
            } else {
                println!("audiences:     {}", row.audiences.join(" "));
            }
            if let Some(ttl) = row.access_token_ttl_seconds {
                println!("token ttl:     {ttl}s");
            }
            println!(
                "browser mode:  {}",
                if row.browser_mode {
                    "on (refresh token only in an HttpOnly cookie)"
                } else {
                    "off"
                }
            );
            if row.introspect_any {
                println!("introspection: any token");
            }
            if row.first_party {
                println!("first party:   yes (no consent page)");
            }
            for uri in &row.redirects.redirect_uris {
                println!("redirect uri:  {uri}");
            }
            for uri in &row.redirects.post_logout_redirect_uris {
                println!("after logout:  {uri}");
            }
            if let Some(secret) = secret {
                use secrecy::ExposeSecret;
                println!("client_secret: {}", secret.expose_secret());
                println!("(shown once: store it now; only its hash is kept)");
            }
            Ok(())
        }
        Command::User(UserCommand::List { search }) => {
            let tessera = Tessera::open_admin(settings).await?;
            let mut after = None;
            println!("{:<36} {:<32} {:<9} roles", "id", "username", "status");
            loop {
                let rows = auth::users::list(
                    &tessera,
                    search.clone().filter(|q| !q.is_empty()),
                    after,
                    500,
                )
                .await?;
                for user in &rows {
                    println!(
                        "{:<36} {:<32} {:<9} {}",
                        user.id,
                        user.username,
                        if user.disabled { "disabled" } else { "active" },
                        user.roles.join(",")
                    );
                }
                if rows.len() < 500 {
                    break;
                }
                after = rows.last().map(|u| u.username.clone());
            }
            Ok(())
        }
        Command::User(UserCommand::Disable { username }) => {
            let tessera = Tessera::open_admin(settings).await?;
            let user = auth::users::find_by_username(&tessera, &username).await?;
            let user = auth::users::update(
                &tessera,
                user.id,
                None,
                Some(true),
                &auth::Actor::command_line(),
            )
            .await?;
            println!(
                "disabled user {} (id {}): every session and token of theirs is revoked",
                user.username, user.id
            );
            Ok(())
        }
        Command::Audit {
            user,
            action,
            since,
            until,
            limit,
        } => {
            if !(1..=10_000).contains(&limit) {
                bail!("--limit must be from 1 to 10000");
            }
            let tessera = Tessera::open_admin(settings).await?;
            let user_id = match user {
                Some(u) if uuid::Uuid::parse_str(&u).is_ok() => Some(u),
                Some(name) => Some(
                    auth::users::find_by_username(&tessera, &name)
                        .await?
                        .id
                        .to_string(),
                ),
                None => None,
            };
            let filter = auth::audit::AuditQuery {
                user_id,
                action,
                since,
                until,
            }
            .parse()?;
            let rows = auth::audit::list(&tessera, filter, None, limit).await?;
            println!(
                "{:<20} {:<28} {:<36} {:<36} details",
                "at", "action", "user", "actor"
            );
            let id = |id: Option<uuid::Uuid>| {
                id.map(|i| i.to_string()).unwrap_or_else(|| "-".to_owned())
            };
            for row in rows {
                println!(
                    "{:<20} {:<28} {:<36} {:<36} {}",
                    row.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    row.action,
                    id(row.user_id),
                    id(row.actor_id),
                    row.details
                );
            }
            Ok(())
        }
        Command::Client(ClientCommand::List) => {
            let tessera = Tessera::open_admin(settings).await?;
            println!(
                "{:<32} {:<13} {:<40} scopes",
                "client_id", "type", "grant types"
            );
            let mut after = None;
            loop {
                let rows = auth::clients::list(&tessera, after, 500).await?;
                for row in &rows {
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
                if rows.len() < 500 {
                    break;
                }
                after = rows
                    .last()
                    .and_then(|c| tessera::domain::ClientId::parse(&c.client_id).ok());
            }
            Ok(())
        }
        Command::Keys(KeysCommand::List) => {
            let tessera = Tessera::open_admin(settings).await?;
            let rows = keys::list(&tessera).await?;
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
            let refresh_interval = settings.keys.refresh_interval;
            let tessera = Tessera::open(settings).await?;
            let report = keys::rotate(&tessera, emergency, &auth::Actor::command_line()).await?;
            let rotation = report.rotation;
            let signs_at = rotation
                .signs_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if let Some(dropped) = &rotation.dropped {
                println!(
                    "emergency rotation done: key {} signs now; key {dropped} is gone from the JWKS \
                     and the tokens it signed no longer verify",
                    rotation.kid
                );
            } else if emergency {
                println!("emergency rotation done: key {} signs now", rotation.kid);
            } else if rotation.already_pending {
                println!(
                    "a rotation was already pending: key {} was published before and signs from \
                     {signs_at}; no new key was created",
                    rotation.kid
                );
            } else {
                println!(
                    "rotation started: key {} is published now and signs from {signs_at}",
                    rotation.kid
                );
            }
            match report.announced {
                Ok(instances) => {
                    println!("{instances} running instance(s) reloaded their keys")
                }
                Err(e) => println!(
                    "could not tell running instances ({e}); they pick the change up within \
                     TESSERA_KEY_REFRESH_INTERVAL ({}s)",
                    refresh_interval.as_secs_f64()
                ),
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
