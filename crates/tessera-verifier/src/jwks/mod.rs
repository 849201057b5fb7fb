//! The JWKS cache: one document, fetched on demand, revalidated with its ETag, shared
//! by every clone of a [`Verifier`](crate::Verifier).
//!
//! The rules, in order of importance:
//! 1. At most one request to Tessera per `min_refresh_interval`, whatever asks for it
//!    (an unknown `kid`, an expired cache, `no-cache`). A flood of tokens with made-up
//!    `kid`s costs Tessera one request per interval.
//! 2. One fetch at a time; everyone who needs its result waits for that one. The fetch
//!    runs in its own task, so a caller that gives up (a client hanging up) does not
//!    cancel it for the others.
//! 3. A set that has gone stale but holds the `kid` is used at once while a refresh runs
//!    in the background (stale-while-revalidate); it stays usable for `max_stale` past
//!    its freshness when refreshes fail (stale-if-error).
//! 4. With nothing usable cached, the answer is "unavailable", never "invalid token".

mod cache_control;
mod key_set;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use reqwest::header::{ACCEPT, IF_NONE_MATCH};
use reqwest::{StatusCode, Url};
use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) use key_set::KeySet;

use crate::config::Checked;
use crate::error::describe;
use crate::{Algorithm, JwksError};

/// A JWK Set with a few keys is a few kilobytes; anything this large is not one.
const MAX_JWKS_BYTES: usize = 256 * 1024;

pub(crate) struct JwksCache {
    url: Url,
    client: reqwest::Client,
    algorithms: Vec<Algorithm>,
    default_lifetime: Duration,
    min_refresh_interval: Duration,
    max_stale: Duration,
    fetch_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: Option<Arc<KeySet>>,
    etag: Option<String>,
    /// When `keys` stop being fresh; set whenever `keys` is.
    fresh_until: Option<Instant>,
    /// When the last fetch started: the rate limit of rule 1.
    last_attempt: Option<Instant>,
    /// Why the last fetch failed, if it did (cleared by a success).
    last_error: Option<JwksError>,
    /// Flips to `true` when the running fetch has stored its outcome.
    in_flight: Option<watch::Receiver<bool>>,
}

enum Fetched {
    Modified {
        keys: KeySet,
        freshness: cache_control::Freshness,
    },
    NotModified {
        freshness: cache_control::Freshness,
    },
}

