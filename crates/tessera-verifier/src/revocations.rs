//! The revocation subscription (opt-in, [`VerifierConfig::revocations`]): a snapshot
//! of every revocation in force, then Tessera's stream of new ones, held in memory and
//! checked on every verification with no network call.
//!
//! A background task keeps the set current: it gets a token (`client_credentials`),
//! takes the snapshot, streams from its cursor, and on any failure reconnects with
//! exponential backoff and full jitter, resuming from the last cursor (a cursor Tessera
//! can no longer resume from means a new snapshot). Entries are dropped when nothing
//! they deny can still be alive, so memory follows the revocations of the last token
//! lifetime, not all of history. Every event and heartbeat counts as hearing from
//! Tessera; past the staleness bound without one, verification fails closed
//! ([`VerifyError::RevocationsStale`]) unless configured to fail open.
//!
//! [`VerifierConfig::revocations`]: crate::VerifierConfig::revocations

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::watch;

use crate::config::RevocationConfig;
use crate::error::describe;
use crate::introspection::form_encode;
use crate::{Claims, ConfigError, VerifyError};

const SCOPE: &str = "tessera:revocations";
/// Backoff between attempts: 250 ms doubling up to this (or a third of the staleness
/// bound, if less: a recovered Tessera is found again well before the set goes
/// stale), with full jitter.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The snapshot can be large: its own time limit.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the subscription stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevocationState {
    /// No snapshot yet: verification fails closed (or open, if configured).
    Starting,
    /// Heard from Tessera within the staleness bound.
    Live,
    /// Not heard from Tessera for longer than the staleness bound.
    Stale,
}

/// What [`Verifier::revocation_health`](crate::Verifier::revocation_health) reports.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RevocationHealth {
    pub state: RevocationState,
    /// How long ago Tessera was last heard from.
    pub last_heard: Option<Duration>,
    /// Entries in the set.
    pub entries: usize,
    /// The cursor the next reconnection resumes from.
    pub cursor: Option<String>,
    /// Tokens accepted while stale (only with `fail_open(true)`).
    pub stale_accepts: u64,
    /// Connections to the stream opened since start.
    pub connections: u64,
}

/// One revocation in force: an entry of the feed's snapshot or stream.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct RevokedEntry {
    /// `jti`, `sid`, `user` or `client`.
    pub kind: String,
    pub value: String,
    /// `user` and `client`: tokens issued before this (unix seconds) are denied.
    pub not_before: Option<i64>,
    /// Unix seconds after which the entry is dropped.
    pub expires_at: i64,
}

/// The revocations in force, as the subscription holds them; public for services that
/// feed it themselves (from the SETs, say) and for benchmarks.
#[derive(Default)]
pub struct RevocationSet {
    tokens: HashMap<String, i64>,
    sessions: HashMap<String, i64>,
    /// Subject (or client) -> (not_before, expires_at).
    users: HashMap<String, (i64, i64)>,
    clients: HashMap<String, (i64, i64)>,
}

impl RevocationSet {
    /// Adds an entry; a later entry for the same subject raises its cut-off and its
    /// expiry, never lowers them (as Tessera's own denylist does).
    pub fn insert(&mut self, entry: RevokedEntry) {
        let expires_at = entry.expires_at;
        let raise = |slot: &mut i64, value: i64| *slot = (*slot).max(value);
        match (entry.kind.as_str(), entry.not_before) {
            ("jti", _) => raise(
                self.tokens.entry(entry.value).or_insert(expires_at),
                expires_at,
            ),
            ("sid", _) => raise(
                self.sessions.entry(entry.value).or_insert(expires_at),
                expires_at,
            ),
            ("user", Some(nb)) | ("client", Some(nb)) => {
                let map = if entry.kind == "user" {
                    &mut self.users
                } else {
                    &mut self.clients
                };
                let cut = map.entry(entry.value).or_insert((nb, expires_at));
                raise(&mut cut.0, nb);
                raise(&mut cut.1, expires_at);
            }
            (kind, _) => tracing::warn!(kind, "ignoring a revocation of an unknown kind"),
        }
    }

