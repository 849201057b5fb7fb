//! The refresh rotation on async connections, polled by the HTTP worker's own thread,
//! and committed in groups.
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
//! **Group commit.** Most of what PostgreSQL spends on a refresh is the statement and
//! the transaction around it (the round trip, the executor's start, the commit record
//! and its WAL flush), not the row. So the rotations that arrive while a statement is
//! running wait for it, and the next statement rotates all of them: one `UPDATE` that
//! joins the sessions to the arrays of presented links ([`BATCH_SQL`]), one commit. No
//! refresh waits for a timer: with nothing running, a rotation goes out at once, alone,
//! as [`ROTATE_SQL`]. Each rotation is still one conditional update of its own row, with
//! the same conditions; what the rotations of a group share is the commit, so each is
//! answered only once all of them are durable, and a failed statement fails them all
//! (503: each client retries; when the statement committed but the answer was lost, the
//! retry falls in the grace window). Of two links of one session in a group at most one
//! matches, as of two racing statements; the other learns why, as a race's loser does
//! ([`super::refresh::state_locked`]). A group locks its rows in session id order before
//! it updates them ([`BATCH_SQL`]), as every statement that locks several sessions does,
//! so groups, role changes and logouts never wait for each other in a cycle; should
//! PostgreSQL report a deadlock anyway, the group's rotations run again one by one.
//!
//! TLS follows libpq's `sslmode` where tokio-postgres can say the same thing:
//! `disable` is plain; `prefer` and `require` use TLS (OpenSSL) without checking the
//! server's certificate, which is what libpq does in those modes when no root
//! certificate is configured. Anything else (`verify-ca`, `verify-full`, `sslrootcert`,
//! a root certificate in `~/.postgresql`, GSS encryption required, an option
//! tokio-postgres does not know) turns this path off: the rotation then runs on the
//! blocking connections, through libpq, one statement per refresh, like everything else.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use prometheus::Histogram;
use tokio::sync::oneshot;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;
use uuid::Uuid;

use super::refresh::{Rotated, Rotation, ROTATE_SQL};
use super::StoreError;

/// The most rotations one statement carries; more wait for the next one.
const MOST_PER_STATEMENT: usize = 64;

/// [`ROTATE_SQL`] for many links at once: the same assignments and conditions, each
/// link's parameters an element of the arrays `$1` to `$6` (in [`ROTATE_SQL`]'s order),
/// and each updated row returned with the position of the link that matched it (`n`,
/// from 1). Keep the two in step, and `bench/sql/pgbench_grouped_refresh.sql` with them.
///
/// The rows are locked first, in session id order, by the `ARRAY(...)` subquery (an
/// init plan: PostgreSQL runs it to the end before the update reads a row), whatever
/// plan the join gets: a nested loop over the arrays keeps their order, but on a small
/// table PostgreSQL prefers a hash join in the table's physical order. Every statement
/// that locks several sessions locks them in id order, so none of them waits for
/// another in a cycle.
pub(crate) const BATCH_SQL: &str = "WITH b AS MATERIALIZED (
    SELECT *
      FROM unnest($1::float8[], $2::text[], $3::text[], $4::uuid[], $5::int8[], $6::text[])
           WITH ORDINALITY AS b(idle_seconds, ip, user_agent, id, generation, client_id, n)
)
UPDATE sessions AS s
    SET generation = s.generation + 1,
        rotated_at = now(),
        last_used_at = now(),
        refresh_expires_at = LEAST(now() + make_interval(secs => b.idle_seconds), s.expires_at),
        ip = COALESCE(b.ip, s.ip),
        user_agent = COALESCE(b.user_agent, s.user_agent)
   FROM b
  WHERE s.id = b.id
    AND s.id = ANY (ARRAY(SELECT id FROM sessions WHERE id IN (SELECT id FROM b)
                           ORDER BY id FOR UPDATE))
    AND s.generation = b.generation
    AND s.client_id = b.client_id
    AND s.revoked_at IS NULL
    AND s.expires_at > now()
    AND s.refresh_expires_at > now()
RETURNING b.n, s.user_id, s.scope, s.username, s.roles, s.generation,
          floor(extract(epoch FROM clock_timestamp()))::bigint";

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
    /// Rotations per statement.
    grouped: Histogram,
}

