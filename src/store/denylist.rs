//! The Redis side of revocation: a fast denylist whose entries expire on their own.

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

    pub async fn ping(&self) -> Result<(), RedisUnavailable> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
}
