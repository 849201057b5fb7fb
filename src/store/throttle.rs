//! Redis counters for brute-force protection, shared by every instance. Keys hold a
//! hash of the submitted account name (never the name itself) or the client IP.

use aws_lc_rs::digest;
use redis::aio::ConnectionManager;

use super::denylist::RedisUnavailable;

/// Reserves one password check atomically, before any bcrypt work. Refused while the
/// account or the IP must wait, or while the checks already in flight could use up what
/// is left before a lockout: however many guesses arrive at once, no more are checked
/// than the lockout allows. A reservation not settled (a failure or a success) within
/// `stale_ms` stops counting, so a request that died half-way blocks nobody for long.
/// KEYS: account, ip. ARGV: now_ms, window_ms, lockout_after, per_ip, stale_ms.
/// Returns {allowed, wait_ms, refused_by_ip}.
const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local lockout_after = tonumber(ARGV[3])
local per_ip = tonumber(ARGV[4])
local stale = tonumber(ARGV[5])
local h = redis.call('HMGET', KEYS[1], 'next', 'failures', 'pending', 'pending_at')
local next = tonumber(h[1] or '0')
if next > now then
  return {0, next - now, 0}
end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= per_ip then
  return {0, math.max(redis.call('PTTL', KEYS[2]), 1), 1}
end
local failures = tonumber(h[2] or '0')
local pending = tonumber(h[3] or '0')
if now - tonumber(h[4] or '0') > stale then
  pending = 0
end
if failures + pending >= lockout_after then
  return {0, 1000, 0}
end
redis.call('HSET', KEYS[1], 'pending', pending + 1, 'pending_at', now)
if redis.call('PTTL', KEYS[1]) < window then
  redis.call('PEXPIRE', KEYS[1], window)
end
if redis.call('INCR', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], window)
end
return {1, 0, 0}
";

/// A reserved check failed: one more failure, and the wait it earns (growing delays,
/// then the lockout). Only failures delay, so an account's own parallel logins with the
/// right password are not slowed down. KEYS: account. ARGV: now_ms, window_ms,
/// delay_after, max_delay_ms, lockout_after, lockout_ms. Returns the failures so far.
const FAILED: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local delay_after = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local lockout_after = tonumber(ARGV[5])
local lockout = tonumber(ARGV[6])
local h = redis.call('HMGET', KEYS[1], 'next', 'failures', 'pending')
local pending = tonumber(h[3] or '0')
if pending > 0 then
  pending = pending - 1
end
local failures = tonumber(h[2] or '0') + 1
local wait = 0
if failures >= lockout_after then
  wait = lockout
elseif failures >= delay_after then
  wait = math.floor(math.min(1000 * 2 ^ (failures - delay_after), max_delay))
end
local next = math.max(tonumber(h[1] or '0'), now + wait)
redis.call('HSET', KEYS[1], 'failures', failures, 'pending', pending, 'next', next)
local ttl = math.max(window, next - now)
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return failures
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
    Allowed,
    /// Wait this long first, because of the account or the IP.
    Refused {
        wait_ms: u64,
        by_ip: bool,
    },
}

pub struct Limits {
    pub window_ms: u64,
    pub delay_after: u32,
    pub max_delay_ms: u64,
    pub lockout_after: u32,
    pub lockout_ms: u64,
    pub per_ip: u32,
}

/// How long a reserved check may stay unsettled before it stops counting: far longer
/// than any bcrypt verify waits and runs.
const STALE_RESERVATION_MS: u64 = 30_000;

#[derive(Clone)]
pub struct Throttle {
    conn: ConnectionManager,
    prefix: String,
    reserve: std::sync::Arc<redis::Script>,
    failed: std::sync::Arc<redis::Script>,
    succeeded: std::sync::Arc<redis::Script>,
}

impl Throttle {
    pub fn new(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            reserve: std::sync::Arc::new(redis::Script::new(RESERVE)),
            failed: std::sync::Arc::new(redis::Script::new(FAILED)),
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
        let (allowed, wait_ms, by_ip): (u8, u64, u8) = self
            .reserve
            .key(self.account_key(account))
            .key(self.ip_key(ip))
            .arg(now_ms)
            .arg(limits.window_ms)
            .arg(limits.lockout_after)
            .arg(limits.per_ip)
            .arg(STALE_RESERVATION_MS)
            .invoke_async(&mut conn)
            .await?;
        Ok(if allowed == 1 {
            Reservation::Allowed
        } else {
            Reservation::Refused {
                wait_ms,
                by_ip: by_ip == 1,
            }
        })
    }

    /// Settles a reserved check as failed; returns the account's failures in the window.
    pub async fn failed(
        &self,
        account: &str,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<u64, RedisUnavailable> {
        let mut conn = self.conn.clone();
        Ok(self
            .failed
            .key(self.account_key(account))
            .arg(now_ms)
            .arg(limits.window_ms)
            .arg(limits.delay_after)
            .arg(limits.max_delay_ms)
            .arg(limits.lockout_after)
            .arg(limits.lockout_ms)
            .invoke_async(&mut conn)
            .await?)
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
