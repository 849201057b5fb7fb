//! The revocation feed: every denylist entry, in the order its revocation committed,
//! for services that verify tokens offline (`GET /v1/revocations` and
//! `GET /v1/revocations/stream`).
//!
//! PostgreSQL is the source, never Redis: the stream goes on through a Redis outage or
//! flush and loses nothing when an instance restarts. Every instance runs one reader
//! ([`run`]) that keeps the latest [`RING_CAPACITY`] events in memory and wakes its
//! subscribers; the reader learns of new rows from `LISTEN` (a trigger notifies at
//! commit, so it is woken within milliseconds) and also asks every second, which
//! covers notifications missed while its connection was down. Revocations commit in
//! the order of their generation (see `store::revocations::next_generation`), so
//! reading "after the last position" in that order never skips a row that commits
//! late, and every instance sees the same sequence.
//!
//! A subscriber resumes from the position (cursor) of the last event it saw: from
//! memory when the ring still holds it, else from PostgreSQL. A cursor this database
//! does not hold (another deployment, a restored backup) cannot be resumed from: the
//! subscriber must take a snapshot.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::Header;
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use super::sync::not_before_secs;
use crate::auth::keys::{KeyError, KeySet};
use crate::auth::tokens::LEEWAY;
use crate::auth::tokens::{self, AccessClaims, InvalidToken};
use crate::auth::{chrono_duration, Tessera};
use crate::domain::{RevocationKind, MAX_ACCESS_TOKEN_TTL};
use crate::store::revocation_listener::Listener;
use crate::store::revocations::{self, Position, RevocationRow};
use crate::store::StoreError;

/// The scope a client needs to read the feed. An administrator grants it (the client's
/// `scopes`); only a client's own token (`client_credentials`) is accepted with it.
pub const SUBSCRIBE_SCOPE: &str = "tessera:revocations";

/// The events each instance keeps in memory for subscribers that fall behind a little
/// (at 200 revocations a second, four minutes). Older positions are read from
/// PostgreSQL.
pub(crate) const RING_CAPACITY: usize = 50_000;

/// How often the reader asks PostgreSQL even without a notification.
const CATCH_UP: Duration = Duration::from_secs(1);
/// ... and when it cannot listen (a database URL only libpq understands).
const POLL_WITHOUT_LISTEN: Duration = Duration::from_millis(250);
const PAGE: i64 = 5_000;
/// How recently the reader must have read PostgreSQL for the stream to vouch that it is
/// complete: heartbeats stop past this, so subscribers see the feed go stale.
const FRESH: Duration = Duration::from_secs(3);

/// The SET event types (RFC 8417 `events`). A session's revocation is the OpenID
/// Shared Signals CAEP `session-revoked`; the others have no CAEP equivalent.
pub const EVENT_SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const EVENT_TOKEN_REVOKED: &str = "urn:tessera:secevent:token-revoked";
pub const EVENT_SUBJECT_TOKENS_REVOKED: &str = "urn:tessera:secevent:subject-tokens-revoked";
pub const EVENT_CLIENT_TOKENS_REVOKED: &str = "urn:tessera:secevent:client-tokens-revoked";
/// The JOSE `typ` of a SET (RFC 8417 §2.3), never accepted as an access token.
pub const SET_TYP: &str = "secevent+jwt";

/// A position in the feed as subscribers see it: `0` before everything, otherwise
/// `{generation}-{revocation id}`. Opaque to subscribers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor(pub Position);

impl Cursor {
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        if raw == "0" {
            return Some(Self(Position::START));
        }
        let (generation, id) = raw.split_once('-')?;
        let generation = generation.parse::<i64>().ok().filter(|g| *g >= 0)?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let id = Uuid::try_parse(id).ok()?;
        Some(Self(Position { generation, id }))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == Position::START {
            return f.write_str("0");
        }
        write!(f, "{}-{}", self.0.generation, self.0.id.simple())
    }
}

/// One denylist entry.
#[derive(Debug)]
pub(crate) struct Event {
    pub cursor: Cursor,
    pub id: Uuid,
    pub kind: RevocationKind,
    pub value: String,
    /// For `user` and `client`: tokens issued before this (unix seconds) are denied.
    pub not_before: Option<i64>,
    /// When nothing it denies can still be alive (unix seconds).
    pub expires_at: i64,
    pub revoked_at: i64,
}

impl Event {
    fn of(row: &RevocationRow) -> Self {
        Self {
            cursor: Cursor(Position::of(row)),
            id: row.id,
            kind: row.kind,
            value: row.value.clone(),
            not_before: row.not_before.map(not_before_secs),
            expires_at: row.expires_at.timestamp(),
            revoked_at: row.created_at.timestamp(),
        }
    }

