//! Many instances, and what each operation costs: `--only scale`.
//!
//! **Throughput.** Refreshes and verifications (`/v1/me`: signature, denylist check)
//! against one instance and against `--instances` instances on one database, with the
//! connections spread round robin over them as a load balancer spreads keep-alive
//! connections; first on the shared single-node Redis, then on a private Redis Cluster
//! of three masters. Each run reports throughput, p50/p99, errors (there must be none)
//! and the CPU of Tessera (all instances), PostgreSQL and Redis per request.
//!
//! **Costs.** On one instance and the single-node Redis, batches of logins, refreshes,
//! verifications and revocations, each read against PostgreSQL's commit counter
//! (`pg_stat_database`, settled as in `writes`), Redis's `total_commands_processed` and
//! Tessera's CPU: commits, Redis commands and CPU per operation. The revocations also
//! give Redis's memory per denylist entry (`used_memory` before and after), and the
//! prepared sessions PostgreSQL's bytes per session row. `docs/capacity.md` is written
//! from these figures.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::Request;
use tokio::time::Instant;

use crate::http::{send_once, Body, RequestTemplate};
use crate::load::{measure, RequestSource, Stream};
use crate::machine::{process_cpu_seconds, CpuUse};
use crate::private::PrivateCluster;
use crate::redis;
use crate::report;
use crate::resilience::{Deployment, RoundRobin};
use crate::server::TesseraServer;
use crate::writes::Counters;
use crate::Args;

/// One deployment's public URL: the `iss` every instance signs and expects (by
/// default each would take its own bind address).
const ISSUER: &str = "TESSERA_ISSUER=http://tessera.bench";

/// Live access tokens the verification runs cycle through.
const LIVE_TOKENS: usize = 200;

/// The scale scenario; whether every request of every run succeeded.
pub async fn scale(args: &Args) -> anyhow::Result<bool> {
    let instances = args.instances.max(2);
    report::step(&format!(
        "scale: refresh and /v1/me on 1 and {instances} instances, on single-node Redis and on \
         a Redis Cluster of 3 masters, {} connections",
        args.connections
    ));
    let mut kept = true;
    let mut rows = Vec::new();

    let single = Deployment::prepare(
        args,
        &args.postgres,
        &args.redis,
        "scale_single",
        &[ISSUER],
        0,
    )?;
    let outcome = async {
        for n in [1, instances] {
            kept &= throughput(args, &single, "single-node Redis", n, &mut rows).await?;
        }
        kept &= costs(args, &single).await?;
        anyhow::Ok(())
    }
    .await;
    single.clean_up();
    outcome?;

    let cluster = PrivateCluster::start(3)?;
    let nodes = format!("TESSERA_REDIS_CLUSTER_NODES={}", cluster.nodes());
    let on_cluster = Deployment::prepare(
        args,
        &args.postgres,
        &cluster.urls()[0],
        "scale_cluster",
        &[nodes.as_str(), ISSUER],
        0,
    )?;
    let outcome = async {
        for n in [1, instances] {
            kept &= throughput(args, &on_cluster, "Redis Cluster", n, &mut rows).await?;
        }
        anyhow::Ok(())
    }
    .await;
    on_cluster.clean_up();
    drop(cluster);
    outcome?;

    println!("    | redis | instances | operation | per s | p50 ms | p99 ms | errors | tessera µs | postgres µs | redis µs |");
    println!("    |---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!("    {row}");
    }
    Ok(kept)
}

async fn start(
    args: &Args,
    deployment: &Deployment,
    label: &str,
    n: usize,
) -> anyhow::Result<Vec<TesseraServer>> {
    let mut servers = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("scale-{}-{n}-{i}", label.replace(' ', "-"));
        servers
            .push(TesseraServer::start_named(&deployment.env, args.bcrypt_costs[0], &name).await?);
    }
    Ok(servers)
}

