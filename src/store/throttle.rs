//! Redis counters for brute-force protection, shared by every instance. Keys hold a
//! hash of the submitted account name (never the name itself) and the client IP.
//!
//! Per account there are three kinds of key:
//! - `bf:acct:<hash>:src:<ip>`: the failures, in-flight checks and earned wait of one
//!   source (client IP) for this account. Delays and the lockout live here, so
//!   failures from one source never lock out the right password from another.
//! - `bf:acct:<hash>`: failures from every source that has never logged in to the
//!   account, for distributed guessing: past a threshold, such checks are spaced out
//!   (a slow, capped delay, never a lockout).
//! - `bf:acct:<hash>:ok:<ip>`: a source that logged in to the account recently; the
//!   account-wide spacing does not apply to it.
//!
//! `bf:acct:<hash>:srcs` lists the sources with counters, so that an admin unlock can
//! clear them all; `bf:ip:<ip>` counts one IP's attempts over every account.
//!
//! An account's keys share the hash tag `{<prefix>bf:acct:<hash>}` (registrations:
//! `{<prefix>bf:reg}`), so on a Redis Cluster the scripts that update them together run
//! on one node, and different accounts spread over the cluster. The IP counter spans
//! accounts, so it is a key of its own, taken before an account's reservation and given
//! back when the reservation is refused or the check succeeds.

use super::denylist::RedisUnavailable;
use super::redis_link::RedisLink;
use aws_lc_rs::digest;

/// Reserves one password check atomically, before any bcrypt work.
///
/// Refused (`0`) while this source must wait (a delay or lockout it earned), while the
/// IP used up its attempts, or while the account-wide spacing applies to a source that
/// never logged in. Busy (`2`) while the checks already in flight from this source
/// could use up what is left before its lockout (or, for unknown sources past the
/// account-wide threshold, while another one is in flight): the caller waits its turn
/// and asks again, so however many guesses arrive at once no more are checked than the
/// lockout allows, while right passwords are only queued, never refused. A reservation
/// not settled within `stale_ms` stops counting, so a request that died half-way
/// blocks nobody for long.
///
/// KEYS: source, account-wide, known-source marker.
/// ARGV: now_ms, window_ms, lockout_after, stale_ms, account_after, exempt
/// (1: the account-wide count does not apply, as for registrations).
/// Returns {outcome, wait_ms, why (0 source, 2 account), account_counted}.
const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local lockout_after = tonumber(ARGV[3])
local stale = tonumber(ARGV[4])
local account_after = tonumber(ARGV[5])
local exempt = ARGV[6] == '1'
local h = redis.call('HMGET', KEYS[1], 'next', 'failures', 'pending', 'pending_at')
local next = tonumber(h[1] or '0')
if next > now then
  return {0, next - now, 0, 0}
end
local failures = tonumber(h[2] or '0')
local pending = tonumber(h[3] or '0')
if now - tonumber(h[4] or '0') > stale then
  pending = 0
end
if failures >= lockout_after then
  -- The lockout this source earned is served (its wait is over): the right password
  -- goes through again, and one more failure locks it out again.
  failures = lockout_after - 1
  redis.call('HSET', KEYS[1], 'failures', failures)
end
if failures + pending >= lockout_after then
  return {2, 0, 0, 0}
end
local counted = 0
if not exempt and redis.call('EXISTS', KEYS[3]) == 0 then
  local a = redis.call('HMGET', KEYS[2], 'next', 'failures', 'pending', 'pending_at')
  local a_next = tonumber(a[1] or '0')
  if a_next > now then
    return {0, a_next - now, 2, 0}
  end
  local a_pending = tonumber(a[3] or '0')
  if now - tonumber(a[4] or '0') > stale then
    a_pending = 0
  end
  local budget = math.max(account_after - tonumber(a[2] or '0'), 1)
  if a_pending >= budget then
    return {2, 0, 2, 0}
  end
  redis.call('HSET', KEYS[2], 'pending', a_pending + 1, 'pending_at', now)
  if redis.call('PTTL', KEYS[2]) < window then
    redis.call('PEXPIRE', KEYS[2], window)
  end
  counted = 1
