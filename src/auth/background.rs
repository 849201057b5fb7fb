//! The timers every instance runs beside the server: the key life cycle, following
//! other instances' key announcements, the denylist passes, watching Redis, and
//! housekeeping of expired rows.

use std::time::Duration;

use super::revocation;
use super::Tessera;
use crate::config::Settings;
use crate::store::denylist::Denylist;

/// Says at start-up whether Redis is reachable and whether it may evict denylist keys.
pub(super) async fn report_redis_at_start(settings: &Settings, denylist: &Denylist) {
    if let Err(e) = denylist.ping().await {
        tracing::warn!(
            redis = %settings.redis.endpoint.describe(),
            error = %e,
            "{REDIS_DOWN}"
        );
    }
    match denylist.eviction_policy().await.as_deref() {
        Some("noeviction") | None => {}
        Some(policy) => tracing::warn!(
            policy,
            "Redis may evict keys under memory pressure (maxmemory-policy is not \
                 noeviction): an evicted denylist entry lets a revoked token through until \
                 the next full re-assertion (at most 10 minutes); set maxmemory-policy \
                 noeviction"
        ),
    }
}

const REDIS_DOWN: &str = "Redis (the revocation list and the brute-force counters) is \
    unreachable: until it is back, logins, introspection and every call that checks an \
    access token answer 503 naming it; refreshes and revocations go on (revocations are \
    pushed to Redis when it returns). Check REDIS_URL (and TESSERA_REDIS_CLUSTER_NODES) and /readyz";

/// Reloads the key set the moment any instance (or `tessera keys rotate`) announces a
/// key change, so an emergency rotation takes effect everywhere at once. While Redis
/// is unreachable the key refresh timer still picks changes up.
async fn follow_key_announcements(tessera: Tessera) {
    use futures_util::StreamExt;
    let mut missed = false;
    loop {
        let subscribed = crate::store::key_events::subscribe(
            &tessera.settings.redis.endpoint,
            &tessera.settings.redis.prefix,
        )
        .await;
        if let Ok(mut announcements) = subscribed {
            if missed {
                // Something may have been announced while we were not listening.
                if let Err(e) = tessera.keys.reload().await {
                    tracing::warn!(error = %e, "reloading the signing keys failed; will retry");
                }
            }
            while announcements.next().await.is_some() {
                match tessera.keys.reload().await {
                    Ok(()) => tracing::debug!("reloaded the signing keys on an announcement"),
                    Err(e) => {
                        tracing::warn!(error = %e, "reloading the signing keys failed; will retry")
                    }
                }
            }
        }
        missed = true;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Logs when Redis goes away and when it comes back, so an operator sees why calls
/// answer 503 without reading every request's log line.
async fn watch_redis(tessera: Tessera) {
    // Start-up already said whether it is reachable.
    let mut reachable = tessera.denylist.ping().await.is_ok();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // With Sentinel: leave a master the Sentinels no longer name.
        tessera
            .denylist
            .follow(&tessera.settings.redis.endpoint)
            .await;
        match (tessera.denylist.ping().await, reachable) {
            (Ok(()), false) => {
                tracing::info!("Redis is reachable again: calls that needed it are served");
                reachable = true;
            }
            (Err(e), true) => {
                tracing::warn!(
                    redis = %tessera.settings.redis.endpoint.describe(),
                    error = %e,
                    "{REDIS_DOWN}"
                );
                reachable = false;
            }
            _ => {}
        }
    }
}

/// How far back the frequent re-assertion of the denylist reaches.
const RECENT_WRITES: Duration = Duration::from_secs(300);

/// Timers every instance runs: the key life cycle (which also picks up rotations made
/// by other instances) and housekeeping.
pub(crate) fn spawn(tessera: Tessera) -> Vec<tokio::task::JoinHandle<()>> {
    let keys = {
        let tessera = tessera.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(tessera.settings.keys.refresh_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = tessera.keys.tick().await {
                    tracing::warn!(error = %e, "key maintenance failed; will retry");
                }
            }
        })
    };
    let denylist = {
        let tessera = tessera.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                // Every second push what Redis has not confirmed, and compare Redis's
                // `ready` marker with PostgreSQL's generation: a lost list is rebuilt
                // whole, a marker behind (an old snapshot, a replica that missed
                // writes) gets the revocations since. Every 30 s also re-assert the
                // last five minutes whatever the marker says; every 10 minutes, and at
                // start, the whole list.
                let result = if n.is_multiple_of(600) {
                    revocation::rebuild(&tessera, revocation::Rebuild::All).await
                } else if n.is_multiple_of(30) {
                    revocation::rebuild(&tessera, revocation::Rebuild::Recent(RECENT_WRITES)).await
                } else {
                    match revocation::sync_pending(&tessera).await {
                        Ok(_) => revocation::rebuild(&tessera, revocation::Rebuild::Behind).await,
                        Err(e) => Err(e),
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "denylist sync did not complete; will retry");
                }
                n += 1;
            }
        })
    };
    let redis_watch = tokio::spawn(watch_redis(tessera.clone()));
    let key_announcements = tokio::spawn(follow_key_announcements(tessera.clone()));
    let revocation_feed = tokio::spawn(revocation::feed::run(tessera.clone()));
    let housekeeping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let result = tessera
                .db
                .run(move |conn| {
                    use crate::store::{authorization_codes, browser_sessions, sessions};
                    Ok::<_, crate::store::StoreError>(
                        sessions::delete_expired(conn, 7)?
                            + browser_sessions::delete_expired(conn, 7)?
                            + authorization_codes::delete_expired(conn, 10)?,
                    )
                })
                .await;
            match result {
                Ok(deleted) if deleted > 0 => {
                    tracing::debug!(deleted, "housekeeping");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry"),
            }
        }
    });
    vec![
        keys,
        denylist,
        housekeeping,
        redis_watch,
        key_announcements,
        revocation_feed,
    ]
}
