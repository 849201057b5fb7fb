//! actix-web integration: extractors that verify `Authorization: Bearer` (RFC 6750
//! §2.1) and answer refusals the way RFC 6750 §3 and RFC 9457 say.
//!
//! Register the verifier as app data (`App::new().app_data(web::Data::new(verifier))`;
//! a bare `.app_data(verifier)` works too), then take [`BearerClaims`] (offline
//! check) or [`OnlineBearerClaims`] (offline check, then introspection) in a handler.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::{Claims, InsufficientScope, Verifier, VerifyError};

/// The claims of a request's bearer token, verified offline against the JWKS.
///
/// Refusals answer 401 with `WWW-Authenticate: Bearer error="invalid_token"`; when the
/// keys are unavailable, 503 with `Retry-After`. Both with a problem+json body.
#[derive(Clone, Debug)]
pub struct BearerClaims(pub Claims);

/// Like [`BearerClaims`], and then Tessera is asked whether the token is still active
/// ([`Verifier::verify_online`]): revoked tokens are refused at once, at the price of a
/// request to Tessera per call. Needs introspection settings on the verifier.
#[derive(Clone, Debug)]
pub struct OnlineBearerClaims(pub Claims);

impl Deref for BearerClaims {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl Deref for OnlineBearerClaims {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl FromRequest for BearerClaims {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, BearerError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = find_verifier(req).and_then(|v| Ok((bearer_token(req, &v)?, v)));
        Box::pin(async move {
            let (token, verifier) = found?;
            verifier
                .verify(&token)
                .await
                .map(BearerClaims)
                .map_err(|e| BearerError::refused(e, &verifier))
        })
    }
}

impl FromRequest for OnlineBearerClaims {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, BearerError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = find_verifier(req).and_then(|v| Ok((bearer_token(req, &v)?, v)));
        Box::pin(async move {
            let (token, verifier) = found?;
            verifier
                .verify_online(&token)
                .await
                .map(OnlineBearerClaims)
                .map_err(|e| BearerError::refused(e, &verifier))
        })
    }
}

fn find_verifier(req: &HttpRequest) -> Result<Verifier, BearerError> {
    req.app_data::<web::Data<Verifier>>()
        .map(|data| Verifier::clone(data))
        .or_else(|| req.app_data::<Verifier>().cloned())
        .ok_or(BearerError {
            kind: Kind::NoVerifier,
            retry_after: Duration::ZERO,
        })
}

/// `Authorization: Bearer <b64token>`; the scheme is case-insensitive (RFC 9110 §11.1).
fn bearer_token(req: &HttpRequest, verifier: &Verifier) -> Result<String, BearerError> {
    let refuse = |kind| BearerError {
        kind,
        retry_after: verifier.retry_after(),
    };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(refuse(Kind::MissingToken));
    };
    let value = value
        .to_str()
        .map_err(|_| refuse(Kind::Refused(VerifyError::Malformed)))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(refuse(Kind::MissingToken));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(refuse(Kind::Refused(VerifyError::Malformed)));
    }
    Ok(token.to_owned())
}

/// Why a request was not let through. The response follows RFC 6750 §3 (status and
/// `WWW-Authenticate`) with an RFC 9457 `application/problem+json` body.
#[derive(Debug)]
pub struct BearerError {
    kind: Kind,
    retry_after: Duration,
}

#[derive(Debug)]
enum Kind {
    /// No `Authorization: Bearer` header at all (RFC 6750 §3.1: no error code).
    MissingToken,
    Refused(VerifyError),
    /// The app forgot to register the verifier: our bug, 500.
    NoVerifier,
}

impl BearerError {
    fn refused(error: VerifyError, verifier: &Verifier) -> Self {
        if error.is_caller_fault() {
            tracing::debug!(reason = %error, "bearer token refused");
        } else {
            tracing::warn!(error = %crate::error::describe(&error), "bearer token could not be checked");
        }
        Self {
            kind: Kind::Refused(error),
            retry_after: verifier.retry_after(),
        }
    }

    /// The verification error, if the token was checked and refused.
    pub fn verify_error(&self) -> Option<&VerifyError> {
        match &self.kind {
            Kind::Refused(error) => Some(error),
            _ => None,
        }
    }
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::MissingToken => f.write_str("an access token is required"),
            Kind::Refused(error) => error.fmt(f),
            Kind::NoVerifier => f.write_str("no tessera_verifier::Verifier registered as app data"),
        }
    }
}

impl std::error::Error for BearerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Refused(error) => Some(error),
            _ => None,
        }
    }
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match &self.kind {
            Kind::MissingToken => StatusCode::UNAUTHORIZED,
            Kind::Refused(error) if error.is_caller_fault() => StatusCode::UNAUTHORIZED,
            Kind::Refused(_) => StatusCode::SERVICE_UNAVAILABLE,
            Kind::NoVerifier => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut res = HttpResponse::build(status);
        let detail = match &self.kind {
            Kind::MissingToken => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
                self.to_string()
            }
            Kind::Refused(error) if error.is_caller_fault() => {
                let description = error.to_string();
                res.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        r#"Bearer error="invalid_token", error_description="{}""#,
                        quoted_string_safe(&description)
                    ),
                ));
                description
            }
            Kind::Refused(error) => {
                res.insert_header((
                    header::RETRY_AFTER,
                    self.retry_after.as_secs().max(1).to_string(),
                ));
                // The generic text only; the cause (URLs, network errors) is logged.
                error.to_string()
            }
            Kind::NoVerifier => {
                tracing::error!("{self}");
                "internal error".to_owned()
            }
        };
        problem(res, status, &detail)
    }
}

impl ResponseError for InsufficientScope {
    fn status_code(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    /// RFC 6750 §3.1: 403 `insufficient_scope`, naming the scope that would do.
    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut res = HttpResponse::build(status);
        let description = self.to_string();
        res.insert_header((
            header::WWW_AUTHENTICATE,
            format!(
                r#"Bearer error="insufficient_scope", error_description="{}", scope="{}""#,
                quoted_string_safe(&description),
                quoted_string_safe(self.scope())
            ),
        ));
        problem(res, status, &description)
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
}

fn problem(
    mut res: actix_web::HttpResponseBuilder,
    status: StatusCode,
    detail: &str,
) -> HttpResponse {
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
    };
    res.content_type("application/problem+json")
        .body(serde_json::to_vec(&body).expect("a problem body serialises"))
}

/// RFC 6750 §3: error_description and scope are quoted strings without `"` or `\`.
fn quoted_string_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '?',
        })
        .collect()
}
