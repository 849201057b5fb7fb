//! The OAuth endpoints: `/oauth/token` (RFC 6749), `/oauth/revoke` (RFC 7009) and
//! `/oauth/introspect` (RFC 7662).

use actix_web::web::{self, Bytes};
use actix_web::{post, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{browser, form};
use crate::auth::grants::{self, Granted};
use crate::auth::introspection::ActiveToken;
use crate::auth::{clients, introspection, token_revocation, RequestContext};
use crate::domain::{GrantType, Password, RefreshToken, Scope, TokenType};
use crate::error::{no_store, OAuthError, OAuthErrorBody, OAuthErrorCode};
use crate::http::AppState;

/// A token request (RFC 6749 §4.1.3, §4.3, §4.4, §6). Every parameter any grant takes; each
/// grant checks the ones it needs. Form-encoded, or JSON for front ends.
#[derive(Deserialize, ToSchema)]
pub struct TokenParams {
    /// `authorization_code`, `password`, `refresh_token` or `client_credentials`.
    #[schema(required = true, value_type = GrantType, example = "password")]
    grant_type: Option<String>,
    /// For `password`.
    #[schema(min_length = 1)]
    username: Option<String>,
    /// For `password`; at most 1024 bytes (a password can be at most 72).
    #[schema(min_length = 1, max_length = 1024)]
    password: Option<String>,
    /// For `refresh_token`: `rt_` and 76 base64url characters. A browser-mode client
    /// sends it in its cookie instead.
    #[schema(pattern = "^rt_[A-Za-z0-9_-]{76}$")]
    refresh_token: Option<String>,
    /// For `authorization_code`: the code from the redirect (`ac_` and 43 base64url).
    #[schema(pattern = "^ac_[A-Za-z0-9_-]{43}$")]
    code: Option<String>,
    /// For `authorization_code`: the redirect URI of the authorization request.
    #[schema(min_length = 1, max_length = 256)]
    redirect_uri: Option<String>,
    /// For `authorization_code`: the PKCE verifier (RFC 7636), when the request had a
    /// challenge.
    #[schema(pattern = "^[A-Za-z0-9._~-]{43,128}$")]
    code_verifier: Option<String>,
    /// Space-separated; narrows what is granted.
    scope: Option<String>,
    /// A public client's id, or a confidential client's with `client_secret`
    /// (`client_secret_post`). Without it, the built-in public client `tessera`.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    client_id: Option<String>,
    #[schema(min_length = 1)]
    client_secret: Option<String>,
}

/// RFC 6749 §5.1.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    /// A JWT (RFC 9068, `typ: at+jwt`).
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 300)]
    expires_in: u64,
    /// A new one on every refresh; the previous one is spent. Absent for
    /// `client_credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    scope: String,
    /// An OpenID Connect ID token, for a code exchanged with the `openid` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
}

fn required(value: Option<String>, name: &str) -> Result<String, OAuthError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter `{name}`")))
}

fn requested_scope(raw: Option<&str>) -> Result<Option<Scope>, OAuthError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => Scope::parse(s)
            .map(Some)
            .map_err(|e| OAuthError::new(OAuthErrorCode::InvalidScope, e)),
    }
}

/// Where the request came from. Behind a reverse proxy that appends the client's
/// address to `X-Forwarded-For` (and `TESSERA_TRUST_FORWARDED_FOR=true`), the last
/// entry is the one that proxy saw; anything before it is the client's own claim.
pub(crate) fn request_context(req: &HttpRequest) -> RequestContext {
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect());
    let trust_forwarded = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings().http.trust_forwarded_for);
    let forwarded = trust_forwarded
        .then(|| {
            // A proxy appends to the last header line; earlier lines came from the client.
            req.headers()
                .get_all("x-forwarded-for")
                .last()?
                .to_str()
                .ok()
        })
        .flatten()
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok());
    RequestContext {
        ip: forwarded
            .or_else(|| req.peer_addr().map(|a| a.ip()))
            .map(|ip| ip.to_string()),
        user_agent,
    }
}

