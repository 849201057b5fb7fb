//! Brute-force protection for password checks (the password grant and password
//! changes): per account and per client IP, growing delays, then a temporary lockout.
//! Counted in Redis so it holds across instances. The account is whatever name was
//! submitted, so an unknown name is throttled exactly like a real one and the answers
//! never tell them apart. If Redis cannot be reached, password checks fail closed.

use std::time::{SystemTime, UNIX_EPOCH};

use super::audit::{self, AuditEvent};
use super::{AuthError, RequestContext};
use crate::state::AppState;
use crate::store::throttle::Limits;

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

fn ip_of(ctx: &RequestContext) -> &str {
    ctx.ip.as_deref().unwrap_or("unknown")
}

fn unavailable(state: &AppState, e: impl std::fmt::Display) -> AuthError {
    state.metrics.redis_errors.inc();
    AuthError::Unavailable(format!("brute-force protection cannot reach Redis: {e}"))
}

/// Refuses the attempt (before any bcrypt work) while the account or the IP must wait.
pub async fn check(state: &AppState, account: &str, ctx: &RequestContext) -> Result<(), AuthError> {
    let limits = limits(state);
    let (account_wait, ip_wait) = state
        .throttle
        .wait(account, ip_of(ctx), now_ms(), limits.per_ip)
        .await
        .map_err(|e| unavailable(state, e))?;
    let (wait, scope) = if account_wait >= ip_wait {
        (account_wait, "account")
    } else {
        (ip_wait, "ip")
    };
    if wait > 0 {
        state.metrics.rate_limited.with_label_values(&[scope]).inc();
        return Err(AuthError::TooManyAttempts {
            retry_after_secs: wait.div_ceil(1000),
        });
    }
    Ok(())
}

/// Counts a failed password check; the lockout itself is audited.
pub async fn failed(
    state: &AppState,
    account: &str,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let failure = state
        .throttle
        .register_failure(account, ip_of(ctx), now_ms(), &limits(state))
        .await
        .map_err(|e| unavailable(state, e))?;
    if failure.locked_now {
        state.metrics.lockouts.inc();
        tracing::warn!(
            failures = failure.failures,
            "account locked out after repeated failures"
        );
        let event = AuditEvent::new(audit::action::LOGIN_LOCKED)
            .detail("account", account.to_owned())
            .detail("failures", failure.failures)
            .detail("seconds", failure.wait_ms / 1000);
        let ctx = ctx.clone();
        state
            .db
            .run(move |conn| audit::record(conn, &[event], &ctx))
            .await?;
    }
    Ok(())
}

/// A success forgets the account's failures.
pub async fn succeeded(state: &AppState, account: &str) {
    if let Err(e) = state.throttle.clear(account).await {
        state.metrics.redis_errors.inc();
        tracing::warn!(error = %e, "could not reset the failure count");
    }
}
