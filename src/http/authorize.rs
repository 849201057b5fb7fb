//! The authorization endpoint and Tessera's login and consent pages: `GET
//! /oauth/authorize` checks the request and shows the login page, the consent page, or
//! sends the browser back with a code; the pages post to `/oauth/authorize/login` and
//! `/oauth/authorize/consent`. The rules are `auth::authorize`'s; here are the cookies,
//! the CSRF checks and the pages.

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{get, post, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::oauth::request_context;
use super::pages::{self, Brand, ConsentPage, LoginPage, LOGIN_COOKIE, SESSION_COOKIE};
use crate::auth::authorize::{self as rules, AuthorizeError, Flow, Next, Refusal, FLOW_TTL};
use crate::auth::browser_sessions::{self, LiveBrowserSession};
use crate::auth::clients::Client;
use crate::auth::{AuthError, RequestContext};
use crate::domain::Password;
use crate::http::AppState;
use askama::Template;

/// The message for a failed sign-in: one for every reason (unknown name, wrong
/// password, disabled account).
const INVALID_LOGIN: &str = "Invalid username or password.";

fn unusable(state: &AppState, status: StatusCode, message: &str) -> HttpResponse {
    pages::message(
        state.settings(),
        status,
        "This sign-in cannot continue",
        message,
    )
}

/// An error of the service itself, as a page: 503 with Retry-After when a dependency
/// is down, else 500 (the cause goes to the log, never to the page).
fn failure(state: &AppState, err: &AuthError) -> HttpResponse {
    let unavailable = matches!(err, AuthError::Unavailable(_))
        || matches!(err, AuthError::Store(e) if crate::error::is_unavailable(e));
    if unavailable {
        tracing::warn!(error = %err, "a login page could not be served");
        return pages::message(
            state.settings(),
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "Signing in is not possible at the moment. Please try again in a few seconds.",
        );
    }
    tracing::error!(error = %err, "a login page failed");
    pages::message(
        state.settings(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Signing in failed on our side. Please try again.",
    )
}

fn expired_flow(state: &AppState) -> HttpResponse {
    unusable(
        state,
        StatusCode::BAD_REQUEST,
        "This sign-in page has expired or was altered. Go back to the app and sign in again.",
    )
}

/// The nonce in the browser's login cookie, if it has one of the right shape.
fn login_nonce(req: &HttpRequest) -> Option<String> {
    req.cookie(LOGIN_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 22 && URL_SAFE_NO_PAD.decode(v).is_ok())
}

async fn browser_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<LiveBrowserSession>, AuthError> {
    let cookie = req.cookie(SESSION_COOKIE);
    browser_sessions::find(&state.tessera, cookie.as_ref().map(|c| c.value())).await
}

/// RFC 6749 §4.1.1 and OpenID Connect Core §3.1.2.1: starts (or, for a browser that is
/// signed in, finishes at once) an authorization-code flow.
#[get("/oauth/authorize")]
pub(crate) async fn start(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string());
    begin(&req, &state, pairs.ok(), StatusCode::FOUND).await
}

/// The same request, form-encoded in a POST (OpenID Connect Core §3.1.2.1).
#[post("/oauth/authorize")]
pub(crate) async fn start_posted(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let pairs = read_form::<Vec<(String, String)>>(&state, &req, body).ok();
    begin(&req, &state, pairs, StatusCode::SEE_OTHER).await
}

async fn begin(
    req: &HttpRequest,
    state: &AppState,
    pairs: Option<Vec<(String, String)>>,
    redirect_status: StatusCode,
) -> HttpResponse {
    let Some(pairs) = pairs else {
        return unusable(
            state,
            StatusCode::BAD_REQUEST,
            "The request's parameters cannot be read.",
        );
    };
    let request_uri = pairs
        .iter()
        .find(|(k, _)| k == "request_uri")
        .map(|(_, v)| v.clone());
    let parsed = match request_uri {
        // RFC 9126 §4: a pushed request, brought back with its client_id.
        Some(uri) => {
            let client_id = pairs
                .iter()
                .find(|(k, _)| k == "client_id")
                .map(|(_, v)| v.as_str());
            rules::pulled(&state.tessera, client_id, &uri).await
        }
        None => rules::parse_request(&state.tessera, pairs).await,
    };
    let (client, flow) = match parsed {
        Ok(parsed) => parsed,
        Err(AuthorizeError::Refused(Refusal::Page(message))) => {
            return unusable(state, StatusCode::BAD_REQUEST, &message)
        }
        Err(AuthorizeError::Refused(Refusal::Redirect(refused))) => {
            return pages::redirect(redirect_status, &refused.location).finish()
        }
        Err(AuthorizeError::Auth(e)) => return failure(state, &e),
    };
    let ctx = request_context(req);
    let session = match browser_session(state, req).await {
        Ok(session) => session,
        Err(e) => return failure(state, &e),
    };
    match rules::proceed(&state.tessera, &client, &flow, session, &ctx).await {
        Ok(next) => show(state, req, &client, &flow, next, redirect_status, true),
        Err(e) => failure(state, &e),
    }
}

/// The page (or redirect) for the next step of a flow.
fn show(
    state: &AppState,
    req: &HttpRequest,
    client: &Client,
    flow: &Flow,
    next: Next,
    redirect_status: StatusCode,
    consent_in_place: bool,
) -> HttpResponse {
    match next {
        Next::Redirect(location) => pages::redirect(redirect_status, &location).finish(),
        Next::SignIn => login_page(state, req, client, flow, StatusCode::OK, None, None),
        Next::Consent { session } => {
            if !consent_in_place {
                // After a form post, the consent page is a page of its own (so a reload
                // does not post the password again).
                let sealed = sealed(state, flow);
                let Ok(sealed) = sealed else {
                    return failure(state, &sealed.unwrap_err());
                };
                return pages::redirect(
                    StatusCode::SEE_OTHER,
                    &format!("/oauth/authorize/consent?flow={sealed}"),
                )
                .finish();
            }
            consent_page(state, client, flow, &session)
        }
    }
}

fn sealed(state: &AppState, flow: &Flow) -> Result<String, AuthError> {
    state.tessera.seal_flow(flow)
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    client: &Client,
    flow: &Flow,
    status: StatusCode,
    typed_username: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    let sealed = match sealed(state, flow) {
        Ok(sealed) => sealed,
        Err(e) => return failure(state, &e),
    };
    // The login cookie's nonce binds the form's CSRF token to this browser; one nonce
    // serves every tab, so a person may start two sign-ins at once.
    let nonce = login_nonce(req).unwrap_or_else(|| {
        let mut bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
        URL_SAFE_NO_PAD.encode(bytes)
    });
    let csrf = match state.tessera.form_csrf("login", nonce.as_bytes(), &sealed) {
        Ok(csrf) => csrf,
        Err(e) => return failure(state, &e),
    };
    let username = typed_username.or(flow.login_hint.as_deref()).unwrap_or("");
    let html = LoginPage {
        brand: Brand::of(state.settings()),
        client_name: &client.name,
        flow: &sealed,
        csrf: &csrf,
        username,
        error,
    }
    .render();
    let mut res = pages::page(state.settings(), status, html, Some(&flow.redirect_uri));
    // Set again on every page, so it outlives the newest flow it serves.
    let _ = res.add_cookie(&pages::cookie(LOGIN_COOKIE, &nonce, FLOW_TTL));
    res
}

fn consent_page(
    state: &AppState,
    client: &Client,
    flow: &Flow,
    session: &LiveBrowserSession,
) -> HttpResponse {
    let sealed = match sealed(state, flow) {
        Ok(sealed) => sealed,
        Err(e) => return failure(state, &e),
    };
    let csrf = match state
        .tessera
        .form_csrf("consent", session.id.as_bytes(), &sealed)
    {
        Ok(csrf) => csrf,
        Err(e) => return failure(state, &e),
    };
    let html = ConsentPage {
        brand: Brand::of(state.settings()),
        client_name: &client.name,
        username: &session.username,
        scopes: flow
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(pages::describe_scope)
            .collect(),
        flow: &sealed,
        csrf: &csrf,
    }
    .render();
    pages::page(
        state.settings(),
        StatusCode::OK,
        html,
        Some(&flow.redirect_uri),
    )
}

/// A posted page form: at most this many bytes, form-encoded.
fn read_form<T: for<'de> Deserialize<'de>>(
    state: &AppState,
    req: &HttpRequest,
    body: Result<Bytes, actix_web::Error>,
) -> Result<T, Box<HttpResponse>> {
    let bad = || {
        Box::new(unusable(
            state,
            StatusCode::BAD_REQUEST,
            "The form could not be read. Go back to the app and sign in again.",
        ))
    };
    let body = body.map_err(|_| bad())?;
    let form_encoded = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form_encoded {
        return Err(bad());
    }
    serde_urlencoded::from_bytes(&body).map_err(|_| bad())
}

/// The flow a form carries, with the client it is for (as that client is now).
async fn open_flow(state: &AppState, sealed: &str) -> Result<(Client, Flow), Box<HttpResponse>> {
    let flow = state
        .tessera
        .open_flow(sealed)
        .map_err(|e| Box::new(failure(state, &e)))?
        // A pushed request opens at /oauth/authorize only.
        .filter(|f| !f.pushed)
        .ok_or_else(|| Box::new(expired_flow(state)))?;
    let client = Client::current(&state.tessera, &flow.client_id)
        .await
        .map_err(|e| Box::new(failure(state, &e)))?
        // A client deleted, or its redirect URI removed, since the flow began.
        .filter(|c| c.redirect_uri(&flow.redirect_uri).is_some())
        .ok_or_else(|| {
            unusable(
                state,
                StatusCode::BAD_REQUEST,
                "The app that sent you here is no longer registered with this service.",
            )
        })?;
    Ok((client, flow))
}

#[derive(Deserialize)]
struct LoginForm {
    flow: String,
    csrf: String,
    username: String,
    password: String,
}

/// The login page's form: checks the CSRF token, then the password (the password
/// grant's throttling and audit), starts the browser session and goes on with the flow.
#[post("/oauth/authorize/login")]
pub(crate) async fn login(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form: LoginForm = match read_form(&state, &req, body) {
        Ok(form) => form,
        Err(res) => return *res,
    };
    let (client, mut flow) = match open_flow(&state, &form.flow).await {
        Ok(opened) => opened,
        Err(res) => return *res,
    };
    let csrf_ok = login_nonce(&req).is_some_and(|nonce| {
        state
            .tessera
            .form_csrf_matches("login", nonce.as_bytes(), &form.flow, &form.csrf)
    });
    if !csrf_ok {
        return unusable(
            &state,
            StatusCode::FORBIDDEN,
            "This form was not sent from this browser's sign-in page. Go back to the app and sign in again.",
        );
    }
    let ctx = request_context(&req);
    let typed = form.username.trim();
    let again = |status: StatusCode, message: &str| {
        login_page(
            &state,
            &req,
            &client,
            &flow,
            status,
            Some(typed),
            Some(message),
        )
    };
    if typed.is_empty() || form.password.is_empty() {
        return again(StatusCode::BAD_REQUEST, "Enter your username and password.");
    }
    let password = match Password::parse(form.password) {
        Ok(password) => password,
        Err(_) => return again(StatusCode::BAD_REQUEST, INVALID_LOGIN),
    };
    let current = match browser_session(&state, &req).await {
        Ok(current) => current,
        Err(e) => return failure(&state, &e),
    };
    let signed_in = match browser_sessions::sign_in(
        &state.tessera,
        &client,
        typed,
        password,
        current.as_ref(),
        &ctx,
    )
    .await
    {
        Ok(signed_in) => signed_in,
        Err(AuthError::InvalidCredentials) => return again(StatusCode::BAD_REQUEST, INVALID_LOGIN),
        Err(AuthError::TooManyAttempts { retry_after_secs }) => {
            let mut res = again(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too many failed attempts. Try again in {retry_after_secs} seconds."),
            );
            if let Ok(value) = retry_after_secs.to_string().parse() {
                res.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, value);
            }
            return res;
        }
        Err(e) => return failure(&state, &e),
    };
    // Signed in on this flow: prompt=login and max_age are satisfied.
    flow.force_login = false;
    flow.max_age = None;
    let next = rules::proceed(
        &state.tessera,
        &client,
        &flow,
        Some(signed_in.session),
        &ctx,
    )
    .await;
    let mut res = match next {
        Ok(next) => show(
            &state,
            &req,
            &client,
            &flow,
            next,
            StatusCode::SEE_OTHER,
            false,
        ),
        Err(e) => failure(&state, &e),
    };
    let _ = res.add_cookie(&pages::cookie(
        SESSION_COOKIE,
        signed_in.cookie.expose_secret(),
        state.settings().login_page.session_ttl,
    ));
    res
}

