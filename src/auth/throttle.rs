//! Brute-force protection for password checks (the password grant and password
//! changes) and self-registration, counted in Redis so it holds across instances.
//!
//! Delays and lockouts are earned per account *and source* (client IP): failures from
//! one source slow down and lock out that source only, so nobody can lock a victim out
//! of their account from elsewhere. Against guessing spread over many sources, failures
//! from sources that have not logged in to the account recently are also counted
//! account-wide; past `TESSERA_LOGIN_ACCOUNT_DELAY_AFTER` such checks are spaced out
//! (one per `TESSERA_LOGIN_ACCOUNT_DELAY`), a slow and capped delay that never becomes
//! a lockout, and that sources which logged in before do not see. The IP is also
//! counted over every account (`TESSERA_LOGIN_IP_LIMIT`).
//!
//! The account is whatever name was submitted, so an unknown name is throttled exactly
//! like a real one and the answers never tell them apart. If Redis cannot be reached,
//! password checks fail closed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::audit::{self, AuditEvent};
use super::Tessera;
use super::{AuthError, RequestContext};
use crate::store::throttle::{Limits, RefusedBy, Reservation, Subject};

pub(crate) use crate::store::throttle::Ticket;

/// How long a check waits for its turn while the checks in flight for its account and
/// source use up the budget, before it is refused after all (and never more than half
/// the request timeout). Right passwords settle their reservations as soon as bcrypt
/// is done, so in practice a queued login waits for a few bcrypt runs; this bound only
/// matters when reservations were lost.
const TURN_WAIT: Duration = Duration::from_secs(10);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn limits(tessera: &Tessera) -> Limits {
    let l = &tessera.settings.login_limits;
    Limits {
        window_ms: l.window.as_millis() as u64,
        delay_after: l.delay_after,
        max_delay_ms: l.max_delay.as_millis() as u64,
        lockout_after: l.lockout_after,
        lockout_ms: l.lockout.as_millis() as u64,
        per_ip: l.per_ip,
        account_after: l.account_delay_after,
        account_delay_ms: l.account_delay.as_millis() as u64,
    }
}

/// The name counters are kept under: case-folded, bounded.
pub(crate) fn account_key(submitted: &str) -> String {
    submitted.trim().to_lowercase().chars().take(256).collect()
}

/// The client IP as counted: an IPv6 address by its /64 (one host usually has the
/// whole prefix, and would otherwise get a fresh budget per address).
fn ip_of(ctx: &RequestContext) -> String {
    match ctx.ip.as_deref().map(str::parse::<std::net::IpAddr>) {
        Some(Ok(std::net::IpAddr::V6(v6))) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(Ok(std::net::IpAddr::V6(v6))) => v6.to_ipv4_mapped().expect("checked").to_string(),
        Some(Ok(ip)) => ip.to_string(),
        _ => "unknown".to_owned(),
    }
}

/// How an unavailable-counters error begins (the 503 body names the dependency by it).
pub(crate) const UNAVAILABLE_PREFIX: &str = "brute-force protection cannot reach Redis";

fn unavailable(tessera: &Tessera, e: impl std::fmt::Display) -> AuthError {
    tessera.metrics.redis_errors.inc();
    AuthError::Unavailable(format!("{UNAVAILABLE_PREFIX}: {e}"))
}

/// Reserves one password check for `account` (before any bcrypt work), or refuses it
/// while this source (or the IP, or the account-wide spacing) must wait.
#[tracing::instrument(
    name = "throttle.check",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn check(
    tessera: &Tessera,
    account: &str,
    ctx: &RequestContext,
) -> Result<Ticket, AuthError> {
    reserve(tessera, Subject::Account(account), ctx).await
}

/// Reserves one self-registration from this source.
#[tracing::instrument(
    name = "throttle.check_registration",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn check_registration(
    tessera: &Tessera,
    ctx: &RequestContext,
) -> Result<Ticket, AuthError> {
    reserve(tessera, Subject::Registration, ctx).await
}

