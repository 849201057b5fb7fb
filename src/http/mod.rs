//! Handlers by surface. They parse and authorise, call `auth`, and shape responses;
//! they never touch diesel or Redis directly. Every route is registered through
//! `utoipa-actix-web`, so the OpenAPI document is generated from the routes themselves
//! and cannot drift from them.

pub mod admin;
pub mod bearer;
pub mod browser;
pub mod docs;
pub mod form;
pub mod health;
pub mod me;
pub mod oauth;
pub mod wellknown;

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::Problem;

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(oauth::token)
        .service(oauth::revoke)
        .service(oauth::introspect)
        .service(wellknown::jwks)
        .service(wellknown::metadata)
        .service(wellknown::openid_configuration)
        .service(me::profile)
        .service(me::sessions)
        .service(me::end_session)
        .service(me::change_password)
        .service(me::logout)
        .service(me::register)
        .service(health::live)
        .service(health::ready)
        .service(health::metrics)
        .service(docs::openapi_json)
        .service(docs::docs_redirect)
        .configure(admin::routes);
}

/// For every documented path, a catch-all that answers 405 to the methods it lacks.
pub fn method_fallbacks(cfg: &mut web::ServiceConfig, paths: &[String]) {
    for path in paths {
        cfg.service(web::resource(path.as_str()).to(method_not_allowed));
    }
}

/// A known path with the wrong method.
pub async fn method_not_allowed(
    req: actix_web::HttpRequest,
) -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}

/// Anything unrouted: 404 as a problem document.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// An empty body, or a JSON document.
pub fn optional_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| Problem::bad_request(format!("invalid JSON body: {e}")))
}
