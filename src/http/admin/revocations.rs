use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{created, ok, parse_uuid, Admin, Page, PageQuery};
use chrono::{DateTime, Utc};

use crate::auth::revocation::{self, RevocationRow, Revoke};
use crate::domain::RevocationKind;
use crate::error::{Problem, ProblemBody};
use crate::http::body::{JsonBody, QueryString};
use crate::http::AppState;

/// A reason is free text for people, but short and printable.
pub(crate) fn check_reason(reason: &str) -> Result<String, Problem> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(Problem::bad_request(
            "reason must be 1 to 200 printable characters",
        ));
    }
    Ok(reason.to_owned())
}

/// One recorded revocation.
#[derive(Serialize, ToSchema)]
pub(crate) struct Revocation {
    id: uuid::Uuid,
    /// `jti`, `sid`, `user` or `client`.
    #[schema(value_type = String)]
    kind: RevocationKind,
    /// The token id, session id, user id or client id it denies.
    value: String,
    /// `user` and `client`: tokens issued before this time are denied.
    not_before: Option<DateTime<Utc>>,
    reason: String,
    /// Who made it: an admin's user id, `cli`, or the service itself.
    revoked_by: String,
    created_at: DateTime<Utc>,
    /// When the last token it can deny has expired.
    expires_at: DateTime<Utc>,
    /// When Redis confirmed it; `null` while it waits to be pushed.
    synced_at: Option<DateTime<Utc>>,
}

impl From<RevocationRow> for Revocation {
    fn from(r: RevocationRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            value: r.value,
            not_before: r.not_before,
            reason: r.reason,
            revoked_by: r.revoked_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            synced_at: r.synced_at,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
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
    responses((status = 200, body = Page<Revocation>), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/revocations")]
pub(crate) async fn list(
    _admin: Admin,
    query: QueryString,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let query: ListQuery = query.parse()?;
    let limit = query.page.limit()?;
    let kind = query
        .kind
        .as_deref()
        .map(str::parse::<RevocationKind>)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("kind {e}")))?;
    let before = query.page.id_cursor()?;
    let rows = revocation::list(&state.tessera, kind, before, limit + 1).await?;
    Ok(ok(
        &Page::from_rows(rows, limit, |r| r.id.to_string()).map(Revocation::from)
    ))
}

/// Exactly one of `token`, `jti` or `sid`, and a reason.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRevocation {
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
pub(crate) struct CreatedRevocation {
    #[schema(value_type = String)]
    kind: RevocationKind,
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
pub(crate) async fn create(
    admin: Admin,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body: CreateRevocation = body.parse()?;
    let reason = check_reason(&body.reason)?;
    let what = match (body.token, body.jti, body.sid) {
        (Some(token), None, None) => Revoke::Token(token),
        (None, Some(jti), None) => {
            let ok =
                !jti.is_empty() && jti.len() <= 128 && jti.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(Problem::bad_request(
                    "jti must be 1 to 128 visible ASCII characters",
                ));
            }
            Revoke::TokenId(jti)
        }
        (None, None, Some(sid)) => Revoke::Session(parse_uuid(&sid, "session")?),
        _ => {
            return Err(Problem::bad_request(
                "give exactly one of token, jti or sid",
            ))
        }
    };
    let (kind, value) =
        revocation::revoke_by_admin(&state.tessera, what, &reason, &admin.actor).await?;
    Ok(created(&CreatedRevocation { kind, value }))
}
