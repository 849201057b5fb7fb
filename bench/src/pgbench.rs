//! The ceiling for refreshes: pgbench sending PostgreSQL exactly the statement Tessera
//! sends per refresh (bench/sql/pgbench_refresh.sql), with as many clients as the
//! driver has connections, on a set of sessions of its own. Tessera's refresh rate as a
//! fraction of this is what its own code costs. Beside it, the floor of any durable
//! refresh: one bare HOT update of one session row (bench/sql/pgbench_bare_update.sql).
//! And the ceiling once rotations share a commit, as Tessera's do under load: 8 of them
//! in one statement (bench/sql/pgbench_grouped_refresh.sql).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;

use tokio::time::{sleep, Instant};

use crate::fixtures::TokenSet;
use crate::http::USER_AGENT;
use crate::machine::{CpuSnapshot, CpuUse};
use crate::postgres::Postgres;

/// Transactions per client of the warm-up; it also estimates the rate, which sizes
/// the token set of the measured run.
const WARMUP_TRANSACTIONS_PER_CLIENT: u64 = 50;

/// pgbench names its per-transaction logs `<prefix>.<pid>[.<thread>]`.
const LOG_PREFIX: &str = "pgbench";

/// The parameters Tessera binds besides the session and generation: the request's
/// address and user agent (bench/src/http.rs sends this one) and the client.
const REQUEST_IP: &str = "127.0.0.1";
const CLIENT_ID: &str = "tessera";

/// A pgbench script of bench/sql, each transaction presenting one fresh session.
#[derive(Clone, Copy)]
pub struct Script {
    pub file: &'static str,
    /// How the report names it.
    pub label: &'static str,
    /// Rotations (fresh sessions) per transaction.
    pub rotations: u64,
}

/// Tessera's rotation statement.
pub const ROTATION: Script = Script {
    file: "pgbench_refresh.sql",
    label: "pgbench: rotation statement",
    rotations: 1,
};

/// One HOT update of one session row.
pub const BARE_UPDATE: Script = Script {
    file: "pgbench_bare_update.sql",
    label: "pgbench: bare HOT update",
    rotations: 1,
};

/// Tessera's grouped rotation, 8 links per statement.
pub const GROUPED: Script = Script {
    file: "pgbench_grouped_refresh.sql",
    label: "pgbench: 8 rotations per statement",
    rotations: 8,
};

pub struct PgbenchResult {
    pub script: Script,
    pub clients: usize,
    pub transactions: u64,
    pub tps: f64,
    /// Latency per transaction (both statements), microseconds, from pgbench's log.
    pub latency: Histogram<u64>,
    /// Sessions actually moved on; fewer than [`Self::rotations`] means the set ran dry
    /// and some transactions updated nothing (pgbench cannot tell).
    pub rotated: u64,
    pub cpu: CpuUse,
}

impl PgbenchResult {
    /// Rotations the transactions should have made.
    pub fn rotations(&self) -> u64 {
        self.transactions * self.script.rotations
    }

    /// Rotations per second.
    pub fn rotation_rate(&self) -> f64 {
        self.tps * self.script.rotations as f64
    }

    pub fn percentile_ms(&self, percentile: f64) -> f64 {
        self.latency.value_at_quantile(percentile / 100.0) as f64 / 1000.0
    }
}

pub struct Pgbench<'a> {
    pub pg: &'a Postgres,
    pub clients: usize,
    pub log_dir: PathBuf,
}

struct Run {
    transactions: u64,
    tps: f64,
}