thread_local! {
    /// This thread's lanes, by [`RotationPools::id`] (tests run several servers in one
    /// process).
    static LANES: RefCell<HashMap<u64, Arc<Lane>>> = RefCell::new(HashMap::new());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// `application_name` of the rotation's connections, unless the URL names one.
pub(crate) const APPLICATION_NAME: &str = "tessera refresh";

/// One worker thread's rotations: its pool, and the rotations waiting for a statement.
struct Lane {
    pool: Pool,
    /// Statements in flight at most: one per connection of the pool.
    writers: usize,
    grouped: Histogram,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// Tasks running statements now ([`drain`]).
    writers: usize,
}

/// A rotation waiting for its statement, and where its outcome goes.
struct Waiting {
    link: Link,
    answer: oneshot::Sender<Outcome>,
}

type Outcome = Result<Option<Rotated>, StoreError>;

/// A [`Rotation`] with its own strings, to wait in a [`Queue`].
struct Link {
    session_id: Uuid,
    generation: i64,
    client_id: String,
    idle_seconds: f64,
    ip: Option<String>,
    user_agent: Option<String>,
}

impl Link {
    fn of(r: &Rotation<'_>) -> Self {
        Self {
            session_id: r.session_id,
            generation: r.generation,
            client_id: r.client_id.to_owned(),
            idle_seconds: r.idle_seconds,
            ip: r.ip.map(str::to_owned),
            user_agent: r.user_agent.map(str::to_owned),
        }
    }
}

impl RotationPools {
    /// `connections` in all, shared out among `workers` HTTP worker threads; `grouped`
    /// observes how many rotations each statement carried.
    pub(crate) fn new(
        database_url: &str,
        connections: u32,
        workers: usize,
        wait: Duration,
        grouped: Histogram,
    ) -> Self {
        let setup = match async_config(database_url) {
            Ok(config) => match tls_connector() {
                Ok(tls) => Some(Setup {
                    config,
                    tls,
                    per_worker: (connections as usize).div_ceil(workers.max(1)).max(1),
                    wait,
                    grouped,
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

    /// The rotation of [`super::refresh::rotate`], in the next statement of this
    /// thread's lane; `None` when this path is off (the caller then uses the blocking
    /// connections).
    #[tracing::instrument(name = "refresh_token.rotate", level = "debug", skip_all)]
    pub(crate) async fn rotate(&self, r: &Rotation<'_>) -> Option<Outcome> {
        let setup = self.setup.as_ref()?;
        let lane = LANES.with(|lanes| {
            lanes
                .borrow_mut()
                .entry(self.id)
                .or_insert_with(|| Arc::new(Lane::new(setup)))
                .clone()
        });
        let (answer, outcome) = oneshot::channel();
        let start_writer = {
            let mut queue = lane.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push(Waiting {
                link: Link::of(r),
                answer,
            });
            let start = queue.writers < lane.writers;
            if start {
                queue.writers += 1;
            }
            start
        };
        if start_writer {
            // A task of its own, not this request's future: a client that hangs up does
            // not cancel a statement that carries other clients' rotations. Spawned from
            // the worker thread, it runs there.
            tokio::spawn(drain(lane));
        }
        Some(outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the rotation's statement was abandoned".into(),
            ))
        }))
    }
}

impl Lane {
    fn new(setup: &Setup) -> Self {
        let manager = Manager::from_config(
            setup.config.clone(),
            setup.tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(setup.per_worker)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(setup.wait))
            .create_timeout(Some(setup.wait))
            .build()
            .expect("a pool with a runtime and timeouts builds");
        Self {
            pool,
            writers: setup.per_worker,
            grouped: setup.grouped.clone(),
            queue: Mutex::default(),
        }
    }
}

/// Runs statements for the lane's waiting rotations, all that are waiting (up to
/// [`MOST_PER_STATEMENT`]) in each, until none is left.
async fn drain(lane: Arc<Lane>) {
    let mut writer = Writer {
        lane: lane.clone(),
        counted: true,
    };
    loop {
        let group: Vec<Waiting> = {
            let mut queue = lane.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.waiting.is_empty() {
                // Under the same lock as the check, so a rotation queued after it
                // finds one writer fewer and starts its own.
                queue.writers -= 1;
                writer.counted = false;
                return;
            }
            let take = queue.waiting.len().min(MOST_PER_STATEMENT);
            let mut group: Vec<Waiting> = queue.waiting.drain(..take).collect();
            // The order the statement locks the rows in (see `BATCH_SQL`).
            group.sort_by_key(|w| w.link.session_id);
            group
        };
        lane.grouped.observe(group.len() as f64);
        let links: Vec<&Link> = group.iter().map(|w| &w.link).collect();
        let outcomes = rotate_group(&lane.pool, &links).await;
        for (waiting, outcome) in group.into_iter().zip(outcomes) {
            // A client that hung up no longer waits; its rotation stands, and its retry
            // within the grace window gets the same successor.
            let _ = waiting.answer.send(outcome);
        }
    }
}

/// A running [`drain`]. Should the task end early (a panic, the runtime shutting down),
/// it gives its place back and fails what is waiting, so nothing queued is left without
/// a writer.
struct Writer {
    lane: Arc<Lane>,
    /// Still counted in [`Queue::writers`].
    counted: bool,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut queue = self
            .lane
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        queue.writers -= 1;
        for waiting in queue.waiting.drain(..) {
            let _ = waiting.answer.send(Err(StoreError::Unavailable(
                "the rotation's statement was abandoned".into(),
            )));
        }
    }
}

/// Rotates `links` in one statement; their outcomes, in their order.
async fn rotate_group(pool: &Pool, links: &[&Link]) -> Vec<Outcome> {
    let client = match pool.get().await {
        Ok(client) => client,
        Err(e) => return failed(links.len(), &StoreError::Unavailable(e.to_string())),
    };
    if let [link] = links {
        return vec![rotate_one(&client, link).await];
    }
    match rotate_many(&client, links).await {
        Ok(outcomes) => outcomes,
        Err(e) if e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED) => {
            tracing::info!("a group of rotations met a deadlock; rotating them one by one");
            let mut outcomes = Vec::with_capacity(links.len());
            for link in links {
                outcomes.push(rotate_one(&client, link).await);
            }
            outcomes
        }
        Err(e) => failed(links.len(), &query_error(&e)),
    }
}

