//! The OAuth endpoints: `/oauth/token` (RFC 6749), `/oauth/revoke` (RFC 7009) and
//! `/oauth/introspect` (RFC 7662).

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::form;
use crate::auth::grants::{self, Granted};
use crate::auth::{clients, introspection, revocation, RequestContext};
use crate::domain::{Password, RefreshToken, Scope};
use crate::error::{no_store, OAuthError, OAuthErrorCode};
use crate::state::AppState;

/// Every parameter any grant takes; each grant checks the ones it needs.
#[derive(Deserialize)]
pub struct TokenParams {
    grant_type: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 6749 §5.1.
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    scope: String,
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

pub fn request_context(req: &HttpRequest) -> RequestContext {
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(256).collect());
    RequestContext {
        ip: req.peer_addr().map(|a| a.ip().to_string()),
        user_agent,
    }
}

pub async fn token(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params: TokenParams = form::parse_body(&req, body, state.settings.max_body_bytes)?;
    let grant_type = required(params.grant_type, "grant_type")?;
    let scope = requested_scope(params.scope.as_deref())?;
    let credentials =
        form::client_credentials(&req, params.client_id.as_deref(), params.client_secret)?;
    let ctx = request_context(&req);

    let granted = match grant_type.as_str() {
        "password" => {
            let username = required(params.username, "username")?;
            let password = Password::parse(required(params.password, "password")?)
                .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
            let client = clients::authenticate(&state.db, credentials).await?;
            grants::password(&state, &client, &username, password, scope.as_ref(), &ctx).await?
        }
        "refresh_token" => {
            let presented = RefreshToken::parse(&required(params.refresh_token, "refresh_token")?)
                .map_err(OAuthError::invalid_request)?;
            let client = clients::authenticate(&state.db, credentials).await?;
            grants::refresh(&state, &client, presented, scope.as_ref(), &ctx).await?
        }
        "client_credentials" => {
            let client = clients::authenticate(&state.db, credentials).await?;
            grants::client_credentials(&state, &client, scope.as_ref())?
        }
        other => {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type `{}` is not supported; use password, refresh_token or client_credentials",
                    other.chars().take(64).collect::<String>()
                ),
            ))
        }
    };
    Ok(token_response(&granted))
}

#[derive(Deserialize)]
pub struct RevokeParams {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7009 token revocation.
pub async fn revoke(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let params: RevokeParams = form::parse_body(&req, body, state.settings.max_body_bytes)?;
    let token = required(params.token, "token")?;
    let credentials =
        form::client_credentials(&req, params.client_id.as_deref(), params.client_secret)?;
    let client = clients::authenticate(&state.db, credentials).await?;
    revocation::revoke_presented(
        &state,
        &client,
        &token,
        params.token_type_hint.as_deref(),
        &request_context(&req),
    )
    .await?;
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(res.finish())
}

/// RFC 7662 token introspection, for authenticated confidential clients.
pub async fn introspect(
    req: HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    // Same parameters as revocation (RFC 7662 §2.1 mirrors RFC 7009 §2.1).
    let params: RevokeParams = form::parse_body(&req, body, state.settings.max_body_bytes)?;
    let token = required(params.token, "token")?;
    let credentials =
        form::client_credentials(&req, params.client_id.as_deref(), params.client_secret)?;
    let client = clients::authenticate(&state.db, credentials).await?;
    let found =
        introspection::introspect(&state, &client, &token, params.token_type_hint.as_deref())
            .await?;
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    Ok(match found {
        Some(active) => {
            let mut body = serde_json::to_value(active).expect("introspection serialises");
            body["active"] = serde_json::Value::Bool(true);
            res.json(body)
        }
        None => res.json(serde_json::json!({"active": false})),
    })
}

fn token_response(granted: &Granted) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    no_store(&mut res);
    res.json(TokenResponse {
        access_token: &granted.access.token,
        token_type: "Bearer",
        expires_in: granted.access.expires_in,
        refresh_token: granted.refresh_token.as_ref().map(|t| t.expose()),
        scope: granted.scope.to_string(),
    })
}
