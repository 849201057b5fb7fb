//! The Redis side of revocation: a fast denylist whose entries expire on their own
//! when nothing they deny can still be alive. PostgreSQL holds the durable record
//! (`revocations`); this is a cache of it that must never be trusted when empty by
//! accident, hence the `ready` marker: it is written after a (re)build, has no TTL,
//! and its absence means Redis lost its data and the list must be rebuilt.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

#[derive(Debug, thiserror::Error)]
#[error("redis is unavailable: {0}")]
pub struct RedisUnavailable(String);

impl From<redis::RedisError> for RedisUnavailable {
    fn from(e: redis::RedisError) -> Self {
        Self(e.to_string())
    }
}

/// What a denylist entry denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyKind {
    /// One access token, by `jti`.
    Token,
    /// Every access token of a session, by `sid`.
    Session,
    /// Every access token of a user issued before a time.
    User,
    /// Every access token minted through a client before a time.
    Client,
}

impl DenyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyKind::Token => "jti",
            DenyKind::Session => "sid",
            DenyKind::User => "user",
            DenyKind::Client => "client",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jti" => Some(DenyKind::Token),
            "sid" => Some(DenyKind::Session),
            "user" => Some(DenyKind::User),
            "client" => Some(DenyKind::Client),
            _ => None,
        }
    }
}

pub struct DenyEntry {
    pub kind: DenyKind,
    pub value: String,
    /// For `User` and `Client`: tokens issued before this (unix seconds) are dead.
    pub not_before: Option<i64>,
    pub ttl: Duration,
}

/// The denylist's view of one token.
#[derive(Debug, Default)]
pub struct DenyState {
    /// False when Redis has lost the list (restart, flush, failover): rebuild first.
    pub ready: bool,
    pub token: bool,
    pub session: bool,
    pub user_not_before: Option<i64>,
    pub client_not_before: Option<i64>,
}

/// KEYS: entries; ARGV: value, ttl seconds for each. Raises, never lowers.
const DENY: &str = r"
for i, key in ipairs(KEYS) do
  local value = tonumber(ARGV[2 * i - 1])
  local ttl = tonumber(ARGV[2 * i])
  local current = tonumber(redis.call('GET', key) or '-1')
  local left = redis.call('TTL', key)
  if value > current then
    redis.call('SET', key, value, 'EX', math.max(ttl, left))
  elseif ttl > left then
    redis.call('EXPIRE', key, ttl)
  end
end
return #KEYS
";

#[derive(Clone)]
pub struct Denylist {
    conn: ConnectionManager,
    prefix: String,
    deny_script: std::sync::Arc<redis::Script>,
}

impl Denylist {
    /// Connects lazily: Tessera starts (and answers health checks) while Redis is
    /// down, and reconnects by itself when it comes back.
    pub fn new(url: &str, prefix: &str) -> Result<Self, RedisUnavailable> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            deny_script: std::sync::Arc::new(redis::Script::new(DENY)),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The shared Redis connection, for other Redis-backed stores.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    fn key(&self, kind: DenyKind, value: &str) -> String {
        format!("{}deny:{}:{value}", self.prefix, kind.as_str())
    }

    fn ready_key(&self) -> String {
        format!("{}deny:ready", self.prefix)
    }

    /// Redis's eviction policy, when the server lets us read it (managed services may
    /// hide `CONFIG`).
    pub async fn eviction_policy(&self) -> Option<String> {
        let mut conn = self.conn.clone();
        let reply: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut conn)
            .await
            .ok()?;
        reply.into_iter().nth(1)
    }

    pub async fn ping(&self) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Writes entries, each expiring with what it denies. Writes only ever move an
    /// entry forward (a later not-before time, a longer life), so an older entry pushed
    /// late (a catch-up, a rebuild racing a new revocation) cannot undo a newer one.
    pub async fn deny(&self, entries: &[DenyEntry]) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        // In slices: a script runs alone in Redis, so keep each run short.
        for chunk in entries.chunks(500) {
            let mut invocation = self.deny_script.prepare_invoke();
            for e in chunk {
                invocation
                    .key(self.key(e.kind, &e.value))
                    .arg(e.not_before.unwrap_or(1))
                    .arg(e.ttl.as_secs().max(1));
            }
            invocation.invoke_async::<()>(&mut conn).await?;
        }
        Ok(())
    }

    /// Records that the list is complete (after a rebuild).
    pub async fn mark_ready(&self) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.ready_key())
            .arg(1)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn is_ready(&self) -> Result<bool, RedisUnavailable> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("EXISTS")
            .arg(self.ready_key())
            .query_async::<bool>(&mut conn)
            .await?)
    }

    /// Everything about one token, in one round trip.
    pub async fn check(
        &self,
        jti: &str,
        sid: Option<&str>,
        user: Option<&str>,
        client: &str,
    ) -> Result<DenyState, RedisUnavailable> {
        let keys = [
            self.ready_key(),
            self.key(DenyKind::Token, jti),
            sid.map(|s| self.key(DenyKind::Session, s))
                .unwrap_or_else(|| self.key(DenyKind::Session, "-")),
            user.map(|u| self.key(DenyKind::User, u))
                .unwrap_or_else(|| self.key(DenyKind::User, "-")),
            self.key(DenyKind::Client, client),
        ];
        let mut conn = self.conn.clone();
        let values: Vec<Option<i64>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
        let at = |i: usize| values.get(i).copied().flatten();
        Ok(DenyState {
            ready: at(0).is_some(),
            token: at(1).is_some(),
            session: sid.is_some() && at(2).is_some(),
            user_not_before: user.and(at(3)),
            client_not_before: at(4),
        })
    }
}
