//! Security events for the audit log. Built here, written in the same transaction as
//! the change they describe where there is one.

use diesel::PgConnection;
use serde_json::Value;
use uuid::Uuid;

use super::RequestContext;
pub(crate) use crate::store::audit::AuditRow;
use crate::store::audit::{self, NewAuditRow};
use crate::store::StoreError;

pub(crate) mod action {
    pub(crate) const LOGIN_SUCCEEDED: &str = "login.succeeded";
    pub(crate) const LOGIN_FAILED: &str = "login.failed";
    pub(crate) const LOGIN_LOCKED: &str = "login.locked";
    pub(crate) const LOGIN_THROTTLED: &str = "login.throttled";
    pub(crate) const REFRESH_REUSE_DETECTED: &str = "refresh.reuse_detected";
    /// A spent refresh token presented again within the grace window: answered with
    /// its successor (a lost response retried, or a token stolen after use).
    pub(crate) const REFRESH_GRACE_RETRY: &str = "refresh.grace_retry";
    pub(crate) const TOKEN_REVOKED: &str = "token.revoked";
    pub(crate) const SESSION_REVOKED: &str = "session.revoked";
    pub(crate) const LOGOUT: &str = "logout";
    pub(crate) const CONSENT_GRANTED: &str = "consent.granted";
    pub(crate) const CONSENT_REVOKED: &str = "consent.revoked";
    pub(crate) const AUTHORIZATION_CODE_EXCHANGED: &str = "authorization_code.exchanged";
    pub(crate) const AUTHORIZATION_CODE_REPLAYED: &str = "authorization_code.replayed";
    pub(crate) const PASSWORD_CHANGED: &str = "password.changed";
    pub(crate) const PASSWORD_CHANGE_FAILED: &str = "password.change_failed";
    pub(crate) const USER_CREATED: &str = "admin.user.created";
    pub(crate) const USER_UPDATED: &str = "admin.user.updated";
    pub(crate) const USER_DISABLED: &str = "admin.user.disabled";
    pub(crate) const USER_ENABLED: &str = "admin.user.enabled";
    pub(crate) const USER_PASSWORD_RESET: &str = "admin.user.password_reset";
    pub(crate) const USER_REVOKED: &str = "admin.user.revoked";
    pub(crate) const USER_UNLOCKED: &str = "admin.user.unlocked";
    pub(crate) const CLIENT_CREATED: &str = "admin.client.created";
    pub(crate) const CLIENT_UPDATED: &str = "admin.client.updated";
    pub(crate) const CLIENT_SECRET_ROTATED: &str = "admin.client.secret_rotated";
    pub(crate) const CLIENT_DELETED: &str = "admin.client.deleted";
    pub(crate) const REVOCATION_CREATED: &str = "admin.revocation.created";
    pub(crate) const KEYS_ROTATED: &str = "admin.keys.rotated";
}

#[derive(Clone, Debug)]
pub(crate) struct AuditEvent {
    pub action: &'static str,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub session_id: Option<Uuid>,
    pub details: Value,
}

impl AuditEvent {
    pub(crate) fn new(action: &'static str) -> Self {
        Self {
            action,
            actor_id: None,
            user_id: None,
            client_id: None,
            session_id: None,
            details: Value::Object(Default::default()),
        }
    }

    pub(crate) fn user(mut self, id: Uuid) -> Self {
        self.user_id = Some(id);
        self
    }

    pub(crate) fn actor(mut self, id: Uuid) -> Self {
        self.actor_id = Some(id);
        self
    }

    pub(crate) fn client(mut self, id: &str) -> Self {
        self.client_id = Some(id.to_owned());
        self
    }

    pub(crate) fn session(mut self, id: Uuid) -> Self {
        self.session_id = Some(id);
        self
    }

    pub(crate) fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
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
pub(crate) fn record(
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
