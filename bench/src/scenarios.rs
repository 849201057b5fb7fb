//! The benchmark from start to finish: prepare the data, start Tessera once per bcrypt
//! cost, measure each scenario, compare with pgbench, clean up.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::Request;

use crate::fixtures::{self, ConfidentialClient, Secret, TokenSet};
use crate::http::{send_once, Body, RequestTemplate};
use crate::load::{measure, Measurement, RequestSource, Stream};
use crate::machine::{self, MachineInfo};
use crate::pgbench::{self, Pgbench};
use crate::postgres::Postgres;
use crate::redis;
use crate::report::{self, BcryptBound, CpuPerRefresh, Row, Summary};
use crate::resilience;
use crate::server::{ServerEnv, TesseraServer};
use crate::storage;
use crate::writes::Counters;
use crate::{Args, Scenario};

/// The scenarios that run on the server started with the first bcrypt cost.
const MAIN_PHASE: [Scenario; 9] = [
    Scenario::Login,
    Scenario::Refresh,
    Scenario::ClientCredentials,
    Scenario::Introspection,
    Scenario::Jwks,
    Scenario::Me,
    Scenario::Code,
    Scenario::Userinfo,
    Scenario::Storm,
];

/// Code exchanges per second to prepare codes for, before one was measured.
const CODE_RATE_GUESS: f64 = 3000.0;

/// Below this CPU use (in cores) the server counts as idle between scenarios.
const IDLE_CORES: f64 = 0.05;
/// The longest wait for the server to go idle.
const IDLE_WAIT_LIMIT: Duration = Duration::from_secs(120);

/// `grant_type=password` for the users of one bcrypt cost, round-robin.
struct LoginSource {
    template: RequestTemplate,
    cost: u32,
    password: Arc<Secret>,
    next: AtomicU64,
}

impl RequestSource for LoginSource {
    fn next_request(&self) -> Option<Request<Body>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        // The password is base64url: nothing to escape in a form.
        let body = format!(
            "grant_type=password&username={}&password={}",
            fixtures::username(self.cost, i),
            self.password.expose()
        );
        Some(self.template.request_with_body(body))
    }
}

/// `grant_type=refresh_token`, each time with a token never presented before.
struct RefreshSource {
    template: RequestTemplate,
    tokens: Arc<TokenSet>,
}

impl RequestSource for RefreshSource {
    fn next_request(&self) -> Option<Request<Body>> {
        let token = self.tokens.take()?;
        let body = format!("grant_type=refresh_token&refresh_token={token}");
        Some(self.template.request_with_body(body))
    }
}

/// `grant_type=authorization_code`, each time with a code never presented before.
struct CodeSource {
    template: RequestTemplate,
    codes: Arc<fixtures::CodeSet>,
}

impl RequestSource for CodeSource {
    fn next_request(&self) -> Option<Request<Body>> {
        let code = self.codes.take()?;
        let body = format!(
            "grant_type=authorization_code&client_id=bench-spa&code={code}\
             &redirect_uri=http%3A%2F%2Flocalhost%3A5555%2Fcb&code_verifier={}",
            fixtures::CODE_VERIFIER
        );
        Some(self.template.request_with_body(body))
    }
}

fn stream(name: &str, connections: usize, source: impl RequestSource + 'static) -> Stream {
    Stream {
        name: name.to_owned(),
        connections,
        source: Arc::new(source),
    }
}

/// The median time of one bcrypt verification at `cost`, in this process: the
/// server's work per login.
fn bcrypt_verify_ms(cost: u32, password: &Secret) -> anyhow::Result<f64> {
    let hash = bcrypt::hash(password.expose(), cost)?;
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            let matched = bcrypt::verify(password.expose(), &hash);
            assert!(matches!(matched, Ok(true)), "bcrypt verifies its own hash");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Requests cut off at the end of a window keep running in the server after the
/// driver hangs up (above all, logins queued for bcrypt: seconds of work at cost 12),
/// so the next scenario starts only when the server has gone quiet.
async fn wait_until_idle(server: &TesseraServer) {
    let started = Instant::now();
    let sample = Duration::from_millis(500);
    let cpu = || machine::process_cpu_seconds(server.pid()).unwrap_or(0.0);
    loop {
        let before = cpu();
        tokio::time::sleep(sample).await;
        let busy = (cpu() - before) / sample.as_secs_f64();
        if busy < IDLE_CORES || started.elapsed() > IDLE_WAIT_LIMIT {
            break;
        }
    }
    let waited = started.elapsed().as_secs_f64();
    if waited > 1.0 {
        println!(
            "    (waited {waited:.1} s for Tessera to finish the requests cut off at the end)"
        );
    }
}

struct Bench<'a> {
    args: &'a Args,
    pg: &'a Postgres,
    env: ServerEnv,
    password: Arc<Secret>,
    client: ConfidentialClient,
    tokens: Arc<TokenSet>,
    codes: Arc<fixtures::CodeSet>,
    /// Refreshes per second to prepare tokens for: a guess at first, then measured.
    refresh_rate: f64,
    summary: Summary,
}