    fn is_live(&self, now: i64) -> bool {
        self.expires_at > now
    }

    /// Whether this entry denies `token` (the same rule as the Redis check).
    pub(crate) fn denies(&self, token: &AccessClaims) -> bool {
        let before = |nb: Option<i64>| nb.is_some_and(|nb| token.iat < nb);
        match self.kind {
            RevocationKind::Token => token.jti == self.value,
            RevocationKind::Session => token.sid.as_deref() == Some(self.value.as_str()),
            RevocationKind::User => {
                token.sid.is_some() && token.sub == self.value && before(self.not_before)
            }
            RevocationKind::Client => token.client_id == self.value && before(self.not_before),
        }
    }

    /// The event as an RFC 8417 Security Event Token signed with the current signing
    /// key. Signed once per instance and key, whoever asks first (the ring, a replay
    /// or a snapshot); a key rotation signs it again with the new key, so a SET never
    /// names a key the JWKS has dropped.
    pub(crate) fn security_event_token(&self, tessera: &Tessera) -> Result<Arc<str>, KeyError> {
        let keys = tessera.keys.snapshot();
        let kid = &keys.signing()?.kid;
        let cache = &tessera.feed.signed;
        if let Some((signed_by, set)) = cache.get(&self.id) {
            if signed_by.as_str() == kid.as_str() {
                return Ok(set);
            }
        }
        let set: Arc<str> = sign_set(tessera, &keys, self)?.into();
        cache.insert(self.id, (Arc::new(kid.clone()), set.clone()));
        Ok(set)
    }
}

#[derive(Serialize)]
struct SetClaims<'a> {
    iss: &'a str,
    iat: i64,
    jti: String,
    /// RFC 8417 §2.2 `txn`: the feed cursor, the same for this event on every instance.
    txn: String,
    /// RFC 9493 subject identifier of what is revoked.
    sub_id: SubjectId<'a>,
    events: std::collections::BTreeMap<&'static str, EventBody<'a>>,
}

#[derive(Serialize)]
struct SubjectId<'a> {
    format: &'static str,
    id: &'a str,
}

#[derive(Serialize)]
struct EventBody<'a> {
    event_timestamp: i64,
    kind: &'static str,
    value: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<i64>,
    expires_at: i64,
}

fn event_type(kind: RevocationKind) -> &'static str {
    match kind {
        RevocationKind::Session => EVENT_SESSION_REVOKED,
        RevocationKind::Token => EVENT_TOKEN_REVOKED,
        RevocationKind::User => EVENT_SUBJECT_TOKENS_REVOKED,
        RevocationKind::Client => EVENT_CLIENT_TOKENS_REVOKED,
    }
}

fn sign_set(tessera: &Tessera, keys: &KeySet, event: &Event) -> Result<String, KeyError> {
    crate::auth::keys::signer::install();
    let key = keys.signing()?;
    let body = EventBody {
        event_timestamp: event.revoked_at,
        kind: event.kind.as_str(),
        value: &event.value,
        not_before: event.not_before,
        expires_at: event.expires_at,
    };
    let claims = SetClaims {
        iss: &tessera.settings.issuer,
        iat: event.revoked_at,
        jti: event.id.to_string(),
        txn: event.cursor.to_string(),
        sub_id: SubjectId {
            format: "opaque",
            id: &event.value,
        },
        events: [(event_type(event.kind), body)].into_iter().collect(),
    };
    let mut header = Header::new(key.algorithm.jwt_algorithm());
    header.typ = Some(SET_TYP.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, key.encoding_key()).map_err(|e| KeyError::Unusable {
        kid: key.kid.clone(),
        reason: e.to_string(),
    })
}

/// Why a subscription cannot start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FeedError {
    #[error("this endpoint needs a client's own token (client_credentials, no audiences) with the `{SUBSCRIBE_SCOPE}` scope")]
    NotASubscriber,
    /// The cursor names no revocation of this database: take a snapshot.
    #[error("the cursor cannot be resumed from (it is not of this deployment, or too old): take a snapshot with GET /v1/revocations and stream from its cursor")]
    CursorGone,
    #[error("the revocation feed is not up to date yet: {0}")]
    Unavailable(String),
}

impl From<StoreError> for FeedError {
    fn from(e: StoreError) -> Self {
        FeedError::Unavailable(e.to_string())
    }
}

