//! The caller's own account: `/v1/me`.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::bearer::Caller;
use crate::error::{no_store, Problem};
use crate::state::AppState;
use crate::store::users;

#[derive(Serialize)]
pub struct Profile {
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
    pub session_id: Option<String>,
    pub client_id: String,
    pub scope: String,
}

pub async fn profile(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let user_id = caller.user_id()?;
    let user = state
        .db
        .run(move |conn| users::find_by_id(conn, user_id))
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| {
            Problem::unauthorized_bearer("the account no longer exists or is disabled")
        })?;
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(res.json(Profile {
        id: user.id,
        username: user.username,
        roles: user.roles,
        created_at: user.created_at,
        password_changed_at: user.password_changed_at,
        session_id: caller.claims.sid,
        client_id: caller.claims.client_id,
        scope: caller.claims.scope,
    }))
}
