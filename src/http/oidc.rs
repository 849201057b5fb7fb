//! OpenID Connect endpoints beside the authorization endpoint: userinfo (Core §5.3) and
//! RP-initiated logout (RP-Initiated Logout 1.0).

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{get, post, HttpRequest, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bearer::{self, Caller};
use super::oauth::request_context;
use super::pages::{self, Brand, LogoutPage, SESSION_COOKIE};
use crate::auth::browser_sessions;
use crate::auth::clients::Client;
use crate::error::{no_store, OAuthError, OAuthErrorBody, OAuthErrorCode, Problem};
use crate::http::AppState;

/// Core §5.3.2: claims about the signed-in user, as the token's scopes allow.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserInfo {
    /// The user's id, the `sub` of the ID token.
    sub: String,
    /// With the `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<String>,
    /// With the `profile` scope: when the account last changed (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
}

/// RFC 6750 §3 errors, as every endpoint under `/oauth/` answers: an RFC 6749-style
/// body (`invalid_token`, `insufficient_scope`) and the `WWW-Authenticate` challenge.
fn bearer_refusal(problem: Problem) -> HttpResponse {
    use actix_web::ResponseError;
    let code = match problem.status.as_u16() {
        401 => OAuthErrorCode::InvalidToken,
        403 => OAuthErrorCode::InsufficientScope,
        503 => OAuthErrorCode::TemporarilyUnavailable,
        _ => OAuthErrorCode::ServerError,
    };
    let mut err = OAuthError::new(code, problem.detail.clone());
    err.status = Some(problem.status);
    err.retry_after = problem.retry_after;
    let mut res = err.error_response();
    if let Some(challenge) = problem
        .www_authenticate
        .as_deref()
        .and_then(|c| actix_web::http::header::HeaderValue::from_str(c).ok())
    {
        res.headers_mut()
            .insert(actix_web::http::header::WWW_AUTHENTICATE, challenge);
    }
    res
}

async fn answer(req: &HttpRequest, state: &AppState) -> HttpResponse {
    user_info(req, state).await.unwrap_or_else(bearer_refusal)
}

async fn user_info(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, Problem> {
    let token = bearer::bearer_token(req)?;
    let claims = crate::auth::access::check_for_userinfo(&state.tessera, &token)
        .await
        .map_err(bearer::refusal)?;
    let caller = Caller { claims };
    if !caller.claims.has_scope("openid") {
        return Err(Problem::insufficient_scope(
            "userinfo needs an access token with the openid scope",
        ));
    }
    let user_id = caller.user_id()?;
    let user = crate::auth::users::profile(&state.tessera, user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| {
            Problem::unauthorized_bearer("the account no longer exists or is disabled")
        })?;
    let profile = caller.claims.has_scope("profile");
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(res.json(UserInfo {
        sub: user.id.to_string(),
        preferred_username: profile.then_some(user.username),
        updated_at: profile.then_some(user.updated_at.timestamp()),
    }))
}

/// OpenID Connect userinfo: who the access token's user is.
#[utoipa::path(
    tag = "oidc",
    operation_id = "userinfo",
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserInfo),
        (status = 401, description = "invalid_token: missing, invalid, expired or revoked (RFC 6750, with WWW-Authenticate)", body = OAuthErrorBody),
        (status = 403, description = "insufficient_scope: not a user's token, or no openid scope", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: the denylist cannot be read", body = OAuthErrorBody),
    )
)]
#[get("/oauth/userinfo")]
pub(crate) async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    answer(&req, &state).await
}

/// The same as `GET`, for clients that post (Core §5.3.1); the token is in the
/// `Authorization` header.
#[utoipa::path(
    tag = "oidc",
    operation_id = "userinfo_post",
    security(("bearer" = [])),
    responses(
        (status = 200, body = UserInfo),
        (status = 401, description = "invalid_token: missing, invalid, expired or revoked (RFC 6750, with WWW-Authenticate)", body = OAuthErrorBody),
        (status = 403, description = "insufficient_scope: not a user's token, or no openid scope", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: the denylist cannot be read", body = OAuthErrorBody),
    )
)]
#[post("/oauth/userinfo")]
pub(crate) async fn userinfo_post(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    answer(&req, &state).await
}

#[derive(Default, Deserialize)]
struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
    /// Only on the confirmation form.
    csrf: Option<String>,
}

fn logout_error(state: &AppState, message: &str) -> HttpResponse {
    pages::message(
        state.settings(),
        StatusCode::BAD_REQUEST,
        "Sign-out failed",
        message,
    )
}

fn signed_out(state: &AppState) -> HttpResponse {
    pages::message(
        state.settings(),
        StatusCode::OK,
        "You are signed out",
        "You have signed out. You can close this window.",
    )
}

/// Where to go after signing out: the registered URI with `state`, or Tessera's page.
fn after_sign_out(
    state: &AppState,
    target: Option<(&str, Option<&str>)>,
    status: StatusCode,
) -> HttpResponse {
    let mut res = match target {
        Some((uri, state_param)) => {
            let mut url = url::Url::parse(uri).expect("registered URIs are absolute");
            if let Some(s) = state_param {
                url.query_pairs_mut().append_pair("state", s);
            }
            pages::redirect(status, url.as_str()).finish()
        }
        None => signed_out(state),
    };
    let _ = res.add_cookie(&pages::removal(SESSION_COOKIE));
    res
}