end
redis.call('HSET', KEYS[1], 'pending', pending + 1, 'pending_at', now)
if redis.call('PTTL', KEYS[1]) < window then
  redis.call('PEXPIRE', KEYS[1], window)
end
return {1, 0, 0, counted}
";

/// Takes one of an IP's attempts, unless it used them all. KEYS: ip.
/// ARGV: per_ip, window_ms. Returns {1, 0} taken, or {0, wait_ms}.
const TAKE_IP: &str = r"
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  return {0, math.max(redis.call('PTTL', KEYS[1]), 1)}
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {1, 0}
";

/// Gives an IP's attempt back. KEYS: ip.
const GIVE_BACK_IP: &str = r"
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 1
";

/// A reserved check failed: one more failure for the source, and the wait it earns
/// (growing delays, then the lockout); one more account-wide failure when the
/// reservation counted there, and past the threshold the account-wide spacing.
/// KEYS: source, account-wide, sources set.
/// ARGV: now_ms, window_ms, delay_after, max_delay_ms, lockout_after, lockout_ms,
/// account_after, account_delay_ms, account_counted, ip.
/// Returns {source failures, account failures (0 when not counted)}.
const FAILED: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local delay_after = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local lockout_after = tonumber(ARGV[5])
local lockout = tonumber(ARGV[6])
local account_after = tonumber(ARGV[7])
local account_delay = tonumber(ARGV[8])
local counted = tonumber(ARGV[9])
local h = redis.call('HMGET', KEYS[1], 'next', 'failures', 'pending')
local pending = math.max(tonumber(h[3] or '0') - 1, 0)
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
redis.call('SADD', KEYS[3], ARGV[10])
if redis.call('PTTL', KEYS[3]) < ttl then
  redis.call('PEXPIRE', KEYS[3], ttl)
end
local a_failures = 0
if counted == 1 then
  local a = redis.call('HMGET', KEYS[2], 'next', 'failures', 'pending')
  local a_pending = math.max(tonumber(a[3] or '0') - 1, 0)
  a_failures = tonumber(a[2] or '0') + 1
  local a_next = tonumber(a[1] or '0')
  if a_failures >= account_after then
    a_next = math.max(a_next, now + account_delay)
  end
  redis.call('HSET', KEYS[2], 'failures', a_failures, 'pending', a_pending, 'next', a_next)
  if redis.call('PTTL', KEYS[2]) < window then
    redis.call('PEXPIRE', KEYS[2], window)
  end
end
return {failures, a_failures}
";

/// A reserved check succeeded. For a login (`reset` = 1) the source starts afresh and
/// is remembered as one that logs in to the account; otherwise (a registration) only
/// the reservation is given back. (The IP's attempt is given back by [`GIVE_BACK_IP`].)
/// KEYS: source, account-wide, known-source marker.
/// ARGV: account_counted, reset, known_ttl_ms.
const SUCCEEDED: &str = r"
local pending = math.max(tonumber(redis.call('HGET', KEYS[1], 'pending') or '0') - 1, 0)
if ARGV[2] == '1' then
  if pending == 0 then
    redis.call('DEL', KEYS[1])
  else
    redis.call('HSET', KEYS[1], 'failures', 0, 'next', 0, 'pending', pending)
  end
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'pending', pending)
end
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then
  local a = math.max(tonumber(redis.call('HGET', KEYS[2], 'pending') or '0') - 1, 0)
  redis.call('HSET', KEYS[2], 'pending', a)
end
return 1
";