/// Only a client's own token with the feed's scope, meant for Tessera alone, may read
/// it (a token that also names another audience could be replayed by that API).
pub(crate) fn authorize(tessera: &Tessera, caller: &AccessClaims) -> Result<(), FeedError> {
    let for_tessera_alone = caller.aud.as_slice() == [tessera.settings.own_audience()];
    let own_token = for_tessera_alone && caller.sid.is_none() && caller.sub == caller.client_id;
    let scoped = caller.scope.split(' ').any(|s| s == SUBSCRIBE_SCOPE);
    if own_token && scoped {
        Ok(())
    } else {
        Err(FeedError::NotASubscriber)
    }
}

/// Why a presented token may not read the feed.
#[derive(Debug)]
pub(crate) enum SubscriberRefused {
    /// Not a valid token of ours (or revoked): 401.
    Invalid(InvalidToken),
    Feed(FeedError),
}

/// The check of a subscriber's token: signature, issuer, Tessera's own audience, the
/// feed's scope, then the revocation record in PostgreSQL rather than the Redis
/// denylist, so that subscribers keep their feed through a Redis outage.
#[tracing::instrument(name = "revocation.feed.check_subscriber", level = "debug", skip_all)]
pub(crate) async fn check_subscriber(
    tessera: &Tessera,
    token: &str,
) -> Result<AccessClaims, SubscriberRefused> {
    let keys = tessera.keys.snapshot();
    let claims = tokens::verify(
        &keys,
        token,
        &tessera.settings.issuer,
        Some(tessera.settings.own_audience()),
    )
    .map_err(SubscriberRefused::Invalid)?;
    authorize(tessera, &claims).map_err(SubscriberRefused::Feed)?;
    let (jti, client_id) = (claims.jti.clone(), claims.client_id.clone());
    let issued_at = chrono::DateTime::from_timestamp(claims.iat, 0).unwrap_or_default();
    let revoked = tessera
        .db
        .run(move |conn| revocations::denies_client_token(conn, &jti, &client_id, issued_at))
        .await
        .map_err(|e| SubscriberRefused::Feed(e.into()))?;
    if revoked {
        return Err(SubscriberRefused::Invalid(InvalidToken::Revoked));
    }
    Ok(claims)
}

/// What [`snapshot`] answers.
pub(crate) struct Snapshot {
    pub entries: Vec<Event>,
    pub cursor: Cursor,
}

/// Every entry in force, and the cursor to stream from.
#[tracing::instrument(
    name = "revocation.feed.snapshot",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn snapshot(tessera: &Tessera) -> Result<Snapshot, FeedError> {
    let (rows, last) = tessera.db.run(revocations::snapshot).await?;
    let now = Utc::now().timestamp();
    Ok(Snapshot {
        entries: rows
            .iter()
            .map(Event::of)
            .filter(|e| e.is_live(now))
            .collect(),
        cursor: Cursor(last),
    })
}

/// Per-instance state of the feed.
pub(crate) struct Feed {
    ring: RwLock<Ring>,
    /// Moves on every batch of new events.
    changed: watch::Sender<u64>,
    /// When the reader last read PostgreSQL successfully (unix ms; 0: never).
    read_at: AtomicI64,
    closing: watch::Sender<bool>,
    /// SETs signed so far, by revocation id, with the key id that signed them.
    signed: moka::sync::Cache<Uuid, (Arc<String>, Arc<str>)>,
    reading: tokio::sync::Mutex<()>,
}

/// How many signed SETs each instance keeps (a few tens of MB at most).
const SIGNED_CAPACITY: u64 = 200_000;

#[derive(Default)]
struct Ring {
    /// False until the reader first found where PostgreSQL stands.
    ready: bool,
    /// The position just before the first event held.
    base: Position,
    events: VecDeque<Arc<Event>>,
}

impl Ring {
    fn last(&self) -> Position {
        self.events.back().map_or(self.base, |e| e.cursor.0)
    }
}

enum Read {
    Events(Vec<Arc<Event>>),
    /// Before what the ring holds: read PostgreSQL.
    Older,
    /// Nothing after this position yet.
    Nothing,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            ring: RwLock::new(Ring::default()),
            changed: watch::channel(0).0,
            read_at: AtomicI64::new(0),
            closing: watch::channel(false).0,
            signed: moka::sync::Cache::builder()
                .max_capacity(SIGNED_CAPACITY)
                // Nothing the feed publishes matters for longer than a day.
                .time_to_live(Duration::from_secs(26 * 3600))
                .build(),
            reading: tokio::sync::Mutex::new(()),
        }
    }
}

