//! The bearer-token extractor (RFC 6750 §2.1) for Tessera's own API.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use uuid::Uuid;

use crate::auth::access::{self, Refused};
use crate::auth::tokens::{self, AccessClaims, InvalidToken};
use crate::error::Problem;
use crate::http::AppState;

/// A caller who presented a valid access token for Tessera's own API.
pub(crate) struct Caller {
    pub claims: AccessClaims,
}

impl Caller {
    /// The user behind the token; tokens of clients (no session) are refused.
    pub(crate) fn user_id(&self) -> Result<Uuid, Problem> {
        tokens::user_id(&self.claims)
            .ok_or_else(|| Problem::insufficient_scope("this endpoint needs a user's access token"))
    }

    pub(crate) fn session_id(&self) -> Result<Uuid, Problem> {
        tokens::session_id(&self.claims)
            .ok_or_else(|| Problem::insufficient_scope("this endpoint needs a user's access token"))
    }
}

/// `Authorization: Bearer <token>`; the token must be RFC 6750 `b64token` characters.
pub(crate) fn bearer_token(req: &HttpRequest) -> Result<String, Problem> {
    let missing = || Problem::bearer_required("an access token is required");
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value
        .to_str()
        .map_err(|_| Problem::invalid_token(&InvalidToken::Malformed))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    let token = token.trim();
    let b64token = !token.is_empty()
        && token
            .trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if !b64token {
        return Err(Problem::invalid_token(&InvalidToken::Malformed));
    }
    Ok(token.to_owned())
}

/// What a refused bearer token is answered with.
pub(crate) fn refusal(refused: Refused) -> Problem {
    match refused {
        Refused::Invalid(reason) => {
            tracing::debug!(%reason, "bearer token refused");
            Problem::invalid_token(&reason)
        }
        Refused::Unavailable(e) => Problem::unavailable(&e),
    }
}

impl FromRequest for Caller {
    type Error = Problem;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Problem>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.expect("AppState is registered");
            let token = token?;
            let claims = access::check(&state.tessera, &token)
                .await
                .map_err(refusal)?;
            Ok(Caller { claims })
        })
    }
}
