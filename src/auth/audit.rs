//! Security events for the audit log. Built here, written in the same transaction as
//! the change they describe where there is one.

use diesel::PgConnection;
use serde_json::Value;
use uuid::Uuid;

use super::RequestContext;
pub use crate::store::audit::AuditRow;
use crate::store::audit::{self, NewAuditRow};
use crate::store::StoreError;

pub mod action {
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    pub const LOGIN_FAILED: &str = "login.failed";
    pub const LOGIN_LOCKED: &str = "login.locked";
    pub const LOGIN_THROTTLED: &str = "login.throttled";
    pub const REFRESH_REUSE_DETECTED: &str = "refresh.reuse_detected";
    /// A spent refresh token presented again within the grace window: answered with
    /// its successor (a lost response retried, or a token stolen after use).
    pub const REFRESH_GRACE_RETRY: &str = "refresh.grace_retry";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const SESSION_REVOKED: &str = "session.revoked";
    pub const USER_TOKENS_REVOKED: &str = "user.tokens_revoked";
    pub const LOGOUT: &str = "logout";
    pub const PASSWORD_CHANGED: &str = "password.changed";
    pub const PASSWORD_CHANGE_FAILED: &str = "password.change_failed";
    pub const USER_CREATED: &str = "admin.user.created";
    pub const USER_UPDATED: &str = "admin.user.updated";
    pub const USER_DISABLED: &str = "admin.user.disabled";
    pub const USER_ENABLED: &str = "admin.user.enabled";
    pub const USER_PASSWORD_RESET: &str = "admin.user.password_reset";
    pub const USER_REVOKED: &str = "admin.user.revoked";
    pub const USER_UNLOCKED: &str = "admin.user.unlocked";
    pub const CLIENT_CREATED: &str = "admin.client.created";
    pub const CLIENT_UPDATED: &str = "admin.client.updated";
    pub const CLIENT_SECRET_ROTATED: &str = "admin.client.secret_rotated";
    pub const CLIENT_DELETED: &str = "admin.client.deleted";
    pub const REVOCATION_CREATED: &str = "admin.revocation.created";
    pub const KEYS_ROTATED: &str = "admin.keys.rotated";
}

#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub action: &'static str,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub session_id: Option<Uuid>,
    pub details: Value,
}

impl AuditEvent {
    pub fn new(action: &'static str) -> Self {
        Self {
            action,
            actor_id: None,
            user_id: None,
            client_id: None,
            session_id: None,
            details: Value::Object(Default::default()),
        }
    }

    pub fn user(mut self, id: Uuid) -> Self {
        self.user_id = Some(id);
        self
    }

    pub fn actor(mut self, id: Uuid) -> Self {
        self.actor_id = Some(id);
        self
    }

    pub fn client(mut self, id: &str) -> Self {
        self.client_id = Some(id.to_owned());
        self
    }

    pub fn session(mut self, id: Uuid) -> Self {
        self.session_id = Some(id);
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }
}

/// A filter on the audit log as a caller writes it (admin API query, CLI flags):
/// times in RFC 3339, the user id as a UUID.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub user_id: Option<String>,
    pub action: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

impl AuditQuery {
    /// The typed filter, or an error naming the parameter and the expected format.
    pub fn parse(&self) -> Result<audit::AuditFilter, super::AuthError> {
        let invalid = |message: String| super::AuthError::InvalidRequest(message);
        let time = |name: &str, raw: &Option<String>| {
            raw.as_deref()
                .map(|v| {
                    // An unescaped `+01:00` in a query string arrives as ` 01:00`.
                    chrono::DateTime::parse_from_rfc3339(&v.replace(' ', "+"))
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .map_err(|_| {
                            invalid(format!(
                                "{name} must be an RFC 3339 time such as 2026-12-01T00:00:00Z"
                            ))
                        })
                })
                .transpose()
        };
        let user_id = self
            .user_id
            .as_deref()
            .map(|v| {
                Uuid::parse_str(v)
                    .map_err(|_| invalid("user_id must be a user id (a UUID)".to_owned()))
            })
            .transpose()?;
        let action = self.action.clone().filter(|a| !a.is_empty());
        if action.as_ref().is_some_and(|a| a.chars().count() > 64) {
            return Err(invalid("action is at most 64 characters".to_owned()));
        }
        Ok(audit::AuditFilter {
            user_id,
            action,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
        })
    }
}

/// The audit log, newest first; `before` is the id of the last row of the previous
/// page. The admin API and `tessera audit` both read it through here.
#[tracing::instrument(name = "audit.list", level = "debug", skip_all, err(level = "debug"))]
pub async fn list(
    tessera: &super::Tessera,
    filter: audit::AuditFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<audit::AuditRow>, StoreError> {
    tessera
        .db
        .run(move |conn| audit::list(conn, &filter, before, limit))
        .await
}

/// Writes events on `conn` (inside the caller's transaction, if any).
#[tracing::instrument(name = "audit.record", level = "debug", skip_all, fields(events = events.len()), err(level = "debug"))]
pub fn record(
    conn: &mut PgConnection,
    events: &[AuditEvent],
    ctx: &RequestContext,
) -> Result<(), StoreError> {
    let rows: Vec<NewAuditRow<'_>> = events
        .iter()
        .map(|e| NewAuditRow {
            id: Uuid::now_v7(),
            action: e.action,
            actor_id: e.actor_id,
            user_id: e.user_id,
            client_id: e.client_id.as_deref(),
            session_id: e.session_id,
            ip: ctx.ip.as_deref(),
            user_agent: ctx.user_agent.as_deref(),
            details: &e.details,
        })
        .collect();
    audit::insert(conn, &rows)
}
