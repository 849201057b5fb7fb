//! Handlers by surface. They parse and authorise, call `auth`, and shape responses;
//! they never touch diesel or Redis directly.

pub mod bearer;
pub mod form;
pub mod health;
pub mod me;
pub mod oauth;
pub mod wellknown;

use actix_web::web;

use crate::error::Problem;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/oauth/token", web::post().to(oauth::token))
        .route("/.well-known/jwks.json", web::get().to(wellknown::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            web::get().to(wellknown::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            web::get().to(wellknown::metadata),
        )
        .route("/v1/me", web::get().to(me::profile))
        .route("/healthz", web::get().to(health::live))
        .route("/readyz", web::get().to(health::ready));
}

/// Anything unrouted: 404 as a problem document.
pub async fn not_found(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, Problem> {
    Err(Problem::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}
