//! What production sees besides speed: a dependency that dies and comes back under
//! full load, and hours of mixed traffic compressed into a soak.
//!
//! The outage scenarios run Tessera against a private `redis-server` or a private
//! PostgreSQL cluster (initdb) on free ports, kill it a third of the way into the
//! load and start it again half-way, and check what clients saw: a revoked token
//! accepted at any moment is a failure; every non-2xx must be a 503 with
//! `Retry-After` (or the 401 a revoked token earns); the time from the dependency's
//! return to the last failed request is the recovery time.
//!
//! The soak sends a fixed, moderate mix (logins, refreshes, `/v1/me`, revocations,
//! introspection) and samples the server's resident memory, open descriptors and its
//! PostgreSQL and Redis connections every ten seconds: they must stay flat.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::{header, Request};
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

use crate::fixtures::{self, ConfidentialClient, Secret, TokenSet};
use crate::http::{send_once, Body, Connection, RequestTemplate};
use crate::load::RequestSource;
use crate::postgres::Postgres;
use crate::private::{PrivatePostgres, PrivateRedis};
use crate::redis;
use crate::report;
use crate::server::{ServerEnv, TesseraServer};
use crate::Args;

/// One answer (or a transport failure, status 0) as a client saw it.
#[derive(Clone, Copy)]
struct Event {
    at_ms: u32,
    status: u16,
    retry_after: bool,
}

/// The same request for several tokens, round-robin.
pub(crate) struct RoundRobin {
    templates: Vec<RequestTemplate>,
    next: AtomicUsize,
}

impl RoundRobin {
    pub(crate) fn new(templates: Vec<RequestTemplate>) -> Self {
        Self {
            templates,
            next: AtomicUsize::new(0),
        }
    }
}

impl RequestSource for RoundRobin {
    fn next_request(&self) -> Option<Request<Body>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.templates[i % self.templates.len()].request())
    }
}

/// Prepared refresh tokens, presented once each, with one form around them.
struct TokenForm {
    template: RequestTemplate,
    tokens: Arc<TokenSet>,
    form: fn(&str) -> String,
}

impl RequestSource for TokenForm {
    fn next_request(&self) -> Option<Request<Body>> {
        let token = self.tokens.take()?;
        Some(self.template.request_with_body((self.form)(&token)))
    }
}

pub(crate) fn refresh_form(token: &str) -> String {
    format!("grant_type=refresh_token&refresh_token={token}")
}

fn revoke_form(token: &str) -> String {
    format!("token={token}&token_type_hint=refresh_token")
}

/// Password logins of one user set, round-robin.
struct Logins {
    template: RequestTemplate,
    cost: u32,
    password: Secret,
    next: AtomicUsize,
}

impl RequestSource for Logins {
    fn next_request(&self) -> Option<Request<Body>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as u64;
        Some(self.template.request_with_body(format!(
            "grant_type=password&username={}&password={}",
            fixtures::username(self.cost, i),
            self.password.expose()
        )))
    }
}

/// Connections sending one kind of request: as fast as answers come (`pace` None),
/// or one request per `pace` on each connection.
struct Traffic {
    name: &'static str,
    connections: usize,
    pace: Option<Duration>,
    source: Arc<dyn RequestSource>,
}

