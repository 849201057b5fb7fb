//! What the machine is and who used its CPU during a measurement, from /proc (Linux).
//! On a small shared machine the numbers only mean something next to this: a driver
//! near one full core, or CPU used by neither Tessera nor PostgreSQL, says so.

use std::fs;

pub struct MachineInfo {
    pub cores: usize,
    pub cpu_model: String,
    pub load_average: String,
}

impl MachineInfo {
    pub fn read() -> Self {
        let cpu_model = fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let load_average = fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Self {
            cores: cores(),
            cpu_model,
            load_average,
        }
    }
}

/// What `nproc` says: the cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime of a process (all its threads), in clock ticks, and its command name.
fn process_ticks(pid: u32) -> Option<(String, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let (head, rest) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// Total CPU ticks of every process with this command name (PostgreSQL backends,
/// Redis). Processes that start or end between two snapshots are missed: take them
/// while the connections are open (Tessera's pool, pgbench's clients).
fn ticks_by_name(name: &str) -> u64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(process_ticks)
        .filter(|(comm, _)| comm == name)
        .map(|(_, ticks)| ticks)
        .sum()
}

/// (busy, total) ticks of the whole machine from the first line of /proc/stat, and
/// its number of CPUs (which may exceed what this process may use).
fn machine_ticks() -> (u64, u64, usize) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpus = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle and iowait
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total, cpus.max(1))
}

#[derive(Clone, Copy)]
pub struct CpuSnapshot {
    server: u64,
    driver: u64,
    postgres: u64,
    redis: u64,
    machine_busy: u64,
    machine_total: u64,
    machine_cpus: usize,
}

impl CpuSnapshot {
    /// `driver` is the load generator: this process, or pgbench.
    pub fn take(server_pid: Option<u32>, driver_pid: u32) -> Self {
        Self::take_all(server_pid.as_slice(), driver_pid)
    }

    /// [`Self::take`] with the CPU of several servers (instances) summed.
    pub fn take_all(server_pids: &[u32], driver_pid: u32) -> Self {
        let own = |pid: Option<u32>| pid.and_then(process_ticks).map_or(0, |(_, t)| t);
        let (machine_busy, machine_total, machine_cpus) = machine_ticks();
        Self {
            server: server_pids.iter().map(|&pid| own(Some(pid))).sum(),
            driver: own(Some(driver_pid)),
            postgres: ticks_by_name("postgres"),
            redis: ticks_by_name("redis-server"),
            machine_busy,
            machine_total,
            machine_cpus,
        }
    }
}

/// CPU used between two snapshots, in cores (1.0 = one core fully busy).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub server: f64,
    pub driver: f64,
    pub postgres: f64,
    pub redis: f64,
    /// Everything that ran, including other people's work on a shared machine.
    pub machine: f64,
}

impl CpuUse {
    pub fn between(before: &CpuSnapshot, after: &CpuSnapshot, seconds: f64) -> Self {
        let per_core = clock_ticks_per_second() * seconds;
        let cores = |a: u64, b: u64| b.saturating_sub(a) as f64 / per_core;
        let machine_share = if after.machine_total > before.machine_total {
            (after.machine_busy - before.machine_busy) as f64
                / (after.machine_total - before.machine_total) as f64
        } else {
            0.0
        };
        Self {
            server: cores(before.server, after.server),
            driver: cores(before.driver, after.driver),
            postgres: cores(before.postgres, after.postgres),
            redis: cores(before.redis, after.redis),
            machine: machine_share * after.machine_cpus as f64,
        }
    }

    /// CPU used by none of the processes above: other work on the machine.
    pub fn other(&self) -> f64 {
        (self.machine - self.server - self.driver - self.postgres - self.redis).max(0.0)
    }
}

/// CPU time a process has used so far (all its threads), in seconds.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    process_ticks(pid).map(|(_, ticks)| ticks as f64 / clock_ticks_per_second())
}

/// VmRSS and VmHWM (peak) of a process, in kB.
pub fn resident_memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
