//! Key changes announced over Redis pub/sub. The database stays the only truth: an
//! announcement only tells every instance to reload its key set from PostgreSQL now,
//! rather than at its next key refresh (`TESSERA_KEY_REFRESH_INTERVAL`). A lost
//! announcement (Redis down) costs at most that interval.

use futures_util::StreamExt;
use redis::aio::ConnectionManager;

use super::denylist::RedisUnavailable;

fn channel(prefix: &str) -> String {
    format!("{prefix}keys:changed")
}

/// Tells every subscribed instance that the keys changed; returns how many received it.
pub(crate) async fn announce(
    conn: &mut ConnectionManager,
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
    url: &str,
    prefix: &str,
) -> Result<impl futures_util::Stream<Item = ()> + Send, RedisUnavailable> {
    let client = redis::Client::open(url)?;
    let mut pubsub =
        tokio::time::timeout(std::time::Duration::from_secs(2), client.get_async_pubsub())
            .await
            .map_err(|_| {
                RedisUnavailable::from(redis::RedisError::from(std::io::Error::from(
                    std::io::ErrorKind::TimedOut,
                )))
            })??;
    pubsub.subscribe(channel(prefix)).await?;
    Ok(pubsub.into_on_message().map(|_| ()))
}
