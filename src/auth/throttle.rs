//! Brute-force protection for password checks (the password grant and password
//! changes): per account and per client IP, growing delays, then a temporary lockout.
//! Counted in Redis so it holds across instances. The account is whatever name was
//! submitted, so an unknown name is throttled exactly like a real one and the answers
//! never tell them apart. If Redis cannot be reached, password checks fail closed.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::audit::{self, AuditEvent};
use super::{AuthError, RequestContext};
use crate::state::AppState;
use crate::store::throttle::{Limits, Reservation};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn limits(state: &AppState) -> Limits {
    let l = &state.settings.login_limits;
    Limits {
        window_ms: l.window.as_millis() as u64,
        delay_after: l.delay_after,
        max_delay_ms: l.max_delay.as_millis() as u64,
        lockout_after: l.lockout_after,
        lockout_ms: l.lockout.as_millis() as u64,
        per_ip: l.per_ip,
    }
}

/// The name counters are kept under: case-folded, bounded.
pub fn account_key(submitted: &str) -> String {
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
pub const UNAVAILABLE_PREFIX: &str = "brute-force protection cannot reach Redis";

fn unavailable(state: &AppState, e: impl std::fmt::Display) -> AuthError {
    state.metrics.redis_errors.inc();
    AuthError::Unavailable(format!("{UNAVAILABLE_PREFIX}: {e}"))
}

/// Reserves one password check for `account` (before any bcrypt work), or refuses it
/// while the account or the IP must wait.
pub async fn check(state: &AppState, account: &str, ctx: &RequestContext) -> Result<(), AuthError> {
    let reservation = state
        .throttle
        .reserve(account, &ip_of(ctx), now_ms(), &limits(state))
        .await
        .map_err(|e| unavailable(state, e))?;
    match reservation {
        Reservation::Allowed => Ok(()),
        Reservation::Refused { wait_ms, by_ip } => {
            let scope = if by_ip { "ip" } else { "account" };
            state.metrics.rate_limited.with_label_values(&[scope]).inc();
            Err(AuthError::TooManyAttempts {
                retry_after_secs: wait_ms.div_ceil(1000).max(1),
            })
        }
    }
}

/// The reserved check failed: counts it, and audits the failure that locks the account
/// (with the user, when the name belongs to one; never the name typed, which may be a
/// password in the wrong field).
pub async fn failed(
    state: &AppState,
    account: &str,
    user: Option<Uuid>,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let failures = state
        .throttle
        .failed(account, now_ms(), &limits(state))
        .await
        .map_err(|e| unavailable(state, e))?;
    if failures == u64::from(state.settings.login_limits.lockout_after) {
        state.metrics.lockouts.inc();
        tracing::warn!(failures, "account locked out after repeated failures");
        let mut event = AuditEvent::new(audit::action::LOGIN_LOCKED)
            .detail("failures", failures)
            .detail("seconds", state.settings.login_limits.lockout.as_secs());
        if let Some(user) = user {
            event = event.user(user);
        }
        let ctx = ctx.clone();
        state
            .db
            .run(move |conn| audit::record(conn, &[event], &ctx))
            .await?;
    }
    Ok(())
}

/// A success forgets the account's attempts (and gives the IP its attempt back).
pub async fn succeeded(state: &AppState, account: &str, ctx: &RequestContext) {
    if let Err(e) = state.throttle.succeeded(account, &ip_of(ctx)).await {
        state.metrics.redis_errors.inc();
        tracing::warn!(error = %e, "could not reset the attempt count");
    }
}