async fn reserve(
    tessera: &Tessera,
    subject: Subject<'_>,
    ctx: &RequestContext,
) -> Result<Ticket, AuthError> {
    let ip = ip_of(ctx);
    let deadline =
        tokio::time::Instant::now() + TURN_WAIT.min(tessera.settings.http.request_timeout / 2);
    let mut pause = Duration::from_millis(10);
    loop {
        let reservation = tessera
            .throttle
            .reserve(subject, &ip, now_ms(), &limits(tessera))
            .await
            .map_err(|e| unavailable(tessera, e))?;
        let (wait_ms, by) = match reservation {
            Reservation::Allowed(ticket) => return Ok(ticket),
            Reservation::Refused { wait_ms, by } => (wait_ms, by),
            // Checks in flight may use up what is left before a lockout: wait for them
            // to settle (a success gives its place back, a failure may earn a delay
            // that then refuses this one), rather than refuse a right password.
            Reservation::Busy if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
                continue;
            }
            Reservation::Busy => (1000, RefusedBy::Source),
        };
        let scope = match (subject, by) {
            (Subject::Registration, _) => "registration",
            (_, RefusedBy::Ip) => "ip",
            (_, RefusedBy::Account) => "account",
            (_, RefusedBy::Source) => "source",
        };
        tessera
            .metrics
            .rate_limited
            .with_label_values(&[scope])
            .inc();
        return Err(AuthError::TooManyAttempts {
            retry_after_secs: wait_ms.div_ceil(1000).max(1),
        });
    }
}

/// The reserved check failed: counts it, and audits the failure that locks this source
/// out of the account, and the one that starts the account-wide spacing (with the user,
/// when the name belongs to one; never the name typed, which may be a password in the
/// wrong field).
#[tracing::instrument(name = "throttle.failed", level = "debug", skip_all, fields(user_id = ?user), err(level = "debug"))]
pub(crate) async fn failed(
    tessera: &Tessera,
    ticket: &Ticket,
    user: Option<Uuid>,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let l = &tessera.settings.login_limits;
    let failures = tessera
        .throttle
        .failed(ticket, now_ms(), &limits(tessera))
        .await
        .map_err(|e| unavailable(tessera, e))?;
    let mut events = Vec::new();
    if failures.source == u64::from(l.lockout_after) {
        tessera.metrics.lockouts.inc();
        tracing::warn!(
            failures = failures.source,
            "source locked out of an account after repeated failures"
        );
        events.push(
            AuditEvent::new(audit::action::LOGIN_LOCKED)
                .detail("failures", failures.source)
                .detail("seconds", l.lockout.as_secs())
                .detail("scope", "source"),
        );
    }
    if failures.account == u64::from(l.account_delay_after) {
        tracing::warn!(
            failures = failures.account,
            "account-wide spacing of password checks after failures from many sources"
        );
        events.push(
            AuditEvent::new(audit::action::LOGIN_THROTTLED)
                .detail("failures", failures.account)
                .detail("spacing_ms", l.account_delay.as_millis() as u64),
        );
    }
    if !events.is_empty() {
        let events: Vec<AuditEvent> = events
            .into_iter()
            .map(|e| match user {
                Some(user) => e.user(user),
                None => e,
            })
            .collect();
        let ctx = ctx.clone();
        tessera
            .db
            .run(move |conn| audit::record(conn, &events, &ctx))
            .await?;
    }
    Ok(())
}

/// A success: for a login this source starts afresh on the account (and the IP gets
/// its attempt back); for a registration only the reservation is given back, so that
/// registering a name does not wipe out the failures of probing taken ones.
#[tracing::instrument(name = "throttle.succeeded", level = "debug", skip_all)]
pub(crate) async fn succeeded(tessera: &Tessera, ticket: &Ticket) {
    if let Err(e) = tessera.throttle.succeeded(ticket).await {
        tessera.metrics.redis_errors.inc();
        tracing::warn!(error = %e, "could not settle the attempt");
    }
}

/// Clears every source's counters for the account with this username (an admin
/// unlock). Returns how many sources had counters.
#[tracing::instrument(
    name = "throttle.unlock",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn unlock(tessera: &Tessera, username: &str) -> Result<usize, AuthError> {
    tessera
        .throttle
        .unlock(&account_key(username))
        .await
        .map_err(|e| unavailable(tessera, e))
}
