//! `tessera-bench`: drives a separately started release build of Tessera with HTTP load
//! and compares its refresh rate with pgbench running the same SQL. `bench/run.sh`
//! builds everything and runs this; docs/benchmarks.md explains the output.

mod feed;
mod fixtures;
mod http;
mod load;
mod machine;
mod pgbench;
mod postgres;
mod private;
mod redis;
mod report;
mod resilience;
mod scale;
mod scenarios;
mod server;
mod storage;
mod writes;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// The scenarios, for `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Password logins, at every cost of --bcrypt-costs.
    Login,
    Refresh,
    ClientCredentials,
    Introspection,
    Jwks,
    Me,
    /// `grant_type=authorization_code`: prepared codes exchanged with PKCE, each once
    /// (a session, an access token, a refresh token and an ID token per exchange).
    Code,
    /// OpenID Connect userinfo with a valid access token.
    Userinfo,
    /// The login storm and its refresh-alone baseline.
    Storm,
    Pgbench,
    /// A private Redis killed and restarted under load (only when asked for).
    OutageRedis,
    /// A private PostgreSQL killed and restarted under load (only when asked for).
    OutagePostgres,
    /// Mixed traffic at a fixed rate for --soak-secs, memory and connections sampled
    /// (only when asked for).
    Soak,
    /// The revocation feed: propagation to three subscribed verifier processes at 10/s
    /// and 200/s, and Tessera's cost with 1,000 idle and 100 busy subscribers (only
    /// when asked for).
    Feed,
    /// 1,000,000 chained refreshes over 1,000 sessions on a private PostgreSQL with
    /// autovacuum at its defaults: the database must not grow (only when asked for).
    Storage,
    /// Refresh and verification on 1 and --instances instances, on single-node Redis
    /// and on a private Redis Cluster, and the commits, Redis commands and CPU of each
    /// operation (only when asked for).
    Scale,
}

impl Scenario {
    /// Scenarios that run only when `--only` names them: they kill servers or take
    /// minutes.
    pub const ON_REQUEST: [Scenario; 6] = [
        Scenario::OutageRedis,
        Scenario::OutagePostgres,
        Scenario::Soak,
        Scenario::Storage,
        Scenario::Feed,
        Scenario::Scale,
    ];
}

/// Load benchmark of Tessera: starts the server against a dedicated database and
/// Redis prefix, prepares its data, and measures every scenario for a fixed time.
#[derive(Parser, Debug)]
#[command(name = "tessera-bench")]
pub struct Args {
    /// The Tessera release binary to start.
    #[arg(long, default_value = "target/release/tessera")]
    pub tessera: PathBuf,
    /// Where the SQL files of the benchmark live (bench/sql).
    #[arg(long, default_value = "bench/sql")]
    pub sql_dir: PathBuf,
    /// Where the server log and pgbench's transaction logs go.
    #[arg(long, default_value = "bench/target/run")]
    pub work_dir: PathBuf,
    /// PostgreSQL server (trust authentication); the database below is dropped and
    /// re-created on every run.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pub postgres: String,
    #[arg(long, default_value = "tessera_bench")]
    pub database: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis: String,
    /// Every Redis key of the benchmark server starts with this; they are deleted
    /// before and after the run.
    #[arg(long, default_value = "bench:")]
    pub redis_prefix: String,
    /// Seconds of load before the measurement starts, per scenario.
    #[arg(long, default_value_t = 3)]
    pub warmup_secs: u64,
    /// Seconds measured, per scenario.
    #[arg(long, default_value_t = 12)]
    pub duration_secs: u64,
    /// Connections of the main scenarios, and pgbench clients.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Connections that refresh during the login storm (and alone, for comparison).
    #[arg(long, default_value_t = 8)]
    pub storm_refresh_connections: usize,
    /// bcrypt costs of the login scenarios; the server restarts for each. The other
    /// scenarios run on the server started with the first one.
    #[arg(long, value_delimiter = ',', default_value = "12,10")]
    pub bcrypt_costs: Vec<u32>,
    /// Refreshes per second assumed before any has been measured, to size the first
    /// batch of prepared refresh tokens (later batches follow the measured rate).
    #[arg(long, default_value_t = 15000)]
    pub refresh_rate_guess: u64,
    /// Driver threads. One keeps the driver to at most one core of a small machine;
    /// the report shows its CPU use, so a saturated driver is visible.
    #[arg(long, default_value_t = 1)]
    pub driver_threads: usize,
    /// An extra setting for the server, e.g. `--server-env
    /// TESSERA_BCRYPT_MAX_CONCURRENCY=1`; repeat for several. Only TESSERA_* settings
    /// the benchmark does not set itself.
    #[arg(long, value_name = "NAME=VALUE")]
    pub server_env: Vec<String>,
    /// Run only these scenarios (comma-separated); all by default.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Scenario>,
    /// Seconds of load in each outage scenario: the dependency dies a third of the
    /// way in and comes back half-way.
    #[arg(long, default_value_t = 30)]
    pub outage_secs: u64,
    /// Seconds of the soak.
    #[arg(long, default_value_t = 600)]
    pub soak_secs: u64,
    /// Sessions of the storage scenario, each refreshed in a chain of its own.
    #[arg(long, default_value_t = 1_000)]
    pub storage_sessions: u64,
    /// Refreshes of the storage scenario, over all its sessions.
    #[arg(long, default_value_t = 1_000_000)]
    pub storage_refreshes: u64,
    /// Revocations of each propagation run of the feed scenario.
    #[arg(long, default_value_t = 1_000)]
    pub feed_revocations: usize,
    /// Instances of the scale scenario (beside its one-instance runs).
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// Keep the benchmark database afterwards (for inspection).
    #[arg(long)]
    pub keep_database: bool,
}

impl Args {
    pub fn warmup(&self) -> Duration {
        Duration::from_secs(self.warmup_secs)
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_secs)
    }

    pub fn wants(&self, scenario: Scenario) -> bool {
        if Scenario::ON_REQUEST.contains(&scenario) {
            return self.only.contains(&scenario);
        }
        self.only.is_empty() || self.only.contains(&scenario)
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        !args.bcrypt_costs.is_empty(),
        "--bcrypt-costs needs at least one cost"
    );
    let runtime = if args.driver_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.driver_threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(scenarios::run_all(&args))
}
