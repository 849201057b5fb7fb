use actix_web::http::header::{self, EntityTag, IfNoneMatch};
use actix_web::{get, web, HttpMessage, HttpRequest, HttpResponse};
use serde_json::json;

use crate::config::Settings;
use crate::domain::{GrantType, SigningAlgorithm};
use crate::http::AppState;

/// RFC 7517 JWK Set: the public keys that verify Tessera's access tokens (`kid`, `use`,
/// `alg`, `kty`, `crv`/`x`/`y` or `n`/`e`). Serialised once per key change; cacheable,
/// with a strong ETag (`If-None-Match` answers 304).
#[utoipa::path(
    tag = "discovery",
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses(
        (status = 200, description = "The key set; `Cache-Control: public, max-age=N`", body = serde_json::Value, content_type = "application/jwk-set+json"),
        (status = 304, description = "The cached copy is current"),
    )
)]
#[get("/.well-known/jwks.json")]
pub(crate) async fn jwks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let keys = state.tessera.key_set();
    let cache = format!(
        "public, max-age={}",
        state.settings().keys.jwks_max_age.as_secs()
    );
    let tag = keys.etag();
    let matches = if_none_match_hits(&req, tag);
    let mut res = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, tag.to_owned()));
    if matches {
        res.finish()
    } else {
        res.content_type("application/jwk-set+json")
            .body(keys.jwks().clone())
    }
}

/// RFC 9110 §13.1.2: `*`, or a list of entity tags compared weakly (`W/"x"` matches
/// `"x"`). A header that does not parse matches nothing: a full answer is always right.
fn if_none_match_hits(req: &HttpRequest, etag: &str) -> bool {
    let Ok(current) = etag.parse::<EntityTag>() else {
        return false;
    };
    match req.get_header::<IfNoneMatch>() {
        Some(IfNoneMatch::Any) => true,
        Some(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| tag.weak_eq(&current)),
        None => false,
    }
}

/// RFC 8414 authorization-server metadata.
#[utoipa::path(
    tag = "discovery",
    responses((status = 200, description = "Endpoints and capabilities", body = serde_json::Value))
)]
#[get("/.well-known/oauth-authorization-server")]
pub(crate) async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    metadata_response(&state)
}

/// The same metadata, where OpenID Connect discovery looks for it.
#[utoipa::path(
    tag = "discovery",
    responses((status = 200, description = "Endpoints and capabilities", body = serde_json::Value))
)]
#[get("/.well-known/openid-configuration")]
pub(crate) async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    metadata_response(&state)
}

fn metadata_response(state: &AppState) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .content_type("application/json")
        .body(state.metadata.clone())
}

pub(crate) fn metadata_document(settings: &Settings) -> serde_json::Value {
    let base = &settings.issuer;
    json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "userinfo_endpoint": format!("{base}/oauth/userinfo"),
        "end_session_endpoint": format!("{base}/oauth/logout"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "introspection_endpoint": format!("{base}/oauth/introspect"),
        "pushed_authorization_request_endpoint": format!("{base}/oauth/par"),
        "require_pushed_authorization_requests": false,
        "grant_types_supported": GrantType::ALL,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "scopes_supported": ["openid", "profile"],
        "subject_types_supported": ["public"],
        // What signs now; a verifier that pins the list refuses nothing Tessera issues.
        "id_token_signing_alg_values_supported": [settings.keys.algorithm],
        "claims_supported": [
            "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "sid", "at_hash",
            "amr", "acr", "preferred_username", "updated_at"
        ],
        "acr_values_supported": ["1"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "access_token_signing_alg_values_supported": SigningAlgorithm::ALL,
        "service_documentation": format!("{base}/docs"),
    })
}
