//! Builds the application from settings: database, keys, Redis, the HTTP server bound
//! to a listener (port 0 in tests), and the background jobs.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use utoipa_actix_web::AppExt;

use crate::auth::keys::{KeyError, KeyPolicy, KeyRing};
use crate::auth::master_key::{MasterKey, MasterKeyError};
use crate::auth::passwords::{HashError, PasswordHasher};
use crate::auth::revocation;
use crate::config::Settings;
use crate::domain::{NewPassword, Role, Username};
use crate::error::{json_error_handler, path_error_handler, query_error_handler};
use crate::http;
use crate::state::AppState;
use crate::store::denylist::{Denylist, RedisUnavailable};
use crate::store::{self, Db, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error(
        "no master key is configured (TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE) and the \
         development key file {path} does not exist, but the database holds signing keys \
         encrypted under a master key; set it (or run from the directory that holds \
         .tessera/master.key). Nothing was changed."
    )]
    MissingMasterKey { path: String },
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("redis: {0}")]
    Redis(#[from] RedisUnavailable),
    #[error("password hashing: {0}")]
    Hash(#[from] HashError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("bootstrap administrator: {0}")]
    Bootstrap(String),
    #[error("cannot listen on {address}: {cause}; set TESSERA_BIND to a free address (e.g. 127.0.0.1:8081)")]
    Bind {
        address: String,
        cause: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own listener (`TESSERA_METRICS_BIND`), and its port.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

/// Opens the database (creating and migrating it as needed) and returns the pool.
pub async fn open_database(settings: &Settings) -> Result<Db, StoreError> {
    let url = settings.database_url.clone();
    tokio::task::spawn_blocking(move || store::prepare_database(&url))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
    Ok(Db::new(
        &settings.database_url,
        settings.database_pool_size,
        settings.database_pool_timeout,
    ))
}

/// Loads the master key. The development key file is only ever created for a database
/// that holds no signing keys yet: a new key could never open the stored ones.
pub async fn load_master_key(settings: &Settings, db: &Db) -> Result<MasterKey, StartupError> {
    if let crate::config::MasterKeySource::DevelopmentFile(path) = &settings.master_key {
        let sealed = db.run(store::signing_keys::count_sealed).await?;
        if !path.exists() && sealed > 0 {
            return Err(StartupError::MissingMasterKey {
                path: path.display().to_string(),
            });
        }
    }
    Ok(MasterKey::load(&settings.master_key)?)
}

/// Creates the first administrator from configuration, on a first start only.
async fn bootstrap_admin(
    db: &Db,
    passwords: &PasswordHasher,
    admin: &crate::config::BootstrapAdmin,
    min_length: usize,
) -> Result<(), StartupError> {
    use secrecy::ExposeSecret;
    let invalid = |variable: &str, message: String| {
        StartupError::Config(crate::config::ConfigError {
            variable: variable.to_owned(),
            message,
        })
    };
    let username =
        Username::parse(&admin.username).map_err(|e| invalid("TESSERA_BOOTSTRAP_ADMIN", e))?;
    let password = NewPassword::parse(admin.password.expose_secret().to_owned(), min_length)
        .map_err(|e| invalid("TESSERA_BOOTSTRAP_ADMIN_PASSWORD_FILE", e.to_string()))?;
    let role = Role::parse(Role::ADMIN).expect("admin is a valid role");
    match crate::auth::users::create(
        db,
        passwords,
        username.clone(),
        password,
        vec![role],
        &crate::auth::Actor::command_line(),
    )
    .await
    {
        Ok(user) => {
            tracing::info!(username = %user.username, "created the bootstrap administrator");
            Ok(())
        }
        // Another instance won the race on the same first start.
        Err(crate::auth::AuthError::Conflict(_)) => Ok(()),
        Err(e) => Err(StartupError::Bootstrap(e.to_string())),
    }
}

/// Everything a request needs (database, keys, Redis, password hashing), without the
/// HTTP server: `serve` builds it, and so do CLI commands that must act exactly as the
/// admin API does (e.g. `user disable`, which revokes through Redis).
pub async fn build_state(settings: Settings) -> Result<web::Data<AppState>, StartupError> {
    let db = open_database(&settings).await?;
    let master = load_master_key(&settings, &db).await?;
    let keys = KeyRing::start(db.clone(), master, key_policy(&settings)).await?;
    let passwords = PasswordHasher::new(
        settings.bcrypt_cost,
        settings.bcrypt_max_concurrency,
        settings.bcrypt_nice,
    )
    .await?;
    let denylist = Denylist::new(&settings.redis_url, &settings.redis_prefix)?;
    if let Err(e) = denylist.ping().await {
        tracing::warn!(
            redis = %settings.redacted().redis_url,
            error = %e,
            "{REDIS_DOWN}"
        );
    }
    match denylist.eviction_policy().await.as_deref() {
        Some("noeviction") | None => {}
        Some(policy) => tracing::warn!(
            policy,
            "Redis may evict keys under memory pressure (maxmemory-policy is not \
                 noeviction): an evicted denylist entry lets a revoked token through until \
                 the next full re-assertion (at most 10 minutes); set maxmemory-policy \
                 noeviction"
        ),
    }

    let metadata = serde_json::to_vec(&http::wellknown::metadata_document(&settings))
        .expect("metadata serialises")
        .into();
    let document = http::docs::document();
    let api_paths = document
        .paths
        .paths
        .iter()
        .map(|(path, item)| (path.clone(), http::allowed_methods(item)))
        .collect();
    let openapi = document
        .to_json()
        .expect("the OpenAPI document serialises")
        .into();
    let throttle =
        crate::store::throttle::Throttle::new(denylist.connection(), &settings.redis_prefix);
    let clients = crate::auth::clients::Directory::new(db.clone());
    let profiles = crate::auth::users::Profiles::new(db.clone());
    let state = web::Data::new(AppState {
        settings,
        db,
        denylist,
        denylist_sync: Default::default(),
        throttle,
        clients,
        profiles,
        keys,
        passwords,
        metrics: crate::metrics::Metrics::new(),
        metadata,
        openapi,
        api_paths,
    });
    Ok(state)
}

pub fn key_policy(settings: &Settings) -> KeyPolicy {
    KeyPolicy {
        algorithm: settings.signing_algorithm,
        rotation_interval: settings.key_rotation_interval,
        publish_ahead: settings.key_publish_ahead,
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(settings.bind).map_err(|cause| StartupError::Bind {
            address: settings.bind.to_string(),
            cause,
        })?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let state = build_state(settings).await?;
        let users = state.db.run(store::users::count).await?;
        if let (0, Some(admin)) = (users, &state.settings.bootstrap_admin) {
            bootstrap_admin(
                &state.db,
                &state.passwords,
                admin,
                state.settings.password_min_length,
            )
            .await?;
        } else if users == 0 {
            tracing::info!(
                "no users yet: create the first administrator with \
                 `tessera user create --username admin --role admin` (the password is read from stdin)"
            );
        }
        let port = listener
            .local_addr()
            .map_err(|cause| StartupError::Bind {
                address: "listener".to_owned(),
                cause,
            })?
            .port();
        let metrics = match state.settings.metrics_bind {
            None => None,
            Some(address) => {
                let bind_error = |cause| StartupError::Bind {
                    address: address.to_string(),
                    cause,
                };
                let listener = TcpListener::bind(address).map_err(bind_error)?;
                let port = listener.local_addr().map_err(bind_error)?.port();
                Some((port, build_metrics_server(state.clone(), listener)?))
            }
        };
        let server = build_server(state.clone(), listener)?;
        Ok(Self {
            port,
            server,
            metrics,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics listener, when `TESSERA_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// Stops the server from outside (tests; signals do this in production).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until the server stops (SIGINT/SIGTERM: stop accepting, finish what is
    /// in flight, exit). Background jobs run alongside and stop with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let jobs = spawn_background_jobs(self.state.clone());
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let result = self.server.await;
        for job in jobs {
            job.abort();
        }
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        result
    }
}

/// The metrics listener: `/metrics` and nothing else, one worker.
fn build_metrics_server(
    state: web::Data<AppState>,
    listener: TcpListener,
) -> Result<Server, StartupError> {
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(http::health::metrics_text))
            .default_service(web::to(http::health::only_metrics))
    })
    .workers(1)
    .client_request_timeout(Duration::from_secs(10))
    .shutdown_timeout(5)
    .disable_signals()
    .listen(listener)
    .map_err(|cause| StartupError::Bind { address, cause })?
    .run();
    Ok(server)
}

/// Stops the server gracefully on SIGTERM or SIGINT (Ctrl-C) alike: no new
/// connections, requests in flight finish (up to 30 s), then it exits.
pub fn stop_on_signals(handle: actix_web::dev::ServerHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!("{name}: finishing the requests in flight, then stopping");
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("Ctrl-C: finishing the requests in flight, then stopping");
        }
        handle.stop(true).await;
    })
}

fn build_server(state: web::Data<AppState>, listener: TcpListener) -> Result<Server, StartupError> {
    let workers = state.settings.workers;
    let max_body = state.settings.max_body_bytes;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .configure(http::routes)
            .split_for_parts();
        let origins = state.settings.cors_origins.clone();
        app.service(http::docs::swagger_ui())
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(json_error_handler),
            )
            .app_data(web::PathConfig::default().error_handler(path_error_handler))
            .app_data(web::QueryConfig::default().error_handler(query_error_handler))
            .wrap(from_fn(http::security_headers))
            .wrap(from_fn(crate::telemetry::request_middleware))
            .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
            .default_service(web::to(http::not_found))
    })
    .workers(workers)
    .client_request_timeout(Duration::from_secs(10))
    .client_disconnect_timeout(Duration::from_secs(2))
    .shutdown_timeout(30)
    // Signals are handled by `stop_on_signals`: actix treats SIGINT as a forced stop,
    // which would drop the requests in flight when someone presses Ctrl-C.
    .disable_signals()
    .listen(listener)
    .map_err(|cause| StartupError::Bind { address, cause })?
    .run();
    Ok(server)
}

/// CORS for the configured origins only: credentials (the browser-mode cookie) are
/// allowed for exactly those, never for `*`.
fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
        .allowed_headers([
            actix_web::http::header::AUTHORIZATION,
            actix_web::http::header::CONTENT_TYPE,
            actix_web::http::header::ACCEPT,
            actix_web::http::header::HeaderName::from_static(http::browser::CSRF_HEADER),
            crate::telemetry::REQUEST_ID_HEADER.clone(),
        ])
        .expose_headers([
            crate::telemetry::REQUEST_ID_HEADER.clone(),
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::WWW_AUTHENTICATE,
        ])
        .supports_credentials()
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

const REDIS_DOWN: &str = "Redis (the revocation list and the brute-force counters) is \
    unreachable: until it is back, logins, introspection and every call that checks an \
    access token answer 503 naming it; refreshes and revocations go on (revocations are \
    pushed to Redis when it returns). Check REDIS_URL and /readyz";

/// Reloads the key set the moment any instance (or `tessera keys rotate`) announces a
/// key change, so an emergency rotation takes effect everywhere at once. While Redis
/// is unreachable the key refresh timer still picks changes up.
async fn follow_key_announcements(state: web::Data<AppState>) {
    use futures_util::StreamExt;
    let mut missed = false;
    loop {
        let subscribed =
            store::key_events::subscribe(&state.settings.redis_url, &state.settings.redis_prefix)
                .await;
        if let Ok(mut announcements) = subscribed {
            if missed {
                // Something may have been announced while we were not listening.
                if let Err(e) = state.keys.reload().await {
                    tracing::warn!(error = %e, "reloading the signing keys failed; will retry");
                }
            }
            while announcements.next().await.is_some() {
                match state.keys.reload().await {
                    Ok(()) => tracing::debug!("reloaded the signing keys on an announcement"),
                    Err(e) => {
                        tracing::warn!(error = %e, "reloading the signing keys failed; will retry")
                    }
                }
            }
        }
        missed = true;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Announces a key change made here to every instance (see
/// [`store::key_events`]); when Redis is unreachable the others pick it up within
/// `TESSERA_KEY_REFRESH_INTERVAL`, which is what the returned error says.
pub async fn announce_key_change(settings: &Settings, kid: &str) -> Result<u64, RedisUnavailable> {
    let denylist = Denylist::new(&settings.redis_url, &settings.redis_prefix)?;
    store::key_events::announce(&mut denylist.connection(), &settings.redis_prefix, kid).await
}

/// Logs when Redis goes away and when it comes back, so an operator sees why calls
/// answer 503 without reading every request's log line.
async fn watch_redis(state: web::Data<AppState>) {
    // Start-up already said whether it is reachable.
    let mut reachable = state.denylist.ping().await.is_ok();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match (state.denylist.ping().await, reachable) {
            (Ok(()), false) => {
                tracing::info!("Redis is reachable again: calls that needed it are served");
                reachable = true;
            }
            (Err(e), true) => {
                tracing::warn!(
                    redis = %state.settings.redacted().redis_url,
                    error = %e,
                    "{REDIS_DOWN}"
                );
                reachable = false;
            }
            _ => {}
        }
    }
}

/// How far back the frequent re-assertion of the denylist reaches.
const RECENT_WRITES: Duration = Duration::from_secs(300);

/// Timers every instance runs: the key life cycle (which also picks up rotations made
/// by other instances) and housekeeping.
fn spawn_background_jobs(state: web::Data<AppState>) -> Vec<tokio::task::JoinHandle<()>> {
    let keys = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(state.settings.key_refresh_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = state.keys.tick().await {
                    tracing::warn!(error = %e, "key maintenance failed; will retry");
                }
            }
        })
    };
    let denylist = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                // Every second push what Redis has not confirmed, and compare Redis's
                // `ready` marker with PostgreSQL's generation: a lost list is rebuilt
                // whole, a marker behind (an old snapshot, a replica that missed
                // writes) gets the revocations since. Every 30 s also re-assert the
                // last five minutes whatever the marker says; every 10 minutes, and at
                // start, the whole list.
                let result = if n.is_multiple_of(600) {
                    revocation::rebuild(&state, revocation::Rebuild::All).await
                } else if n.is_multiple_of(30) {
                    revocation::rebuild(&state, revocation::Rebuild::Recent(RECENT_WRITES)).await
                } else {
                    match revocation::sync_pending(&state).await {
                        Ok(_) => revocation::rebuild(&state, revocation::Rebuild::Behind).await,
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "denylist sync did not complete; will retry");
                }
                n += 1;
            }
        })
    };
    let redis_watch = tokio::spawn(watch_redis(state.clone()));
    let key_announcements = tokio::spawn(follow_key_announcements(state.clone()));
    let housekeeping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let grace = state.settings.refresh_reuse_grace.as_secs_f64();
            let result = state
                .db
                .run(move |conn| {
                    let cleared = store::refresh_tokens::clear_expired_successors(conn, grace)?;
                    let deleted = store::sessions::delete_expired(conn, 7)?;
                    Ok::<_, StoreError>((cleared, deleted))
                })
                .await;
            match result {
                Ok((cleared, deleted)) if cleared + deleted > 0 => {
                    tracing::debug!(cleared, deleted, "housekeeping");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
            }
        }
    });
    vec![keys, denylist, housekeeping, redis_watch, key_announcements]
}