async fn client(
    addr: SocketAddr,
    source: Arc<dyn RequestSource>,
    pace: Option<Duration>,
    start: Instant,
    end: Instant,
) -> Vec<Event> {
    let mut events = Vec::new();
    let mut connection: Option<Connection> = None;
    let mut next_send = Instant::now();
    while Instant::now() < end {
        if let Some(pace) = pace {
            sleep_until(next_send).await;
            next_send += pace;
        }
        let Some(request) = source.next_request() else {
            break;
        };
        let exchange = async {
            let open = match &mut connection {
                Some(open) => open,
                None => connection.insert(Connection::open(addr).await?),
            };
            open.send_with_headers(request).await
        };
        let Ok(outcome) = timeout_at(end, exchange).await else {
            break;
        };
        let at_ms = start.elapsed().as_millis() as u32;
        match outcome {
            Ok((status, headers, _)) => events.push(Event {
                at_ms,
                status: status.as_u16(),
                retry_after: headers.contains_key(header::RETRY_AFTER),
            }),
            Err(_) => {
                connection = None;
                events.push(Event {
                    at_ms,
                    status: 0,
                    retry_after: false,
                });
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
    events
}

/// Runs every stream until `end`; the events of each stream, merged and in time order.
async fn drive(
    addr: SocketAddr,
    traffic: &[Traffic],
    start: Instant,
    end: Instant,
) -> Vec<Vec<Event>> {
    let handles: Vec<Vec<_>> = traffic
        .iter()
        .map(|t| {
            (0..t.connections)
                .map(|_| tokio::spawn(client(addr, Arc::clone(&t.source), t.pace, start, end)))
                .collect()
        })
        .collect();
    let mut merged = Vec::with_capacity(handles.len());
    for stream in handles {
        let mut events = Vec::new();
        for handle in stream {
            events.extend(handle.await.expect("a client task does not panic"));
        }
        events.sort_by_key(|e| e.at_ms);
        merged.push(events);
    }
    merged
}

/// Everything a scenario's server needs, on the given PostgreSQL and Redis.
pub(crate) struct Deployment {
    pub pg: Postgres,
    redis_url: String,
    redis_prefix: String,
    pub env: ServerEnv,
    pub password: Secret,
    pub tokens: Arc<TokenSet>,
    client: ConfidentialClient,
    pub cost: u32,
}

impl Deployment {
    /// A fresh database on `pg_server` with `tokens` prepared sessions, users and the
    /// confidential client, and a server configuration for it.
    pub fn prepare(
        args: &Args,
        pg_server: &str,
        redis_url: &str,
        name: &str,
        extra_env: &[&str],
        tokens: u64,
    ) -> anyhow::Result<Self> {
        let pg = Postgres::new(
            pg_server,
            &format!("{}_{name}", args.database),
            &args.sql_dir,
        );
        let redis_prefix = format!("{}{name}:", args.redis_prefix);
        let mut settings = args.server_env.clone();
        settings.extend(extra_env.iter().map(|s| s.to_string()));
        let env = ServerEnv::new(
            &args.tessera,
            pg.database_url(),
            redis_url.to_owned(),
            redis_prefix.clone(),
            args.work_dir.clone(),
            &settings,
        )?;
        report::step(&format!(
            "preparing database {name} ({tokens} refresh tokens)"
        ));
        pg.drop_database()?;
        env.migrate()?;
        redis::clear_prefix(redis_url, &redis_prefix)?;
        let cost = args.bcrypt_costs[0];
        let password = Secret::random("")?;
        fixtures::create_users(&pg, cost, &password)?;
        let client = ConfidentialClient::create(&pg)?;
        let token_set = TokenSet::new(fixtures::TESSERA_TOKENS, cost, env.refresh_key()?);
        token_set.ensure_fresh(&pg, tokens)?;
        Ok(Self {
            pg,
            redis_url: redis_url.to_owned(),
            redis_prefix,
            env,
            password,
            tokens: token_set,
            client,
            cost,
        })
    }

    /// Refreshes, each with a prepared token never presented before.
    pub(crate) fn refreshes(&self, addr: SocketAddr) -> Arc<dyn RequestSource> {
        Arc::new(TokenForm {
            template: self.token_endpoint(addr),
            tokens: Arc::clone(&self.tokens),
            form: refresh_form,
        })
    }

    pub fn token_endpoint(&self, addr: SocketAddr) -> RequestTemplate {
        RequestTemplate::post_form(addr, "/oauth/token", String::new())
    }

    /// A fresh (access token, refresh token) from one prepared refresh token.
    pub(crate) async fn tokens_from_refresh(
        &self,
        addr: SocketAddr,
    ) -> anyhow::Result<(String, String)> {
        let token = self
            .tokens
            .take()
            .context("no prepared refresh token left")?;
        let request = self
            .token_endpoint(addr)
            .request_with_body(refresh_form(&token));
        let (status, body) = send_once(addr, request).await?;
        anyhow::ensure!(status.is_success(), "refresh: HTTP {status}");
        let json: serde_json::Value = serde_json::from_slice(&body)?;
        let field = |name: &str| {
            json[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {name} in the token response"))
        };
        Ok((field("access_token")?, field("refresh_token")?))
    }

    pub(crate) async fn revoke(&self, addr: SocketAddr, token: &str) -> anyhow::Result<()> {
        let request =
            RequestTemplate::post_form(addr, "/oauth/revoke", format!("token={token}")).request();
        let (status, _) = send_once(addr, request).await?;
        anyhow::ensure!(status.is_success(), "revocation: HTTP {status}");
        Ok(())
    }

    async fn me_status(&self, addr: SocketAddr, token: &str) -> anyhow::Result<u16> {
        let request = RequestTemplate::get(addr, "/v1/me").bearer(token).request();
        Ok(send_once(addr, request).await?.0.as_u16())
    }

    /// `/v1/me` templates for `live` valid tokens, and for `revoked` tokens denied
    /// two ways: half by their `jti` (the access token revoked), half by their session
    /// (the refresh token revoked).
    async fn me_templates(
        &self,
        addr: SocketAddr,
        live: usize,
        revoked: usize,
    ) -> anyhow::Result<(Vec<RequestTemplate>, Vec<RequestTemplate>)> {
        let me = |token: &str| RequestTemplate::get(addr, "/v1/me").bearer(token);
        let mut live_templates = Vec::with_capacity(live);
        for _ in 0..live {
            let (access, _) = self.tokens_from_refresh(addr).await?;
            live_templates.push(me(&access));
        }
        let mut revoked_templates = Vec::with_capacity(revoked);
        for i in 0..revoked {
            let (access, refresh) = self.tokens_from_refresh(addr).await?;
            self.revoke(addr, if i % 2 == 0 { &access } else { &refresh })
                .await?;
            let status = self.me_status(addr, &access).await?;
            anyhow::ensure!(
                status == 401,
                "a revoked token answered {status} before the fault"
            );
            revoked_templates.push(me(&access));
        }
        Ok((live_templates, revoked_templates))
    }

    pub fn clean_up(&self) {
        let _ = redis::clear_prefix(&self.redis_url, &self.redis_prefix);
        let _ = self.pg.drop_database();
    }
}

/// The dependency an outage scenario kills.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Redis,
    Postgres,
}

impl Dependency {
    fn name(self) -> &'static str {
        match self {
            Dependency::Redis => "Redis",
            Dependency::Postgres => "PostgreSQL",
        }
    }
}

/// The private server of an outage, whichever it is.
enum Victim {
    Redis(PrivateRedis),
    Postgres(PrivatePostgres),
}

impl Victim {
    fn kill(&mut self) -> anyhow::Result<()> {
        match self {
            Victim::Redis(r) => {
                r.kill();
                Ok(())
            }
            Victim::Postgres(p) => p.stop(),
        }
    }

    fn start(&mut self) -> anyhow::Result<()> {
        match self {
            Victim::Redis(r) => r.launch(),
            Victim::Postgres(p) => p.launch(),
        }
    }
}

/// What one stream saw over an outage.
#[derive(Default)]
struct Outcome {
    ok: u64,
    unauthorized: u64,
    unavailable: u64,
    unavailable_without_retry_after: u64,
    other: u64,
    transport: u64,
    last_failure_ms: Option<u32>,
}

impl Outcome {
    fn of(events: &[Event], from_ms: u32) -> Self {
        let mut o = Self::default();
        for e in events {
            match e.status {
                200..=299 => o.ok += 1,
                401 => o.unauthorized += 1,
                503 => {
                    o.unavailable += 1;
                    if !e.retry_after {
                        o.unavailable_without_retry_after += 1;
                    }
                }
                0 => o.transport += 1,
                _ => o.other += 1,
            }
            if !(200..=299).contains(&e.status) && e.at_ms >= from_ms {
                o.last_failure_ms = Some(e.at_ms);
            }
        }
        o
    }
}

/// Kills `dependency` under refresh and `/v1/me` load at full speed and starts it
/// again; prints what every stream saw and returns whether the run kept every promise.
/// Refresh tokens prepared per second of an outage scenario: more than refreshes succeed
/// in a second (about 8,000 here), since every 503 while the dependency is down spends a
/// token too, at the rate 503s come back (up to 40,000 a second).
const OUTAGE_TOKENS_PER_SECOND: u64 = 20_000;

pub async fn outage(args: &Args, dependency: Dependency) -> anyhow::Result<bool> {
    let total = Duration::from_secs(args.outage_secs.max(9));
    let kill_at = total / 3;
    let back_at = total / 2;
    report::step(&format!(
        "{} outage: {} s of refresh + /v1/me load, killed at {} s, back at {} s",
        dependency.name(),
        total.as_secs(),
        kill_at.as_secs(),
        back_at.as_secs()
    ));
    let (victim, deployment) = match dependency {
        Dependency::Redis => {
            let redis = PrivateRedis::start()?;
            let d = Deployment::prepare(
                args,
                &args.postgres,
                &redis.url(),
                "outage_redis",
                &[],
                args.outage_secs * OUTAGE_TOKENS_PER_SECOND,
            )?;
            (Victim::Redis(redis), d)
        }
        Dependency::Postgres => {
            let pg = PrivatePostgres::start(&std::env::temp_dir())?;
            let d = Deployment::prepare(
                args,
                &pg.server_url(),
                &args.redis,
                "outage_pg",
                &[],
                args.outage_secs * OUTAGE_TOKENS_PER_SECOND,
            )?;
            (Victim::Postgres(pg), d)
        }
    };
    let server = TesseraServer::start(&deployment.env, deployment.cost).await?;
    let addr = server.addr();
    let result = async {
        let (live, revoked) = deployment.me_templates(addr, 16, 8).await?;
        let connections = args.connections.max(6);
        let traffic = [
            Traffic {
                name: "refresh",
                connections: connections / 2,
                pace: None,
                source: deployment.refreshes(addr),
            },
            Traffic {
                name: "/v1/me, live tokens",
                connections: connections / 2,
                pace: None,
                source: Arc::new(RoundRobin::new(live)),
            },
            Traffic {
                name: "/v1/me, revoked tokens",
                connections: 2,
                pace: None,
                source: Arc::new(RoundRobin::new(revoked)),
            },
        ];
        let start = Instant::now();
        let load = drive(addr, &traffic, start, start + total);
        // pg_ctl and redis-server are waited for on a blocking thread: the driver's
        // own runtime has one thread, and blocking it would freeze every client.
        let fault = async move {
            let mut victim = victim;
            sleep_until(start + kill_at).await;
            victim = tokio::task::spawn_blocking(move || victim.kill().map(|()| victim)).await??;
            let killed = start.elapsed();
            sleep_until(start + back_at).await;
            victim = tokio::task::spawn_blocking(move || victim.start().map(|()| victim)).await??;
            anyhow::Ok((killed, start.elapsed(), victim))
        };
        let (events, fault) = tokio::join!(load, fault);
        let (killed, back, victim) = fault?;
        println!(
            "    {} killed at {:.1} s, accepting connections again at {:.1} s",
            dependency.name(),
            killed.as_secs_f64(),
            back.as_secs_f64()
        );
        Ok::<_, anyhow::Error>((print_outage(&traffic, &events, total, back), victim))
    }
    .await;
    server.stop().await?;
    deployment.clean_up();
    // The private server goes last: the clean-up above still talks to it.
    result.map(|(kept, _victim)| kept)
}

fn print_outage(
    traffic: &[Traffic],
    events: &[Vec<Event>],
    total: Duration,
    back: Duration,
) -> bool {
    let back_ms = back.as_millis() as u32;
    println!("    per second: 2xx / 401 / 503 / other, each stream");
    print!("    {:>4}", "s");
    for t in traffic {
        print!("  {:>28}", t.name);
    }
    println!();
    for second in 0..total.as_secs() as u32 {
        print!("    {second:>4}");
        for stream in events {
            let window: Vec<Event> = stream
                .iter()
                .filter(|e| e.at_ms / 1000 == second)
                .copied()
                .collect();
            let o = Outcome::of(&window, 0);
            print!(
                "  {:>28}",
                format!(
                    "{} / {} / {} / {}",
                    o.ok,
                    o.unauthorized,
                    o.unavailable,
                    o.other + o.transport
                )
            );
        }
        println!();
    }
    let mut kept = true;
    let mut recovery_ms = 0u32;
    for (t, stream) in traffic.iter().zip(events) {
        let o = Outcome::of(stream, back_ms);
        let revoked_stream = t.name.contains("revoked");
        println!(
            "    {}: {} answers; 2xx {}, 401 {}, 503 {} ({} without Retry-After), other {}, transport errors {}",
            t.name,
            stream.len(),
            o.ok,
            o.unauthorized,
            o.unavailable,
            o.unavailable_without_retry_after,
            o.other,
            o.transport
        );
        if revoked_stream {
            if o.ok > 0 {
                println!("    FAILED: {} answers accepted a revoked token", o.ok);
                kept = false;
            }
        } else {
            if o.unauthorized > 0 {
                println!(
                    "    FAILED: {} valid tokens were refused with 401",
                    o.unauthorized
                );
                kept = false;
            }
            if let Some(last) = o.last_failure_ms {
                recovery_ms = recovery_ms.max(last.saturating_sub(back_ms));
            }
        }
        if o.other > 0 || o.transport > 0 || o.unavailable_without_retry_after > 0 {
            println!("    FAILED: answers other than 2xx, 401 and 503 with Retry-After");
            kept = false;
        }
    }
    println!(
        "    revoked tokens accepted: {}; recovery after the dependency returned: {:.2} s",
        events
            .iter()
            .zip(traffic)
            .filter(|(_, t)| t.name.contains("revoked"))
            .map(|(s, _)| s.iter().filter(|e| (200..=299).contains(&e.status)).count())
            .sum::<usize>(),
        f64::from(recovery_ms) / 1000.0
    );
    kept
}

/// Resident memory, descriptors and connections of the server, sampled.
struct Sample {
    at: Duration,
    rss_kb: u64,
    fds: usize,
    pg_connections: u64,
    redis_clients: u64,
    answers: u64,
    failures: u64,
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Mixed traffic at a fixed rate for `--soak-secs`, sampled every ten seconds.
pub async fn soak(args: &Args) -> anyhow::Result<bool> {
    let total = Duration::from_secs(args.soak_secs.max(30));
    let refresh_every = Duration::from_millis(20);
    let tokens = (total.as_secs_f64() / refresh_every.as_secs_f64()) as u64 * 2 + 4_000;
    // Access tokens of an hour: the soak outlasts the default five minutes.
    let deployment = Deployment::prepare(
        args,
        &args.postgres,
        &args.redis,
        "soak",
        &["TESSERA_ACCESS_TOKEN_TTL=1h"],
        tokens,
    )?;
    let server = TesseraServer::start(&deployment.env, deployment.cost).await?;
    let addr = server.addr();
    let result = async {
        let (live, _) = deployment.me_templates(addr, 16, 0).await?;
        let (introspected, _) = deployment.tokens_from_refresh(addr).await?;
        let introspect = RequestTemplate::post_form(
            addr,
            "/oauth/introspect",
            format!("token={introspected}"),
        )
        .basic_auth(&deployment.client.id, &deployment.client.secret);
        let traffic = [
            Traffic {
                name: "login",
                connections: 1,
                pace: Some(Duration::from_secs(1)),
                source: Arc::new(Logins {
                    template: deployment.token_endpoint(addr),
                    cost: deployment.cost,
                    password: Secret::new(deployment.password.expose().to_owned()),
                    next: AtomicUsize::new(0),
                }),
            },
            Traffic {
                name: "refresh",
                connections: 1,
                pace: Some(refresh_every),
                source: deployment.refreshes(addr),
            },
            Traffic {
                name: "/v1/me",
                connections: 2,
                pace: Some(Duration::from_millis(10)),
                source: Arc::new(RoundRobin::new(live)),
            },
            Traffic {
                name: "revoke",
                connections: 1,
                pace: Some(Duration::from_millis(500)),
                source: Arc::new(TokenForm {
                    template: RequestTemplate::post_form(addr, "/oauth/revoke", String::new()),
                    tokens: Arc::clone(&deployment.tokens),
                    form: revoke_form,
                }),
            },
            Traffic {
                name: "introspect",
                connections: 1,
                pace: Some(Duration::from_millis(20)),
                source: Arc::new(RoundRobin::new(vec![introspect])),
            },
        ];
        report::step(&format!(
            "soak: {} s of logins 1/s, refreshes 50/s, /v1/me 200/s, revocations 2/s, introspection 50/s",
            total.as_secs()
        ));
        let start = Instant::now();
        let load = drive(addr, &traffic, start, start + total);
        let sampler = async {
            let mut samples = Vec::new();
            let mut at = Duration::ZERO;
            while at < total {
                at += Duration::from_secs(10);
                sleep_until(start + at).await;
                samples.push((
                    at,
                    server.memory_kb().map(|(rss, _)| rss).unwrap_or(0),
                    open_descriptors(server.pid()),
                    deployment
                        .pg
                        .query_number(&format!(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
                            deployment.pg.database_name()
                        ))
                        .unwrap_or(0),
                    redis::connected_clients(&deployment.redis_url).unwrap_or(0),
                ));
            }
            samples
        };
        let (events, raw) = tokio::join!(load, sampler);
        let samples: Vec<Sample> = raw
            .into_iter()
            .map(|(at, rss_kb, fds, pg_connections, redis_clients)| {
                let until = at.as_millis() as u32;
                let seen = events.iter().flatten().filter(|e| e.at_ms < until);
                let (answers, failures) = seen.fold((0, 0), |(a, f), e| {
                    (a + 1, f + u64::from(!(200..=299).contains(&e.status)))
                });
                Sample {
                    at,
                    rss_kb,
                    fds,
                    pg_connections,
                    redis_clients,
                    answers,
                    failures,
                }
            })
            .collect();
        Ok::<_, anyhow::Error>(print_soak(&traffic, &events, &samples))
    }
    .await;
    server.stop().await?;
    deployment.clean_up();
    result
}

fn print_soak(traffic: &[Traffic], events: &[Vec<Event>], samples: &[Sample]) -> bool {
    println!(
        "    {:>6} {:>10} {:>6} {:>9} {:>8} {:>10} {:>9}",
        "s", "RSS MiB", "fds", "PG conns", "Redis cl", "answers", "non-2xx"
    );
    for s in samples {
        println!(
            "    {:>6} {:>10.1} {:>6} {:>9} {:>8} {:>10} {:>9}",
            s.at.as_secs(),
            s.rss_kb as f64 / 1024.0,
            s.fds,
            s.pg_connections,
            s.redis_clients,
            s.answers,
            s.failures
        );
    }
    for (t, stream) in traffic.iter().zip(events) {
        let o = Outcome::of(stream, 0);
        println!(
            "    {}: {} answers, 2xx {}, 401 {}, 503 {}, other {}, transport errors {}",
            t.name,
            stream.len(),
            o.ok,
            o.unauthorized,
            o.unavailable,
            o.other,
            o.transport
        );
    }
    // After a minute the pools and caches have filled; from then on, flat.
    let settled = samples.iter().find(|s| s.at >= Duration::from_secs(60));
    let (Some(first), Some(last)) = (settled, samples.last()) else {
        return true;
    };
    let growth = last.rss_kb as f64 / first.rss_kb.max(1) as f64;
    println!(
        "    from {} s to {} s: RSS {:.1} -> {:.1} MiB ({:+.1} %), fds {} -> {}, PG connections {} -> {}",
        first.at.as_secs(),
        last.at.as_secs(),
        first.rss_kb as f64 / 1024.0,
        last.rss_kb as f64 / 1024.0,
        (growth - 1.0) * 100.0,
        first.fds,
        last.fds,
        first.pg_connections,
        last.pg_connections
    );
    let failures: u64 = samples.last().map(|s| s.failures).unwrap_or(0);
    let flat = growth < 1.2
        && last.fds <= first.fds + 8
        && last.pg_connections <= first.pg_connections + 2;
    if !flat {
        println!("    FAILED: the server grew during the soak");
    }
    if failures > 0 {
        println!("    FAILED: {failures} answers were not 2xx");
    }
    flat && failures == 0
}
