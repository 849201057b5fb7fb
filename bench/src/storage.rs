//! Storage that never grows per refresh: `--storage-refreshes` (1,000,000) refreshes
//! over `--storage-sessions` (1,000) sessions, each session refreshed in a chain with
//! the refresh token the previous answer returned, and the database's size before and
//! after.
//!
//! It runs on a private PostgreSQL cluster (initdb, every setting at its default but
//! the port): autovacuum must be on at its defaults, as in production, and the shared
//! server of this machine may run with it off. A session is never refreshed twice at
//! once: connections take the next idle session from a queue and put it back with its
//! successor token when the answer is in. A refresh that fails is counted, reported
//! and its session retired (its chain cannot go on without the answer); there must be
//! none.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::time::{sleep, timeout, Instant};

use crate::http::{Connection, RequestTemplate};
use crate::machine::{CpuSnapshot, CpuUse};
use crate::postgres::Postgres;
use crate::private::PrivatePostgres;
use crate::report::{self, CpuPerRefresh};
use crate::resilience::{refresh_form, Deployment};
use crate::server::TesseraServer;
use crate::writes::Counters;
use crate::Args;

/// Growth of the database over the run still counted as "within a few MB".
const GROWTH_GOAL_BYTES: u64 = 5 * 1024 * 1024;
/// One refresh that takes longer than this has failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often progress and sizes are printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// The sessions' chains, shared by the connections.
struct Chains {
    /// The current refresh token of every session not in flight.
    idle: Mutex<VecDeque<String>>,
    /// Sessions not retired by a failure.
    live: AtomicU64,
    /// Refreshes started; none starts past `limit`.
    started: AtomicU64,
    limit: u64,
    ok: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl Chains {
    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.first_failure
            .lock()
            .expect("no panic while holding the lock")
            .get_or_insert(why);
    }

    /// The next idle session's token; `None` once every session is retired.
    async fn next(&self) -> Option<String> {
        loop {
            let next = self
                .idle
                .lock()
                .expect("no panic while holding the lock")
                .pop_front();
            if next.is_some() {
                return next;
            }
            if self.live.load(Ordering::Relaxed) == 0 {
                return None;
            }
            // Every live session is in flight (fewer sessions than connections).
            sleep(Duration::from_millis(1)).await;
        }
    }

    fn put_back(&self, token: String) {
        self.idle
            .lock()
            .expect("no panic while holding the lock")
            .push_back(token);
    }
}

/// The successor token of a 2xx token response.
fn successor(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json["refresh_token"].as_str().map(str::to_owned)
}

async fn chain_client(addr: SocketAddr, template: RequestTemplate, chains: Arc<Chains>) {
    let mut connection: Option<Connection> = None;
    while chains.started.fetch_add(1, Ordering::Relaxed) < chains.limit {
        let Some(token) = chains.next().await else {
            break;
        };
        let request = template.request_with_body(refresh_form(&token));
        let exchange = async {
            let open = match &mut connection {
                Some(open) => open,
                None => connection.insert(Connection::open(addr).await?),
            };
            open.send(request).await
        };
        match timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok((status, body))) if status.is_success() => match successor(&body) {
                Some(next) => {
                    chains.ok.fetch_add(1, Ordering::Relaxed);
                    chains.put_back(next);
                }
                None => chains.fail(format!("HTTP {status} without a refresh_token")),
            },
            Ok(Ok((status, body))) => {
                // Error bodies are RFC 6749 / RFC 9457 documents: no secrets.
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
                chains.fail(format!("HTTP {status}: {text}"));
            }
            Ok(Err(error)) => {
                connection = None;
                chains.fail(format!("{error:#}"));
            }
            Err(_) => {
                connection = None;
                chains.fail(format!("no answer within {REQUEST_TIMEOUT:?}"));
            }
        }
    }
}

