//! The revocation feed (`--only feed`): how fast a revocation reaches services that
//! verify offline, and what their subscriptions cost Tessera.
//!
//! Propagation: three `revocation-probe` processes (the verifier crate with its
//! subscription) watch prepared access tokens; the driver revokes them one by one
//! through `POST /oauth/revoke` at a fixed rate and each probe reports when it first
//! refuses one. The latency is from the moment the driver sends the revocation to
//! the moment a probe refuses the token (one clock: the same machine), over every
//! probe and revocation.
//!
//! Cost: Tessera's CPU and resident memory with 1,000 idle subscribers (heartbeats
//! only), then with 100 subscribers while revocations arrive at 200/s, every event
//! counted at every subscriber.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::{header, Request};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};
use tokio::time::{sleep, Instant};

use crate::fixtures::{ConfidentialClient, Secret};
use crate::http::{send_once, Connection, RequestTemplate};
use crate::machine;
use crate::postgres::Postgres;
use crate::redis;
use crate::report;
use crate::server::{ServerEnv, TesseraServer};
use crate::Args;

const SUBSCRIBER: &str = "bench-feed-subscriber";
const PROBES: usize = 3;

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Lets the driver (and the server it starts) hold a few thousand sockets.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < 8192 {
            limit.rlim_cur = limit.rlim_max.min(8192);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

struct Setup {
    addr: SocketAddr,
    issuer: String,
    client: ConfidentialClient,
    subscriber: Secret,
}

impl Setup {
    async fn token(&self, id: &str, secret: &Secret) -> anyhow::Result<String> {
        let request = RequestTemplate::post_form(
            self.addr,
            "/oauth/token",
            "grant_type=client_credentials".to_owned(),
        )
        .basic_auth(id, secret)
        .request();
        let (status, body) = send_once(self.addr, request).await?;
        anyhow::ensure!(status == 200, "client_credentials answered {status}");
        let body: serde_json::Value = serde_json::from_slice(&body)?;
        Ok(body["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned())
    }

    /// `n` access tokens of the benchmark service, each its own `jti`.
    async fn tokens(&self, n: usize) -> anyhow::Result<Vec<String>> {
        let mut connection = Connection::open(self.addr).await?;
        let template = RequestTemplate::post_form(
            self.addr,
            "/oauth/token",
            "grant_type=client_credentials".to_owned(),
        )
        .basic_auth(&self.client.id, &self.client.secret);
        let mut tokens = Vec::with_capacity(n);
        for _ in 0..n {
            let (status, body) = connection.send(template.request()).await?;
            anyhow::ensure!(status == 200, "client_credentials answered {status}");
            let body: serde_json::Value = serde_json::from_slice(&body)?;
            tokens.push(
                body["access_token"]
                    .as_str()
                    .context("no token")?
                    .to_owned(),
            );
        }
        Ok(tokens)
    }

    /// Revokes `tokens` at `rate` per second over a few kept-alive connections;
    /// answers when each revocation was sent (unix ns) and how many failed.
    async fn revoke_at(&self, tokens: &[String], rate: u64) -> anyhow::Result<(Vec<u128>, u64)> {
        let template = RequestTemplate::post_form(self.addr, "/oauth/revoke", String::new())
            .basic_auth(&self.client.id, &self.client.secret);
        let mut pool = Vec::new();
        for _ in 0..8 {
            pool.push(Arc::new(Mutex::new(Connection::open(self.addr).await?)));
        }
        let failed = Arc::new(AtomicU64::new(0));
        let mut sent = vec![0u128; tokens.len()];
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut tasks = Vec::with_capacity(tokens.len());
        for (i, token) in tokens.iter().enumerate() {
            tick.tick().await;
            let connection = Arc::clone(&pool[i % pool.len()]);
            let request = template.request_with_body(format!("token={token}"));
            let failed = Arc::clone(&failed);
            sent[i] = unix_nanos();
            tasks.push(tokio::spawn(async move {
                let ok =
                    matches!(connection.lock().await.send(request).await, Ok((s, _)) if s == 200);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        Ok((sent, failed.load(Ordering::Relaxed)))
    }
}

/// A running probe: its stdin, and its reports on a shared channel.
struct Probe {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
}

async fn start_probes(
    setup: &Setup,
    reports: mpsc::UnboundedSender<(usize, u64, u128)>,
) -> anyhow::Result<Vec<Probe>> {
    let binary = std::env::current_exe()?.with_file_name("revocation-probe");
    let mut probes = Vec::new();
    for p in 0..PROBES {
        let mut child = tokio::process::Command::new(&binary)
            .arg(format!("http://{}", setup.addr))
            .arg(&setup.issuer)
            .env("PROBE_CLIENT_ID", SUBSCRIBER)
            .env("PROBE_CLIENT_SECRET", setup.subscriber.expose())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdin = child.stdin.take().context("probe stdin")?;
        let mut lines = BufReader::new(child.stdout.take().context("probe stdout")?).lines();
        let first = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .context("the probe did not get its snapshot")??;
        anyhow::ensure!(first.as_deref() == Some("ready"), "probe said {first:?}");
        let reports = reports.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut parts = line.split(' ');
                if let (Some("revoked"), Some(n), Some(at)) =
                    (parts.next(), parts.next(), parts.next())
                {
                    if let (Ok(n), Ok(at)) = (n.parse(), at.parse()) {
                        let _ = reports.send((p, n, at));
                    }
                }
            }
        });
        probes.push(Probe { child, stdin });
    }
    Ok(probes)
}

struct Propagation {
    rate: u64,
    revocations: usize,
    latency_us: Histogram<u64>,
    missing: usize,
    failed: u64,
}

async fn propagation(
    setup: &Setup,
    probes: &mut [Probe],
    reports: &mut mpsc::UnboundedReceiver<(usize, u64, u128)>,
    rate: u64,
    n: usize,
    first_id: u64,
) -> anyhow::Result<Propagation> {
    report::step(&format!(
        "propagation: {n} revocations at {rate}/s to {PROBES} verifiers"
    ));
    let tokens = setup.tokens(n).await?;
    for probe in probes.iter_mut() {
        let mut lines = String::new();
        for (i, token) in tokens.iter().enumerate() {
            lines.push_str(&format!("watch {} {token}\n", first_id + i as u64));
        }
        probe.stdin.write_all(lines.as_bytes()).await?;
        probe.stdin.flush().await?;
    }
    // Each probe verifies every token once (signature, claims) before it watches it.
    sleep(Duration::from_secs(1)).await;
    let (sent, failed) = setup.revoke_at(&tokens, rate).await?;
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen < n * PROBES {
        match tokio::time::timeout_at(deadline, reports.recv()).await {
            Ok(Some((_, id, at))) if id >= first_id && id < first_id + n as u64 => {
                let sent_at = sent[(id - first_id) as usize];
                let us = (at.saturating_sub(sent_at) / 1_000).max(1) as u64;
                latency_us.saturating_record(us);
                seen += 1;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    Ok(Propagation {
        rate,
        revocations: n,
        latency_us,
        missing: n * PROBES - seen,
        failed,
    })
}

/// An open stream that counts the events it receives.
fn open_stream(
    addr: SocketAddr,
    token: String,
    events: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let request = Request::get(format!("http://{addr}/v1/revocations/stream"))
            .header(header::HOST, addr.to_string())
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        anyhow::ensure!(
            response.status() == 200,
            "stream answered {}",
            response.status()
        );
        let mut body = response.into_body();
        let mut carry = Vec::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                carry.extend_from_slice(&data);
                let text = String::from_utf8_lossy(&carry);
                let count = text.matches("event: revocation\n").count() as u64;
                events.fetch_add(count, Ordering::Relaxed);
                // Keep only what follows the last complete frame.
                let cut = text.rfind("\n\n").map_or(0, |i| i + 2);
                carry.drain(..cut);
            }
        }
        Ok(())
    })
}

struct Cost {
    subscribers: usize,
    cores: f64,
    rss_mb: f64,
    rss_before_mb: f64,
}

async fn cost(
    setup: &Setup,
    server: &TesseraServer,
    subscribers: usize,
    revocations_per_second: u64,
    window: Duration,
) -> anyhow::Result<(Cost, Option<(u64, u64)>)> {
    report::step(&format!(
        "cost: {subscribers} subscribers, {revocations_per_second} revocations/s"
    ));
    let rss =
        || machine::resident_memory_kb(server.pid()).map_or(0.0, |(rss, _)| rss as f64 / 1024.0);
    let rss_before_mb = rss();
    let token = setup.token(SUBSCRIBER, &setup.subscriber).await?;
    let counters: Vec<Arc<AtomicU64>> = (0..subscribers)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let streams: Vec<_> = counters
        .iter()
        .map(|c| open_stream(setup.addr, token.clone(), Arc::clone(c)))
        .collect();
    sleep(Duration::from_secs(3)).await;
    let tokens = if revocations_per_second > 0 {
        setup
            .tokens((revocations_per_second * window.as_secs()) as usize)
            .await?
    } else {
        Vec::new()
    };
    let cpu_before = machine::process_cpu_seconds(server.pid()).unwrap_or(0.0);
    let started = Instant::now();
    if tokens.is_empty() {
        sleep(window).await;
    } else {
        setup.revoke_at(&tokens, revocations_per_second).await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cores = (machine::process_cpu_seconds(server.pid()).unwrap_or(0.0) - cpu_before) / seconds;
    let rss_mb = rss();
    let delivered = if tokens.is_empty() {
        None
    } else {
        sleep(Duration::from_secs(2)).await;
        let expected = tokens.len() as u64;
        let complete = counters
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) >= expected)
            .count() as u64;
        Some((complete, expected))
    };
    for stream in &streams {
        stream.abort();
    }
    sleep(Duration::from_secs(1)).await;
    Ok((
        Cost {
            subscribers,
            cores,
            rss_mb,
            rss_before_mb,
        },
        delivered,
    ))
}

/// Runs the scenario; `true` when propagation met its goal (p99 under 1 s, p50 under
/// 100 ms) with nothing missing, and every busy subscriber got every event.
pub async fn feed(args: &Args) -> anyhow::Result<bool> {
    raise_open_files();
    let pg = Postgres::new(
        &args.postgres,
        &format!("{}_feed", args.database),
        &args.sql_dir,
    );
    let prefix = format!("{}feed:", args.redis_prefix);
    let env = ServerEnv::new(
        &args.tessera,
        pg.database_url(),
        args.redis.clone(),
        prefix.clone(),
        args.work_dir.clone(),
        &args.server_env,
    )?;
    pg.drop_database()?;
    env.migrate()?;
    redis::clear_prefix(&args.redis, &prefix)?;
    let client = ConfidentialClient::create(&pg)?;
    let subscriber = Secret::random("cs_")?;
    pg.query(&format!(
        "INSERT INTO clients (client_id, name, confidential, secret_hash, grant_types, scopes)
         VALUES ('{SUBSCRIBER}', 'Benchmark verifiers', TRUE, decode('{}', 'hex'),
                 '{{client_credentials}}', '{{tessera:revocations}}')",
        hex::encode(Sha256::digest(subscriber.expose().as_bytes()))
    ))?;
    let server = TesseraServer::start(&env, 4).await?;
    let outcome = async {
        let addr = server.addr();
        let (_, metadata) = send_once(
            addr,
            RequestTemplate::get(addr, "/.well-known/oauth-authorization-server").request(),
        )
        .await?;
        let metadata: serde_json::Value = serde_json::from_slice(&metadata)?;
        let setup = Setup {
            addr,
            issuer: metadata["issuer"].as_str().context("no issuer")?.to_owned(),
            client,
            subscriber,
        };
        let (tx, mut reports) = mpsc::unbounded_channel();
        let mut probes = start_probes(&setup, tx).await?;
        let n = args.feed_revocations;
        let mut results = Vec::new();
        for (k, rate) in [10u64, 200].into_iter().enumerate() {
            results.push(
                propagation(&setup, &mut probes, &mut reports, rate, n, (k * n) as u64).await?,
            );
        }
        for probe in &mut probes {
            let _ = probe.child.kill().await;
        }
        let (idle, _) = cost(&setup, &server, 1_000, 0, Duration::from_secs(20)).await?;
        let (busy, delivered) = cost(&setup, &server, 100, 200, Duration::from_secs(15)).await?;

        let mut kept = true;
        println!();
        println!("| revocations | rate | verifiers | p50 ms | p99 ms | max ms | missing | failed revocations |");
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &results {
            let ms = |q: f64| r.latency_us.value_at_quantile(q) as f64 / 1000.0;
            println!(
                "| {} | {}/s | {PROBES} | {:.1} | {:.1} | {:.1} | {} | {} |",
                r.revocations,
                r.rate,
                ms(0.5),
                ms(0.99),
                r.latency_us.max() as f64 / 1000.0,
                r.missing,
                r.failed
            );
            kept &= r.missing == 0 && r.failed == 0 && ms(0.99) < 1000.0 && ms(0.5) < 100.0;
        }
        println!();
        println!("| subscribers | revocations/s | Tessera cores | Tessera RSS MB (before) |");
        println!("|---:|---:|---:|---:|");
        for (c, rate) in [(&idle, 0), (&busy, 200)] {
            println!(
                "| {} | {rate} | {:.3} | {:.1} ({:.1}) |",
                c.subscribers, c.cores, c.rss_mb, c.rss_before_mb
            );
        }
        if let Some((complete, expected)) = delivered {
            println!(
                "\n{complete} of {} busy subscribers received all {expected} events",
                busy.subscribers
            );
            kept &= complete == busy.subscribers as u64;
        }
        Ok::<_, anyhow::Error>(kept)
    }
    .await;
    server.stop().await?;
    if !args.keep_database {
        pg.drop_database()?;
    }
    redis::clear_prefix(&args.redis, &prefix)?;
    outcome
}