    /// Whether an entry denies the token with these claims.
    pub fn denies(&self, claims: &Claims) -> bool {
        let before = |cut: Option<&(i64, i64)>| cut.is_some_and(|(nb, _)| claims.iat < *nb);
        self.tokens.contains_key(&claims.jti)
            || claims
                .sid
                .as_ref()
                .is_some_and(|sid| self.sessions.contains_key(sid))
            || (claims.sid.is_some() && before(self.users.get(&claims.sub)))
            || before(self.clients.get(&claims.client_id))
    }

    /// Drops the entries that expired by `now` (unix seconds).
    pub fn prune(&mut self, now: i64) {
        self.tokens.retain(|_, exp| *exp > now);
        self.sessions.retain(|_, exp| *exp > now);
        self.users.retain(|_, (_, exp)| *exp > now);
        self.clients.retain(|_, (_, exp)| *exp > now);
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.sessions.len() + self.users.len() + self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, sorted.
    pub fn entries(&self) -> Vec<RevokedEntry> {
        let plain = |kind: &str, map: &HashMap<String, i64>| {
            map.iter()
                .map(|(value, exp)| RevokedEntry {
                    kind: kind.to_owned(),
                    value: value.clone(),
                    not_before: None,
                    expires_at: *exp,
                })
                .collect::<Vec<_>>()
        };
        let cut = |kind: &str, map: &HashMap<String, (i64, i64)>| {
            map.iter()
                .map(|(value, (nb, exp))| RevokedEntry {
                    kind: kind.to_owned(),
                    value: value.clone(),
                    not_before: Some(*nb),
                    expires_at: *exp,
                })
                .collect::<Vec<_>>()
        };
        let mut all = plain("jti", &self.tokens);
        all.extend(plain("sid", &self.sessions));
        all.extend(cut("user", &self.users));
        all.extend(cut("client", &self.clients));
        all.sort();
        all
    }
}

/// The state the verifier reads and the background task writes.
struct Shared {
    set: RwLock<RevocationSet>,
    epoch: Instant,
    /// Milliseconds after `epoch` when Tessera was last heard from, plus one (0: never).
    heard: AtomicU64,
    staleness: Duration,
    fail_open: bool,
    stale_accepts: AtomicU64,
    connections: AtomicU64,
    cursor: std::sync::Mutex<Option<String>>,
    ready: watch::Sender<bool>,
}

impl Shared {
    fn heard_now(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64 + 1;
        self.heard.store(ms, Ordering::Release);
    }

