//! The Redis side of revocation: a fast denylist whose entries expire on their own
//! when nothing they deny can still be alive. PostgreSQL holds the durable record
//! (`revocations`); this is a cache of it that must never be trusted when empty by
//! accident, hence the `ready` marker: it is written after a (re)build, has no TTL,
//! and its absence means Redis lost its data and the list must be rebuilt. Its value is
//! the denylist generation (see `revocations::next_generation`) Redis is known to hold
//! every revocation of: a marker behind PostgreSQL's generation means Redis may lack
//! the revocations since (an old snapshot, a replica that missed writes).
//!
//! Every key of the list starts with the hash tag `{<prefix>deny}`, so on a Redis
//! Cluster the whole list lives in one slot, on one master and its replicas: a token's
//! check stays one `MGET`, each script runs on one node, and a pass's count in that
//! slot proves its batches reached the same node (they share one replication stream,
//! which is what the `ready` marker's guarantee rests on). The list is small (about
//! 150 bytes per entry, see `docs/capacity.md`), so one slot holds millions.

use std::time::Duration;

use super::redis_link::RedisLink;
pub use super::redis_link::RedisUnavailable;
use crate::domain::{RedisEndpoint, RevocationKind};

pub struct DenyEntry {
    pub kind: RevocationKind,
    pub value: String,
    /// For `User` and `Client`: tokens issued before this (unix seconds) are dead.
    pub not_before: Option<i64>,
    pub ttl: Duration,
}

/// The denylist's view of one token.
#[derive(Debug, Default)]
pub(crate) struct DenyState {
    /// False when Redis has lost the list (restart, flush, failover): rebuild first.
    pub ready: bool,
    /// The generation the `ready` marker says Redis is complete up to.
    pub marker: Option<i64>,
    pub token: bool,
    pub session: bool,
    pub user_not_before: Option<i64>,
    pub client_not_before: Option<i64>,
}

/// KEYS: entries (after the pass's key, for a pass); ARGV: value, ttl seconds for each.
/// Raises, never lowers. `first` (set in front) is 1, or 2 when KEYS[1] is a pass.
const DENY: &str = r"
for i = first, #KEYS do
  local key = KEYS[i]
  local value = tonumber(ARGV[2 * (i - first) + 1])
  local ttl = tonumber(ARGV[2 * (i - first) + 2])
  local current = tonumber(redis.call('GET', key) or '-1')
  local left = redis.call('TTL', key)
  if value > current then
    redis.call('SET', key, value, 'EX', math.max(ttl, left))
  elseif ttl > left then
    redis.call('EXPIRE', key, ttl)
  end
end
";

/// Counts a pass's batch in the pass's own key, in the same script as the batch: a
/// count that reached Redis proves that the batch did too (replication and snapshots
/// keep the order of scripts), and a key that is gone is not brought back.
const COUNT_BATCH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
end
return #KEYS - 1
";

/// KEYS: the pass's key, ready marker; ARGV: the marker the pass started from ('' for
/// any), the generation it wrote, the batches it wrote, '1' when the marker may go
/// down. Sets the marker only if the pass's key is still there and counts every batch
/// (Redis kept all the pass wrote: no restart, flush or failover to a replica that
/// missed some of it), and the marker is the one an incremental pass started from. A
/// complete pass never lowers a marker another pass moved on meanwhile, unless it is
/// told to (PostgreSQL itself went back).
const COMPLETE: &str = r"
local batches = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
if batches == false or tonumber(batches) ~= tonumber(ARGV[3]) then
  return 0
end
local current = redis.call('GET', KEYS[2])
if ARGV[1] ~= '' then
  if current ~= ARGV[1] then
    return 0
  end
elseif ARGV[4] ~= '1' and current and tonumber(current) and tonumber(current) > tonumber(ARGV[2]) then
  return 1
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
";

/// How long the key of a pass that never completed (its instance died) is kept.
const PASS_ID_TTL_SECONDS: u64 = 3600;

/// A write pass over the denylist that may move the `ready` marker when it completes.
pub struct Pass {
    id: String,
    /// Batches written so far, each counted in Redis too.
    batches: u64,
}

#[derive(Clone)]
pub struct Denylist {
    conn: RedisLink,
    /// `{<prefix>deny}`: the hash tag every key of the list starts with.
    tag: String,
    deny_script: std::sync::Arc<redis::Script>,
    pass_deny_script: std::sync::Arc<redis::Script>,
    complete_script: std::sync::Arc<redis::Script>,
}

impl Denylist {
    /// Connects lazily: Tessera starts (and answers health checks) while Redis is
    /// down, and reconnects by itself when it comes back.
    pub fn new(endpoint: &RedisEndpoint, prefix: &str) -> Result<Self, RedisUnavailable> {
        Ok(Self {
            conn: RedisLink::new(endpoint)?,
            tag: format!("{{{prefix}deny}}"),
            deny_script: std::sync::Arc::new(redis::Script::new(&format!(
                "local first = 1\n{DENY}\nreturn #KEYS"
            ))),
            pass_deny_script: std::sync::Arc::new(redis::Script::new(&format!(
                "local first = 2\n{DENY}\n{COUNT_BATCH}"
            ))),
            complete_script: std::sync::Arc::new(redis::Script::new(COMPLETE)),
        })
    }

    /// See [`RedisLink::follow`].
    pub(crate) async fn follow(&self, endpoint: &RedisEndpoint) {
        self.conn.follow(endpoint).await;
    }

