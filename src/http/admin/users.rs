use actix_web::{get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{created, ok, parse_uuid, Admin, Page, PageQuery};
use crate::auth;
use crate::auth::users::UserRow;
use crate::domain::{NewPassword, Role, Username};
use crate::error::{Problem, ProblemBody};
use crate::http::body::{JsonBody, QueryString};
use crate::http::AppState;

#[derive(Serialize, ToSchema)]
pub(crate) struct UserView {
    id: Uuid,
    username: String,
    roles: Vec<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    password_changed_at: DateTime<Utc>,
}

impl From<UserRow> for UserView {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            username: u.username,
            roles: u.roles,
            disabled: u.disabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
            password_changed_at: u.password_changed_at,
        }
    }
}

fn parse_roles(raw: &[String]) -> Result<Vec<Role>, Problem> {
    let mut roles: Vec<Role> = raw
        .iter()
        .map(|r| Role::parse(r).map_err(Problem::bad_request))
        .collect::<Result<_, _>>()?;
    roles.sort();
    roles.dedup();
    Ok(roles)
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    /// Part of a username, case-insensitive.
    q: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// Lists users by username, optionally searching part of a name.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_users_list",
    security(("bearer" = [])),
    params(("q" = Option<String>, Query, description = "Part of a username, case-insensitive", max_length = 64), ("limit" = Option<i64>, Query, description = "1 to 200, default 50", minimum = 1, maximum = 200), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page (a username)", pattern = "^[A-Za-z0-9._@+-]{1,64}$")),
    responses((status = 200, body = Page<UserView>), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/users")]
pub(crate) async fn list(
    _admin: Admin,
    query: QueryString,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let query: ListQuery = query.parse()?;
    let limit = query.page.limit()?;
    let search = query.q.clone().filter(|q| !q.is_empty());
    let after = query.page.cursor.clone();
    let rows = auth::users::list(&state.tessera, search, after, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |u| u.username.clone());
    Ok(ok(&page.map(UserView::from)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateUser {
    /// Letters, digits and `. _ @ + -`; case-insensitive.
    #[schema(pattern = "^[A-Za-z0-9._@+-]{1,64}$")]
    username: String,
    /// At least `TESSERA_PASSWORD_MIN_LENGTH` (default 8) characters, at most 72 bytes.
    #[schema(min_length = 8, max_length = 72)]
    password: String,
    #[serde(default)]
    #[schema(value_type = Vec<RoleName>)]
    roles: Vec<String>,
}

/// A role: 1 to 64 of `a-z 0-9 _ : -`.
#[derive(ToSchema)]
#[schema(pattern = "^[a-z0-9_:-]{1,64}$")]
#[allow(dead_code)]
pub(crate) struct RoleName(String);

/// Creates a user.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_users_create",
    security(("bearer" = [])),
    request_body = CreateUser,
    responses((status = 201, body = UserView), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 409, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[post("/users")]
pub(crate) async fn create(
    admin: Admin,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body: CreateUser = body.parse()?;
    let username = Username::parse(&body.username).map_err(Problem::bad_request)?;
    let password = NewPassword::parse(body.password, state.settings().passwords.min_length)
        .map_err(|e| Problem::bad_request(format!("password: {e}")))?;
    let roles = parse_roles(&body.roles)?;
    let user = auth::users::create(&state.tessera, username, password, roles, &admin.actor).await?;
    Ok(created(&UserView::from(user)))
}

async fn find(state: &AppState, raw_id: &str) -> Result<UserRow, Problem> {
    let id = parse_uuid(raw_id, "user")?;
    Ok(auth::users::find(&state.tessera, id).await?)
}

/// One user.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_users_get",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserView), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/users/{id}")]
pub(crate) async fn get(
    _admin: Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    Ok(ok(&UserView::from(find(&state, &path).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUser {
    #[schema(value_type = Option<Vec<RoleName>>)]
    roles: Option<Vec<String>>,
    disabled: Option<bool>,
}

/// Roles and the disabled flag. Disabling revokes every session and live token of the
/// user at once.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_users_update",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = UpdateUser,
    responses((status = 200, body = UserView), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 409, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[patch("/users/{id}")]
pub(crate) async fn update(
    admin: Admin,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = parse_uuid(&path, "user")?;
    let body: UpdateUser = body.parse()?;
    let roles = body.roles.as_deref().map(parse_roles).transpose()?;
    if admin.actor.user_id == Some(id)
        && (body.disabled == Some(true)
            || roles
                .as_ref()
                .is_some_and(|r| !r.iter().any(|r| r.as_str() == Role::ADMIN)))
    {
        return Err(Problem::conflict(
            "an admin cannot disable themself or drop their own admin role",
        ));
    }
    let user = auth::users::update(&state.tessera, id, roles, body.disabled, &admin.actor).await?;
    Ok(ok(&UserView::from(user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetPassword {
    /// At least `TESSERA_PASSWORD_MIN_LENGTH` (default 8) characters, at most 72 bytes.
    #[schema(min_length = 8, max_length = 72)]
    password: String,
}

/// Sets a new password for a user; every session of the user ends.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_users_reset_password",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = ResetPassword,
    responses((status = 204, description = "Set; every session of the user ended"), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[post("/users/{id}/password")]
pub(crate) async fn reset_password(
    admin: Admin,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = parse_uuid(&path, "user")?;
    let body: ResetPassword = body.parse()?;
    let password = NewPassword::parse(body.password, state.settings().passwords.min_length)
        .map_err(|e| Problem::bad_request(format!("password: {e}")))?;
    auth::users::reset_password(&state.tessera, id, password, &admin.actor).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lifts every brute-force delay and lockout on a user's account, for every source
/// (client IP); audited as `admin.user.unlocked`.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_users_unlock",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Every source may try the account's password again"), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"), (status = 503, description = "Redis is unavailable", body = ProblemBody, content_type = "application/problem+json"))
)]
#[post("/users/{id}/unlock")]
pub(crate) async fn unlock(
    admin: Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = parse_uuid(&path, "user")?;
    auth::users::unlock(&state.tessera, id, &admin.actor).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AdminSessionView {
    id: Uuid,
    client_id: String,
    scope: String,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    user_agent: Option<String>,
    ip: Option<String>,
}

/// A user's live sessions.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_users_sessions",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = Vec<AdminSessionView>), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/users/{id}/sessions")]
pub(crate) async fn sessions(
    _admin: Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user = find(&state, &path).await?;
    let views: Vec<AdminSessionView> = auth::sessions::list(&state.tessera, user.id)
        .await?
        .into_iter()
        .map(|s| AdminSessionView {
            id: s.id,
            client_id: s.client_id,
            scope: s.scope,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            ip: s.ip,
        })
        .collect();
    Ok(ok(&views))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevokeBody {
    /// 1 to 200 printable characters; default `revoked_by_admin`.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    reason: Option<String>,
}

/// "Revoke everything of this user": every session and every live access token.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_users_revoke_everything",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = Option<RevokeBody>,
    responses((status = 204, description = "Every session and live access token of the user revoked"), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[post("/users/{id}/revoke")]
pub(crate) async fn revoke_everything(
    admin: Admin,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = parse_uuid(&path, "user")?;
    let body: RevokeBody = body.parse_optional()?.unwrap_or_default();
    let reason =
        super::revocations::check_reason(body.reason.as_deref().unwrap_or("revoked_by_admin"))?;
    auth::users::revoke_everything(&state.tessera, id, &reason, &admin.actor).await?;
    Ok(HttpResponse::NoContent().finish())
}