impl Feed {
    fn read(&self, after: Position, max: usize) -> Read {
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        if !ring.ready {
            return Read::Nothing;
        }
        if after < ring.base {
            return Read::Older;
        }
        let from = ring.events.partition_point(|e| e.cursor.0 <= after);
        let events: Vec<_> = ring.events.range(from..).take(max).cloned().collect();
        if events.is_empty() {
            Read::Nothing
        } else {
            Read::Events(events)
        }
    }

    fn is_fresh(&self) -> bool {
        let read_at = self.read_at.load(Ordering::Acquire);
        read_at > 0 && Utc::now().timestamp_millis() - read_at <= FRESH.as_millis() as i64
    }

    fn mark_read(&self) {
        self.read_at
            .store(Utc::now().timestamp_millis(), Ordering::Release);
    }

    /// The position of the newest event this instance has read.
    fn last(&self) -> Option<Position> {
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        ring.ready.then(|| ring.last())
    }

    /// Ends every stream (the server is stopping: they would hold it up).
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Appends rows read after the ring's last position.
    fn append(&self, rows: &[RevocationRow]) {
        let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
        let last = ring.last();
        for row in rows {
            let event = Event::of(row);
            if event.cursor.0 > last {
                ring.events.push_back(Arc::new(event));
            }
        }
        while ring.events.len() > RING_CAPACITY {
            if let Some(evicted) = ring.events.pop_front() {
                ring.base = evicted.cursor.0;
            }
        }
        drop(ring);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Reads what committed since the ring's last position. One at a time (the reader
/// and a subscriber arriving before the reader's first read may both call it).
async fn catch_up(tessera: &Tessera) -> Result<(), StoreError> {
    let feed = &tessera.feed;
    let _one_at_a_time = feed.reading.lock().await;
    if feed.last().is_none() {
        let last = tessera.db.run(revocations::last_position).await?;
        let mut ring = feed.ring.write().unwrap_or_else(|e| e.into_inner());
        if !ring.ready {
            ring.base = last;
            ring.ready = true;
        }
    }
    loop {
        let after = feed.last().unwrap_or(Position::START);
        let rows = tessera
            .db
            .run(move |conn| revocations::after(conn, after, false, PAGE))
            .await?;
        let full = rows.len() as i64 == PAGE;
        if !rows.is_empty() {
            feed.append(&rows);
        }
        if !full {
            return Ok(());
        }
    }
}

/// The instance's reader: listens, reads, wakes the subscribers; runs until the
/// server stops.
pub(crate) async fn run(tessera: Tessera) {
    let feed = &tessera.feed;
    let mut closing = feed.closing.subscribe();
    let mut warned = false;
    loop {
        let mut listener = match Listener::connect(&tessera.settings.database.url).await {
            Ok(listener) => {
                if warned {
                    tracing::info!("the revocation feed listens to PostgreSQL again");
                    warned = false;
                }
                listener
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "the revocation feed cannot listen to PostgreSQL; reading it every {POLL_WITHOUT_LISTEN:?} until it can");
                    warned = true;
                }
                None
            }
        };
        let listening = listener.is_some();
        let wait = if listening {
            CATCH_UP
        } else {
            POLL_WITHOUT_LISTEN
        };
        // Without a listener, try to connect again every few seconds.
        let mut polls_left: u32 = if warned { 20 } else { u32::MAX };
        loop {
            match catch_up(&tessera).await {
                Ok(()) => feed.mark_read(),
                Err(e) => {
                    tracing::debug!(error = %e, "the revocation feed could not read PostgreSQL; will retry")
                }
            }
            let notified = async {
                match listener.as_mut() {
                    Some(l) => l.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                alive = notified => if !alive { break },
                _ = tokio::time::sleep(wait) => {}
                _ = closing.changed() => return,
            }
            polls_left = polls_left.saturating_sub(1);
            if polls_left == 0 {
                break;
            }
        }
        if listening {
            tracing::debug!("the revocation feed's listener went away; reconnecting");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// What a subscriber is sent next.
pub(crate) enum Item {
    Event(Arc<Event>),
    /// Nothing new, and the instance is up to date: the cursor of the last event
    /// considered (sent as the SSE id, so a reconnect resumes from here).
    Heartbeat(Cursor),
    /// The last item: why the stream ends.
    End(EndReason),
}

/// Why a stream ends (the subscriber reconnects in every case; with a new token for
/// the first two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndReason {
    TokenExpired,
    TokenRevoked,
    ShuttingDown,
}

impl EndReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EndReason::TokenExpired => "token_expired",
            EndReason::TokenRevoked => "token_revoked",
            EndReason::ShuttingDown => "shutting_down",
        }
    }
}