    /// The shared Redis connection, for other Redis-backed stores.
    pub(crate) fn connection(&self) -> RedisLink {
        self.conn.clone()
    }

    fn key(&self, kind: RevocationKind, value: &str) -> String {
        format!("{}:{}:{value}", self.tag, kind.as_str())
    }

    fn ready_key(&self) -> String {
        format!("{}:ready", self.tag)
    }

    fn pass_key(&self, pass: &Pass) -> String {
        format!("{}:pass:{}", self.tag, pass.id)
    }

    /// Redis's eviction policy, when the server lets us read it (managed services may
    /// hide `CONFIG`).
    pub(crate) async fn eviction_policy(&self) -> Option<String> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut conn)
            .await
            .ok()?;
        reply.into_iter().nth(1)
    }

    /// Whether the node that holds the denylist answers. A command on the list's own
    /// key rather than `PING`, which a Cluster client sends to every master: one master
    /// failing over elsewhere in the cluster leaves the denylist, and readiness, alone.
    pub(crate) async fn ping(&self) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("EXISTS")
            .arg(self.ready_key())
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Writes entries, each expiring with what it denies. Writes only ever move an
    /// entry forward (a later not-before time, a longer life), so an older entry pushed
    /// late (a catch-up, a rebuild racing a new revocation) cannot undo a newer one.
    pub(crate) async fn deny(&self, entries: &[DenyEntry]) -> Result<(), RedisUnavailable> {
        self.write(None, entries).await
    }

    /// [`Self::deny`] as part of `pass`, each batch counted for [`Self::complete`].
    pub async fn deny_in(
        &self,
        pass: &mut Pass,
        entries: &[DenyEntry],
    ) -> Result<(), RedisUnavailable> {
        self.write(Some(pass), entries).await
    }

    async fn write(
        &self,
        mut pass: Option<&mut Pass>,
        entries: &[DenyEntry],
    ) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        // In slices: a script runs alone in Redis, so keep each run short.
        for chunk in entries.chunks(500) {
            let mut invocation = match &pass {
                Some(pass) => {
                    let mut invocation = self.pass_deny_script.prepare_invoke();
                    invocation.key(self.pass_key(pass));
                    invocation
                }
                None => self.deny_script.prepare_invoke(),
            };
            for e in chunk {
                invocation
                    .key(self.key(e.kind, &e.value))
                    .arg(e.not_before.unwrap_or(1))
                    .arg(e.ttl.as_secs().max(1));
            }
            invocation.invoke_async::<()>(&mut conn).await?;
            if let Some(pass) = pass.as_deref_mut() {
                pass.batches += 1;
            }
        }
        Ok(())
    }

    /// Announces a pass before it reads PostgreSQL: if Redis loses its data while the
    /// pass writes, the announcement goes with it and [`Self::complete`] refuses.
    pub async fn begin(&self) -> Result<Pass, RedisUnavailable> {
        let pass = Pass {
            id: uuid::Uuid::new_v4().simple().to_string(),
            batches: 0,
        };
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.pass_key(&pass))
            .arg(0)
            .arg("EX")
            .arg(PASS_ID_TTL_SECONDS)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(pass)
    }

    /// Records that Redis holds every revocation up to `generation`, if Redis still
    /// holds all the pass wrote and (when `from` is given) the marker is still the one
    /// it started from. A complete pass (`from` None) leaves a higher marker alone
    /// unless `lower` (PostgreSQL's generation went back). Returns whether Redis is now
    /// marked complete up to at least `generation`.
    pub async fn complete(
        &self,
        pass: Pass,
        from: Option<i64>,
        generation: i64,
        lower: bool,
    ) -> Result<bool, RedisUnavailable> {
        let mut conn = self.conn.clone();
        let set: i64 = self
            .complete_script
            .key(self.pass_key(&pass))
            .key(self.ready_key())
            .arg(from.map(|g| g.to_string()).unwrap_or_default())
            .arg(generation)
            .arg(pass.batches)
            .arg(if lower { "1" } else { "" })
            .invoke_async(&mut conn)
            .await?;
        Ok(set == 1)
    }

    /// The `ready` marker: `None` when Redis has lost the list (or holds something that
    /// is not a generation), else the generation it is complete up to.
    pub(crate) async fn marker(&self) -> Result<Option<i64>, RedisUnavailable> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("GET")
            .arg(self.ready_key())
            .query_async(&mut conn)
            .await?;
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// Everything about one token, in one round trip.
    pub(crate) async fn check(
        &self,
        jti: &str,
        sid: Option<&str>,
        user: Option<&str>,
        client: &str,
    ) -> Result<DenyState, RedisUnavailable> {
        let keys = [
            self.ready_key(),
            self.key(RevocationKind::Token, jti),
            sid.map(|s| self.key(RevocationKind::Session, s))
                .unwrap_or_else(|| self.key(RevocationKind::Session, "-")),
            user.map(|u| self.key(RevocationKind::User, u))
                .unwrap_or_else(|| self.key(RevocationKind::User, "-")),
            self.key(RevocationKind::Client, client),
        ];
        let mut conn = self.conn.clone();
        let values: Vec<Option<i64>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let at = |i: usize| values.get(i).copied().flatten();
        Ok(DenyState {
            ready: at(0).is_some(),
            marker: at(0),
            token: at(1).is_some(),
            session: sid.is_some() && at(2).is_some(),
            user_not_before: user.and(at(3)),
            client_not_before: at(4),
        })
    }
}