/// `e` as the outcome of each of `count` rotations.
fn failed(count: usize, e: &StoreError) -> Vec<Outcome> {
    (0..count)
        .map(|_| {
            Err(match e {
                StoreError::Corrupt(reason) => StoreError::Corrupt(reason.clone()),
                StoreError::Unavailable(reason) => StoreError::Unavailable(reason.clone()),
                other => StoreError::Unavailable(other.to_string()),
            })
        })
        .collect()
}

async fn rotate_one(client: &deadpool_postgres::Client, link: &Link) -> Outcome {
    let statement = client
        .prepare_cached(ROTATE_SQL)
        .await
        .map_err(|e| query_error(&e))?;
    let row = client
        .query_opt(
            &statement,
            &[
                &link.idle_seconds,
                &link.ip,
                &link.user_agent,
                &link.session_id,
                &link.generation,
                &link.client_id,
            ],
        )
        .await
        .map_err(|e| query_error(&e))?;
    row.map(|row| rotated(&row, 0)).transpose()
}

/// [`BATCH_SQL`] for `links`, in session id order (the order their rows are locked
/// in).
async fn rotate_many(
    client: &deadpool_postgres::Client,
    links: &[&Link],
) -> Result<Vec<Outcome>, tokio_postgres::Error> {
    let idle: Vec<f64> = links.iter().map(|l| l.idle_seconds).collect();
    let ips: Vec<Option<&str>> = links.iter().map(|l| l.ip.as_deref()).collect();
    let agents: Vec<Option<&str>> = links.iter().map(|l| l.user_agent.as_deref()).collect();
    let ids: Vec<Uuid> = links.iter().map(|l| l.session_id).collect();
    let generations: Vec<i64> = links.iter().map(|l| l.generation).collect();
    let clients: Vec<&str> = links.iter().map(|l| l.client_id.as_str()).collect();
    let statement = client.prepare_cached(BATCH_SQL).await?;
    let rows = client
        .query(
            &statement,
            &[&idle, &ips, &agents, &ids, &generations, &clients],
        )
        .await?;
    let mut outcomes: Vec<Outcome> = (0..links.len()).map(|_| Ok(None)).collect();
    for row in rows {
        let n: i64 = match row.try_get(0) {
            Ok(n) => n,
            Err(e) => return Ok(failed(links.len(), &corrupt(&e))),
        };
        let Some(at) = usize::try_from(n - 1).ok().filter(|&k| k < links.len()) else {
            return Ok(failed(
                links.len(),
                &StoreError::Corrupt(format!("rotation row for link {n} of {}", links.len())),
            ));
        };
        outcomes[at] = rotated(&row, 1).map(Some);
    }
    Ok(outcomes)
}

/// The [`Rotated`] in `row`, its columns from `first` on.
fn rotated(row: &Row, first: usize) -> Result<Rotated, StoreError> {
    Ok(Rotated {
        user_id: row.try_get(first).map_err(|e| corrupt(&e))?,
        scope: row.try_get(first + 1).map_err(|e| corrupt(&e))?,
        username: row.try_get(first + 2).map_err(|e| corrupt(&e))?,
        roles: row.try_get(first + 3).map_err(|e| corrupt(&e))?,
        generation: row.try_get(first + 4).map_err(|e| corrupt(&e))?,
        issued_at: row.try_get(first + 5).map_err(|e| corrupt(&e))?,
    })
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