/// What brute-force protection counts attempts against.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subject<'a> {
    /// Password checks of an account, by the name as submitted (already folded).
    Account(&'a str),
    /// Self-registrations, where a taken name is the "failure".
    Registration,
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RefusedBy {
    /// This source's own delay or lockout for the account.
    Source,
    /// The client IP's attempts over every account.
    Ip,
    /// The account-wide spacing against distributed guessing.
    Account,
}

/// A granted reservation, to be settled with [`Throttle::failed`] or
/// [`Throttle::succeeded`].
#[derive(Clone, Debug)]
pub(crate) struct Ticket {
    base: String,
    ip: String,
    account_counted: bool,
    registration: bool,
}

pub(crate) enum Reservation {
    Allowed(Ticket),
    /// Wait this long first.
    Refused {
        wait_ms: u64,
        by: RefusedBy,
    },
    /// As many checks are in flight as may be: ask again shortly.
    Busy,
}

/// Failures so far, after one more.
pub(crate) struct Failures {
    /// Of this source for the account.
    pub source: u64,
    /// Account-wide (0 when this source is exempt from the account-wide count).
    pub account: u64,
}

pub(crate) struct Limits {
    pub window_ms: u64,
    pub delay_after: u32,
    pub max_delay_ms: u64,
    pub lockout_after: u32,
    pub lockout_ms: u64,
    pub per_ip: u32,
    pub account_after: u32,
    pub account_delay_ms: u64,
}

/// How long a reserved check may stay unsettled before it stops counting: far longer
/// than any bcrypt verify waits and runs.
const STALE_RESERVATION_MS: u64 = 30_000;

/// How long a source that logged in to an account stays exempt from the account-wide
/// spacing.
const KNOWN_SOURCE_MS: u64 = 30 * 86_400 * 1000;

#[derive(Clone)]
pub(crate) struct Throttle {
    conn: RedisLink,
    prefix: String,
    reserve: std::sync::Arc<redis::Script>,
    take_ip: std::sync::Arc<redis::Script>,
    give_back_ip: std::sync::Arc<redis::Script>,
    failed: std::sync::Arc<redis::Script>,
    succeeded: std::sync::Arc<redis::Script>,
}

impl Throttle {
    pub(crate) fn new(conn: RedisLink, prefix: &str) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            reserve: std::sync::Arc::new(redis::Script::new(RESERVE)),
            take_ip: std::sync::Arc::new(redis::Script::new(TAKE_IP)),
            give_back_ip: std::sync::Arc::new(redis::Script::new(GIVE_BACK_IP)),
            failed: std::sync::Arc::new(redis::Script::new(FAILED)),
            succeeded: std::sync::Arc::new(redis::Script::new(SUCCEEDED)),
        }
    }

    /// The key every counter of `subject` starts with.
    fn base(&self, subject: Subject<'_>) -> String {
        match subject {
            Subject::Account(account) => {
                let hash = digest::digest(&digest::SHA256, account.as_bytes());
                let hex = hex::encode(&hash.as_ref()[..16]);
                format!("{{{}bf:acct:{hex}}}", self.prefix)
            }
            Subject::Registration => format!("{{{}bf:reg}}", self.prefix),
        }
    }

    fn source_key(base: &str, ip: &str) -> String {
        format!("{base}:src:{ip}")
    }

    fn known_key(base: &str, ip: &str) -> String {
        format!("{base}:ok:{ip}")
    }

    fn sources_key(base: &str) -> String {
        format!("{base}:srcs")
    }

    fn ip_key(&self, ip: &str) -> String {
        format!("{}bf:ip:{ip}", self.prefix)
    }

    pub(crate) async fn reserve(
        &self,
        subject: Subject<'_>,
        ip: &str,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Reservation, RedisUnavailable> {
        let base = self.base(subject);
        let registration = matches!(subject, Subject::Registration);
        let mut conn = self.conn.clone();
        let (taken, wait_ms): (u8, u64) = self
            .take_ip
            .key(self.ip_key(ip))
            .arg(limits.per_ip)
            .arg(limits.window_ms)
            .invoke_async(&mut conn)
            .await?;
        if taken != 1 {
            return Ok(Reservation::Refused {
                wait_ms,
                by: RefusedBy::Ip,
            });
        }
        let reserved: Result<(u8, u64, u8, u8), _> = self
            .reserve
            .key(Self::source_key(&base, ip))
            .key(&base)
            .key(Self::known_key(&base, ip))
            .arg(now_ms)
            .arg(limits.window_ms)
            .arg(limits.lockout_after)
            .arg(STALE_RESERVATION_MS)
            .arg(limits.account_after)
            // Registrations have no account to guess at: only the per-source count
            // applies.
            .arg(u8::from(registration))
            .invoke_async(&mut conn)
            .await;
        let (outcome, wait_ms, why, counted) = match reserved {
            Ok(reply) => reply,
            Err(e) => {
                // Best effort: the attempt expires with the IP's window anyway.
                let _ = self.give_back_ip(ip).await;
                return Err(e.into());
            }
        };
        if outcome != 1 {
            // Best effort, as above: a refusal stays a refusal (429), not a 503.
            let _ = self.give_back_ip(ip).await;
        }
        Ok(match outcome {
            1 => Reservation::Allowed(Ticket {
                base,
                ip: ip.to_owned(),
                account_counted: counted == 1 && !registration,
                registration,
            }),
            2 => Reservation::Busy,
            _ => Reservation::Refused {
                wait_ms,
                by: match why {
                    2 => RefusedBy::Account,
                    _ => RefusedBy::Source,
                },
            },
        })
    }

    async fn give_back_ip(&self, ip: &str) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        self.give_back_ip
            .key(self.ip_key(ip))
            .invoke_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Settles a reserved check as failed.
    pub(crate) async fn failed(
        &self,
        ticket: &Ticket,
        now_ms: u64,
        limits: &Limits,
    ) -> Result<Failures, RedisUnavailable> {
        let mut conn = self.conn.clone();
        let (source, account): (u64, u64) = self
            .failed
            .key(Self::source_key(&ticket.base, &ticket.ip))
            .key(&ticket.base)
            .key(Self::sources_key(&ticket.base))
            .arg(now_ms)
            .arg(limits.window_ms)
            .arg(limits.delay_after)
            .arg(limits.max_delay_ms)
            .arg(limits.lockout_after)
            .arg(limits.lockout_ms)
            .arg(limits.account_after)
            .arg(limits.account_delay_ms)
            .arg(u8::from(ticket.account_counted))
            .arg(&ticket.ip)
            .invoke_async(&mut conn)
            .await?;
        Ok(Failures { source, account })
    }

    /// Settles a reserved check as succeeded.
    pub(crate) async fn succeeded(&self, ticket: &Ticket) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        let settled = self
            .succeeded
            .key(Self::source_key(&ticket.base, &ticket.ip))
            .key(&ticket.base)
            .key(Self::known_key(&ticket.base, &ticket.ip))
            .arg(u8::from(ticket.account_counted))
            .arg(u8::from(!ticket.registration))
            .arg(KNOWN_SOURCE_MS)
            .invoke_async::<()>(&mut conn)
            .await;
        // Either way the attempt no longer counts against the IP.
        let given_back = self.give_back_ip(&ticket.ip).await;
        settled?;
        given_back
    }

    /// Clears an account's counters for every source (an admin unlock); returns how
    /// many sources had counters. The record of sources that logged in is kept.
    pub(crate) async fn unlock(&self, account: &str) -> Result<usize, RedisUnavailable> {
        let base = self.base(Subject::Account(account));
        let mut conn = self.conn.clone();
        let sources: Vec<String> = redis::cmd("SMEMBERS")
            .arg(Self::sources_key(&base))
            .query_async(&mut conn)
            .await?;
        let mut keys: Vec<String> = sources
            .iter()
            .map(|ip| Self::source_key(&base, ip))
            .collect();
        keys.push(Self::sources_key(&base));
        keys.push(base);
        redis::cmd("DEL")
            .arg(&keys)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(sources.len())
    }
}
