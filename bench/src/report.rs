//! What the benchmark prints: each scenario as it finishes, then a summary with the
//! comparisons the benchmark exists for, and a Markdown table for
//! docs/benchmarks.md.

use crate::load::{Measurement, StreamResult};
use crate::machine::{CpuUse, MachineInfo};
use crate::pgbench::PgbenchResult;
use crate::writes::Writes;
use crate::Args;

pub fn header(machine: &MachineInfo, args: &Args) {
    println!("tessera-bench");
    println!(
        "machine: {} cores (nproc), {}; load average before start: {}",
        machine.cores, machine.cpu_model, machine.load_average
    );
    println!(
        "each scenario: {} s warm-up, {} s measured; closed loop (each connection sends its \
         next request when the answer is in)",
        args.warmup_secs, args.duration_secs
    );
    if !args.server_env.is_empty() {
        println!("server settings added: {}", args.server_env.join(" "));
    }
    println!();
}

pub fn step(text: &str) {
    println!("-- {text}");
}

fn cpu_line(cpu: &CpuUse) -> String {
    format!(
        "cpu (cores): tessera {:.2}  postgres {:.2}  redis {:.2}  driver {:.2}  other {:.2}",
        cpu.server,
        cpu.postgres,
        cpu.redis,
        cpu.driver,
        cpu.other()
    )
}

fn stream_line(stream: &StreamResult) -> String {
    format!(
        "{:<34} {:>4} conn {:>9.1} req/s  p50 {:>8.2} ms  p99 {:>8.2} ms  non-2xx {}  errors {}",
        stream.name,
        stream.connections,
        stream.rate(),
        stream.percentile_ms(50.0),
        stream.percentile_ms(99.0),
        stream.non_2xx,
        stream.errors
    )
}

pub fn measurement(measurement: &Measurement) {
    for stream in &measurement.streams {
        println!("{}", stream_line(stream));
        if let Some(failure) = &stream.first_failure {
            println!("    first failure: {failure}");
        }
        if stream.ran_dry {
            println!("    RAN OUT OF PREPARED REFRESH TOKENS: the rate above is too low");
        }
    }
    println!("    {}", cpu_line(&measurement.cpu));
}

/// CPU time per refresh (or per pgbench transaction), in microseconds.
#[derive(Clone, Copy, Debug)]
pub struct CpuPerRefresh {
    pub tessera_us: f64,
    pub postgres_us: f64,
}

impl CpuPerRefresh {
    /// From the cores used during a window and the refreshes per second in it.
    pub fn of(cpu: &CpuUse, rate: f64) -> Self {
        let per = |cores: f64| {
            if rate > 0.0 {
                cores * 1e6 / rate
            } else {
                f64::NAN
            }
        };
        Self {
            tessera_us: per(cpu.server),
            postgres_us: per(cpu.postgres),
        }
    }

    pub fn line(&self, what: &str) -> String {
        format!(
            "cpu per {what}: tessera {:.1} µs, postgres {:.1} µs",
            self.tessera_us, self.postgres_us
        )
    }
}

pub fn pgbench(result: &PgbenchResult) {
    println!(
        "{:<34} {:>4} conn {:>9.1} tx/s   p50 {:>8.2} ms  p99 {:>8.2} ms  rotated {}/{}",
        result.script.label,
        result.clients,
        result.tps,
        result.percentile_ms(50.0),
        result.percentile_ms(99.0),
        result.rotated,
        result.rotations()
    );
    if result.rotated < result.rotations() {
        println!("    SOME TRANSACTIONS FOUND NO SESSION: the set ran dry; the rate is too high");
    }
    println!("    {}", cpu_line(&result.cpu));
    if result.script.rotations > 1 {
        println!(
            "    {:.0} rotations/s; cpu per rotation: postgres {:.1} µs",
            result.rotation_rate(),
            CpuPerRefresh::of(&result.cpu, result.rotation_rate()).postgres_us
        );
    } else {
        println!(
            "    cpu per transaction: postgres {:.1} µs",
            CpuPerRefresh::of(&result.cpu, result.tps).postgres_us
        );
    }
}

/// A pgbench run, as the summary compares it: rotations per second and PostgreSQL's
/// CPU per rotation.
pub struct PgbenchLine {
    pub label: &'static str,
    pub tps: f64,
    pub postgres_us: f64,
}

impl PgbenchLine {
    pub fn of(result: &PgbenchResult) -> Self {
        Self {
            label: result.script.label,
            tps: result.rotation_rate(),
            postgres_us: CpuPerRefresh::of(&result.cpu, result.rotation_rate()).postgres_us,
        }
    }
}

/// One line of the results table.
pub struct Row {
    pub scenario: String,
    pub connections: usize,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
    pub errors: u64,
}

impl Row {
    pub fn from_stream(scenario: String, stream: &StreamResult) -> Self {
        Self {
            scenario,
            connections: stream.connections,
            rate: stream.rate(),
            p50_ms: stream.percentile_ms(50.0),
            p99_ms: stream.percentile_ms(99.0),
            non_2xx: stream.non_2xx,
            errors: stream.errors + u64::from(stream.ran_dry),
        }
    }
}

/// The bcrypt ceiling of the password grant at one cost.
pub struct BcryptBound {
    pub cost: u32,
    pub verify_ms: f64,
    pub cores: usize,
    pub achieved: f64,
}

