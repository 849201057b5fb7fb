//! Handlers by surface. They parse and authorise, call `auth`, and shape responses;
//! they never touch diesel or Redis directly.

pub mod admin;
pub mod bearer;
pub mod form;
pub mod health;
pub mod me;
pub mod oauth;
pub mod wellknown;

use actix_web::web;

use crate::error::Problem;

pub fn routes(cfg: &mut web::ServiceConfig) {
    let resource = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    cfg.service(resource("/oauth/token").route(web::post().to(oauth::token)))
        .service(resource("/oauth/revoke").route(web::post().to(oauth::revoke)))
        .service(resource("/oauth/introspect").route(web::post().to(oauth::introspect)))
        .service(resource("/.well-known/jwks.json").route(web::get().to(wellknown::jwks)))
        .service(
            resource("/.well-known/oauth-authorization-server")
                .route(web::get().to(wellknown::metadata)),
        )
        .service(
            resource("/.well-known/openid-configuration").route(web::get().to(wellknown::metadata)),
        )
        .service(resource("/v1/me").route(web::get().to(me::profile)))
        .service(resource("/v1/me/sessions").route(web::get().to(me::sessions)))
        .service(resource("/v1/me/sessions/{sid}").route(web::delete().to(me::end_session)))
        .service(resource("/v1/me/password").route(web::post().to(me::change_password)))
        .service(resource("/v1/logout").route(web::post().to(me::logout)))
        .service(resource("/healthz").route(web::get().to(health::live)))
        .service(resource("/readyz").route(web::get().to(health::ready)))
        .configure(admin::routes);
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
