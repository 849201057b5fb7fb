//! Errors as HTTP responses, in one place. The OAuth endpoints answer with RFC 6749
//! §5.2 bodies; everything else with RFC 9457 `application/problem+json`. Unexpected
//! failures are logged with their cause chain and answered with a generic 500 that
//! carries the request id, never with internals.

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;

use crate::auth::keys::KeyError;
use crate::auth::tokens::InvalidToken;
use crate::auth::AuthError;
use crate::store::StoreError;
use crate::telemetry::current_request_id;

/// Seconds a client should wait before retrying when a dependency is down.
const RETRY_AFTER_UNAVAILABLE: u64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    /// RFC 6749 §4.1.2.1, in a pushed authorization request's answer.
    UnsupportedResponseType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
    /// Brute-force protection (registered by RFC 8628; 429 with Retry-After here).
    SlowDown,
    /// RFC 6750 §3.1, at userinfo: the access token is missing, invalid or revoked.
    InvalidToken,
    /// RFC 6750 §3.1, at userinfo: the token lacks the `openid` scope or a user.
    InsufficientScope,
}

/// An RFC 6749 error response.
#[derive(Debug)]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub description: String,
    pub retry_after: Option<u64>,
    /// A status other than the one the code implies (413, 431).
    pub status: Option<StatusCode>,
}

impl OAuthError {
    pub(crate) fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
            status: None,
        }
    }

    /// `invalid_request` with another status than 400.
    pub(crate) fn invalid_request_with_status(
        status: StatusCode,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status: Some(status),
            ..Self::invalid_request(description)
        }
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, description)
    }

    fn internal(cause: &dyn std::error::Error) -> Self {
        log_internal(cause);
        Self::new(
            OAuthErrorCode::ServerError,
            format!(
                "internal error (request id {})",
                current_request_id().unwrap_or_default()
            ),
        )
    }

    fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %cause, "dependency unavailable");
        Self {
            code: OAuthErrorCode::TemporarilyUnavailable,
            description: unavailable_detail(cause).to_owned(),
            retry_after: Some(RETRY_AFTER_UNAVAILABLE),
            status: None,
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.description)
    }
}

/// An RFC 6749 §5.2 error response.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct OAuthErrorBody {
    pub error: OAuthErrorCode,
    /// What was wrong, for the developer; never contains a secret.
    pub error_description: String,
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        if let Some(status) = self.status {
            return status;
        }
        match self.code {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            OAuthErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        no_store(&mut res);
        if self.code == OAuthErrorCode::InvalidClient {
            // RFC 6749 §5.2: 401 names the scheme the client should authenticate with.
            res.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="tessera""#));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(OAuthErrorBody {
            error: self.code,
            error_description: self.description.clone(),
        })
    }
}

impl From<AuthError> for OAuthError {
    fn from(err: AuthError) -> Self {
        use OAuthErrorCode::*;
        match err {
            AuthError::InvalidCredentials
            | AuthError::WrongPassword
            | AuthError::InvalidRefreshToken
            | AuthError::RefreshTokenReused => Self::new(InvalidGrant, err.to_string()),
            AuthError::InvalidGrant(d) => Self::new(InvalidGrant, d),
            AuthError::InvalidScope(d) => Self::new(InvalidScope, d),
            AuthError::UnauthorizedClient(d) => Self::new(UnauthorizedClient, d),
            AuthError::InvalidClient(d) => Self::new(InvalidClient, d),
            AuthError::InvalidRequest(d) | AuthError::Conflict(d) | AuthError::NotFound(d) => {
                Self::new(InvalidRequest, d)
            }
            AuthError::Store(ref e) if is_unavailable(e) => Self::unavailable(&err),
            AuthError::Unavailable(_) => Self::unavailable(&err),
            AuthError::TooManyAttempts { retry_after_secs } => Self {
                code: SlowDown,
                description: err.to_string(),
                retry_after: Some(retry_after_secs),
                status: None,
            },
            AuthError::Store(_) | AuthError::Keys(_) | AuthError::Hash(_) => Self::internal(&err),
        }
    }
}

