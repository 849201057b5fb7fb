//! The refresh rotation on async connections, polled by the HTTP worker's own thread.
//!
//! Every other query runs on diesel's blocking connections ([`super::Db::run`]): the
//! worker hands the query to a blocking thread, which sends it, sleeps on the socket
//! until PostgreSQL answers and wakes the worker again. Profiling a refresh put a third
//! of Tessera's CPU per refresh in the scheduler for those hand-offs
//! (docs/benchmarks.md). The rotation, the statement Tessera runs most, goes instead
//! through tokio-postgres on a pool that belongs to the HTTP worker thread
//! (deadpool-postgres, made on the thread's first refresh): its socket is polled by the
//! worker's event loop between requests, and no other thread is involved.
//!
//! TLS follows libpq's `sslmode` where tokio-postgres can say the same thing:
//! `disable` is plain; `prefer` and `require` use TLS (OpenSSL) without checking the
//! server's certificate, which is what libpq does in those modes when no root
//! certificate is configured. Anything else (`verify-ca`, `verify-full`, `sslrootcert`,
//! a root certificate in `~/.postgresql`, GSS encryption required, an option
//! tokio-postgres does not know) turns this path off: the rotation then runs on the
//! blocking connections, through libpq, like everything else.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;

use super::refresh::{Rotated, Rotation, ROTATE_SQL};
use super::StoreError;

/// Where the rotation's async connections come from; `None` when the configuration asks
/// for something only libpq does.
pub(crate) struct RotationPools {
    id: u64,
    setup: Option<Setup>,
}

struct Setup {
    config: tokio_postgres::Config,
    tls: MakeTlsConnector,
    per_worker: usize,
    wait: Duration,
}

thread_local! {
    /// This thread's pools, by [`RotationPools::id`] (tests run several servers in one
    /// process).
    static POOLS: RefCell<HashMap<u64, Pool>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// `application_name` of the rotation's connections, unless the URL names one.
pub(crate) const APPLICATION_NAME: &str = "tessera refresh";

impl RotationPools {
    /// `connections` in all, shared out among `workers` HTTP worker threads.
    pub(crate) fn new(
        database_url: &str,
        connections: u32,
        workers: usize,
        wait: Duration,
    ) -> Self {
        let setup = match async_config(database_url) {
            Ok(config) => match tls_connector() {
                Ok(tls) => Some(Setup {
                    config,
                    tls,
                    per_worker: (connections as usize).div_ceil(workers.max(1)).max(1),
                    wait,
                }),
                Err(e) => {
                    tracing::info!(error = %e, "refreshes use the blocking connections: no TLS for async ones");
                    None
                }
            },
            Err(reason) => {
                tracing::info!(%reason, "refreshes use the blocking connections (libpq)");
                None
            }
        };
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            setup,
        }
    }

    /// The rotation of [`super::refresh::rotate`] on this thread's async pool; `None`
    /// when this path is off (the caller then uses the blocking connections).
    #[tracing::instrument(name = "refresh_token.rotate", level = "debug", skip_all)]
    pub(crate) async fn rotate(
        &self,
        r: &Rotation<'_>,
    ) -> Option<Result<Option<Rotated>, StoreError>> {
        let setup = self.setup.as_ref()?;
        let pool = POOLS.with(|pools| {
            pools
                .borrow_mut()
                .entry(self.id)
                .or_insert_with(|| build_pool(setup))
                .clone()
        });
        Some(run(&pool, r).await)
    }
}

fn build_pool(setup: &Setup) -> Pool {
    let manager = Manager::from_config(
        setup.config.clone(),
        setup.tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(setup.per_worker)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(setup.wait))
        .create_timeout(Some(setup.wait))
        .build()
        .expect("a pool with a runtime and timeouts builds")
}

async fn run(pool: &Pool, r: &Rotation<'_>) -> Result<Option<Rotated>, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let statement = client
        .prepare_cached(ROTATE_SQL)
        .await
        .map_err(|e| query_error(&e))?;
    let row = client
        .query_opt(
            &statement,
            &[
                &r.idle_seconds,
                &r.ip,
                &r.user_agent,
                &r.session_id,
                &r.generation,
                &r.client_id,
            ],
        )
        .await
        .map_err(|e| query_error(&e))?;
    row.map(|row| {
        Ok(Rotated {
            user_id: row.try_get(0).map_err(|e| corrupt(&e))?,
            scope: row.try_get(1).map_err(|e| corrupt(&e))?,
            username: row.try_get(2).map_err(|e| corrupt(&e))?,
            roles: row.try_get(3).map_err(|e| corrupt(&e))?,
            generation: row.try_get(4).map_err(|e| corrupt(&e))?,
            issued_at: row.try_get(5).map_err(|e| corrupt(&e))?,
        })
    })
    .transpose()
}

