//! Builds the application from settings: database, keys, Redis, the HTTP server bound
//! to a listener (port 0 in tests), and the background jobs.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Condition};
use actix_web::{web, App, HttpServer};
use utoipa_actix_web::AppExt;

use crate::auth::users::Bootstrap;
use crate::auth::{self, OpenError, Tessera};
use crate::config::Settings;
use crate::error::{json_error_handler, path_error_handler, query_error_handler};
use crate::http::middleware::{self, request_id::REQUEST_ID_HEADER};
use crate::http::{self, AppState};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Open(#[from] OpenError),
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

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(settings.http.bind).map_err(|cause| StartupError::Bind {
                address: settings.http.bind.to_string(),
                cause,
            })?;
        Self::build_with_listener(settings, listener).await
    }

    pub async fn build_with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let tessera = Tessera::open(settings).await?;
        match auth::users::bootstrap_admin(&tessera).await {
            Ok(Bootstrap::Created(username)) => {
                tracing::info!(%username, "created the bootstrap administrator")
            }
            Ok(Bootstrap::NoUsers) => tracing::info!(
                "no users yet: create the first administrator with \
                 `tessera user create --username admin --role admin` (the password is read from stdin)"
            ),
            Ok(Bootstrap::NotNeeded) => {}
            Err(auth::BootstrapError::Invalid { variable, message }) => {
                return Err(crate::config::ConfigError { variable, message }.into())
            }
            Err(auth::BootstrapError::Failed(e)) => return Err(StartupError::Bootstrap(e.to_string())),
        }
        let metadata = http::wellknown::metadata_document(tessera.settings());
        let state = web::Data::new(AppState::new(tessera, &metadata, http::docs::document()));
        let port = listener
            .local_addr()
            .map_err(|cause| StartupError::Bind {
                address: "listener".to_owned(),
                cause,
            })?
            .port();
        let metrics = match state.settings().http.metrics_bind {
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
    pub fn handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            tessera: self.state.tessera.clone(),
        }
    }

    /// The service handle the server runs on (tests drive it directly).
    pub fn tessera(&self) -> Tessera {
        self.state.tessera.clone()
    }

    /// Serves until the server stops (SIGINT/SIGTERM: stop accepting, finish what is
    /// in flight, exit). Background jobs run alongside and stop with it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let jobs = auth::background::spawn(self.state.tessera.clone());
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

/// Stops a running [`Application`].
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    tessera: Tessera,
}

impl StopHandle {
    /// Ends the revocation streams (subscribers reconnect to another instance), then
    /// stops the server: gracefully (requests in flight finish, up to 30 s) or not.
    pub async fn stop(&self, graceful: bool) {
        self.tessera.close_streams();
        self.server.stop(graceful).await;
    }
}

/// Stops the server gracefully on SIGTERM or SIGINT (Ctrl-C) alike: no new
/// connections, requests in flight finish (up to 30 s), then it exits.
pub fn stop_on_signals(handle: StopHandle) -> tokio::task::JoinHandle<()> {
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
    let workers = state.settings().http.workers;
    let max_body = state.settings().http.max_body_bytes;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .configure(http::routes)
            .split_for_parts();
        let origins = state.settings().http.cors_origins.clone();
        app.service(http::docs::swagger_ui())
            .configure(http::pages)
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(json_error_handler),
            )
            .app_data(web::PathConfig::default().error_handler(path_error_handler))
            .app_data(web::QueryConfig::default().error_handler(query_error_handler))
            // Outermost last: request id (and its span), access log, time limit,
            // security headers, then the handler.
            .wrap(from_fn(middleware::security_headers::security_headers))
            .wrap(from_fn(middleware::timeout::timeout))
            .wrap(from_fn(middleware::access_log::access_log))
            .wrap(from_fn(middleware::request_id::request_id))
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
            REQUEST_ID_HEADER.clone(),
        ])
        .expose_headers([
            REQUEST_ID_HEADER.clone(),
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
