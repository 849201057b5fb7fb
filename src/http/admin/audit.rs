use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ok, Admin, Page, PageQuery};
use crate::auth;
use crate::auth::audit::AuditRow;
use crate::error::{Problem, ProblemBody};
use crate::http::body::QueryString;
use crate::http::AppState;

/// One security event.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditEntry {
    id: uuid::Uuid,
    at: DateTime<Utc>,
    /// What happened, e.g. `login.failed`, `admin.user.disabled`.
    action: String,
    /// The admin who did it, for administrative changes.
    actor_id: Option<uuid::Uuid>,
    /// The user it is about.
    user_id: Option<uuid::Uuid>,
    client_id: Option<String>,
    session_id: Option<uuid::Uuid>,
    ip: Option<String>,
    user_agent: Option<String>,
    /// What else is known (a reason, the roles set, ...); never a secret.
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            at: r.at,
            action: r.action,
            actor_id: r.actor_id,
            user_id: r.user_id,
            client_id: r.client_id,
            session_id: r.session_id,
            ip: r.ip,
            user_agent: r.user_agent,
            details: r.details,
        }
    }
}

/// Taken as text and parsed by the auth layer, so a bad value gets an answer that
/// names the parameter and its format.
#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    user_id: Option<String>,
    action: Option<String>,
    /// RFC 3339; inclusive.
    since: Option<String>,
    /// RFC 3339; exclusive.
    until: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// The audit log, newest first, filtered by user, action and time.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_audit_list",
    security(("bearer" = [])),
    params(("user_id" = Option<uuid::Uuid>, Query, description = "Events about or by this user"), ("action" = Option<String>, Query, description = "e.g. login.failed", max_length = 64), ("since" = Option<DateTime<Utc>>, Query, description = "RFC 3339, inclusive"), ("until" = Option<DateTime<Utc>>, Query, description = "RFC 3339, exclusive"), ("limit" = Option<i64>, Query, description = "1 to 200, default 50", minimum = 1, maximum = 200), ("cursor" = Option<uuid::Uuid>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/audit")]
pub(crate) async fn list(
    _admin: Admin,
    query: QueryString,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let query: AuditQuery = query.parse()?;
    let limit = query.page.limit()?;
    let before = query.page.id_cursor()?;
    let filter = auth::audit::AuditQuery {
        user_id: query.user_id,
        action: query.action,
        since: query.since,
        until: query.until,
    }
    .parse()?;
    let rows = auth::audit::list(&state.tessera, filter, before, limit + 1).await?;
    Ok(ok(
        &Page::from_rows(rows, limit, |r| r.id.to_string()).map(AuditEntry::from)
    ))
}
