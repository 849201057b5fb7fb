//! The Tessera server under test: the release binary, started as a process of its own
//! with a configuration that touches nothing but the benchmark's database and Redis
//! prefix, and stopped again, whatever happens.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use tokio::time::{sleep, Instant};

use crate::fixtures::{RefreshKey, Secret};
use crate::http::{send_once, RequestTemplate};
use crate::machine;

/// Everything the server is started with, except the bcrypt cost.
pub struct ServerEnv {
    binary: PathBuf,
    database_url: String,
    redis_url: String,
    redis_prefix: String,
    log_dir: PathBuf,
    master_key: Secret,
    extra: Vec<(String, String)>,
}

/// Settings the benchmark owns; `--server-env` may not change them.
const OWN_SETTINGS: [&str; 5] = [
    "TESSERA_REDIS_PREFIX",
    "TESSERA_MASTER_KEY",
    "TESSERA_LOG",
    "TESSERA_BCRYPT_COST",
    "TESSERA_BIND",
];

fn parse_extra(settings: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    settings
        .iter()
        .map(|setting| {
            let (name, value) = setting
                .split_once('=')
                .with_context(|| format!("--server-env {setting}: expected NAME=VALUE"))?;
            if !name.starts_with("TESSERA_") || OWN_SETTINGS.contains(&name) {
                bail!("--server-env {name}: only TESSERA_* settings other than {OWN_SETTINGS:?}");
            }
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

impl ServerEnv {
    /// Generates the master key with the binary itself (`tessera keys
    /// generate-master-key`); it is handed to the server and never shown.
    pub fn new(
        binary: &Path,
        database_url: String,
        redis_url: String,
        redis_prefix: String,
        log_dir: PathBuf,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let extra = parse_extra(extra)?;
        let output = clean_command(binary)
            .args(["keys", "generate-master-key"])
            .output()
            .with_context(|| format!("running {}", binary.display()))?;
        if !output.status.success() {
            bail!(
                "tessera keys generate-master-key failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let key = String::from_utf8(output.stdout).context("the master key is not text")?;
        Ok(Self {
            binary: binary.to_owned(),
            database_url,
            redis_url,
            redis_prefix,
            log_dir,
            master_key: Secret::new(key.trim().to_owned()),
            extra,
        })
    }

    /// The key the server checks refresh tokens with, derived from its master key as
    /// the server derives it, so the driver can mint the tokens of prepared sessions.
    pub fn refresh_key(&self) -> anyhow::Result<RefreshKey> {
        // `generate-master-key` prints base64; Tessera also reads 64 hex digits.
        let text = self.master_key.expose();
        let bytes = hex::decode(text)
            .ok()
            .or_else(|| STANDARD.decode(text).ok())
            .context("the generated master key is neither hex nor base64")?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the generated master key is not 32 bytes"))?;
        Ok(RefreshKey::from_master(&bytes))
    }

    fn command(&self, bcrypt_cost: u32) -> Command {
        let mut command = clean_command(&self.binary);
        command
            .env("DATABASE_URL", &self.database_url)
            .env("REDIS_URL", &self.redis_url)
            .env("TESSERA_REDIS_PREFIX", &self.redis_prefix)
            .env("TESSERA_MASTER_KEY", self.master_key.expose())
            .env("TESSERA_LOG", "warn")
            .env("TESSERA_BCRYPT_COST", bcrypt_cost.to_string())
            .envs(self.extra.iter().map(|(name, value)| (name, value)));
        command
    }

    /// Creates the database and applies the migrations (`tessera migrate`).
    pub fn migrate(&self) -> anyhow::Result<()> {
        // The bcrypt cost means nothing to `migrate`.
        let output = self.command(12).arg("migrate").output()?;
        if !output.status.success() {
            bail!(
                "tessera migrate failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

/// The binary with none of the caller's Tessera settings: a TESSERA_CONFIG_FILE or
/// DATABASE_URL in the shell must not point the benchmark at real data.
fn clean_command(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("TESSERA_")
            || name_text == "DATABASE_URL"
            || name_text == "REDIS_URL"
        {
            command.env_remove(&name);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// A port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

pub struct TesseraServer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl TesseraServer {
    /// Starts the server and waits until `/readyz` says PostgreSQL and Redis are up.
    pub async fn start(env: &ServerEnv, bcrypt_cost: u32) -> anyhow::Result<Self> {
        Self::start_named(env, bcrypt_cost, &format!("tessera-bcrypt{bcrypt_cost}")).await
    }

    /// [`Self::start`], logging to `<name>.log` (instances of one deployment each
    /// have their own).
    pub async fn start_named(
        env: &ServerEnv,
        bcrypt_cost: u32,
        name: &str,
    ) -> anyhow::Result<Self> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let log = env.log_dir.join(format!("{name}.log"));
        let log_file = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = env
            .command(bcrypt_cost)
            .arg("serve")
            .env("TESSERA_BIND", addr.to_string())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", env.binary.display()))?;
        let mut server = Self { child, addr, log };
        server.wait_ready(Duration::from_secs(60)).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        let probe = RequestTemplate::get(self.addr, "/readyz");
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "tessera exited during start-up ({status}); see {}",
                    self.log.display()
                );
            }
            if let Ok((status, _)) = send_once(self.addr, probe.request()).await {
                if status.is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "tessera was not ready after {limit:?}; see {}",
                    self.log.display()
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmRSS, VmHWM) in kB.
    pub fn memory_kb(&self) -> Option<(u64, u64)> {
        machine::resident_memory_kb(self.pid())
    }

    /// SIGTERM (Tessera finishes what is in flight and exits), then SIGKILL if it
    /// takes longer than its own shutdown timeout.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: signalling our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(35);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            sleep(Duration::from_millis(50)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("tessera did not stop within 35 s of SIGTERM and was killed")
    }
}

impl Drop for TesseraServer {
    /// An error or a panic half-way must not leave a server running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
