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

#[derive(Clone)]
pub struct Denylist {
    conn: ConnectionManager,
    prefix: String,
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

    pub async fn ping(&self) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Writes entries, each expiring with what it denies. A later `User`/`Client`
    /// entry carries a later time, so overwriting is always right.
    pub async fn deny(&self, entries: &[DenyEntry]) -> Result<(), RedisUnavailable> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for e in entries {
            let ttl = e.ttl.as_secs().max(1);
            pipe.cmd("SET")
                .arg(self.key(e.kind, &e.value))
                .arg(e.not_before.unwrap_or(1))
                .arg("EX")
                .arg(ttl)
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
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
