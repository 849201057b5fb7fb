//! Redis counters for brute-force protection, shared by every instance. Keys hold a
//! hash of the submitted account name (never the name itself) or the client IP.

use aws_lc_rs::digest;
use redis::aio::ConnectionManager;

use super::denylist::RedisUnavailable;

/// Registers one failure atomically: bumps the account and IP counters and sets the
/// time before which the account may not try again.
/// KEYS: account, ip. ARGV: now_ms, window_ms, delay_after, max_delay_ms, lockout_after,
/// lockout_ms. Returns {failures, wait_ms, locked_now}.
const REGISTER_FAILURE: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local delay_after = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local lockout_after = tonumber(ARGV[5])
local lockout = tonumber(ARGV[6])
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local wait = 0
local locked = 0
if failures >= lockout_after then
  wait = lockout
  if failures == lockout_after then locked = 1 end
elseif failures >= delay_after then
  wait = math.floor(math.min(1000 * 2 ^ (failures - delay_after), max_delay))
end
redis.call('HSET', KEYS[1], 'next', now + wait)
redis.call('PEXPIRE', KEYS[1], math.max(window, wait))
if redis.call('INCR', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], window)
end
return {failures, wait, locked}
";

pub struct Failure {
    pub failures: u64,
    pub wait_ms: u64,
    /// This failure is the one that locked the account.
    pub locked_now: bool,
}

pub struct Limits {
    pub window_ms: u64,
    pub delay_after: u32,
    pub max_delay_ms: u64,
    pub lockout_after: u32,
    pub lockout_ms: u64,
    pub per_ip: u32,
}

#[derive(Clone)]
pub struct Throttle {
    conn: ConnectionManager,
    prefix: String,
    script: std::sync::Arc<redis::Script>,
}

impl Throttle {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            script: std::sync::Arc::new(redis::Script::new(REGISTER_FAILURE)),
        }
    }

    fn account_key(&self, account: &str) -> String {
        let hash = digest::digest(&digest::SHA256, account.as_bytes());
        let hex: String = hash.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}bf:acct:{hex}", self.prefix)
    }

    fn ip_key(&self, ip: &str) -> String {
        format!("{}bf:ip:{ip}", self.prefix)
    }

    /// Milliseconds the account must still wait, and the IP must still wait.
    pub async fn wait(
        &self,
        account: &str,
        ip: &str,
        now_ms: u64,
        per_ip: u32,
    ) -> Result<(u64, u64), RedisUnavailable> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGET")
            .arg(self.account_key(account))
            .arg("next")
            .cmd("GET")
            .arg(self.ip_key(ip))
            .cmd("PTTL")
            .arg(self.ip_key(ip));
        let mut conn = self.conn.clone();
        let (next, ip_failures, ip_ttl): (Option<u64>, Option<u64>, i64) =
            pipe.query_async(&mut conn).await?;
        let account_wait = next.map(|n| n.saturating_sub(now_ms)).unwrap_or(0);
        let ip_wait = if ip_failures.unwrap_or(0) >= u64::from(per_ip) {
            u64::try_from(ip_ttl).unwrap_or(0)
        } else {
            0
        };
        Ok((account_wait, ip_wait))
    }

    pub async fn register_failure(
        &self,
        account: &str,
        ip: &str,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Failure, RedisUnavailable> {
        let mut conn = self.conn.clone();
        let (failures, wait_ms, locked): (u64, u64, u8) = self
            .script
            .key(self.account_key(account))
            .key(self.ip_key(ip))
            .arg(now_ms)
            .arg(limits.window_ms)
            .arg(limits.delay_after)
            .arg(limits.max_delay_ms)
            .arg(limits.lockout_after)
            .arg(limits.lockout_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(Failure {
            failures,
            wait_ms,
            locked_now: locked == 1,
        })
    }

    /// A success forgets the account's failures (the IP's stay counted).
    pub async fn clear(&self, account: &str) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.account_key(account))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }
}