/// What a 503 tells the caller: which dependency is missing, never its internals
/// (addresses, driver messages), which go to the log.
fn unavailable_detail(cause: &(dyn std::error::Error + 'static)) -> &'static str {
    use crate::auth::revocation::CheckError;
    const DATABASE: &str = "the database (PostgreSQL) is unreachable; retry later";
    const REVOCATION_LIST: &str = "the revocation list (Redis) is unreachable; retry later";
    const LOGIN_COUNTERS: &str =
        "the brute-force protection's counters (Redis) are unreachable; retry later";
    let mut next = Some(cause);
    while let Some(err) = next {
        if let Some(StoreError::Unavailable(_)) = err.downcast_ref::<StoreError>() {
            return DATABASE;
        }
        if let Some(CheckError::Unavailable(_)) = err.downcast_ref::<CheckError>() {
            return REVOCATION_LIST;
        }
        if let Some(AuthError::Unavailable(reason)) = err.downcast_ref::<AuthError>() {
            return if reason.starts_with(crate::auth::throttle::UNAVAILABLE_PREFIX) {
                LOGIN_COUNTERS
            } else {
                REVOCATION_LIST
            };
        }
        if let Some(AuthError::Store(StoreError::Unavailable(_))) = err.downcast_ref::<AuthError>()
        {
            return DATABASE;
        }
        next = err.source();
    }
    "the service is temporarily unavailable; retry shortly"
}

pub(crate) fn is_unavailable(err: &StoreError) -> bool {
    matches!(err, StoreError::Unavailable(_))
}

/// An answer given before any handler runs (404, 405, 431, a timeout): an RFC 6749
/// error under `/oauth/`, a problem document everywhere else.
pub(crate) fn error_response_for(path: &str, status: StatusCode, detail: &str) -> HttpResponse {
    let retry_after =
        (status == StatusCode::SERVICE_UNAVAILABLE).then_some(RETRY_AFTER_UNAVAILABLE);
    if path.starts_with("/oauth/") {
        let mut err = OAuthError::invalid_request_with_status(status, detail);
        if retry_after.is_some() {
            err.code = OAuthErrorCode::TemporarilyUnavailable;
        }
        err.retry_after = retry_after;
        err.error_response()
    } else {
        let mut problem = Problem::new(status, detail);
        problem.retry_after = retry_after;
        problem.error_response()
    }
}

/// Marks a response as never to be cached (RFC 6749 §5.1).
pub(crate) fn no_store(res: &mut HttpResponseBuilder) {
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    res.insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
}

fn log_internal(cause: &dyn std::error::Error) {
    let mut chain = cause.to_string();
    let mut source = cause.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = %chain, "internal error");
}

/// An RFC 9457 problem document.
#[derive(Debug)]
pub(crate) struct Problem {
    pub status: StatusCode,
    pub detail: String,
    pub retry_after: Option<u64>,
    pub www_authenticate: Option<String>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            retry_after: None,
            www_authenticate: None,
        }
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub(crate) fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 401 for a bearer token that is missing or no good (RFC 6750 §3.1).
    pub(crate) fn invalid_token(reason: &InvalidToken) -> Self {
        Self::unauthorized_bearer(&reason.to_string())
    }

    /// 401 for a request that carries no credentials at all (or none of the Bearer
    /// scheme): RFC 6750 §3.1 says the challenge then names no error.
    pub(crate) fn bearer_required(description: &str) -> Self {
        let mut p = Self::new(StatusCode::UNAUTHORIZED, description);
        p.www_authenticate = Some(r#"Bearer realm="tessera""#.to_owned());
        p
    }

    pub(crate) fn unauthorized_bearer(description: &str) -> Self {
        Self::bearer_challenge(StatusCode::UNAUTHORIZED, "invalid_token", description)
    }

    /// 403 for a valid token that lacks what the endpoint needs (RFC 6750 §3.1).
    pub(crate) fn insufficient_scope(description: &str) -> Self {
        Self::bearer_challenge(StatusCode::FORBIDDEN, "insufficient_scope", description)
    }

    fn bearer_challenge(status: StatusCode, error: &str, description: &str) -> Self {
        let mut p = Self::new(status, description);
        p.www_authenticate = Some(format!(
            r#"Bearer realm="tessera", error="{error}", error_description="{}""#,
            description.replace(['"', '\\'], "'")
        ));
        p
    }

    pub(crate) fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::warn!(error = %cause, "dependency unavailable");
        let mut p = Self::new(StatusCode::SERVICE_UNAVAILABLE, unavailable_detail(cause));
        p.retry_after = Some(RETRY_AFTER_UNAVAILABLE);
        p
    }

    pub(crate) fn internal(cause: &dyn std::error::Error) -> Self {
        log_internal(cause);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "an internal error occurred; quote the request id when reporting it",
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ProblemBody {
    /// Always `about:blank`: the status code says it all.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request id, also in the `X-Request-Id` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        no_store(&mut res);
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(challenge) = &self.www_authenticate {
            if let Ok(value) = HeaderValue::from_str(challenge) {
                res.insert_header((header::WWW_AUTHENTICATE, value));
            }
        }
        let body = ProblemBody {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            request_id: current_request_id(),
        };
        res.content_type("application/problem+json")
            .body(serde_json::to_vec(&body).expect("problem bodies serialise"))
    }
}

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Self {
        if is_unavailable(&err) {
            Self::unavailable(&err)
        } else {
            Self::internal(&err)
        }
    }
}

