//! The caller's own account: profile, sessions, password, logout.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::bearer::Caller;
use super::body::JsonBody;
use super::oauth::request_context;
use crate::auth;
use crate::auth::sessions::LogoutScope;
use crate::domain::{NewPassword, Password};
use crate::error::{no_store, Problem, ProblemBody};
use crate::http::AppState;

#[derive(Serialize, ToSchema)]
pub(crate) struct Profile {
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
    pub session_id: Option<String>,
    pub client_id: String,
    pub scope: String,
}

/// The caller's profile.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Profile),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not a user's token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "The denylist cannot be read", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me")]
pub(crate) async fn profile(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user_id = caller.user_id()?;
    let user = auth::users::profile(&state.tessera, user_id)
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

#[derive(Serialize, ToSchema)]
pub(crate) struct SessionView {
    pub id: Uuid,
    pub client_id: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Whether this is the session of the token making the request.
    pub current: bool,
}

/// The caller's live sessions (device, created, last used).
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<SessionView>),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/sessions")]
pub(crate) async fn sessions(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user_id = caller.user_id()?;
    let current = caller.session_id()?;
    let list: Vec<SessionView> = auth::sessions::list(&state.tessera, user_id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: s.id == current,
            id: s.id,
            client_id: s.client_id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            ip: s.ip,
        })
        .collect();
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(res.json(list))
}

/// Ends one of the caller's sessions.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    params(("sid" = String, Path, description = "The session id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such session of the caller", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/sessions/{sid}")]
pub(crate) async fn end_session(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user_id = caller.user_id()?;
    let sid =
        Uuid::parse_str(&path.into_inner()).map_err(|_| Problem::not_found("no such session"))?;
    auth::sessions::end(&state.tessera, user_id, sid, &request_context(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogoutRequest {
    /// `local` (default), `others` or `global`.
    #[schema(value_type = Option<LogoutScopeName>)]
    scope: Option<String>,
}

/// Which sessions a logout ends.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // The schema of `scope`; the handler parses the text.
pub(crate) enum LogoutScopeName {
    Local,
    Others,
    Global,
}

/// Ends this session, or with `{"scope":"global"}` all of the caller's sessions, or
/// `"others"` all but this one. The body is optional.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    request_body(content = Option<LogoutRequest>, description = "Optional"),
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[post("/v1/logout")]
pub(crate) async fn logout(
    caller: Caller,
    req: HttpRequest,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user_id = caller.user_id()?;
    let sid = caller.session_id()?;
    let request: LogoutRequest = body.parse_optional()?.unwrap_or_default();
    let scope = match request.scope.as_deref() {
        None => LogoutScope::Local,
        Some(s) => LogoutScope::parse(s)
            .ok_or_else(|| Problem::bad_request("scope must be one of: local, others, global"))?,
    };
    auth::sessions::logout(&state.tessera, user_id, sid, scope, &request_context(&req)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct PasswordChange {
    #[schema(min_length = 1, max_length = 1024)]
    current_password: String,
    /// At least `TESSERA_PASSWORD_MIN_LENGTH` (default 8) characters, at most 72 bytes.
    #[schema(min_length = 8, max_length = 72)]
    new_password: String,
}

/// Changes the caller's password; every other session of theirs ends.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; the caller's other sessions ended"),
        (status = 400, description = "The new password is too short or over 72 bytes", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "The current password is wrong", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many wrong passwords (with Retry-After)", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[post("/v1/me/password")]
pub(crate) async fn change_password(
    caller: Caller,
    req: HttpRequest,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user_id = caller.user_id()?;
    let sid = caller.session_id()?;
    let body: PasswordChange = body.parse()?;
    let current = Password::parse(body.current_password)
        .map_err(|e| Problem::bad_request(format!("current_password: {e}")))?;
    let new = NewPassword::parse(body.new_password, state.settings().passwords.min_length)
        .map_err(|e| Problem::bad_request(format!("new_password: {e}")))?;
    auth::users::change_password(
        &state.tessera,
        user_id,
        sid,
        current,
        new,
        &request_context(&req),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Registration {
    /// Letters, digits and `. _ @ + -`; case-insensitive.
    #[schema(pattern = "^[A-Za-z0-9._@+-]{1,64}$")]
    username: String,
    /// At least `TESSERA_PASSWORD_MIN_LENGTH` (default 8) characters, at most 72 bytes.
    #[schema(min_length = 8, max_length = 72)]
    password: String,
}

/// Self-registration, when `TESSERA_ALLOW_REGISTRATION=true`: creates a user with no
/// roles. Log in afterwards with the password grant.
#[utoipa::path(
    tag = "account",
    request_body = Registration,
    responses(
        (status = 201, description = "Created", body = RegisteredUser),
        (status = 400, description = "Invalid username or password", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Self-registration is disabled", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken (counted like a failed login from this source)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "Too many taken names from this source; see Retry-After", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[post("/v1/users")]
pub(crate) async fn register(
    req: HttpRequest,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    if !state.settings().allow_registration {
        return Err(Problem::forbidden("self-registration is disabled"));
    }
    let body: Registration = body.parse()?;
    let username = crate::domain::Username::parse(&body.username).map_err(Problem::bad_request)?;
    let password = NewPassword::parse(body.password, state.settings().passwords.min_length)
        .map_err(|e| Problem::bad_request(format!("password: {e}")))?;
    let actor = auth::Actor {
        user_id: None,
        ctx: request_context(&req),
    };
    let user = auth::users::register(&state.tessera, username, password, &actor).await?;
    let mut res = HttpResponse::Created();
    no_store(&mut res);
    Ok(res.json(RegisteredUser {
        id: user.id,
        username: user.username,
        roles: user.roles,
        created_at: user.created_at,
        password_changed_at: user.password_changed_at,
    }))
}

/// A new account: no session, client or scope yet (log in for those).
#[derive(Serialize, ToSchema)]
pub(crate) struct RegisteredUser {
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
}

/// A consent the caller gave a third-party app on the consent page.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConsentView {
    pub client_id: String,
    /// The app's name, as the consent page showed it.
    pub client_name: String,
    pub scopes: Vec<String>,
    pub granted_at: DateTime<Utc>,
}

/// The consents the caller gave third-party apps.
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<ConsentView>),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not a user's token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "The denylist cannot be read", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[get("/v1/me/consents")]
pub(crate) async fn consents(
    caller: Caller,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user_id = caller.user_id()?;
    let list: Vec<ConsentView> = auth::consents::list(&state.tessera, user_id)
        .await?
        .into_iter()
        .map(|c| ConsentView {
            client_id: c.client_id,
            client_name: c.client_name,
            scopes: c.scopes,
            granted_at: c.granted_at,
        })
        .collect();
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(res.json(list))
}

/// Withdraws a consent: the app is asked again next time, and the caller's sessions
/// with it end now (its refresh tokens stop working, its access tokens are denied).
#[utoipa::path(
    tag = "account",
    security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The app's client_id")),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 401, description = "Missing, invalid, expired or revoked token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not a user's token", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No consent to this app", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "A dependency is unavailable", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[delete("/v1/me/consents/{client_id}")]
pub(crate) async fn revoke_consent(
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let user_id = caller.user_id()?;
    auth::consents::revoke(
        &state.tessera,
        user_id,
        &path.into_inner(),
        &request_context(&req),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
