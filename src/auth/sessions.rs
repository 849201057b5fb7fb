//! A user's own sessions: listing them and ending them (logout).

use uuid::Uuid;

use super::audit::{action, AuditEvent};
use super::revocation::{self, Target};
use super::Tessera;
use super::{AuthError, RequestContext};
use crate::store::sessions::{self, SessionRow};

/// Which sessions a logout ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogoutScope {
    /// The caller's own session.
    Local,
    /// All the caller's sessions but the current one.
    Others,
    /// All the caller's sessions.
    Global,
}

impl LogoutScope {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "local" => Some(Self::Local),
            "others" => Some(Self::Others),
            "global" => Some(Self::Global),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Others => "others",
            Self::Global => "global",
        }
    }
}

#[tracing::instrument(name = "sessions.list", level = "debug", skip_all, fields(%user_id), err(level = "debug"))]
pub(crate) async fn list(tessera: &Tessera, user_id: Uuid) -> Result<Vec<SessionRow>, AuthError> {
    Ok(tessera
        .db
        .run(move |conn| sessions::live_for_user(conn, user_id))
        .await?)
}

#[tracing::instrument(name = "sessions.logout", level = "debug", skip_all, fields(%user_id, sid = %current, ?scope), err(level = "debug"))]
pub(crate) async fn logout(
    tessera: &Tessera,
    user_id: Uuid,
    current: Uuid,
    scope: LogoutScope,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let event = AuditEvent::new(action::LOGOUT)
        .actor(user_id)
        .user(user_id)
        .session(current)
        .detail("scope", scope.as_str());
    revocation::revoke_with(
        tessera,
        move |conn| {
            let mut targets: Vec<Target> = match scope {
                LogoutScope::Local => vec![],
                LogoutScope::Others | LogoutScope::Global => {
                    sessions::live_for_user(conn, user_id)?
                        .into_iter()
                        .filter(|s| s.id != current)
                        .map(|s| Target::Session(s.id))
                        .collect()
                }
            };
            if scope != LogoutScope::Others {
                targets.push(Target::Session(current));
            }
            // Locked in id order, as every change of several sessions is (see
            // `store::sessions::revoke_for_user`).
            targets.sort_by_key(|t| match t {
                Target::Session(id) => *id,
                _ => Uuid::nil(),
            });
            Ok(((), targets))
        },
        "logout",
        &user_id.to_string(),
        vec![event],
        ctx,
    )
    .await
}

/// Ends one of the caller's sessions; someone else's is "not found".
#[tracing::instrument(name = "sessions.end", level = "debug", skip_all, fields(%user_id, sid = %session_id), err(level = "debug"))]
pub(crate) async fn end(
    tessera: &Tessera,
    user_id: Uuid,
    session_id: Uuid,
    ctx: &RequestContext,
) -> Result<(), AuthError> {
    let found = tessera
        .db
        .run(move |conn| sessions::find(conn, session_id))
        .await?
        .filter(|s| s.user_id == user_id && s.revoked_at.is_none());
    if found.is_none() {
        return Err(AuthError::NotFound("no such session".to_owned()));
    }
    let event = AuditEvent::new(action::SESSION_REVOKED)
        .actor(user_id)
        .user(user_id)
        .session(session_id)
        .detail("via", "user");
    revocation::revoke(
        tessera,
        vec![Target::Session(session_id)],
        "ended_by_user",
        &user_id.to_string(),
        vec![event],
        ctx,
    )
    .await
}
