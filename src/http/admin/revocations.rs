use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{created, ok, parse_uuid, Admin, Page, PageQuery};
use crate::auth::audit::action;
use crate::auth::revocation::{self, Target};
use crate::auth::tokens;
use crate::domain::RefreshToken;
use crate::error::{Problem, ProblemBody};
use crate::http::body::{JsonBody, QueryString};
use crate::state::AppState;
use crate::store::refresh_tokens;
use crate::store::revocations::{self as store, RevocationRow};

/// A reason is free text for people, but short and printable.
pub fn check_reason(reason: &str) -> Result<String, Problem> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(Problem::bad_request(
            "reason must be 1 to 200 printable characters",
        ));
    }
    Ok(reason.to_owned())
}

/// What a revocation denies: one access token, a session, a user's tokens, a client's.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // The schema of the `kind` filter; the handler checks the text.
pub enum RevocationKind {
    Jti,
    Sid,
    User,
    Client,
}

#[derive(Deserialize)]
pub struct ListQuery {
    kind: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// Lists revocations, newest first.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_revocations_list",
    security(("bearer" = [])),
    params(("kind" = inline(Option<RevocationKind>), Query, description = "Only revocations of this kind"), ("limit" = Option<i64>, Query, description = "1 to 200, default 50", minimum = 1, maximum = 200), ("cursor" = Option<uuid::Uuid>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = Page<RevocationRow>), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/revocations")]
pub async fn list(
    _admin: Admin,
    query: QueryString,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let query: ListQuery = query.parse()?;
    let limit = query.page.limit()?;
    let kind = query.kind.clone();
    if kind
        .as_deref()
        .is_some_and(|k| !["jti", "sid", "user", "client"].contains(&k))
    {
        return Err(Problem::bad_request(
            "kind must be one of: jti, sid, user, client",
        ));
    }
    let before = query.page.id_cursor()?;
    let rows = state
        .db
        .run(move |conn| store::list(conn, kind.as_deref(), before, limit + 1))
        .await?;
    Ok(ok(&Page::<RevocationRow>::from_rows(rows, limit, |r| {
        r.id.to_string()
    })))
}

/// Exactly one of `token`, `jti` or `sid`, and a reason.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRevocation {
    /// An access token or a refresh token of this issuer.
    #[schema(min_length = 1)]
    token: Option<String>,
    #[schema(pattern = "^[!-~]{1,128}$")]
    jti: Option<String>,
    #[schema(format = Uuid)]
    sid: Option<String>,
    /// 1 to 200 printable characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedRevocation {
    kind: &'static str,
    value: String,
}

/// Revokes an access token (by token or jti) or a session (by token or sid), with a reason.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_revocations_create",
    security(("bearer" = [])),
    request_body = CreateRevocation,
    responses((status = 201, body = CreatedRevocation), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[post("/revocations")]
pub async fn create(
    admin: Admin,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body: CreateRevocation = body.parse()?;
    let reason = check_reason(&body.reason)?;
    let (target, kind, value) = match (body.token, body.jti, body.sid) {
        (Some(token), None, None) => target_of_token(&state, &token).await?,
        (None, Some(jti), None) => {
            let ok =
                !jti.is_empty() && jti.len() <= 128 && jti.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(Problem::bad_request(
                    "jti must be 1 to 128 visible ASCII characters",
                ));
            }
            (Target::TokenId(jti.clone()), "jti", jti)
        }
        (None, None, Some(sid)) => {
            let sid = parse_uuid(&sid, "session")?;
            let exists = state
                .db
                .run(move |conn| crate::store::sessions::find(conn, sid))
                .await?
                .is_some();
            if !exists {
                return Err(Problem::not_found("no such session"));
            }
            (Target::Session(sid), "sid", sid.to_string())
        }
        _ => {
            return Err(Problem::bad_request(
                "give exactly one of token, jti or sid",
            ))
        }
    };
    let event = admin
        .actor
        .event(action::REVOCATION_CREATED)
        .detail("kind", kind)
        .detail("value", value.clone())
        .detail("reason", reason.clone());
    revocation::revoke(
        &state,
        vec![target],
        &reason,
        &admin.actor.label(),
        vec![event],
        &admin.actor.ctx,
    )
    .await?;
    Ok(created(&CreatedRevocation { kind, value }))
}

/// A presented token: a refresh token ends its session, an access token is denied by
/// its jti until it expires.
async fn target_of_token(
    state: &AppState,
    token: &str,
) -> Result<(Target, &'static str, String), Problem> {
    if let Ok(refresh) = RefreshToken::parse(token) {
        let hash = refresh.hash();
        let found = state
            .db
            .run(move |conn| refresh_tokens::state(conn, &hash.0, 0.0))
            .await?
            .ok_or_else(|| Problem::not_found("no such refresh token"))?;
        return Ok((
            Target::Session(found.session_id),
            "sid",
            found.session_id.to_string(),
        ));
    }
    let keys = state.keys.snapshot();
    let claims = tokens::verify(&keys, token, &state.settings.issuer, None).map_err(|e| {
        // Well formed or not, no token of this issuer is there to revoke.
        Problem::not_found(format!("no live access token of this issuer: {e}"))
    })?;
    Ok((
        Target::AccessToken {
            jti: claims.jti.clone(),
            expires_at: claims.exp,
        },
        "jti",
        claims.jti,
    ))
}