impl From<KeyError> for Problem {
    fn from(err: KeyError) -> Self {
        match err {
            KeyError::Store(e) => e.into(),
            other => Self::internal(&other),
        }
    }
}

impl From<AuthError> for Problem {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidCredentials => Self::new(StatusCode::UNAUTHORIZED, err.to_string()),
            AuthError::InvalidRequest(d) | AuthError::InvalidScope(d) => Self::bad_request(d),
            AuthError::Conflict(d) => Self::conflict(d),
            AuthError::NotFound(d) => Self::not_found(d),
            AuthError::Unavailable(_) => Self::unavailable(&err),
            AuthError::TooManyAttempts { retry_after_secs } => {
                let mut p = Self::new(StatusCode::TOO_MANY_REQUESTS, err.to_string());
                p.retry_after = Some(retry_after_secs);
                p
            }
            AuthError::WrongPassword => Self::forbidden(err.to_string()),
            AuthError::UnauthorizedClient(d) | AuthError::InvalidClient(d) => Self::forbidden(d),
            AuthError::Store(e) => e.into(),
            AuthError::Keys(e) => e.into(),
            other => Self::internal(&other),
        }
    }
}

/// Turns actix's own extractor failures (bad JSON, bad path) into problem documents.
pub(crate) fn json_error_handler(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError;
    let problem = match &err {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        ),
        JsonPayloadError::ContentType => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the request body must be application/json",
        ),
        JsonPayloadError::Deserialize(e) => Problem::bad_request(describe_json_error(e)),
        other => Problem::bad_request(format!("unreadable request body: {other}")),
    };
    problem.into()
}

/// What was wrong with a JSON body, without echoing the values sent: a password typed
/// into the wrong field must not come back in an error that a proxy or client may log.
pub(crate) fn describe_json_error(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let echoes_a_value =
        message.starts_with("invalid type") || message.starts_with("invalid value");
    if e.classify() != serde_json::error::Category::Data || !echoes_a_value {
        return format!("invalid JSON body: {message}");
    }
    let expected = message
        .rsplit_once(", expected ")
        .map(|(_, rest)| rest.rsplit_once(" at line ").map_or(rest, |(what, _)| what))
        .unwrap_or("another type");
    format!(
        "invalid JSON body: wrong type or value at line {} column {} (expected {expected})",
        e.line(),
        e.column()
    )
}

pub(crate) fn path_error_handler(
    err: actix_web::error::PathError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    Problem::not_found(format!("no such resource: {err}")).into()
}

pub(crate) fn query_error_handler(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    Problem::bad_request(format!("invalid query string: {err}")).into()
}

#[cfg(test)]
mod tests {
    use super::describe_json_error;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        roles: Vec<String>,
        limit: Option<u8>,
    }

    fn error_for(json: &str) -> String {
        describe_json_error(&serde_json::from_str::<Body>(json).unwrap_err())
    }

    #[test]
    fn a_value_of_the_wrong_type_is_not_echoed() {
        let message = error_for(r#"{"roles": "correct horse battery"}"#);
        assert!(!message.contains("correct horse"), "{message}");
        assert!(message.contains("expected a sequence"), "{message}");
    }

    #[test]
    fn a_value_that_mimics_the_message_is_not_echoed() {
        let message = error_for(r#"{"roles": "hunter2, expected nothing"}"#);
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!message.contains("nothing"), "{message}");
    }

    #[test]
    fn an_out_of_range_value_is_not_echoed() {
        let message = error_for(r#"{"roles": [], "limit": 40000}"#);
        assert!(!message.contains("40000"), "{message}");
    }

    #[test]
    fn a_missing_field_is_named() {
        assert!(error_for("{}").contains("missing field `roles`"));
    }
}