async fn throughput(
    args: &Args,
    deployment: &Deployment,
    redis_label: &str,
    n: usize,
    rows: &mut Vec<String>,
) -> anyhow::Result<bool> {
    let servers = start(args, deployment, redis_label, n).await?;
    let addrs: Vec<SocketAddr> = servers.iter().map(TesseraServer::addr).collect();
    let pids: Vec<u32> = servers.iter().map(TesseraServer::pid).collect();
    let seconds = (args.warmup_secs + args.duration_secs) as f64;
    let fresh = (args.refresh_rate_guess as f64 * seconds * 1.5) as u64 + 1000;
    deployment.tokens.ensure_fresh(&deployment.pg, fresh)?;
    let mut live = Vec::with_capacity(LIVE_TOKENS);
    for _ in 0..LIVE_TOKENS {
        let (access, _) = deployment.tokens_from_refresh(addrs[0]).await?;
        live.push(RequestTemplate::get(addrs[0], "/v1/me").bearer(&access));
    }
    let runs: [(&str, Arc<dyn RequestSource>); 2] = [
        ("refresh", deployment.refreshes(addrs[0])),
        ("/v1/me", Arc::new(RoundRobin::new(live))),
    ];
    let mut kept = true;
    for (operation, source) in runs {
        report::step(&format!(
            "scale: {operation}, {redis_label}, {n} instance(s)"
        ));
        let measurement = measure(
            &addrs,
            vec![Stream {
                name: operation.to_owned(),
                connections: args.connections,
                source,
            }],
            args.warmup(),
            args.duration(),
            &pids,
        )
        .await;
        report::measurement(&measurement);
        let stream = &measurement.streams[0];
        let errors = stream.errors + stream.non_2xx + u64::from(stream.ran_dry);
        kept &= errors == 0;
        let per = |cores: f64| cores * 1e6 / stream.rate().max(1e-9);
        let cpu: &CpuUse = &measurement.cpu;
        rows.push(format!(
            "| {redis_label} | {n} | {operation} | {:.0} | {:.2} | {:.2} | {errors} | {:.0} | {:.0} | {:.0} |",
            stream.rate(),
            stream.percentile_ms(50.0),
            stream.percentile_ms(99.0),
            per(cpu.server),
            per(cpu.postgres),
            per(cpu.redis),
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for server in servers {
        server.stop().await?;
    }
    Ok(kept)
}

/// Counters around one batch.
struct Reading {
    at: Instant,
    counters: Counters,
    redis_commands: u64,
    redis_memory: u64,
    tessera_cpu: f64,
}

impl Reading {
    async fn take(deployment: &Deployment, redis_url: &str, pid: u32) -> anyhow::Result<Self> {
        let counters = Counters::read_settled(&deployment.pg).await?;
        Ok(Self {
            at: Instant::now(),
            counters,
            redis_commands: redis::info_number(redis_url, "stats", "total_commands_processed")?,
            redis_memory: redis::info_number(redis_url, "memory", "used_memory")?,
            tessera_cpu: process_cpu_seconds(pid).context("tessera's CPU time")?,
        })
    }
}

/// What happened between two readings.
struct Delta {
    seconds: f64,
    commits: f64,
    /// Less the readings' own `INFO` commands (two per reading).
    commands: f64,
    cpu_us: f64,
}

impl Delta {
    fn between(before: &Reading, after: &Reading) -> Self {
        Self {
            seconds: (after.at - before.at).as_secs_f64().max(1e-3),
            commits: after
                .counters
                .transactions()
                .saturating_sub(before.counters.transactions()) as f64,
            commands: after
                .redis_commands
                .saturating_sub(before.redis_commands + 2) as f64,
            cpu_us: (after.tessera_cpu - before.tessera_cpu) * 1e6,
        }
    }
}

/// Sends `requests` over `concurrency` connections; how many did not succeed.
async fn batch(addr: SocketAddr, requests: Vec<Request<Body>>, concurrency: usize) -> u64 {
    let queue = Arc::new(std::sync::Mutex::new(requests));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move {
                let mut failed = 0;
                loop {
                    let next = queue.lock().expect("no panic while holding the lock").pop();
                    let Some(request) = next else { break };
                    match send_once(addr, request).await {
                        Ok((status, _)) if status.is_success() => {}
                        _ => failed += 1,
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for worker in workers {
        failed += worker.await.unwrap_or(1);
    }
    failed
}

async fn costs(args: &Args, deployment: &Deployment) -> anyhow::Result<bool> {
    let server =
        TesseraServer::start_named(&deployment.env, args.bcrypt_costs[0], "scale-costs").await?;
    let addr = server.addr();
    let redis_url = &args.redis;
    let (logins, refreshes, verifications, revocations) = (100u64, 2_000u64, 2_000u64, 5_000u64);
    deployment
        .tokens
        .ensure_fresh(&deployment.pg, refreshes + revocations + 1_000)?;
    let token = deployment.token_endpoint(addr);
    let login_form = |i: u64| {
        format!(
            "grant_type=password&username={}&password={}",
            crate::fixtures::username(deployment.cost, i),
            deployment.password.expose()
        )
    };
    // Access tokens live 5 minutes, and every reading waits for PostgreSQL's counters to
    // settle: the tokens to verify and to revoke are made just before their batch.
    let batches: [(&str, u64); 4] = [
        ("login (password grant)", logins),
        ("refresh", refreshes),
        ("verification (/v1/me)", verifications),
        ("revocation (RFC 7009, access token)", revocations),
    ];
    let mut kept = true;
    println!("    per operation, the idle background subtracted:");
    println!("    | operation | count | commits/op | redis commands/op | tessera CPU µs/op |");
    println!("    |---|---:|---:|---:|---:|");
    let mut memory_per_entry = None;
    // The background jobs (denylist passes every second, key checks, the feed's reader)
    // commit and talk to Redis whatever the traffic: an idle span first, so each batch
    // can subtract what the same span costs without it.
    let idle_before = Reading::take(deployment, redis_url, server.pid()).await?;
    let idle_after = Reading::take(deployment, redis_url, server.pid()).await?;
    let idle = Delta::between(&idle_before, &idle_after);
    println!(
        "    background, per second idle: {:.2} commits, {:.2} redis commands, {:.0} µs tessera CPU",
        idle.commits / idle.seconds,
        idle.commands / idle.seconds,
        idle.cpu_us / idle.seconds
    );
    for (i, (name, count)) in batches.into_iter().enumerate() {
        let mut requests: Vec<Request<Body>> = Vec::with_capacity(count as usize);
        for n in 0..count {
            requests.push(match i {
                0 => token.request_with_body(login_form(n)),
                1 => {
                    let rt = deployment
                        .tokens
                        .take()
                        .context("no prepared session left")?;
                    token.request_with_body(crate::resilience::refresh_form(&rt))
                }
                2 if n < LIVE_TOKENS as u64 => {
                    let (access, _) = deployment.tokens_from_refresh(addr).await?;
                    RequestTemplate::get(addr, "/v1/me")
                        .bearer(&access)
                        .request()
                }
                2 => {
                    // The same live tokens again, round robin.
                    let again = requests[(n % LIVE_TOKENS as u64) as usize]
                        .headers()
                        .clone();
                    let mut request = RequestTemplate::get(addr, "/v1/me").request();
                    *request.headers_mut() = again;
                    request
                }
                _ => {
                    let (access, _) = deployment.tokens_from_refresh(addr).await?;
                    RequestTemplate::post_form(addr, "/oauth/revoke", format!("token={access}"))
                        .request()
                }
            });
        }
        let before = Reading::take(deployment, redis_url, server.pid()).await?;
        let failed = batch(addr, requests, 8).await;
        let after = Reading::take(deployment, redis_url, server.pid()).await?;
        kept &= failed == 0;
        let delta = Delta::between(&before, &after);
        let share = delta.seconds / idle.seconds;
        let per = |x: f64, background: f64| ((x - background * share) / count as f64).max(0.0);
        println!(
            "    | {name} | {count} | {:.2} | {:.2} | {:.0} |{}",
            per(delta.commits, idle.commits),
            per(delta.commands, idle.commands),
            per(delta.cpu_us, idle.cpu_us),
            if failed > 0 {
                format!(" {failed} FAILED")
            } else {
                String::new()
            }
        );
        if name.starts_with("revocation") {
            memory_per_entry = Some(after.redis_memory as f64 - before.redis_memory as f64);
        }
    }
    if let Some(grown) = memory_per_entry {
        println!(
            "    redis used_memory grew {grown:.0} bytes over {revocations} denylist entries = {:.0} bytes per entry",
            grown / revocations as f64
        );
    }
    let (bytes, rows) = (
        deployment
            .pg
            .query_number("SELECT pg_total_relation_size('sessions')")?,
        deployment
            .pg
            .query_number("SELECT count(*) FROM sessions")?,
    );
    println!(
        "    sessions: {rows} rows in {bytes} bytes (table, indexes, TOAST) = {:.0} bytes per session",
        bytes as f64 / rows.max(1) as f64
    );
    let (revocation_bytes, revocation_rows) = (
        deployment
            .pg
            .query_number("SELECT pg_total_relation_size('revocations')")?,
        deployment
            .pg
            .query_number("SELECT count(*) FROM revocations")?,
    );
    println!(
        "    revocations: {revocation_rows} rows in {revocation_bytes} bytes = {:.0} bytes per revocation",
        revocation_bytes as f64 / revocation_rows.max(1) as f64
    );
    server.stop().await?;
    Ok(kept)
}