/// A query that failed: PostgreSQL's own refusal (a database error) or, far more likely
/// for this statement, a connection that broke; both leave the refresh unanswered, so
/// both answer 503 (the client retries with the same token, within the grace window).
fn query_error(e: &tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: &tokio_postgres::Error) -> StoreError {
    StoreError::Corrupt(format!("rotation row: {e}"))
}

/// The database URL as tokio-postgres reads it, if it asks for nothing only libpq does.
pub(super) fn async_config(database_url: &str) -> Result<tokio_postgres::Config, String> {
    // Not through `url::Url`: a URL naming several hosts (`h1:5432,h2:5432`, for
    // failover) is no URL to it, while libpq and tokio-postgres both read it.
    let (base, query) = database_url.split_once('?').unwrap_or((database_url, ""));
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match (name.as_ref(), value.as_ref()) {
            ("sslmode", "disable" | "prefer" | "require") => {
                kept.append_pair(&name, &value);
            }
            ("sslmode", other) => return Err(format!("sslmode={other}")),
            // tokio-postgres never uses GSS encryption: the same as `disable`, and as
            // `prefer` without Kerberos credentials.
            ("gssencmode", "disable" | "prefer") => {}
            ("gssencmode", other) => return Err(format!("gssencmode={other}")),
            ("sslrootcert" | "sslcert" | "sslkey" | "sslcrl" | "requiressl", _) => {
                return Err(format!("{name} is set"))
            }
            _ => {
                kept.append_pair(&name, &value);
            }
        }
    }
    let kept = kept.finish();
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{kept}")
    };
    if root_certificate_in_home() {
        return Err("~/.postgresql/root.crt exists (libpq would check the certificate)".into());
    }
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    if config.get_application_name().is_none() {
        // So operators (and tests) tell these connections apart in pg_stat_activity.
        config.application_name(APPLICATION_NAME);
    }
    Ok(config)
}

fn root_certificate_in_home() -> bool {
    std::env::var_os("HOME")
        .map(|home| {
            std::path::Path::new(&home)
                .join(".postgresql/root.crt")
                .exists()
        })
        .unwrap_or(false)
}

/// TLS for `prefer` and `require`: encrypted, the certificate not checked (libpq's
/// meaning of those modes without a root certificate).
pub(super) fn tls_connector() -> Result<MakeTlsConnector, openssl::error::ErrorStack> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    builder.set_verify(SslVerifyMode::NONE);
    let mut tls = MakeTlsConnector::new(builder.build());
    tls.set_callback(|config, _| {
        // No hostname check either, as libpq in these modes.
        config.set_verify_hostname(false);
        Ok(())
    });
    Ok(tls)
}

#[cfg(test)]
mod tests {
    use super::async_config;

    #[test]
    fn what_only_libpq_can_do_turns_the_async_path_off() {
        for url in [
            "postgres://u@h/db?sslmode=verify-full",
            "postgres://u@h/db?sslmode=verify-ca",
            "postgres://u@h/db?sslrootcert=/etc/ca.pem",
            "postgres://u@h/db?gssencmode=require",
        ] {
            assert!(async_config(url).is_err(), "{url}");
        }
    }

    #[test]
    fn plain_and_opportunistic_tls_urls_are_read() {
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@h/db?sslmode=disable&gssencmode=disable",
            "postgres://u:p@h:5433/db?sslmode=require&application_name=tessera",
        ] {
            assert!(async_config(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn failover_urls_keep_every_host_and_the_session_kind() {
        let config = async_config(
            "postgres://u@10.0.0.1:5432,10.0.0.2:5433/db?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(config.get_hosts().len(), 2);
        assert_eq!(config.get_ports(), [5432, 5433]);
        assert_eq!(
            config.get_target_session_attrs(),
            tokio_postgres::config::TargetSessionAttrs::ReadWrite
        );
    }
}