impl Bench<'_> {
    fn scenario_seconds(&self) -> f64 {
        (self.args.warmup() + self.args.duration()).as_secs_f64()
    }

    /// Prepares enough fresh refresh tokens for a whole scenario of refreshes at the
    /// expected rate, with room to spare.
    fn prepare_refresh_tokens(&self) -> anyhow::Result<()> {
        let fresh = (self.refresh_rate * self.scenario_seconds() * 1.5) as u64 + 1000;
        self.tokens.ensure_fresh(self.pg, fresh)
    }

    async fn run(
        &mut self,
        server: &TesseraServer,
        title: &str,
        streams: Vec<Stream>,
    ) -> Measurement {
        report::step(title);
        let measurement = measure(
            &[server.addr()],
            streams,
            self.args.warmup(),
            self.args.duration(),
            &[server.pid()],
        )
        .await;
        report::measurement(&measurement);
        wait_until_idle(server).await;
        measurement
    }

    fn record(&mut self, label: String, measurement: &Measurement, stream: usize) {
        self.summary
            .rows
            .push(Row::from_stream(label, &measurement.streams[stream]));
    }

    /// A scenario of one stream at the main concurrency, recorded in the summary.
    async fn single(
        &mut self,
        server: &TesseraServer,
        title: &str,
        source: impl RequestSource + 'static,
    ) -> Measurement {
        let streams = vec![stream(title, self.args.connections, source)];
        let measurement = self.run(server, title, streams).await;
        self.record(title.to_owned(), &measurement, 0);
        measurement
    }

    fn token_endpoint(&self, addr: SocketAddr) -> RequestTemplate {
        RequestTemplate::post_form(addr, "/oauth/token", String::new())
    }

    fn login_source(&self, addr: SocketAddr, cost: u32) -> LoginSource {
        LoginSource {
            template: self.token_endpoint(addr),
            cost,
            password: Arc::clone(&self.password),
            next: AtomicU64::new(0),
        }
    }

    fn refresh_source(&self, addr: SocketAddr) -> RefreshSource {
        RefreshSource {
            template: self.token_endpoint(addr),
            tokens: Arc::clone(&self.tokens),
        }
    }

    async fn login(&mut self, server: &TesseraServer, cost: u32) -> anyhow::Result<()> {
        let verify_ms = bcrypt_verify_ms(cost, &self.password)?;
        let source = self.login_source(server.addr(), cost);
        let m = self
            .single(
                server,
                &format!("password login, bcrypt cost {cost}"),
                source,
            )
            .await;
        let bound = BcryptBound {
            cost,
            verify_ms,
            cores: machine::cores(),
            achieved: m.streams[0].rate(),
        };
        println!(
            "    bcrypt bound: {} cores / {:.1} ms per verify = {:.1} logins/s; achieved {:.0} %",
            bound.cores,
            bound.verify_ms,
            bound.bound(),
            100.0 * bound.achieved / bound.bound()
        );
        self.summary.bcrypt.push(bound);
        Ok(())
    }

    async fn refresh(&mut self, server: &TesseraServer) -> anyhow::Result<()> {
        self.prepare_refresh_tokens()?;
        let before = Counters::read_settled(self.pg).await?;
        let source = self.refresh_source(server.addr());
        let m = self
            .single(server, "refresh (rotation, fresh token each)", source)
            .await;
        let rate = m.streams[0].rate();
        let cpu = CpuPerRefresh::of(&m.cpu, rate);
        println!("    {}", cpu.line("refresh"));
        // The server has gone idle (`single` waits for it), so its connections report.
        let writes = Counters::read_settled(self.pg).await?.since(&before);
        for line in writes.lines() {
            println!("    {line}");
        }
        // Later batches of tokens follow the measured rate, with room to spare.
        self.refresh_rate = rate.max(1.0) * 2.0;
        self.summary.refresh_rate = Some(rate);
        self.summary.refresh_cpu = Some(cpu);
        self.summary.refresh_writes = Some(writes);
        Ok(())
    }

    async fn client_credentials(&mut self, server: &TesseraServer) {
        let source = RequestTemplate::post_form(
            server.addr(),
            "/oauth/token",
            "grant_type=client_credentials".to_owned(),
        )
        .basic_auth(&self.client.id, &self.client.secret);
        self.single(server, "client_credentials (HTTP Basic)", source)
            .await;
    }

    /// A live user access token, from one refresh (no bcrypt needed).
    async fn user_access_token(&self, addr: SocketAddr) -> anyhow::Result<String> {
        self.tokens.ensure_fresh(self.pg, 1)?;
        let request = self
            .refresh_source(addr)
            .next_request()
            .context("no prepared refresh token left")?;
        let (status, body) = send_once(addr, request).await?;
        anyhow::ensure!(
            status.is_success(),
            "refresh for an access token: HTTP {status}"
        );
        let json: serde_json::Value = serde_json::from_slice(&body)?;
        json["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token in the token response")
    }

    async fn introspection(&mut self, server: &TesseraServer) -> anyhow::Result<()> {
        let token = self.user_access_token(server.addr()).await?;
        let source = RequestTemplate::post_form(
            server.addr(),
            "/oauth/introspect",
            format!("token={token}&token_type_hint=access_token"),
        )
        .basic_auth(&self.client.id, &self.client.secret);
        // A 200 can still say `"active": false`: make sure this one says true.
        let (status, body) = send_once(server.addr(), source.request()).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body)?;
        anyhow::ensure!(
            status.is_success() && answer["active"] == true,
            "introspection pre-check: HTTP {status}, active = {}",
            answer["active"]
        );
        self.single(server, "introspection of a live access token", source)
            .await;
        Ok(())
    }

    async fn jwks(&mut self, server: &TesseraServer) {
        let source = RequestTemplate::get(server.addr(), "/.well-known/jwks.json");
        self.single(server, "JWKS", source).await;
    }

    async fn me(&mut self, server: &TesseraServer) -> anyhow::Result<()> {
        let token = self.user_access_token(server.addr()).await?;
        let source = RequestTemplate::get(server.addr(), "/v1/me").bearer(&token);
        self.single(server, "/v1/me with a valid token", source)
            .await;
        Ok(())
    }

    fn code_source(&self, addr: SocketAddr) -> CodeSource {
        CodeSource {
            template: self.token_endpoint(addr),
            codes: Arc::clone(&self.codes),
        }
    }

    async fn code_exchange(&mut self, server: &TesseraServer) -> anyhow::Result<()> {
        let fresh = (CODE_RATE_GUESS * self.scenario_seconds() * 1.5) as u64 + 1000;
        self.codes.ensure_fresh(self.pg, fresh)?;
        let source = self.code_source(server.addr());
        self.single(
            server,
            "authorization_code exchange (PKCE, ID token)",
            source,
        )
        .await;
        Ok(())
    }

    async fn userinfo(&mut self, server: &TesseraServer) -> anyhow::Result<()> {
        // An access token with the openid scope, from one code exchange.
        self.codes.ensure_fresh(self.pg, 1)?;
        let request = self
            .code_source(server.addr())
            .next_request()
            .context("no prepared code left")?;
        let (status, body) = send_once(server.addr(), request).await?;
        anyhow::ensure!(
            status.is_success(),
            "code exchange for a token: HTTP {status}"
        );
        let json: serde_json::Value = serde_json::from_slice(&body)?;
        let token = json["access_token"]
            .as_str()
            .context("no access_token in the token response")?;
        let source = RequestTemplate::get(server.addr(), "/oauth/userinfo").bearer(token);
        self.single(server, "userinfo with a valid token", source)
            .await;
        Ok(())
    }

    /// Refreshes at a moderate concurrency, first alone, then while logins saturate
    /// bcrypt: the bcrypt pool must keep the storm away from everything else.
    async fn login_storm(&mut self, server: &TesseraServer, cost: u32) -> anyhow::Result<()> {
        let refreshers = self.args.storm_refresh_connections;
        self.prepare_refresh_tokens()?;
        let alone_title = "refresh alone (storm baseline)";
        let alone = self
            .run(
                server,
                alone_title,
                vec![stream(
                    alone_title,
                    refreshers,
                    self.refresh_source(server.addr()),
                )],
            )
            .await;
        self.record(alone_title.to_owned(), &alone, 0);

        self.prepare_refresh_tokens()?;
        let storm_title = format!("login storm, bcrypt cost {cost}");
        let logins = stream(
            &format!("{storm_title}: logins"),
            self.args.connections,
            self.login_source(server.addr(), cost),
        );
        let refreshes = stream(
            &format!("{storm_title}: refreshes"),
            refreshers,
            self.refresh_source(server.addr()),
        );
        let storm = self
            .run(server, &storm_title, vec![logins, refreshes])
            .await;
        self.record(format!("{storm_title}: logins"), &storm, 0);
        self.record(format!("{storm_title}: refreshes"), &storm, 1);
        self.summary.storm = Some((
            alone.streams[0].percentile_ms(99.0),
            storm.streams[1].percentile_ms(99.0),
        ));
        Ok(())
    }

    /// Every scenario, on a server started with the first bcrypt cost.
    async fn main_phase(&mut self, cost: u32) -> anyhow::Result<()> {
        let server = self.start_server(cost).await?;
        let wants = |s| self.args.wants(s);
        if wants(Scenario::Login) {
            self.login(&server, cost).await?;
        }
        if wants(Scenario::Refresh) {
            self.refresh(&server).await?;
        }
        if wants(Scenario::ClientCredentials) {
            self.client_credentials(&server).await;
        }
        if wants(Scenario::Introspection) {
            self.introspection(&server).await?;
        }
        if wants(Scenario::Jwks) {
            self.jwks(&server).await;
        }
        if wants(Scenario::Me) {
            self.me(&server).await?;
        }
        if wants(Scenario::Code) {
            self.code_exchange(&server).await?;
        }
        if wants(Scenario::Userinfo) {
            self.userinfo(&server).await?;
        }
        if wants(Scenario::Storm) {
            self.login_storm(&server, cost).await?;
        }
        self.stop_server(server, cost).await
    }

    /// Only the login, on a server restarted with another bcrypt cost.
    async fn login_phase(&mut self, cost: u32) -> anyhow::Result<()> {
        let server = self.start_server(cost).await?;
        self.login(&server, cost).await?;
        self.stop_server(server, cost).await
    }

    async fn start_server(&self, cost: u32) -> anyhow::Result<TesseraServer> {
        report::step(&format!("starting Tessera with TESSERA_BCRYPT_COST={cost}"));
        TesseraServer::start(&self.env, cost).await
    }

    async fn stop_server(&mut self, server: TesseraServer, cost: u32) -> anyhow::Result<()> {
        if let Some((rss, peak)) = server.memory_kb() {
            println!(
                "-- Tessera (bcrypt {cost}) resident memory: VmRSS {:.1} MiB, peak VmHWM {:.1} MiB",
                rss as f64 / 1024.0,
                peak as f64 / 1024.0
            );
            self.summary.memory.push((cost, rss, peak));
        }
        server.stop().await
    }

    /// Tessera's rotation statement straight to PostgreSQL, then the bare update that
    /// is the floor of any durable refresh, each on fresh sessions of the pgbench set.
    async fn pgbench(&mut self) -> anyhow::Result<()> {
        report::step(
            "pgbench: Tessera's refresh statement, a bare HOT update and 8 rotations per statement, straight to PostgreSQL",
        );
        let tokens = TokenSet::new(
            fixtures::PGBENCH_TOKENS,
            self.args.bcrypt_costs[0],
            self.env.refresh_key()?,
        );
        let pgbench = Pgbench {
            pg: self.pg,
            clients: self.args.connections,
            log_dir: self.args.work_dir.clone(),
        };
        // The bare update is faster than the rotation: size its sessions from that.
        let mut rate_hint = 0.0;
        for script in [pgbench::ROTATION, pgbench::BARE_UPDATE, pgbench::GROUPED] {
            let result = pgbench
                .measure(&tokens, script, self.args.duration(), rate_hint)
                .await?;
            rate_hint = result.rotation_rate();
            report::pgbench(&result);
            self.summary.rows.push(Row {
                scenario: script.label.to_owned(),
                connections: result.clients,
                // Rotations per second (transactions per second times rotations each).
                rate: result.rotation_rate(),
                p50_ms: result.percentile_ms(50.0),
                p99_ms: result.percentile_ms(99.0),
                non_2xx: 0,
                errors: result.rotations() - result.rotated,
            });
            self.summary.pgbench.push(report::PgbenchLine::of(&result));
        }
        Ok(())
    }

    async fn run_all(&mut self) -> anyhow::Result<()> {
        let costs = self.args.bcrypt_costs.clone();
        if MAIN_PHASE.iter().any(|&s| self.args.wants(s)) {
            self.main_phase(costs[0]).await?;
        }
        if self.args.wants(Scenario::Login) {
            for &cost in &costs[1..] {
                self.login_phase(cost).await?;
            }
        }
        if self.args.wants(Scenario::Pgbench) {
            self.pgbench().await?;
        }
        self.summary.print();
        Ok(())
    }
}

