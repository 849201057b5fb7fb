//! The ceiling for refreshes: pgbench sending PostgreSQL exactly the statements Tessera
//! sends per refresh (bench/sql/pgbench_refresh.sql), with as many clients as the
//! driver has connections, on a token set of its own. Tessera's refresh rate as a
//! fraction of this is what its own code costs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use hdrhistogram::Histogram;

use tokio::time::{sleep, Instant};

use crate::fixtures::TokenSet;
use crate::machine::{CpuSnapshot, CpuUse};
use crate::postgres::Postgres;

/// Transactions per client of the warm-up; it also estimates the rate, which sizes
/// the token set of the measured run.
const WARMUP_TRANSACTIONS_PER_CLIENT: u64 = 50;

/// pgbench names its per-transaction logs `<prefix>.<pid>[.<thread>]`.
const LOG_PREFIX: &str = "pgbench";

pub struct PgbenchResult {
    pub clients: usize,
    pub transactions: u64,
    pub tps: f64,
    /// Latency per transaction (both statements), microseconds, from pgbench's log.
    pub latency: Histogram<u64>,
    /// Tokens actually spent; fewer than `transactions` means the set ran dry and
    /// some transactions rotated nothing (pgbench cannot tell).
    pub rotated: u64,
    pub cpu: CpuUse,
}

impl PgbenchResult {
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
        duration: Duration,
    ) -> anyhow::Result<PgbenchResult> {
        let clients = self.clients as u64;
        let warmup_count = WARMUP_TRANSACTIONS_PER_CLIENT * clients;
        tokens.ensure_fresh(self.pg, warmup_count)?;
        let warmup_base = tokens.reserve(warmup_count);
        let warmup = finish(
            self.command(
                &["-t", &WARMUP_TRANSACTIONS_PER_CLIENT.to_string()],
                warmup_base,
            )
            .output()
            .context("starting pgbench")?,
        )?;
        // Room for twice the warm-up's rate, whatever the measured run does.
        let expected = (warmup.tps * duration.as_secs_f64() * 2.0) as u64;
        tokens.ensure_fresh(self.pg, expected + clients * 100)?;
        let base = tokens.used();
        let spent_before = self.spent_tokens()?;

        remove_old_logs(&self.log_dir, LOG_PREFIX)?;
        let mut command = self.command(&["-T", &duration.as_secs().to_string()], base);
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
        tokens.reserve(run.transactions);
        Ok(PgbenchResult {
            clients: self.clients,
            transactions: run.transactions,
            tps: run.tps,
            latency: read_latency_logs(&self.log_dir, LOG_PREFIX)?,
            rotated,
            cpu,
        })
    }

    fn spent_tokens(&self) -> anyhow::Result<u64> {
        self.pg
            .query_number("SELECT count(*) FROM refresh_tokens WHERE used_at IS NOT NULL")
    }

    /// pgbench from token number `base`; `-M prepared` because Tessera prepares the
    /// rotation once per connection and then only binds and executes it.
    fn command(&self, length: &[&str], base: u64) -> Command {
        let clients = self.clients.to_string();
        let mut command = Command::new("pgbench");
        command
            .args(["-n", "-M", "prepared", "-j", "1", "-c", &clients])
            .args(length)
            .args(["-D", "k=0", "-D", &format!("base={base}")])
            .args(["-D", &format!("clients={clients}")])
            .arg("-f")
            .arg(self.pg.sql_file("pgbench_refresh.sql"))
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
fn read_latency_logs(dir: &Path, prefix: &str) -> anyhow::Result<Histogram<u64>> {
    let mut histogram = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for log in pgbench_logs(dir, prefix)? {
        let text = std::fs::read_to_string(&log)?;
        for line in text.lines() {
            if let Some(latency) = line.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                histogram.saturating_record(latency);
            }
        }
    }
    Ok(histogram)
}

#[cfg(test)]
mod tests {
    use super::parse_summary;

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