#[derive(Deserialize)]
struct FlowQuery {
    flow: String,
}

/// The consent page of a flow (where the login form leads when the app is a third
/// party's); a browser that is not signed in any more gets the login page instead.
#[get("/oauth/authorize/consent")]
pub(crate) async fn consent_page_of_flow(
    req: HttpRequest,
    query: Result<web::Query<FlowQuery>, actix_web::Error>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(query) = query else {
        return expired_flow(&state);
    };
    let (client, flow) = match open_flow(&state, &query.flow).await {
        Ok(opened) => opened,
        Err(res) => return *res,
    };
    let session = match browser_session(&state, &req).await {
        Ok(session) => session,
        Err(e) => return failure(&state, &e),
    };
    let ctx = request_context(&req);
    match rules::proceed(&state.tessera, &client, &flow, session, &ctx).await {
        Ok(next) => show(&state, &req, &client, &flow, next, StatusCode::FOUND, true),
        Err(e) => failure(&state, &e),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    flow: String,
    csrf: String,
    decision: String,
}

/// The consent page's form: allow (remembered) or deny.
#[post("/oauth/authorize/consent")]
pub(crate) async fn consent(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let form: ConsentForm = match read_form(&state, &req, body) {
        Ok(form) => form,
        Err(res) => return *res,
    };
    let (client, flow) = match open_flow(&state, &form.flow).await {
        Ok(opened) => opened,
        Err(res) => return *res,
    };
    let session = match browser_session(&state, &req).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return unusable(
                &state,
                StatusCode::FORBIDDEN,
                "You are not signed in any more. Go back to the app and sign in again.",
            )
        }
        Err(e) => return failure(&state, &e),
    };
    let csrf_ok =
        state
            .tessera
            .form_csrf_matches("consent", session.id.as_bytes(), &form.flow, &form.csrf);
    if !csrf_ok {
        return unusable(
            &state,
            StatusCode::FORBIDDEN,
            "This form was not sent from this browser's consent page. Go back to the app and sign in again.",
        );
    }
    let allowed = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => return unusable(&state, StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    let ctx: RequestContext = request_context(&req);
    match rules::answer_consent(&state.tessera, &client, &flow, &session, allowed, &ctx).await {
        Ok(location) => pages::redirect(StatusCode::SEE_OTHER, &location).finish(),
        Err(e) => failure(&state, &e),
    }
}
