use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::schema::audit_log;
use super::StoreError;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct AuditRow {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub action: String,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub client_id: Option<String>,
    pub session_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
pub(crate) struct NewAuditRow<'a> {
    pub id: Uuid,
    pub action: &'a str,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub client_id: Option<&'a str>,
    pub session_id: Option<Uuid>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub details: &'a serde_json::Value,
}

pub(crate) fn insert(conn: &mut PgConnection, rows: &[NewAuditRow<'_>]) -> Result<(), StoreError> {
    if !rows.is_empty() {
        diesel::insert_into(audit_log::table)
            .values(rows)
            .execute(conn)?;
    }
    Ok(())
}

/// Filters for reading the log; all optional.
#[derive(Default)]
pub struct AuditFilter {
    pub user_id: Option<Uuid>,
    pub action: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Newest first; `before` is the id of the last row of the previous page.
pub(crate) fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut query = audit_log::table.into_boxed();
    if let Some(user) = filter.user_id {
        query = query.filter(audit_log::user_id.eq(user).or(audit_log::actor_id.eq(user)));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_log::at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_log::at.lt(until));
    }
    if let Some(before) = before {
        query = query.filter(audit_log::id.lt(before));
    }
    Ok(query
        .order(audit_log::id.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}