/// One subscriber's stream.
pub(crate) struct Subscription {
    tessera: Tessera,
    position: Position,
    pending: VecDeque<Arc<Event>>,
    changed: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
    heartbeat: tokio::time::Interval,
    /// The subscriber's token: the stream ends when it expires or the feed revokes it.
    caller: AccessClaims,
    ends_at: tokio::time::Instant,
    /// Set once the stream must end: sent as the last item.
    ending: Option<EndReason>,
    done: bool,
}

/// Opens a stream after `cursor` (`None`: from the newest event this instance has
/// read, which is not complete without a snapshot).
#[tracing::instrument(
    name = "revocation.feed.subscribe",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn subscribe(
    tessera: &Tessera,
    caller: AccessClaims,
    cursor: Option<Cursor>,
) -> Result<Subscription, FeedError> {
    let feed = &tessera.feed;
    if !feed.is_fresh() {
        // Just started, or PostgreSQL was away: read it now rather than refuse.
        catch_up(tessera).await?;
        feed.mark_read();
    }
    let position = match cursor {
        Some(Cursor(position)) => {
            let recorded = tessera
                .db
                .run(move |conn| revocations::recorded_at(conn, position))
                .await?;
            // Older than anything still in force: a snapshot says the same for less.
            let horizon = Utc::now() - chrono_duration(MAX_ACCESS_TOKEN_TTL + LEEWAY);
            match recorded {
                Some(Some(at)) if at < horizon => return Err(FeedError::CursorGone),
                Some(_) => {}
                None => return Err(FeedError::CursorGone),
            }
            position
        }
        None => feed.last().unwrap_or(Position::START),
    };
    let left = u64::try_from(caller.exp - Utc::now().timestamp()).unwrap_or(0);
    let mut heartbeat = tokio::time::interval(tessera.settings.revocation_feed.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Ok(Subscription {
        tessera: tessera.clone(),
        position,
        pending: VecDeque::new(),
        changed: feed.changed.subscribe(),
        closing: feed.closing.subscribe(),
        heartbeat,
        caller,
        ends_at: tokio::time::Instant::now() + Duration::from_secs(left),
        ending: None,
        done: false,
    })
}

impl Subscription {
    /// The next item; `None` after the stream's last item ([`Item::End`]), or when
    /// PostgreSQL could not be read for a replay.
    pub(crate) async fn next(&mut self) -> Option<Item> {
        loop {
            if self.done {
                return None;
            }
            if *self.closing.borrow() {
                self.ending = Some(EndReason::ShuttingDown);
            }
            if self.pending.is_empty() {
                if let Some(reason) = self.ending {
                    self.done = true;
                    return Some(Item::End(reason));
                }
            }
            let now = Utc::now().timestamp();
            while let Some(event) = self.pending.pop_front() {
                self.position = event.cursor.0;
                if !event.is_live(now) {
                    continue;
                }
                if event.denies(&self.caller) {
                    // Delivered, then the stream ends: the token reading it is dead.
                    self.pending.clear();
                    self.ending = Some(EndReason::TokenRevoked);
                }
                return Some(Item::Event(event));
            }
            self.changed.borrow_and_update();
            match self.tessera.feed.read(self.position, 1_000) {
                Read::Events(events) => {
                    self.pending.extend(events);
                    continue;
                }
                Read::Older => {
                    let after = self.position;
                    let rows = self
                        .tessera
                        .db
                        .run(move |conn| revocations::after(conn, after, false, 1_000))
                        .await;
                    match rows {
                        Ok(rows) if !rows.is_empty() => {
                            self.pending
                                .extend(rows.iter().map(|r| Arc::new(Event::of(r))));
                            continue;
                        }
                        // Nothing after it here (yet): wait like a subscriber at the end.
                        Ok(_) => {}
                        Err(e) => {
                            tracing::debug!(error = %e, "a revocation stream could not replay from PostgreSQL; ending it");
                            return None;
                        }
                    }
                }
                Read::Nothing => {}
            }
            tokio::select! {
                _ = self.changed.changed() => {}
                _ = self.heartbeat.tick() => {
                    if self.tessera.feed.is_fresh() {
                        return Some(Item::Heartbeat(Cursor(self.position)));
                    }
                }
                _ = tokio::time::sleep_until(self.ends_at) => self.ending = Some(EndReason::TokenExpired),
                _ = self.closing.changed() => self.ending = Some(EndReason::ShuttingDown),
            }
        }
    }
}
