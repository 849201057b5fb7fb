//! Key changes announced over Redis pub/sub. The database stays the only truth: an
//! announcement only tells every instance to reload its key set from PostgreSQL now,
//! rather than at its next key refresh (`TESSERA_KEY_REFRESH_INTERVAL`). A lost
//! announcement (Redis down) costs at most that interval.

use super::denylist::RedisUnavailable;
use super::redis_link::{self, RedisLink};
use crate::domain::RedisEndpoint;
use futures_util::StreamExt;

fn channel(prefix: &str) -> String {
    format!("{prefix}keys:changed")
}

/// Tells every subscribed instance that the keys changed; returns how many received it.
pub(crate) async fn announce(
    conn: &mut RedisLink,
    prefix: &str,
    kid: &str,
) -> Result<u64, RedisUnavailable> {
    let receivers: u64 = redis::cmd("PUBLISH")
        .arg(channel(prefix))
        .arg(kid)
        .query_async(conn)
        .await?;
    Ok(receivers)
}

/// Subscribes to key announcements; the stream ends when the connection is lost.
pub(crate) async fn subscribe(
    endpoint: &RedisEndpoint,
    prefix: &str,
) -> Result<impl futures_util::Stream<Item = ()> + Send, RedisUnavailable> {
    let messages = redis_link::subscribe(endpoint, channel(prefix)).await?;
    Ok(messages.map(|_| ()))
}
