//! One Redis connection for every Redis-backed store, whatever Redis is: a single
//! server, a Redis Cluster, or a master that Sentinels name. [`RedisLink`] speaks the
//! `redis` crate's `ConnectionLike`, so commands and scripts run on it unchanged.
//!
//! - **Single**: the crate's `ConnectionManager`, which reconnects by itself.
//! - **Cluster**: the crate's cluster client, which follows `MOVED`/`ASK` redirections
//!   and refreshes its slot map after a failover. Every Lua script Tessera runs touches
//!   keys of one hash tag only (see `denylist` and `throttle`), so each runs on the one
//!   node that holds them.
//! - **Sentinel**: a connection to the master the Sentinels name, checked with `ROLE`.
//!   A connection that breaks, or that the old master refuses with `READONLY` after a
//!   failover, is dropped, and the next command asks the Sentinels again; [`RedisLink::
//!   follow`] (run every two seconds) also asks them, so a master that was replaced
//!   while its connection still answered is left.
//!
//! Connections are made on first use, so Tessera starts while Redis is down; while it
//! stays down, a failed attempt is not repeated for [`RETRY_AFTER`], so callers fail
//! fast instead of queueing behind connection timeouts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use crate::domain::{RedisEndpoint, SentinelEndpoint};

#[derive(Debug, thiserror::Error)]
#[error("redis is unavailable: {0}")]
pub struct RedisUnavailable(String);

impl From<redis::RedisError> for RedisUnavailable {
    fn from(e: redis::RedisError) -> Self {
        Self(e.to_string())
    }
}

/// How long one attempt to reach Redis (or a Sentinel) may take, and how long one
/// command may wait for its answer.
const TIMEOUT: Duration = Duration::from_millis(500);

/// After a failed connection attempt, how long commands fail at once.
const RETRY_AFTER: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub(crate) struct RedisLink {
    inner: Inner,
    db: i64,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(Arc<Lazy<ClusterConnection>>),
    Sentinel(Arc<Lazy<redis::aio::MultiplexedConnection>>),
}

impl RedisLink {
    pub(crate) fn new(endpoint: &RedisEndpoint) -> Result<Self, RedisUnavailable> {
        Ok(match endpoint {
            RedisEndpoint::Single(url) => {
                let client = redis::Client::open(url.as_str())?;
                let db = client.get_connection_info().redis_settings().db();
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(TIMEOUT);
                Self {
                    inner: Inner::Single(ConnectionManager::new_lazy_with_config(client, config)?),
                    db,
                }
            }
            RedisEndpoint::Cluster(nodes) => {
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(TIMEOUT)
                    .response_timeout(TIMEOUT)
                    // Redirections and a failover's slot refresh need a few tries;
                    // an outage must still fail within a second or two.
                    .retries(4)
                    .min_retry_wait(50)
                    .max_retry_wait(400)
                    .build()?;
                let connect =
                    move || -> BoxFuture<'static, RedisResult<(ClusterConnection, String)>> {
                        let client = client.clone();
                        Box::pin(async move {
                            let conn = client.get_async_connection().await?;
                            Ok((conn, String::new()))
                        })
                    };
                Self {
                    inner: Inner::Cluster(Arc::new(Lazy::new(Box::new(connect)))),
                    db: 0,
                }
            }
            RedisEndpoint::Sentinel(endpoint) => {
                let endpoint = endpoint.clone();
                let db = endpoint.db;
                let connect = move || -> BoxFuture<'static, RedisResult<(redis::aio::MultiplexedConnection, String)>> {
                    let endpoint = endpoint.clone();
                    Box::pin(async move {
                        let client = sentinel_master(&endpoint).await?;
                        let address = client.get_connection_info().addr().to_string();
                        let config = redis::AsyncConnectionConfig::new()
                            .set_connection_timeout(Some(TIMEOUT))
                            .set_response_timeout(Some(TIMEOUT));
                        let conn = client
                            .get_multiplexed_async_connection_with_config(&config)
                            .await?;
                        Ok((conn, address))
                    })
                };
                Self {
                    inner: Inner::Sentinel(Arc::new(Lazy::new(Box::new(connect)))),
                    db,
                }
            }
        })
    }

    /// For Sentinel: asks the Sentinels who the master is, and leaves the current
    /// connection if it goes elsewhere. Does nothing for the other kinds, whose clients
    /// follow their topology themselves.
    pub(crate) async fn follow(&self, endpoint: &RedisEndpoint) {
        let (Inner::Sentinel(lazy), RedisEndpoint::Sentinel(endpoint)) = (&self.inner, endpoint)
        else {
            return;
        };
        let Some((generation, current)) = lazy.current_address() else {
            return;
        };
        match sentinel_master(endpoint).await {
            Ok(client) if client.get_connection_info().addr().to_string() != current => {
                tracing::info!(
                    from = %current,
                    to = %client.get_connection_info().addr(),
                    "the Sentinels name a new Redis master: following it"
                );
                lazy.forget(generation);
            }
            _ => {}
        }
    }
}

/// A client for the master the Sentinels name now, verified with `ROLE` by the crate.
async fn sentinel_master(endpoint: &SentinelEndpoint) -> RedisResult<redis::Client> {
    let addresses = endpoint
        .sentinels
        .iter()
        .map(|(host, port)| redis::ConnectionAddr::Tcp(host.clone(), *port));
    let mut builder = SentinelClientBuilder::new(
        addresses,
        endpoint.master.clone(),
        SentinelServerType::Master,
    )?
    .set_client_to_redis_db(endpoint.db);
    if let Some(user) = &endpoint.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = &endpoint.password {
        builder = builder.set_client_to_redis_password(password);
    }
    if let Some(user) = &endpoint.sentinel_username {
        builder = builder.set_client_to_sentinel_username(user);
    }
    if let Some(password) = &endpoint.sentinel_password {
        builder = builder.set_client_to_sentinel_password(password);
    }
    let mut client = builder.build()?;
    // A Sentinel that is down answers at once (refused) or never: bound the whole walk.
    tokio::time::timeout(4 * TIMEOUT, client.async_get_client())
        .await
        .map_err(|_| timed_out())?
}

fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

/// Whether `e` says the connection is no good any more (as opposed to a refusal of the
/// command itself): lost, timed out, or a master that became a replica.
fn connection_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
        || e.kind() == ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

type Connect<C> = Box<dyn Fn() -> BoxFuture<'static, RedisResult<(C, String)>> + Send + Sync>;

/// A connection made on first use and made again after it is forgotten.
struct Lazy<C> {
    current: Mutex<Slot<C>>,
    /// One attempt at a time; the others wait for its outcome.
    connecting: tokio::sync::Mutex<()>,
    connect: Connect<C>,
}

struct Slot<C> {
    conn: Option<(C, String)>,
    /// Bumped on every new connection, so a failure seen on an old one cannot make
    /// Tessera forget a newer one.
    generation: u64,
    failed_at: Option<Instant>,
}

impl<C: Clone + Send + 'static> Lazy<C> {
    fn new(connect: Connect<C>) -> Self {
        Self {
            current: Mutex::new(Slot {
                conn: None,
                generation: 0,
                failed_at: None,
            }),
            connecting: tokio::sync::Mutex::new(()),
            connect,
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot<C>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self) -> Result<Option<(u64, C)>, RedisError> {
        let slot = self.slot();
        if let Some((conn, _)) = &slot.conn {
            return Ok(Some((slot.generation, conn.clone())));
        }
        match slot.failed_at {
            Some(at) if at.elapsed() < RETRY_AFTER => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "Redis was unreachable a moment ago",
            ))),
            _ => Ok(None),
        }
    }

    async fn get(&self) -> RedisResult<(u64, C)> {
        if let Some(found) = self.cached()? {
            return Ok(found);
        }
        let _turn = self.connecting.lock().await;
        if let Some(found) = self.cached()? {
            return Ok(found);
        }
        let made = tokio::time::timeout(4 * TIMEOUT, (self.connect)())
            .await
            .map_err(|_| timed_out())
            .and_then(|r| r);
        let mut slot = self.slot();
        match made {
            Ok((conn, address)) => {
                slot.generation += 1;
                slot.failed_at = None;
                slot.conn = Some((conn.clone(), address));
                Ok((slot.generation, conn))
            }
            Err(e) => {
                slot.failed_at = Some(Instant::now());
                Err(e)
            }
        }
    }

    fn current_address(&self) -> Option<(u64, String)> {
        let slot = self.slot();
        slot.conn
            .as_ref()
            .map(|(_, address)| (slot.generation, address.clone()))
    }

    fn forget(&self, generation: u64) {
        let mut slot = self.slot();
        if slot.generation == generation {
            slot.conn = None;
        }
    }

    /// Runs `run` on the connection, forgetting the connection when it failed as one.
    async fn with<T>(
        &self,
        forget_on_loss: bool,
        run: impl AsyncFnOnce(&mut C) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let (generation, mut conn) = self.get().await?;
        let result = run(&mut conn).await;
        if let Err(e) = &result {
            if forget_on_loss && connection_lost(e) {
                self.forget(generation);
            }
        }
        result
    }
}

impl ConnectionLike for RedisLink {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(conn) => conn.req_packed_command(cmd),
            Inner::Cluster(lazy) => {
                let lazy = Arc::clone(lazy);
                Box::pin(async move {
                    lazy.with(false, async |c| c.req_packed_command(cmd).await)
                        .await
                })
            }
            Inner::Sentinel(lazy) => {
                let lazy = Arc::clone(lazy);
                Box::pin(async move {
                    lazy.with(true, async |c| c.req_packed_command(cmd).await)
                        .await
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(lazy) => {
                let lazy = Arc::clone(lazy);
                Box::pin(async move {
                    lazy.with(false, async |c| {
                        c.req_packed_commands(pipeline, offset, count).await
                    })
                    .await
                })
            }
            Inner::Sentinel(lazy) => {
                let lazy = Arc::clone(lazy);
                Box::pin(async move {
                    lazy.with(true, async |c| {
                        c.req_packed_commands(pipeline, offset, count).await
                    })
                    .await
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}

/// A pub/sub subscription to `channel`. On a Cluster, `PUBLISH` reaches every node, so
/// one node is enough (the first of the configured ones that answers); with Sentinel,
/// the current master. The stream ends when the connection is lost; the caller
/// subscribes again.
pub(crate) async fn subscribe(
    endpoint: &RedisEndpoint,
    channel: String,
) -> Result<impl futures_util::Stream<Item = redis::Msg> + Send, RedisUnavailable> {
    let clients: Vec<redis::Client> = match endpoint {
        RedisEndpoint::Single(url) => vec![redis::Client::open(url.as_str())?],
        RedisEndpoint::Cluster(nodes) => nodes
            .iter()
            .map(|n| redis::Client::open(n.as_str()))
            .collect::<Result<_, _>>()?,
        RedisEndpoint::Sentinel(endpoint) => vec![sentinel_master(endpoint).await?],
    };
    let mut last = timed_out();
    for client in clients {
        match tokio::time::timeout(4 * TIMEOUT, client.get_async_pubsub()).await {
            Ok(Ok(mut pubsub)) => {
                pubsub.subscribe(&channel).await?;
                return Ok(pubsub.into_on_message());
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = timed_out(),
        }
    }
    Err(last.into())
}