/// Issues tokens: the `authorization_code` (with PKCE), `password`, `refresh_token`
/// (rotating) and `client_credentials` grants.
#[utoipa::path(
    tag = "oauth",
    request_body(content(
        (TokenParams = "application/x-www-form-urlencoded"),
        (TokenParams = "application/json"),
    )),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Tokens; `Cache-Control: no-store`", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, invalid_scope, unauthorized_client, unsupported_grant_type", body = OAuthErrorBody),
        (status = 413, description = "invalid_request: the body is too large", body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
        (status = 429, description = "slow_down: too many failed logins (with Retry-After)", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable (with Retry-After)", body = OAuthErrorBody),
    )
)]
#[post("/oauth/token")]
pub(crate) async fn token(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params: TokenParams = form::parse_body(&req, body, state.settings().http.max_body_bytes)?;
    let grant_type = required(params.grant_type, "grant_type")?
        .parse::<GrantType>()
        .map_err(|_| {
            OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                format!(
                    "this grant_type is not supported; use {}",
                    GrantType::names(", ", " or ")
                ),
            )
        })?;
    let scope = requested_scope(params.scope.as_deref())?;
    let credentials =
        form::client_credentials(&req, params.client_id.as_deref(), params.client_secret)?;
    let ctx = request_context(&req);

    let granted = match grant_type {
        GrantType::AuthorizationCode => {
            let code = required(params.code, "code")?;
            let redirect_uri = required(params.redirect_uri, "redirect_uri")?;
            let client = authenticate(&req, &state, credentials).await?;
            let granted = grants::authorization_code(
                &state.tessera,
                &client,
                grants::CodeExchange {
                    code: &code,
                    redirect_uri: Some(&redirect_uri),
                    code_verifier: params.code_verifier.as_deref().filter(|v| !v.is_empty()),
                },
                &ctx,
            )
            .await?;
            (client, granted)
        }
        GrantType::Password => {
            let username = required(params.username, "username")?;
            let password = Password::parse(required(params.password, "password")?)
                .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
            let client = authenticate(&req, &state, credentials).await?;
            let granted = grants::password(
                &state.tessera,
                &client,
                &username,
                password,
                scope.as_ref(),
                &ctx,
            )
            .await?;
            (client, granted)
        }
        GrantType::RefreshToken => {
            let client = authenticate(&req, &state, credentials).await?;
            let raw = if client.browser_mode {
                if params.refresh_token.is_some() {
                    return Err(OAuthError::invalid_request(
                        "this client keeps its refresh token in a cookie, not in the body",
                    ));
                }
                browser::refresh_cookie(&req)
            } else {
                params.refresh_token
            };
            let presented = RefreshToken::parse(&required(raw, "refresh_token")?)
                .map_err(OAuthError::invalid_request)?;
            let granted =
                grants::refresh(&state.tessera, &client, presented, scope.as_ref(), &ctx).await?;
            (client, granted)
        }
        GrantType::ClientCredentials => {
            let client = authenticate(&req, &state, credentials).await?;
            let granted = grants::client_credentials(&state.tessera, &client, scope.as_ref())?;
            (client, granted)
        }
    };
    Ok(token_response(&state, &granted.0, &granted.1))
}

/// Authenticates the client; a browser-mode client must also pass the CSRF check.
async fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    credentials: clients::ClientCredentials,
) -> Result<clients::Client, OAuthError> {
    let client = clients::authenticate(&state.tessera, credentials).await?;
    if client.browser_mode {
        browser::check_csrf(req, state.settings())?;
    }
    Ok(client)
}

