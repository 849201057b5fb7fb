//! The benchmark's Redis keys (the denylist under its own prefix), removed with
//! `redis-cli` before and after a run so that one run never sees another's entries.

use std::process::Command;

use anyhow::{bail, Context};

fn redis_cli(url: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .output()
        .context("starting redis-cli")?;
    if !output.status.success() {
        bail!(
            "redis-cli failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Deletes every key starting with `prefix` (SCAN, never KEYS: Redis may be shared).
pub fn clear_prefix(url: &str, prefix: &str) -> anyhow::Result<usize> {
    anyhow::ensure!(
        !prefix.is_empty(),
        "refusing to clear an empty Redis prefix"
    );
    // Plain keys, and those behind a hash tag (`{<prefix>deny}:...`).
    let mut listed = String::new();
    for pattern in [format!("{prefix}*"), format!("{{{prefix}*")] {
        listed.push_str(&redis_cli(url, &["--scan", "--pattern", &pattern])?);
        listed.push('\n');
    }
    let keys: Vec<&str> = listed.lines().filter(|k| !k.is_empty()).collect();
    for chunk in keys.chunks(500) {
        let mut args = vec!["DEL"];
        args.extend_from_slice(chunk);
        redis_cli(url, &args)?;
    }
    Ok(keys.len())
}

/// `connected_clients` of `INFO clients`: every client of the server, not only ours.
pub fn connected_clients(url: &str) -> anyhow::Result<u64> {
    let info = redis_cli(url, &["INFO", "clients"])?;
    info.lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))
        .context("no connected_clients in INFO clients")?
        .trim()
        .parse()
        .context("connected_clients is not a number")
}

/// One number of `INFO <section>` (`total_commands_processed`, `used_memory`, ...).
pub fn info_number(url: &str, section: &str, field: &str) -> anyhow::Result<u64> {
    let info = redis_cli(url, &["INFO", section])?;
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .with_context(|| format!("no {field} in INFO {section}"))?
        .trim()
        .parse()
        .with_context(|| format!("{field} is not a number"))
}
