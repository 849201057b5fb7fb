//! Redis counters for brute-force protection, shared by every instance. Keys hold a
//! hash of the submitted account name (never the name itself) or the client IP.

use aws_lc_rs::digest;
use redis::aio::ConnectionManager;

use super::denylist::RedisUnavailable;

/// Reserves one password check atomically, before any bcrypt work: refused while the
/// account or the IP must wait; otherwise counted at once (as if it were going to fail),
/// so that any number of guesses sent in parallel are counted before they are checked.
/// A success then clears the account (see `succeeded`).
/// KEYS: account, ip. ARGV: now_ms, window_ms, delay_after, max_delay_ms, lockout_after,
/// lockout_ms, per_ip. Returns {allowed, attempts or wait_ms, refused_by_ip}.
const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local delay_after = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local lockout_after = tonumber(ARGV[5])
local lockout = tonumber(ARGV[6])
local per_ip = tonumber(ARGV[7])
local next = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
if next > now then
  return {0, next - now, 0}
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= per_ip then
  return {0, math.max(redis.call('PTTL', KEYS[2]), 1), 1}
end
local attempts = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local wait = 0
if attempts >= lockout_after then
  wait = lockout
elseif attempts >= delay_after then
  wait = math.floor(math.min(1000 * 2 ^ (attempts - delay_after), max_delay))
end
redis.call('HSET', KEYS[1], 'next', now + wait)
redis.call('PEXPIRE', KEYS[1], math.max(window, wait))
if redis.call('INCR', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], window)
end
return {1, attempts, 0}
";

/// A success: the account starts afresh, and the attempt no longer counts against the
/// IP. KEYS: account, ip.
const SUCCEEDED: &str = r"
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 1
";

pub enum Reservation {
    /// Go ahead; this is the account's `attempts`-th attempt in the window.
    Allowed { attempts: u64 },
    /// Wait this long first, because of the account or the IP.
    Refused { wait_ms: u64, by_ip: bool },
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
    reserve: std::sync::Arc<redis::Script>,
    succeeded: std::sync::Arc<redis::Script>,
}

impl Throttle {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            reserve: std::sync::Arc::new(redis::Script::new(RESERVE)),
            succeeded: std::sync::Arc::new(redis::Script::new(SUCCEEDED)),
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

    pub async fn reserve(
        &self,
        account: &str,
        ip: &str,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Reservation, RedisUnavailable> {
        let mut conn = self.conn.clone();
        let (allowed, value, by_ip): (u8, u64, u8) = self
            .reserve
            .key(self.account_key(account))
            .key(self.ip_key(ip))
            .arg(now_ms)
            .arg(limits.window_ms)
            .arg(limits.delay_after)
            .arg(limits.max_delay_ms)
            .arg(limits.lockout_after)
            .arg(limits.lockout_ms)
            .arg(limits.per_ip)
            .invoke_async(&mut conn)
            .await?;
        Ok(if allowed == 1 {
            Reservation::Allowed { attempts: value }
        } else {
            Reservation::Refused {
                wait_ms: value,
                by_ip: by_ip == 1,
            }
        })
    }

    pub async fn succeeded(&self, account: &str, ip: &str) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        self.succeeded
            .key(self.account_key(account))
            .key(self.ip_key(ip))
            .invoke_async::<()>(&mut conn)
            .await?;
        Ok(())
    }
}