/// A pushed authorization request (RFC 9126 §2.1): the parameters of
/// `/oauth/authorize`, sent by the client itself, authenticated as at the token
/// endpoint. Form-encoded only.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)] // A schema only: the body is read as its pairs.
pub(crate) struct PushedRequest {
    #[schema(required = true, example = "code")]
    response_type: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    client_id: Option<String>,
    #[schema(min_length = 1)]
    client_secret: Option<String>,
    /// One of the client's registered redirect URIs.
    #[schema(required = true, min_length = 1, max_length = 256)]
    redirect_uri: Option<String>,
    scope: Option<String>,
    #[schema(max_length = 1024)]
    state: Option<String>,
    #[schema(max_length = 1024)]
    nonce: Option<String>,
    /// RFC 7636 S256 challenge; required of public clients.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    code_challenge: Option<String>,
    #[schema(example = "S256")]
    code_challenge_method: Option<String>,
    /// `none`, `login`, `consent` (space-separated).
    prompt: Option<String>,
    #[schema(minimum = 0)]
    max_age: Option<u64>,
    #[schema(max_length = 1024)]
    login_hint: Option<String>,
}

/// RFC 9126 §2.2.
#[derive(Serialize, ToSchema)]
pub(crate) struct PushedResponse {
    /// For the browser: `/oauth/authorize?client_id=...&request_uri=...`.
    #[schema(example = "urn:ietf:params:oauth:request_uri:AbC...")]
    request_uri: String,
    /// Seconds the request_uri can be used.
    #[schema(example = 60)]
    expires_in: u64,
}

/// RFC 9126 pushed authorization request: the client sends the authorization request
/// here first (authenticated, off the browser), and sends the browser to
/// `/oauth/authorize` with only `client_id` and the `request_uri` it gets back.
#[utoipa::path(
    tag = "oauth",
    request_body(content((PushedRequest = "application/x-www-form-urlencoded"))),
    security((), ("client_basic" = [])),
    responses(
        (status = 201, description = "The request_uri; `Cache-Control: no-store`", body = PushedResponse),
        (status = 400, description = "invalid_request, invalid_scope, unauthorized_client, unsupported_response_type", body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
    )
)]
#[post("/oauth/par")]
pub(crate) async fn pushed_authorization_request(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    use crate::auth::authorize::{self, AuthorizeError, Refusal, PUSHED_TTL};
    let limit = state.settings().http.max_body_bytes;
    // RFC 9126 §2.1: form-encoded, as at the token endpoint.
    if super::body::media_type(&req) != super::body::MediaType::Form {
        return Err(OAuthError::invalid_request(
            "a pushed authorization request is application/x-www-form-urlencoded",
        ));
    }
    let pairs: Vec<(String, String)> = form::parse_body(&req, body, limit)?;
    let secret = pairs
        .iter()
        .find(|(k, _)| k == "client_secret")
        .map(|(_, v)| v.clone());
    let client_id = pairs
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.clone());
    let credentials = form::client_credentials(&req, client_id.as_deref(), secret)?;
    let client = authenticate(&req, &state, credentials).await?;
    let pairs = pairs
        .into_iter()
        .filter(|(k, _)| k != "client_secret")
        .collect();
    let request_uri = match authorize::push(&state.tessera, &client, pairs).await {
        Ok(uri) => uri,
        Err(AuthorizeError::Refused(Refusal::Page(why))) => {
            return Err(OAuthError::invalid_request(why))
        }
        Err(AuthorizeError::Refused(Refusal::Redirect(refused))) => {
            let code = match refused.error.as_str() {
                "invalid_scope" => OAuthErrorCode::InvalidScope,
                "unauthorized_client" => OAuthErrorCode::UnauthorizedClient,
                "unsupported_response_type" => OAuthErrorCode::UnsupportedResponseType,
                _ => OAuthErrorCode::InvalidRequest,
            };
            return Err(OAuthError::new(code, refused.description));
        }
        Err(AuthorizeError::Auth(e)) => return Err(e.into()),
    };
    let mut res = HttpResponse::Created();
    no_store(&mut res);
    Ok(res.json(PushedResponse {
        request_uri,
        expires_in: PUSHED_TTL.as_secs(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct RevokeParams {
    /// An access token or a refresh token. Only a browser-mode client may leave it out
    /// on revocation: then the refresh token in its cookie is revoked.
    #[schema(required = true, value_type = String, min_length = 1)]
    token: Option<String>,
    /// `access_token` or `refresh_token`: which kind to try first (others are ignored).
    token_type_hint: Option<String>,
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    client_id: Option<String>,
    #[schema(min_length = 1)]
    client_secret: Option<String>,
}

/// RFC 7009 token revocation. A refresh token ends its whole session; an access token
/// is denied until it expires. Unknown and already revoked tokens answer 200 too.
#[utoipa::path(
    tag = "oauth",
    request_body(content(
        (RevokeParams = "application/x-www-form-urlencoded"),
        (RevokeParams = "application/json"),
    )),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "invalid_request; unauthorized_client when the token was issued to another client", body = OAuthErrorBody),
        (status = 401, description = "invalid_client", body = OAuthErrorBody),
    )
)]
#[post("/oauth/revoke")]
pub(crate) async fn revoke(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params: RevokeParams = form::parse_body(&req, body, state.settings().http.max_body_bytes)?;
    let credentials =
        form::client_credentials(&req, params.client_id.as_deref(), params.client_secret)?;
    let client = authenticate(&req, &state, credentials).await?;
    // A browser-mode client logs out by revoking the refresh token in its cookie.
    let raw = match params.token {
        None if client.browser_mode => browser::refresh_cookie(&req),
        raw => raw,
    };
    let presented = required(raw, "token")?;
    token_revocation::revoke_presented(
        &state.tessera,
        &client,
        &presented,
        // An unknown hint is ignored (RFC 7009 §2.1).
        params.token_type_hint.as_deref().and_then(TokenType::parse),
        &request_context(&req),
    )
    .await?;
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    if client.browser_mode {
        browser::clear_refresh_cookie(&mut res);
    }
    Ok(res.finish())
}