impl Pgbench<'_> {
    pub async fn measure(
        &self,
        tokens: &TokenSet,
        script: Script,
        duration: Duration,
        rate_hint: f64,
    ) -> anyhow::Result<PgbenchResult> {
        let clients = self.clients as u64;
        let per = script.rotations;
        let warmup_count = WARMUP_TRANSACTIONS_PER_CLIENT * clients * per;
        tokens.ensure_fresh(self.pg, warmup_count)?;
        let warmup_base = tokens.reserve(warmup_count);
        let warmup = finish(
            self.command(
                script,
                &["-t", &WARMUP_TRANSACTIONS_PER_CLIENT.to_string()],
                warmup_base,
            )
            .output()
            .context("starting pgbench")?,
        )?;
        // Room for four times the warm-up's rate (or the hint, a rate measured before,
        // when it is higher): the short warm-up, still connecting and cold, can come
        // out at half the measured rate. Sessions are cheap to prepare.
        // `rate_hint` is in rotations per second.
        let rate = (warmup.tps * per as f64).max(rate_hint);
        let expected = (rate * duration.as_secs_f64() * 4.0) as u64;
        tokens.ensure_fresh(self.pg, expected + clients * 100 * per)?;
        let base = tokens.used();
        let spent_before = self.spent_tokens()?;

        remove_old_logs(&self.log_dir, LOG_PREFIX)?;
        let mut command = self.command(script, &["-T", &duration.as_secs().to_string()], base);
        command
            .arg("-l")
            .arg(format!(
                "--log-prefix={}",
                self.log_dir.join(LOG_PREFIX).display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command.spawn().context("starting pgbench")?;
        let cpu = cpu_while_running(child.id(), duration).await;
        let run = finish(child.wait_with_output()?)?;

        let rotated = self.spent_tokens()? - spent_before;
        let (latency, most_per_client) = read_logs(&self.log_dir, LOG_PREFIX)?;
        // Clients do not all get as many transactions: the busiest one used session
        // numbers up to base + its count * clients, so the next run starts past those.
        tokens.reserve((most_per_client * clients).max(run.transactions) * per);
        Ok(PgbenchResult {
            script,
            clients: self.clients,
            transactions: run.transactions,
            tps: run.tps,
            latency,
            rotated,
            cpu,
        })
    }

    /// Sessions whose generation-0 token was spent (by anyone: only the difference
    /// over a run counts).
    fn spent_tokens(&self) -> anyhow::Result<u64> {
        self.pg
            .query_number("SELECT count(*) FROM sessions WHERE generation > 0")
    }

    /// pgbench from session number `base`; `-M prepared` because Tessera prepares the
    /// rotation once per connection and then only binds and executes it.
    fn command(&self, script: Script, length: &[&str], base: u64) -> Command {
        let clients = self.clients.to_string();
        let mut command = Command::new("pgbench");
        command
            .args(["-n", "-M", "prepared", "-j", "1", "-c", &clients])
            .args(length)
            .args(["-D", "k=0", "-D", &format!("base={base}")])
            .args(["-D", &format!("clients={clients}")])
            .args(["-D", &format!("ip={REQUEST_IP}")])
            .args(["-D", &format!("user_agent={USER_AGENT}")])
            .args(["-D", &format!("oauth_client={CLIENT_ID}")])
            .arg("-f")
            .arg(self.pg.sql_file(script.file))
            .arg(self.pg.database_url());
        command
    }
}

/// CPU use while pgbench runs, from after its clients have connected (new backends
/// must exist at the first snapshot to be counted) to just before it ends.
async fn cpu_while_running(pgbench_pid: u32, duration: Duration) -> CpuUse {
    let connect = Duration::from_secs(1);
    let window = duration.saturating_sub(connect + Duration::from_millis(500));
    sleep(connect).await;
    let started = Instant::now();
    let before = CpuSnapshot::take(None, pgbench_pid);
    sleep(window).await;
    let after = CpuSnapshot::take(None, pgbench_pid);
    CpuUse::between(&before, &after, started.elapsed().as_secs_f64())
}

fn finish(output: Output) -> anyhow::Result<Run> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "pgbench failed ({}): {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse_summary(&stdout)
}

/// The lines of pgbench's summary we need.
fn parse_summary(stdout: &str) -> anyhow::Result<Run> {
    let value_after = |label: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .with_context(|| format!("no `{label}` in pgbench's output:\n{stdout}"))
    };
    let processed = value_after("number of transactions actually processed: ")?;
    let transactions = processed
        .split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .context("transaction count")?;
    let failed: u64 = value_after("number of failed transactions: ")?
        .parse()
        .context("failed count")?;
    if failed > 0 {
        bail!("{failed} pgbench transactions failed:\n{stdout}");
    }
    let tps = value_after("tps = ")?.parse().context("tps")?;
    Ok(Run { transactions, tps })
}

fn pgbench_logs(dir: &Path, prefix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_log = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&format!("{prefix}.")));
        if is_log {
            logs.push(path);
        }
    }
    Ok(logs)
}

fn remove_old_logs(dir: &Path, prefix: &str) -> anyhow::Result<()> {
    for log in pgbench_logs(dir, prefix)? {
        std::fs::remove_file(log)?;
    }
    Ok(())
}

/// pgbench's per-transaction log: `client transaction latency_us script epoch us`.
/// The latencies, and the most transactions any one client ran (an upper bound: its
/// highest transaction number, plus one).
fn read_logs(dir: &Path, prefix: &str) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut histogram = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    let mut most = 0;
    for log in pgbench_logs(dir, prefix)? {
        let text = std::fs::read_to_string(&log)?;
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let transaction = fields.nth(1).and_then(|v| v.parse::<u64>().ok());
            if let Some(latency) = fields.next().and_then(|v| v.parse().ok()) {
                histogram.saturating_record(latency);
            }
            if let Some(transaction) = transaction {
                most = most.max(transaction + 1);
            }
        }
    }
    Ok((histogram, most))
}

#[cfg(test)]
mod tests {
    use super::{parse_summary, read_logs};

    #[test]
    fn reads_the_busiest_client_from_the_logs() {
        let dir = std::env::temp_dir().join(format!("tessera-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("t.1"),
            "0 0 500 0 1796154836 434718\n1 0 700 0 1796154836 434737\n0 1 600 0 1796154836 434743\n",
        )
        .unwrap();
        let (latency, most) = read_logs(&dir, "t").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(latency.len(), 3);
        assert_eq!(most, 2);
    }

    #[test]
    fn reads_pgbench_15_summary() {
        let out = "transaction type: refresh.sql\n\
                   number of transactions actually processed: 1234/1234\n\
                   number of failed transactions: 0 (0.000%)\n\
                   latency average = 9.076 ms\n\
                   tps = 220.353300 (without initial connection time)\n";
        let run = parse_summary(out).unwrap();
        assert_eq!(run.transactions, 1234);
        assert!((run.tps - 220.3533).abs() < 1e-6);
    }
}