/// RP-initiated logout, from a GET (the app's link) or the confirmation form's POST.
async fn logout(
    req: HttpRequest,
    state: &AppState,
    params: LogoutParams,
    confirmed: bool,
    status: StatusCode,
) -> HttpResponse {
    let tessera = &state.tessera;
    let hint =
        match params.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            Some(raw) => match tessera.id_token_hint(raw) {
                Some(claims) => Some(claims),
                None => return logout_error(
                    state,
                    "The app's sign-out request carries an ID token this service did not issue.",
                ),
            },
            None => None,
        };
    let client_id = match (&hint, params.client_id.as_deref().filter(|c| !c.is_empty())) {
        (Some(h), Some(c)) if h.aud != c => {
            return logout_error(state, "The sign-out request names two different apps.")
        }
        (Some(h), _) => Some(h.aud.clone()),
        (None, c) => c.map(str::to_owned),
    };
    let client = match &client_id {
        Some(id) => match Client::current(tessera, id).await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(error = %e, "logout: the client could not be read");
                return pages::message(
                    state.settings(),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Please try again in a few seconds.",
                );
            }
        },
        None => None,
    };
    // Only a registered URI of the app that asked (no open redirect).
    let target = match params
        .post_logout_redirect_uri
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .and_then(|c| c.post_logout_redirect_uris.iter().find(|r| r.matches(uri)));
            match registered {
                Some(_) => Some(uri.to_owned()),
                None => return logout_error(
                    state,
                    "The app asked to go to an address after sign-out that it has not registered.",
                ),
            }
        }
    };
    let target_ref = target.as_deref().map(|t| (t, params.state.as_deref()));
    let cookie = req.cookie(SESSION_COOKIE);
    let session = match browser_sessions::find(tessera, cookie.as_ref().map(|c| c.value())).await {
        Ok(session) => session,
        Err(e) => {
            tracing::warn!(error = %e, "logout: the browser session could not be read");
            return pages::message(
                state.settings(),
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again in a few seconds.",
            );
        }
    };
    let ctx = request_context(&req);
    // The app's ID token says which sign-in it wants ended. It is ended at once only
    // when it is this browser's own: an ID token can be replayed by anyone who holds
    // one (the app, or a page linking here with its own), and must not end someone
    // else's sign-in, or this browser's when it belongs to another. Otherwise the
    // person is asked, as without a hint.
    let hinted = hint.as_ref().and_then(|h| {
        session
            .as_ref()
            .filter(|s| s.id.to_string() == h.sid && s.user_id.to_string() == h.sub)
    });
    if let (Some(hint), Some(own)) = (&hint, hinted) {
        if let Err(e) = browser_sessions::sign_out(tessera, own.id, Some(&hint.aud), &ctx).await {
            tracing::warn!(error = %e, "logout failed");
            return pages::message(
                state.settings(),
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Signing out did not finish. Please try again in a few seconds.",
            );
        }
        return after_sign_out(state, target_ref, status);
    }
    let Some(session) = session else {
        // Nobody is signed in here: nothing to end.
        return after_sign_out(state, target_ref, status);
    };
    // Without this browser's ID token, anyone's page could link here: ask, with a
    // CSRF-bound form.
    let csrf_binding = session.id.as_bytes().to_vec();
    if confirmed {
        let ok = params
            .csrf
            .as_deref()
            .is_some_and(|c| tessera.form_csrf_matches("logout", &csrf_binding, "", c));
        if !ok {
            return pages::message(
                state.settings(),
                StatusCode::FORBIDDEN,
                "Sign-out failed",
                "This form was not sent from this browser's sign-out page.",
            );
        }
        if let Err(e) =
            browser_sessions::sign_out(tessera, session.id, client_id.as_deref(), &ctx).await
        {
            tracing::warn!(error = %e, "logout failed");
            return pages::message(
                state.settings(),
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Signing out did not finish. Please try again in a few seconds.",
            );
        }
        return after_sign_out(state, target_ref, status);
    }
    let csrf = match tessera.form_csrf("logout", &csrf_binding, "") {
        Ok(csrf) => csrf,
        Err(e) => {
            tracing::error!(error = %e, "logout page");
            return pages::message(
                state.settings(),
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
            );
        }
    };
    let html = LogoutPage {
        brand: Brand::of(state.settings()),
        username: &session.username,
        csrf: &csrf,
        post_logout_redirect_uri: target.as_deref(),
        state: params.state.as_deref(),
        client_id: client_id.as_deref(),
    }
    .render();
    pages::page(state.settings(), StatusCode::OK, html, target.as_deref())
}

/// RP-initiated logout: with `id_token_hint`, signs out at once; without, asks first.
#[get("/oauth/logout")]
pub(crate) async fn logout_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Ok(params) = serde_urlencoded::from_str::<LogoutParams>(req.query_string()) else {
        return logout_error(&state, "The sign-out request's parameters cannot be read.");
    };
    logout(req, &state, params, false, StatusCode::FOUND).await
}

/// The sign-out confirmation form (and apps that post their logout request).
#[post("/oauth/logout")]
pub(crate) async fn logout_post(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = body
        .ok()
        .and_then(|b| serde_urlencoded::from_bytes::<LogoutParams>(&b).ok());
    let Some(params) = params else {
        return logout_error(&state, "The sign-out request's parameters cannot be read.");
    };
    // The confirmation form carries its CSRF token; an app's own post does not, and is
    // handled like its GET.
    let confirmed = params.csrf.is_some();
    logout(req, &state, params, confirmed, StatusCode::SEE_OTHER).await
}