/// RFC 7662 §2.2 response: `active`, and for an active token its members.
#[derive(Serialize, ToSchema)]
pub(crate) struct IntrospectionResponse {
    active: bool,
    #[serde(flatten)]
    token: Option<ActiveToken>,
}

/// RFC 7662 token introspection, for authenticated confidential clients. Answers from
/// signature, expiry and the denylist; refresh tokens introspect too.
#[utoipa::path(
    tag = "oauth",
    request_body(content(
        (RevokeParams = "application/x-www-form-urlencoded"),
        (RevokeParams = "application/json"),
    )),
    security(("client_basic" = [])),
    responses(
        (status = 200, description = "`{\"active\": false}` for expired, revoked, spent, malformed or foreign tokens", body = IntrospectionResponse),
        (status = 400, description = "invalid_request", body = OAuthErrorBody),
        (status = 401, description = "invalid_client: not an authenticated confidential client", body = OAuthErrorBody),
        (status = 503, description = "temporarily_unavailable: the denylist cannot be read", body = OAuthErrorBody),
    )
)]
#[post("/oauth/introspect")]
pub(crate) async fn introspect(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    // Same parameters as revocation (RFC 7662 §2.1 mirrors RFC 7009 §2.1).
    let params: RevokeParams = form::parse_body(&req, body, state.settings().http.max_body_bytes)?;
    let presented = required(params.token, "token")?;
    let credentials =
        form::client_credentials(&req, params.client_id.as_deref(), params.client_secret)?;
    let client = clients::authenticate(&state.tessera, credentials).await?;
    let hint = params.token_type_hint.as_deref().and_then(TokenType::parse);
    let found = introspection::introspect(&state.tessera, &client, &presented, hint).await?;
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(res.json(IntrospectionResponse {
        active: found.is_some(),
        token: found,
    }))
}

fn token_response(state: &AppState, client: &clients::Client, granted: &Granted) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    let mut refresh_token = granted
        .refresh_token
        .as_ref()
        .map(|t| t.expose().to_owned());
    if client.browser_mode {
        if let Some(refresh) = refresh_token.take() {
            browser::set_refresh_cookie(
                &mut res,
                &refresh,
                state.settings().tokens.refresh_idle_ttl,
            );
        }
    }
    res.json(TokenResponse {
        access_token: granted.access.token.clone(),
        token_type: "Bearer",
        expires_in: granted.access.expires_in,
        refresh_token,
        scope: granted.scope.to_string(),
        id_token: granted.id_token.clone(),
    })
}