/// pg_database_size and pg_total_relation_size('sessions'), bytes.
fn sizes(pg: &Postgres) -> anyhow::Result<(u64, u64)> {
    let out = pg.query(
        "SELECT pg_database_size(current_database()) || '|' || pg_total_relation_size('sessions')",
    )?;
    let (db, sessions) = out.split_once('|').context("two sizes")?;
    Ok((db.parse()?, sessions.parse()?))
}

/// Dead row versions in sessions and the autovacuum runs on it so far.
fn vacuum_state(pg: &Postgres) -> String {
    pg.query(
        "SELECT 'sessions: ' || n_live_tup || ' live, ' || n_dead_tup || ' dead row versions, ' \
              || autovacuum_count || ' autovacuums, last ' || COALESCE(last_autovacuum::text, 'never') \
           FROM pg_stat_user_tables WHERE relname = 'sessions'",
    )
    .unwrap_or_else(|e| format!("({e:#})"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_sizes(when: &str, (db, sessions): (u64, u64)) {
    println!(
        "    {when:<7} pg_database_size {db} bytes ({:.2} MiB), pg_total_relation_size('sessions') \
         {sessions} bytes ({:.2} MiB)",
        mib(db),
        mib(sessions)
    );
}

/// Prints progress every half minute until the chains are done.
async fn progress(pg: Postgres, chains: Arc<Chains>, start: Instant) {
    let mut next = start + PROGRESS_EVERY;
    loop {
        tokio::time::sleep_until(next).await;
        next += PROGRESS_EVERY;
        let pg = pg.clone();
        // psql on a blocking thread: the driver's runtime may have one thread only.
        let read = tokio::task::spawn_blocking(move || (sizes(&pg), vacuum_state(&pg))).await;
        let ok = chains.ok.load(Ordering::Relaxed);
        let failed = chains.failed.load(Ordering::Relaxed);
        let elapsed = start.elapsed().as_secs_f64();
        let size = match &read {
            Ok((Ok((db, sessions)), _)) => {
                format!(
                    "database {:.2} MiB, sessions {:.2} MiB",
                    mib(*db),
                    mib(*sessions)
                )
            }
            _ => "sizes unavailable".to_owned(),
        };
        let vacuum = read.map(|(_, v)| v).unwrap_or_default();
        println!(
            "    {elapsed:>5.0} s: {ok} refreshes ({:.0}/s), {failed} failed; {size}; {vacuum}",
            ok as f64 / elapsed
        );
    }
}

/// The storage scenario; whether every refresh succeeded.
pub async fn storage(args: &Args) -> anyhow::Result<bool> {
    let sessions = args.storage_sessions.max(1);
    let refreshes = args.storage_refreshes;
    report::step(&format!(
        "storage: {refreshes} refreshes over {sessions} sessions, each chained on the token \
         the previous answer returned, {} connections, on a private PostgreSQL at its defaults",
        args.connections
    ));
    let private = PrivatePostgres::start(&std::env::temp_dir())?;
    let deployment = Deployment::prepare(
        args,
        &private.server_url(),
        &args.redis,
        "storage",
        &[],
        sessions,
    )?;
    let result = run(args, &deployment, sessions, refreshes).await;
    deployment.clean_up();
    // The private server goes last: the clean-up above still talks to it.
    drop(private);
    result
}

async fn run(
    args: &Args,
    deployment: &Deployment,
    sessions: u64,
    refreshes: u64,
) -> anyhow::Result<bool> {
    let pg = &deployment.pg;
    println!(
        "    settings: {}",
        pg.query(
            "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings \
              WHERE name IN ('autovacuum', 'autovacuum_naptime', 'autovacuum_vacuum_scale_factor', \
                             'autovacuum_vacuum_threshold', 'autovacuum_vacuum_cost_limit', \
                             'fsync', 'synchronous_commit', 'shared_buffers')"
        )?
    );
    println!(
        "    sessions table options: {}",
        pg.query("SELECT COALESCE(array_to_string(reloptions, ' '), '(none)') FROM pg_class WHERE relname = 'sessions'")?
    );
    let mut idle = VecDeque::with_capacity(sessions as usize);
    for _ in 0..sessions {
        idle.push_back(
            deployment
                .tokens
                .take()
                .context("fewer prepared sessions than asked for")?,
        );
    }
    let chains = Arc::new(Chains {
        idle: Mutex::new(idle),
        live: AtomicU64::new(sessions),
        started: AtomicU64::new(0),
        limit: refreshes,
        ok: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_failure: Mutex::new(None),
    });

    let server = TesseraServer::start(&deployment.env, deployment.cost).await?;
    let outcome = async {
        let before_sizes = sizes(pg)?;
        let before = Counters::read_settled(pg).await?;
        print_sizes("before:", before_sizes);
        println!("    {}", vacuum_state(pg));

        let addr = server.addr();
        let template = deployment.token_endpoint(addr);
        let start = Instant::now();
        let driver_pid = std::process::id();
        let cpu_before = CpuSnapshot::take(Some(server.pid()), driver_pid);
        let clients: Vec<_> = (0..args.connections.max(1))
            .map(|_| tokio::spawn(chain_client(addr, template.clone(), Arc::clone(&chains))))
            .collect();
        let ticker = tokio::spawn(progress(pg.clone(), Arc::clone(&chains), start));
        for client in clients {
            client.await.context("a chain client panicked")?;
        }
        let cpu_after = CpuSnapshot::take(Some(server.pid()), driver_pid);
        let seconds = start.elapsed().as_secs_f64();
        ticker.abort();

        let ok = chains.ok.load(Ordering::Relaxed);
        let failed = chains.failed.load(Ordering::Relaxed);
        let rate = ok as f64 / seconds;
        let cpu = CpuUse::between(&cpu_before, &cpu_after, seconds);
        println!(
            "    {ok} refreshes in {seconds:.1} s = {rate:.0}/s; failed {failed} (must be 0) {}",
            if failed == 0 { "[met]" } else { "[FAILED]" }
        );
        if let Some(why) = chains
            .first_failure
            .lock()
            .expect("no panic while holding the lock")
            .as_ref()
        {
            println!("    first failure: {why}");
        }
        println!(
            "    cpu (cores): tessera {:.2}  postgres {:.2}  redis {:.2}  driver {:.2}  other {:.2}",
            cpu.server,
            cpu.postgres,
            cpu.redis,
            cpu.driver,
            cpu.other()
        );
        println!("    {}", CpuPerRefresh::of(&cpu, rate).line("refresh"));

        let writes = Counters::read_settled(pg).await?.since(&before);
        for line in writes.lines() {
            println!("    {line}");
        }
        let after_sizes = sizes(pg)?;
        print_sizes("before:", before_sizes);
        print_sizes("after:", after_sizes);
        println!("    {}", vacuum_state(pg));
        let growth = after_sizes.0 as i64 - before_sizes.0 as i64;
        println!(
            "    database grew by {growth} bytes ({:+.2} MiB) over {ok} refreshes = {:.2} bytes per \
             refresh (goal: within a few MB, here {} MiB) {}",
            growth as f64 / (1024.0 * 1024.0),
            growth as f64 / ok.max(1) as f64,
            mib(GROWTH_GOAL_BYTES),
            if growth <= GROWTH_GOAL_BYTES as i64 {
                "[met]"
            } else {
                "[MISSED]"
            }
        );
        anyhow::Ok(failed == 0 && ok == refreshes)
    }
    .await;
    server.stop().await?;
    outcome
}

#[cfg(test)]
mod tests {
    use super::successor;

    #[test]
    fn reads_the_successor_of_a_token_response() {
        let body = br#"{"access_token":"a","token_type":"Bearer","refresh_token":"rt_x"}"#;
        assert_eq!(successor(body).as_deref(), Some("rt_x"));
        assert_eq!(successor(br#"{"access_token":"a"}"#), None);
        assert_eq!(successor(b"not json"), None);
    }
}