/// A fresh database with Tessera's schema, the users, the client and a clean Redis
/// prefix.
fn prepare(
    args: &Args,
    pg: &Postgres,
    env: &ServerEnv,
) -> anyhow::Result<(Secret, ConfidentialClient)> {
    report::step(&format!(
        "preparing database {} and Redis prefix {}",
        args.database, args.redis_prefix
    ));
    pg.drop_database()?;
    env.migrate()?;
    redis::clear_prefix(&args.redis, &args.redis_prefix)?;
    let password = Secret::random("")?;
    for &cost in &args.bcrypt_costs {
        fixtures::create_users(pg, cost, &password)?;
    }
    let client = ConfidentialClient::create(pg)?;
    Ok((password, client))
}

fn clean_up(args: &Args, pg: &Postgres) {
    if let Err(e) = redis::clear_prefix(&args.redis, &args.redis_prefix) {
        eprintln!(
            "could not clear the Redis prefix {}: {e:#}",
            args.redis_prefix
        );
    }
    if args.keep_database {
        println!("-- kept database {}", args.database);
    } else if let Err(e) = pg.drop_database() {
        eprintln!("could not drop database {}: {e:#}", args.database);
    }
}

pub async fn run_all(args: &Args) -> anyhow::Result<()> {
    report::header(&MachineInfo::read(), args);
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating {}", args.work_dir.display()))?;
    let pg = Postgres::new(&args.postgres, &args.database, &args.sql_dir);
    let env = ServerEnv::new(
        &args.tessera,
        pg.database_url(),
        args.redis.clone(),
        args.redis_prefix.clone(),
        args.work_dir.clone(),
        &args.server_env,
    )?;
    let measured = MAIN_PHASE
        .iter()
        .chain([Scenario::Pgbench].iter())
        .any(|&s| args.wants(s));
    // On Ctrl-C the server (same process group) gets SIGINT too and stops; the
    // database and the Redis keys are still removed here.
    let outcome = tokio::select! {
        outcome = async {
            if measured {
                prepare_and_run(args, &pg, env).await?;
            }
            resilience_scenarios(args).await
        } => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    clean_up(args, &pg);
    outcome
}

/// The outages, the soak and the storage run, each with a server and a database of its
/// own.
async fn resilience_scenarios(args: &Args) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for (scenario, name) in [
        (Scenario::OutageRedis, "outage-redis"),
        (Scenario::OutagePostgres, "outage-postgres"),
        (Scenario::Soak, "soak"),
        (Scenario::Storage, "storage"),
        (Scenario::Feed, "feed"),
        (Scenario::Scale, "scale"),
    ] {
        if !args.wants(scenario) {
            continue;
        }
        let kept = match scenario {
            Scenario::OutageRedis => {
                resilience::outage(args, resilience::Dependency::Redis).await?
            }
            Scenario::OutagePostgres => {
                resilience::outage(args, resilience::Dependency::Postgres).await?
            }
            Scenario::Soak => resilience::soak(args).await?,
            Scenario::Feed => crate::feed::feed(args).await?,
            Scenario::Scale => crate::scale::scale(args).await?,
            _ => storage::storage(args).await?,
        };
        println!(
            "-- {name}: {}",
            if kept { "every promise kept" } else { "FAILED" }
        );
        if !kept {
            failed.push(name);
        }
    }
    anyhow::ensure!(failed.is_empty(), "failed: {}", failed.join(", "));
    Ok(())
}

async fn prepare_and_run(args: &Args, pg: &Postgres, env: ServerEnv) -> anyhow::Result<()> {
    let (password, client) = prepare(args, pg, &env)?;
    let mut bench = Bench {
        args,
        pg,
        password: Arc::new(password),
        client,
        tokens: TokenSet::new(
            fixtures::TESSERA_TOKENS,
            args.bcrypt_costs[0],
            env.refresh_key()?,
        ),
        codes: fixtures::CodeSet::new("codes", args.bcrypt_costs[0]),
        env,
        refresh_rate: args.refresh_rate_guess as f64,
        summary: Summary::default(),
    };
    bench.run_all().await
}