impl JwksCache {
    pub(crate) fn new(config: &Checked) -> Self {
        Self {
            url: config.jwks_url.clone(),
            client: config.http_client.clone(),
            algorithms: config.algorithms.clone(),
            default_lifetime: config.default_cache_lifetime,
            min_refresh_interval: config.min_refresh_interval,
            max_stale: config.max_stale,
            fetch_timeout: config.http_timeout,
            state: Mutex::new(State::default()),
        }
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The key set in which to look `kid` up. When the cached set lacks `kid`, a fetch
    /// is made (or joined) first if the rate limit allows; the set returned may still
    /// lack it, which makes the token's key unknown.
    pub(crate) async fn key_set_for(self: &Arc<Self>, kid: &str) -> Result<Arc<KeySet>, JwksError> {
        let mut wait = {
            let mut state = self.lock();
            let now = Instant::now();
            if let Some(keys) = self.usable(&state, now) {
                if keys.contains(kid) {
                    if !is_fresh(&state, now) {
                        // Stale-while-revalidate: nobody waits for this fetch.
                        let _ = self.join_or_start_fetch(&mut state, now);
                    }
                    return Ok(keys);
                }
            }
            match self.join_or_start_fetch(&mut state, now) {
                Some(wait) => wait,
                None => return self.answer(&state, now),
            }
        };
        // An error only means the fetch task is gone; its outcome (if any) is stored.
        let _ = wait.wait_for(|done| *done).await;
        let state = self.lock();
        self.answer(&state, Instant::now())
    }

    /// Make sure a usable key set is cached, fetching it now if there is none or it is
    /// stale (subject to the rate limit).
    pub(crate) async fn warm_up(self: &Arc<Self>) -> Result<(), JwksError> {
        let wait = {
            let mut state = self.lock();
            let now = Instant::now();
            if self.usable(&state, now).is_some() && is_fresh(&state, now) {
                return Ok(());
            }
            self.join_or_start_fetch(&mut state, now)
        };
        if let Some(mut wait) = wait {
            let _ = wait.wait_for(|done| *done).await;
        }
        let state = self.lock();
        match &state.last_error {
            Some(error) => Err(error.clone()),
            None => self.answer(&state, Instant::now()).map(|_| ()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is always left consistent (plain assignments), so a panic elsewhere
        // while holding the lock does not make it unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn usable(&self, state: &State, now: Instant) -> Option<Arc<KeySet>> {
        let fresh_until = state.fresh_until?;
        if now < fresh_until + self.max_stale {
            state.keys.clone()
        } else {
            None
        }
    }

    fn answer(&self, state: &State, now: Instant) -> Result<Arc<KeySet>, JwksError> {
        self.usable(state, now)
            .ok_or_else(|| match (&state.last_error, &state.keys) {
                (Some(error), _) => error.clone(),
                (None, Some(_)) => JwksError::Stale {
                    url: self.url.to_string(),
                },
                (None, None) => JwksError::Fetch {
                    url: self.url.to_string(),
                    reason: "not fetched yet".to_owned(),
                },
            })
    }

    /// The running fetch, or a new one if the rate limit allows; `None` otherwise.
    fn join_or_start_fetch(
        self: &Arc<Self>,
        state: &mut State,
        now: Instant,
    ) -> Option<watch::Receiver<bool>> {
        if let Some(running) = &state.in_flight {
            // Closed without clearing `in_flight` means the task died (panicked).
            if running.has_changed().is_ok() {
                return Some(running.clone());
            }
            state.in_flight = None;
        }
        if state
            .last_attempt
            .is_some_and(|last| now.duration_since(last) < self.min_refresh_interval)
        {
            return None;
        }
        state.last_attempt = Some(now);
        let (done, wait) = watch::channel(false);
        state.in_flight = Some(wait.clone());
        let etag = state.keys.as_ref().and(state.etag.clone());
        let this = Arc::clone(self);
        tokio::spawn(async move { this.fetch_and_store(etag, done).await });
        Some(wait)
    }

    async fn fetch_and_store(self: Arc<Self>, etag: Option<String>, done: watch::Sender<bool>) {
        let outcome = tokio::time::timeout(self.fetch_timeout, self.fetch(etag.as_deref()))
            .await
            .unwrap_or_else(|_| {
                Err(JwksError::Fetch {
                    url: self.url.to_string(),
                    reason: format!("no answer within {:?}", self.fetch_timeout),
                })
            });
        {
            let mut state = self.lock();
            let now = Instant::now();
            match outcome {
                Ok(Fetched::Modified { keys, freshness }) => {
                    if keys.len() == 0 {
                        tracing::warn!(url = %self.url, "the JWKS holds no key this verifier can use");
                    } else {
                        tracing::debug!(url = %self.url, keys = keys.len(), lifetime = ?freshness.lifetime, "JWKS fetched");
                    }
                    state.keys = Some(Arc::new(keys));
                    state.etag = freshness.etag;
                    state.fresh_until = Some(now + freshness.lifetime);
                    state.last_error = None;
                }
                Ok(Fetched::NotModified { freshness }) if state.keys.is_some() => {
                    tracing::debug!(url = %self.url, lifetime = ?freshness.lifetime, "JWKS unchanged");
                    if freshness.etag.is_some() {
                        state.etag = freshness.etag;
                    }
                    state.fresh_until = Some(now + freshness.lifetime);
                    state.last_error = None;
                }
                Ok(Fetched::NotModified { .. }) => {
                    state.last_error = Some(JwksError::Invalid {
                        url: self.url.to_string(),
                        reason: "304 Not Modified, but nothing is cached".to_owned(),
                    });
                }
                Err(error) => {
                    let cached = self.usable(&state, now).is_some();
                    tracing::warn!(%error, using_cached_keys = cached, "JWKS fetch failed");
                    state.last_error = Some(error);
                }
            }
            state.in_flight = None;
        }
        let _ = done.send(true);
    }

    async fn fetch(&self, etag: Option<&str>) -> Result<Fetched, JwksError> {
        let url = || self.url.to_string();
        let mut request = self
            .client
            .get(self.url.clone())
            .header(ACCEPT, "application/jwk-set+json, application/json");
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let mut response = request.send().await.map_err(|e| JwksError::Fetch {
            url: url(),
            reason: describe(&e),
        })?;
        let status = response.status();
        let freshness = cache_control::freshness(response.headers(), self.default_lifetime);
        if status == StatusCode::NOT_MODIFIED && etag.is_some() {
            return Ok(Fetched::NotModified { freshness });
        }
        if status != StatusCode::OK {
            return Err(JwksError::Status {
                url: url(),
                status: status.as_u16(),
            });
        }
        let invalid = |reason: String| JwksError::Invalid { url: url(), reason };
        if response
            .content_length()
            .is_some_and(|len| len > MAX_JWKS_BYTES as u64)
        {
            return Err(invalid("larger than 256 KiB".to_owned()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| JwksError::Fetch {
            url: url(),
            reason: describe(&e),
        })? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(invalid("larger than 256 KiB".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        let keys = KeySet::parse(&body, &self.algorithms).map_err(invalid)?;
        Ok(Fetched::Modified { keys, freshness })
    }
}

fn is_fresh(state: &State, now: Instant) -> bool {
    state.fresh_until.is_some_and(|until| now < until)
}