    fn last_heard(&self) -> Option<Duration> {
        match self.heard.load(Ordering::Acquire) {
            0 => None,
            ms => Some(
                self.epoch
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms - 1)),
            ),
        }
    }

    fn state(&self) -> RevocationState {
        match self.last_heard() {
            None => RevocationState::Starting,
            Some(ago) if ago > self.staleness => RevocationState::Stale,
            Some(_) => RevocationState::Live,
        }
    }

    fn set_cursor(&self, cursor: Option<String>) {
        if let Some(cursor) = cursor.filter(|c| !c.is_empty()) {
            *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = Some(cursor);
        }
    }

    fn cursor(&self) -> Option<String> {
        self.cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The verifier's handle on the subscription; dropping it stops the task.
pub(crate) struct Revocations {
    shared: Arc<Shared>,
}

impl Revocations {
    /// `leeway` is the verifier's: an entry is kept until no token it denies can still
    /// be accepted, expiry plus leeway.
    pub(crate) fn start(
        base: Url,
        settings: &RevocationConfig,
        client: reqwest::Client,
        timeout: Duration,
        leeway: Duration,
    ) -> Result<Self, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let url = |path: &str| {
            base.join(path).map_err(|e| ConfigError::InvalidUrl {
                what: "the revocation feed URL",
                reason: e.to_string(),
            })
        };
        let credentials = format!(
            "{}:{}",
            form_encode(&settings.client_id),
            form_encode(settings.client_secret.expose_secret())
        );
        let mut authorization = HeaderValue::try_from(format!(
            "Basic {}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, credentials)
        ))
        .map_err(|e| ConfigError::HttpClient(e.to_string()))?;
        authorization.set_sensitive(true);
        let shared = Arc::new(Shared {
            set: RwLock::new(RevocationSet::default()),
            epoch: Instant::now(),
            heard: AtomicU64::new(0),
            staleness: settings.staleness,
            fail_open: settings.fail_open,
            stale_accepts: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            cursor: std::sync::Mutex::new(None),
            ready: watch::channel(false).0,
        });
        let task = Task {
            shared: Arc::downgrade(&shared),
            client,
            timeout,
            token_url: url("oauth/token")?,
            snapshot_url: url("v1/revocations")?,
            stream_url: url("v1/revocations/stream")?,
            client_auth: authorization,
            // The stream must outlast any silence shorter than the staleness bound.
            idle: settings.staleness.max(Duration::from_secs(1)),
            max_backoff: (settings.staleness / 3).clamp(Duration::from_millis(250), MAX_BACKOFF),
            leeway,
        };
        runtime.spawn(task.run());
        Ok(Self { shared })
    }

    /// Fails unless the set says the token is alive and the set can be trusted.
    pub(crate) fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        let shared = &self.shared;
        if shared.state() != RevocationState::Live {
            if !shared.fail_open {
                return Err(VerifyError::RevocationsStale);
            }
            shared.stale_accepts.fetch_add(1, Ordering::Relaxed);
        }
        let set = shared.set.read().unwrap_or_else(|e| e.into_inner());
        if set.denies(claims) {
            return Err(VerifyError::Revoked);
        }
        Ok(())
    }

    pub(crate) fn health(&self) -> RevocationHealth {
        let shared = &self.shared;
        RevocationHealth {
            state: shared.state(),
            last_heard: shared.last_heard(),
            entries: shared.set.read().unwrap_or_else(|e| e.into_inner()).len(),
            cursor: shared.cursor(),
            stale_accepts: shared.stale_accepts.load(Ordering::Relaxed),
            connections: shared.connections.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn entries(&self) -> Vec<RevokedEntry> {
        self.shared
            .set
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .entries()
    }

    /// Waits until the first snapshot is in, for at most `within`.
    pub(crate) async fn ready(&self, within: Duration) -> bool {
        let mut ready = self.shared.ready.subscribe();
        tokio::time::timeout(within, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

struct Task {
    shared: Weak<Shared>,
    client: reqwest::Client,
    timeout: Duration,
    token_url: Url,
    snapshot_url: Url,
    stream_url: Url,
    client_auth: HeaderValue,
    idle: Duration,
    max_backoff: Duration,
    leeway: Duration,
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Interrupted {
    #[error("{0}")]
    Failed(String),
    /// Tessera cannot resume from our cursor: take a snapshot.
    #[error("the cursor cannot be resumed from")]
    CursorGone,
    /// The token was refused or expired: get another.
    #[error("the access token was refused")]
    TokenRefused,
    /// The verifier was dropped.
    #[error("stopped")]
    Stopped,
}

/// How a stream Tessera closed ended.
enum Ended {
    Reconnect { heard: bool },
    RenewToken,
}

struct Token {
    value: HeaderValue,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct SnapshotAnswer {
    cursor: String,
    entries: Vec<RevokedEntry>,
}

impl Task {
    async fn run(self) {
        let mut token: Option<Token> = None;
        let mut need_snapshot = true;
        let mut failures: u32 = 0;
        loop {
            let result = self.connect(&mut token, &mut need_snapshot).await;
            match result {
                Err(Interrupted::Stopped) => return,
                // The stream ended cleanly after it served (the instance stopped):
                // reconnect at once, to another instance if there are several.
                Ok(Ended::Reconnect { heard: true }) => failures = 0,
                // Our token expired or was revoked: reconnect with a new one.
                Ok(Ended::RenewToken) => {
                    token = None;
                    failures = 0;
                }
                // Opened and closed with nothing said: not a success (a proxy, say).
                Ok(Ended::Reconnect { heard: false }) => failures += 1,
                Err(Interrupted::TokenRefused) => {
                    token = None;
                    failures += 1;
                }
                Err(Interrupted::CursorGone) => {
                    tracing::info!("Tessera cannot resume the revocation stream from our cursor; taking a snapshot");
                    need_snapshot = true;
                    failures += 1;
                }
                Err(e @ Interrupted::Failed(_)) => {
                    tracing::warn!(error = %e, "the revocation subscription was interrupted; reconnecting");
                    failures += 1;
                }
            }
            if failures > 0 {
                tokio::time::sleep(backoff(failures, self.max_backoff)).await;
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn shared(&self) -> Result<Arc<Shared>, Interrupted> {
        self.shared.upgrade().ok_or(Interrupted::Stopped)
    }

    async fn connect(
        &self,
        token: &mut Option<Token>,
        need_snapshot: &mut bool,
    ) -> Result<Ended, Interrupted> {
        // Nothing to do for a verifier that was dropped.
        self.shared()?;
        if token.as_ref().is_none_or(|t| Instant::now() >= t.renew_at) {
            *token = Some(self.fetch_token().await?);
        }
        let bearer = token.as_ref().map(|t| t.value.clone()).expect("fetched");
        if *need_snapshot {
            self.snapshot(&bearer).await?;
            *need_snapshot = false;
        }
        let cursor = self.shared()?.cursor();
        let mut request = self
            .client
            .get(self.stream_url.clone())
            .header(AUTHORIZATION, bearer)
            .header(ACCEPT, "text/event-stream")
            // The client's overall timeout would cut the stream; silence is watched below.
            .timeout(Duration::from_secs(365 * 24 * 3600));
        if let Some(cursor) = &cursor {
            request = request.header("Last-Event-ID", cursor.as_str());
        }
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| Interrupted::Failed("the stream did not open in time".to_owned()))?
            .map_err(|e| Interrupted::Failed(describe(&e)))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::GONE => return Err(Interrupted::CursorGone),
            StatusCode::UNAUTHORIZED => return Err(Interrupted::TokenRefused),
            status => {
                return Err(Interrupted::Failed(format!(
                    "the stream answered HTTP {status}"
                )))
            }
        }
        self.shared()?.connections.fetch_add(1, Ordering::Relaxed);
        let mut events = response.bytes_stream().eventsource();
        let mut heard = false;
        loop {
            let next = tokio::time::timeout(self.idle, events.next())
                .await
                .map_err(|_| Interrupted::Failed(format!("nothing heard for {:?}", self.idle)))?;
            let event = match next {
                None => return Ok(Ended::Reconnect { heard }),
                Some(Err(e)) => return Err(Interrupted::Failed(e.to_string())),
                Some(Ok(event)) => event,
            };
            let shared = self.shared()?;
            match event.event.as_str() {
                "revocation" => {
                    let entry: RevokedEntry = serde_json::from_str(&event.data)
                        .map_err(|e| Interrupted::Failed(format!("a malformed event: {e}")))?;
                    shared
                        .set
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(entry);
                    shared.set_cursor(Some(event.id));
                    shared.heard_now();
                    heard = true;
                }
                "heartbeat" => {
                    shared.set_cursor(Some(event.id));
                    shared.heard_now();
                    heard = true;
                    let until = tessera_token::unix_now() - self.leeway.as_secs() as i64;
                    shared
                        .set
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .prune(until);
                }
                // The last event before Tessera closes the stream, saying why.
                "end" if event.data.contains("token_") => return Ok(Ended::RenewToken),
                "end" => return Ok(Ended::Reconnect { heard }),
                _ => {}
            }
        }
    }

    async fn fetch_token(&self) -> Result<Token, Interrupted> {
        let failed = |e: reqwest::Error| Interrupted::Failed(describe(&e));
        let response = self
            .client
            .post(self.token_url.clone())
            .timeout(self.timeout)
            .header(AUTHORIZATION, self.client_auth.clone())
            .header(ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials"), ("scope", SCOPE)])
            .send()
            .await
            .map_err(failed)?;
        if response.status() != StatusCode::OK {
            return Err(Interrupted::Failed(format!(
                "the token endpoint answered HTTP {} (check the client id, secret and its {SCOPE} scope)",
                response.status()
            )));
        }
        let answer: TokenAnswer = response.json().await.map_err(failed)?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(60).min(86_400));
        let mut value = HeaderValue::try_from(format!("Bearer {}", answer.access_token))
            .map_err(|e| Interrupted::Failed(e.to_string()))?;
        value.set_sensitive(true);
        Ok(Token {
            value,
            // Renew before it expires: the stream ends at its expiry anyway.
            renew_at: Instant::now() + lifetime.mul_f64(0.8),
        })
    }

    async fn snapshot(&self, bearer: &HeaderValue) -> Result<(), Interrupted> {
        let failed = |e: reqwest::Error| Interrupted::Failed(describe(&e));
        let response = self
            .client
            .get(self.snapshot_url.clone())
            .timeout(SNAPSHOT_TIMEOUT.max(self.timeout))
            .header(AUTHORIZATION, bearer.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(failed)?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(Interrupted::TokenRefused),
            status => {
                return Err(Interrupted::Failed(format!(
                    "the snapshot answered HTTP {status}"
                )))
            }
        }
        let answer: SnapshotAnswer = response.json().await.map_err(failed)?;
        let mut set = RevocationSet::default();
        for entry in answer.entries {
            set.insert(entry);
        }
        let shared = self.shared()?;
        *shared.set.write().unwrap_or_else(|e| e.into_inner()) = set;
        *shared.cursor.lock().unwrap_or_else(|e| e.into_inner()) = Some(answer.cursor);
        shared.heard_now();
        shared.ready.send_replace(true);
        Ok(())
    }
}

/// Full jitter over an exponential ceiling: 250 ms, 500 ms, ... up to `max`.
fn backoff(failures: u32, max: Duration) -> Duration {
    let ceiling = Duration::from_millis(250)
        .saturating_mul(1 << failures.saturating_sub(1).min(7))
        .min(max)
        .max(Duration::from_millis(50));
    Duration::from_millis(fastrand::u64(50..=ceiling.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str, sid: Option<&str>, sub: &str, client: &str, iat: i64) -> Claims {
        Claims {
            iss: "i".to_owned(),
            sub: sub.to_owned(),
            aud: crate::Audience::from_list(vec!["a".to_owned()]),
            exp: iat + 300,
            iat,
            nbf: None,
            jti: jti.to_owned(),
            client_id: client.to_owned(),
            scope: String::new(),
            sid: sid.map(str::to_owned),
            roles: None,
            preferred_username: None,
        }
    }

    fn entry(kind: &str, value: &str, not_before: Option<i64>, expires_at: i64) -> RevokedEntry {
        RevokedEntry {
            kind: kind.to_owned(),
            value: value.to_owned(),
            not_before,
            expires_at,
        }
    }

    #[test]
    fn each_kind_denies_what_tessera_denies() {
        let mut set = RevocationSet::default();
        set.insert(entry("jti", "t1", None, 2_000));
        set.insert(entry("sid", "s1", None, 2_000));
        set.insert(entry("user", "u1", Some(1_000), 2_000));
        set.insert(entry("client", "c1", Some(1_000), 2_000));

        assert!(set.denies(&claims("t1", None, "x", "x", 1_500)));
        assert!(set.denies(&claims("t", Some("s1"), "x", "x", 1_500)));
        assert!(set.denies(&claims("t", Some("s"), "u1", "x", 999)));
        assert!(
            !set.denies(&claims("t", Some("s"), "u1", "x", 1_000)),
            "issued after the cut"
        );
        assert!(
            !set.denies(&claims("t", None, "u1", "x", 999)),
            "a client token named like the user"
        );
        assert!(set.denies(&claims("t", None, "x", "c1", 999)));
        assert!(!set.denies(&claims("t", None, "x", "c1", 1_000)));
        assert!(!set.denies(&claims("t", Some("s"), "x", "x", 1)));
    }

    #[test]
    fn a_later_entry_raises_the_cut_and_expiry_but_never_lowers_them() {
        let mut set = RevocationSet::default();
        set.insert(entry("user", "u", Some(1_000), 3_000));
        set.insert(entry("user", "u", Some(500), 2_000));
        assert_eq!(set.entries(), [entry("user", "u", Some(1_000), 3_000)]);
        set.insert(entry("user", "u", Some(1_200), 2_500));
        assert_eq!(set.entries(), [entry("user", "u", Some(1_200), 3_000)]);
    }

    #[test]
    fn expired_entries_are_dropped() {
        let mut set = RevocationSet::default();
        set.insert(entry("jti", "old", None, 100));
        set.insert(entry("sid", "new", None, 300));
        set.prune(200);
        assert_eq!(set.entries(), [entry("sid", "new", None, 300)]);
    }

    #[test]
    fn backoff_grows_to_its_ceiling_with_jitter() {
        for failures in 1..20 {
            let d = backoff(failures, MAX_BACKOFF);
            assert!(d >= Duration::from_millis(50) && d <= MAX_BACKOFF, "{d:?}");
            assert!(backoff(failures, Duration::from_secs(1)) <= Duration::from_secs(1));
        }
        assert!(backoff(1, MAX_BACKOFF) <= Duration::from_millis(250));
    }
}
