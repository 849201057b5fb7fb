//! Keeping Redis complete: pushing what it has not confirmed, rebuilding it when it
//! lost data or went back in time, and the `ready` marker that says how far it is
//! complete.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::CheckError;
use crate::auth::{chrono_duration, Tessera};
use crate::store::denylist::DenyEntry;
use crate::store::revocations::{self, Live, RevocationRow};

fn seconds(d: chrono::Duration) -> Duration {
    Duration::from_secs(u64::try_from(d.num_seconds()).unwrap_or(0))
}

/// Unix seconds, rounded up: a token issued in the second of the revocation is dead.
pub(super) fn not_before_secs(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

pub(super) fn entry_of(row: &RevocationRow, now: DateTime<Utc>) -> Option<DenyEntry> {
    let ttl = seconds(row.expires_at - now);
    if ttl.is_zero() {
        return None;
    }
    Some(DenyEntry {
        kind: row.kind,
        value: row.value.clone(),
        not_before: row.not_before.map(not_before_secs),
        ttl,
    })
}

/// Pushes every live revocation Redis has not confirmed (from any instance).
#[tracing::instrument(name = "revocation.sync_pending", level = "debug", skip_all)]
pub async fn sync_pending(tessera: &Tessera) -> Result<usize, CheckError> {
    const BATCH: i64 = 10_000;
    let mut total = 0;
    loop {
        let rows = tessera
            .db
            .run(|conn| revocations::unsynced(conn, BATCH))
            .await?;
        if rows.is_empty() {
            return Ok(total);
        }
        let now = Utc::now();
        let entries: Vec<DenyEntry> = rows.iter().filter_map(|r| entry_of(r, now)).collect();
        tessera.denylist.deny(&entries).await?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let count = ids.len();
        tessera
            .db
            .run(move |conn| revocations::mark_synced(conn, &ids))
            .await?;
        total += count;
        if (count as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Before a token is trusted again after Redis missed a write, pushes what it missed.
/// One request does the work while the others wait for it; a write that fails while
/// it runs marks the list suspect again, so nothing is cleared unseen.
pub(super) async fn catch_up(tessera: &Tessera) -> Result<(), CheckError> {
    let lock = &tessera.denylist_sync.rebuild;
    let (_one_at_a_time, waited) = match lock.try_lock() {
        Ok(guard) => (guard, false),
        Err(_) => (lock.lock().await, true),
    };
    if !tessera.denylist_sync.suspect.swap(false, Ordering::AcqRel) {
        return Ok(());
    }
    if waited {
        // The attempt this request waited for did not settle it: answer now rather than
        // queue one more attempt (and one more Redis timeout) behind it.
        tessera.denylist_sync.suspect.store(true, Ordering::Release);
        return Err(CheckError::Unavailable(
            "the denylist is catching up with Redis".to_owned(),
        ));
    }
    if let Err(e) = sync_pending(tessera).await {
        tessera.denylist_sync.suspect.store(true, Ordering::Release);
        return Err(e);
    }
    Ok(())
}

/// What to write to Redis again.
#[derive(Clone, Copy, Debug)]
pub enum Rebuild {
    /// Everything, but only if Redis has lost the list (its `ready` marker is gone).
    IfLost,
    /// What Redis may lack: everything if it lost the list (or its marker is ahead of
    /// PostgreSQL), else the revocations of the generations after its marker (Redis came
    /// back from an old snapshot, or a replica missed the latest writes).
    Behind,
    /// As [`Rebuild::Behind`], and the revocations recorded within this long whatever
    /// the marker says.
    Recent(std::time::Duration),
    /// Every live revocation, whatever Redis says.
    All,
}

/// Writes live revocations to Redis (see [`Rebuild`]), then moves the `ready` marker to
/// the generation written. Any instance may run it, any number at once: entries only
/// ever move forward, and the marker is set only by a pass that found Redis with the
/// data it started on (see `Denylist::complete`).
#[tracing::instrument(name = "revocation.rebuild", level = "debug", skip_all, fields(?scope), err(level = "debug"))]
pub async fn rebuild(tessera: &Tessera, scope: Rebuild) -> Result<usize, CheckError> {
    if matches!(scope, Rebuild::Behind) && up_to_date(tessera).await? {
        // The every-second case, settled without the lock token checks may wait on.
        return Ok(0);
    }
    let _one_at_a_time = tessera.denylist_sync.rebuild.lock().await;
    let marker = tessera.denylist.marker().await?;
    if matches!(scope, Rebuild::IfLost) && marker.is_some() {
        return Ok(0);
    }
    let generation = tessera.db.run(revocations::generation).await?;
    clamp_highest_marker(tessera, generation);
    // `from` is the marker an incremental pass builds on; `None` for a complete one.
    let (which, from) = match (scope, marker) {
        (Rebuild::All, _) => (Live::All, None),
        (_, None) => {
            tracing::warn!("Redis has lost the denylist; rebuilding it from PostgreSQL");
            (Live::All, None)
        }
        (_, Some(m)) if m > generation => {
            tracing::warn!(
                marker = m,
                generation,
                "the denylist in Redis claims a generation PostgreSQL never reached; \
                 rebuilding it from PostgreSQL"
            );
            (Live::All, None)
        }
        (Rebuild::Behind | Rebuild::IfLost, Some(m)) if m == generation => return Ok(0),
        (Rebuild::Behind | Rebuild::IfLost, Some(m)) => (
            Live::After {
                generation: m,
                since: None,
            },
            Some(m),
        ),
        (Rebuild::Recent(within), Some(m)) => (
            Live::After {
                generation: m,
                since: Some(Utc::now() - chrono_duration(within)),
            },
            Some(m),
        ),
    };
    // Cleared before reading, so a write that fails from here on keeps it set.
    let was_suspect = tessera.denylist_sync.suspect.swap(false, Ordering::AcqRel);
    // Only a marker ahead of PostgreSQL (a restored database) may be lowered.
    let lower = marker.is_some_and(|m| m > generation);
    let rebuilt = rewrite(tessera, which, from, generation, lower).await;
    if rebuilt.is_err() && was_suspect {
        tessera.denylist_sync.suspect.store(true, Ordering::Release);
    }
    let entries = rebuilt?;
    match from {
        None if !matches!(scope, Rebuild::All) => {
            tracing::warn!(entries, generation, "rebuilt the denylist from PostgreSQL")
        }
        Some(m) if m < generation => tracing::debug!(
            entries,
            from = m,
            generation,
            "wrote the revocations Redis may have missed"
        ),
        _ => {}
    }
    Ok(entries)
}

/// A PostgreSQL restored from a backup is behind markers seen before; from then on
/// only markers up to its generation are real.
fn clamp_highest_marker(tessera: &Tessera, generation: i64) {
    tessera
        .denylist_sync
        .highest_marker
        .fetch_min(generation, Ordering::AcqRel);
}

/// Whether Redis's marker names PostgreSQL's current generation.
async fn up_to_date(tessera: &Tessera) -> Result<bool, CheckError> {
    let marker = tessera.denylist.marker().await?;
    if marker.is_none() {
        return Ok(false);
    }
    let generation = tessera.db.run(revocations::generation).await?;
    clamp_highest_marker(tessera, generation);
    Ok(marker == Some(generation))
}

/// Writes the revocations `which` selects and, if Redis kept its data meanwhile, sets
/// the marker to `generation` (read before the rows, so they include all of it).
async fn rewrite(
    tessera: &Tessera,
    which: Live,
    from: Option<i64>,
    generation: i64,
    lower: bool,
) -> Result<usize, CheckError> {
    let mut pass = tessera.denylist.begin().await?;
    let rows = tessera
        .db
        .run(move |conn| revocations::live(conn, which))
        .await?;
    let now = Utc::now();
    let entries: Vec<DenyEntry> = rows.iter().filter_map(|r| entry_of(r, now)).collect();
    tessera.denylist.deny_in(&mut pass, &entries).await?;
    let unsynced: Vec<Uuid> = rows
        .iter()
        .filter(|r| r.synced_at.is_none())
        .map(|r| r.id)
        .collect();
    if !unsynced.is_empty() {
        tessera
            .db
            .run(move |conn| revocations::mark_synced(conn, &unsynced))
            .await?;
    }
    let set = tessera
        .denylist
        .complete(pass, from, generation, lower)
        .await?;
    if !set && from.is_none() {
        // Redis lost its data while this pass wrote: what it wrote may be gone too.
        return Err(CheckError::Unavailable(
            "Redis lost data while the denylist was being rebuilt".to_owned(),
        ));
    }
    // An incremental pass whose marker moved meanwhile leaves it to the pass that moved
    // it (or, if the marker is gone, to the next check, which rebuilds everything).
    Ok(entries.len())
}