impl BcryptBound {
    pub fn bound(&self) -> f64 {
        self.cores as f64 * 1000.0 / self.verify_ms
    }
}

/// Everything the final summary compares.
#[derive(Default)]
pub struct Summary {
    pub rows: Vec<Row>,
    pub bcrypt: Vec<BcryptBound>,
    /// (refresh p99 alone, refresh p99 during the login storm), ms.
    pub storm: Option<(f64, f64)>,
    /// Tessera's refresh rate at the main concurrency.
    pub refresh_rate: Option<f64>,
    pub refresh_cpu: Option<CpuPerRefresh>,
    pub refresh_writes: Option<Writes>,
    /// The rotation statement, then the bare update.
    pub pgbench: Vec<PgbenchLine>,
    /// (bcrypt cost of the server, VmRSS kB, VmHWM kB) after its scenarios.
    pub memory: Vec<(u32, u64, u64)>,
}

impl Summary {
    pub fn print(&self) {
        println!();
        println!("== summary (Markdown, for docs/benchmarks.md)");
        println!();
        println!("| scenario | connections | requests/s | p50 ms | p99 ms | non-2xx | errors |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} |",
                row.scenario,
                row.connections,
                row.rate,
                row.p50_ms,
                row.p99_ms,
                row.non_2xx,
                row.errors
            );
        }
        println!();
        for b in &self.bcrypt {
            println!(
                "- password login, bcrypt cost {}: one verify takes {:.1} ms, so {} cores bound \
                 logins at {:.1}/s; achieved {:.1}/s = {:.0} % of the bound",
                b.cost,
                b.verify_ms,
                b.cores,
                b.bound(),
                b.achieved,
                100.0 * b.achieved / b.bound()
            );
        }
        if let Some((alone, storm)) = self.storm {
            let ratio = storm / alone;
            println!(
                "- login storm: refresh p99 {storm:.2} ms during the storm vs {alone:.2} ms alone \
                 = {ratio:.2}x (target: under 3x) {}",
                verdict(ratio < 3.0)
            );
        }
        self.print_refresh();
        for (cost, rss, peak) in &self.memory {
            println!(
                "- server memory after its scenarios (bcrypt {cost}): VmRSS {:.1} MiB, \
                 peak VmHWM {:.1} MiB",
                *rss as f64 / 1024.0,
                *peak as f64 / 1024.0
            );
        }
        let failures: u64 = self.rows.iter().map(|r| r.non_2xx + r.errors).sum();
        if failures > 0 {
            println!("- {failures} FAILED REQUESTS: see the scenarios above");
        }
    }
}

impl Summary {
    /// Tessera's refresh, the rotation statement and the bare update side by side.
    fn print_refresh(&self) {
        if self.refresh_rate.is_none() && self.pgbench.is_empty() {
            return;
        }
        println!("- refresh, side by side (each at its own rate; CPU per refresh or transaction):");
        if let Some(rate) = self.refresh_rate {
            let cpu = self.refresh_cpu.map_or(String::new(), |c| {
                format!(
                    "postgres {:>6.1} µs  tessera {:.1} µs",
                    c.postgres_us, c.tessera_us
                )
            });
            println!("    {:<34} {rate:>9.0}/s  {cpu}", "Tessera refresh");
        }
        for line in &self.pgbench {
            println!(
                "    {:<34} {:>9.0}/s  postgres {:>6.1} µs",
                line.label, line.tps, line.postgres_us
            );
        }
        let rotation = self.pgbench.first();
        let bare = self.pgbench.get(1);
        if let (Some(tessera), Some(grouped)) = (self.refresh_rate, self.pgbench.get(2)) {
            println!(
                "- refresh: Tessera {tessera:.0}/s = {:.0} % of the grouped rotation in pgbench \
                 ({:.0} rotations/s, {})",
                100.0 * tessera / grouped.tps,
                grouped.tps,
                grouped.label.trim_start_matches("pgbench: ")
            );
        }
        if let (Some(tessera), Some(rotation)) = (self.refresh_rate, rotation) {
            let fraction = tessera / rotation.tps;
            println!(
                "- refresh: Tessera {tessera:.0}/s = {:.0} % of the rotation statement in pgbench \
                 ({:.0} tx/s) (goal: over 60 %) {}",
                100.0 * fraction,
                rotation.tps,
                verdict(fraction > 0.6)
            );
            if let Some(bare) = bare {
                println!(
                    "- refresh: Tessera = {:.0} % of the bare HOT update ({:.0} tx/s); the rotation \
                     statement = {:.0} % of it",
                    100.0 * tessera / bare.tps,
                    bare.tps,
                    100.0 * rotation.tps / bare.tps
                );
            }
        }
        if let Some(cpu) = self.refresh_cpu {
            println!(
                "- CPU per refresh: PostgreSQL {:.1} µs, Tessera {:.1} µs",
                cpu.postgres_us, cpu.tessera_us
            );
        }
        if let Some(writes) = &self.refresh_writes {
            for (i, line) in writes.lines().iter().enumerate() {
                println!("{}{line}", if i == 0 { "- " } else { "  " });
            }
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "[met]"
    } else {
        "[MISSED]"
    }
}
