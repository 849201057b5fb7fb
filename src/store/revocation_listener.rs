//! `LISTEN tessera_revocations`: the moment another transaction records a revocation
//! (the trigger of migration `revocation_feed` notifies at commit), on a dedicated
//! tokio-postgres connection. A notification only says "look now"; the rows are read
//! with an ordinary query, so a notification lost while reconnecting costs latency,
//! never an event.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::rotation::{async_config, tls_connector, APPLICATION_NAME};
use super::StoreError;

const CHANNEL: &str = "tessera_revocations";

/// An open `LISTEN`; dropping it closes the connection.
pub(crate) struct Listener {
    _client: tokio_postgres::Client,
    notified: mpsc::Receiver<()>,
}

impl Listener {
    /// Connects and listens. `Ok(None)` when the database URL asks for something only
    /// libpq does (see `store::rotation`): the caller then relies on polling alone.
    pub(crate) async fn connect(database_url: &str) -> Result<Option<Self>, StoreError> {
        let Ok(mut config) = async_config(database_url) else {
            return Ok(None);
        };
        if config.get_application_name() == Some(APPLICATION_NAME) {
            config.application_name("tessera revocation feed");
        }
        // A blackholed host must not hold the reader (which polls meanwhile) for the OS's
        // TCP timeout, and a half-open socket after a failover must be noticed.
        config
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        let tls = tls_connector().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let unavailable = |e: tokio_postgres::Error| StoreError::Unavailable(e.to_string());
        let (client, mut connection) =
            tokio::time::timeout(Duration::from_secs(10), config.connect(tls))
                .await
                .map_err(|_| StoreError::Unavailable("connecting took over 10 s".to_owned()))?
                .map_err(unavailable)?;
        let (tx, notified) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                        // A full channel already says "look now".
                        let _ = tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "the revocation listener's connection ended");
                        break;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(unavailable)?;
        Ok(Some(Self {
            _client: client,
            notified,
        }))
    }

    /// Waits for the next notification; `false` once the connection is gone.
    pub(crate) async fn notified(&mut self) -> bool {
        self.notified.recv().await.is_some()
    }
}
