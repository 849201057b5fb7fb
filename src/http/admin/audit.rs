use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{ok, Admin, Page, PageQuery};
use crate::error::Problem;
use crate::state::AppState;
use crate::store::audit::{self, AuditFilter, AuditRow};

#[derive(Deserialize)]
pub struct AuditQuery {
    user_id: Option<uuid::Uuid>,
    action: Option<String>,
    /// RFC 3339; inclusive.
    since: Option<DateTime<Utc>>,
    /// RFC 3339; exclusive.
    until: Option<DateTime<Utc>>,
    #[serde(flatten)]
    page: PageQuery,
}

/// The audit log, newest first, filtered by user, action and time.
pub async fn list(
    _admin: Admin,
    query: web::Query<AuditQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let limit = query.page.limit()?;
    if query.action.as_ref().is_some_and(|a| a.len() > 64) {
        return Err(Problem::bad_request("action is at most 64 characters"));
    }
    let before = query
        .page
        .cursor
        .as_deref()
        .map(|c| uuid::Uuid::parse_str(c).map_err(|_| Problem::bad_request("invalid cursor")))
        .transpose()?;
    let filter = AuditFilter {
        user_id: query.user_id,
        action: query.action,
        since: query.since,
        until: query.until,
    };
    let rows = state
        .db
        .run(move |conn| audit::list(conn, &filter, before, limit + 1))
        .await?;
    Ok(ok(&Page::<AuditRow>::from_rows(rows, limit, |r| {
        r.id.to_string()
    })))
}
