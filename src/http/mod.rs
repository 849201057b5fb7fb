//! Handlers by surface. They parse and authorise, call `auth`, and shape responses;
//! they never touch diesel or Redis directly. Every route is registered through
//! `utoipa-actix-web`, so the OpenAPI document is generated from the routes themselves
//! and cannot drift from them.

pub(crate) mod admin;
pub(crate) mod authorize;
pub(crate) mod bearer;
pub(crate) mod body;
pub(crate) mod browser;
pub mod docs;
pub mod form;
pub(crate) mod health;
pub(crate) mod me;
pub(crate) mod middleware;
pub mod oauth;
pub(crate) mod oidc;
pub(crate) mod pages;
pub(crate) mod revocations;
mod state;
pub(crate) mod wellknown;

pub(crate) use state::AppState;

use actix_web::web;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::Problem;

pub(crate) fn routes(cfg: &mut ServiceConfig) {
    cfg.service(oauth::token)
        .service(oauth::revoke)
        .service(oauth::introspect)
        .service(oauth::pushed_authorization_request)
        .service(wellknown::jwks)
        .service(wellknown::metadata)
        .service(wellknown::openid_configuration)
        .service(me::profile)
        .service(me::sessions)
        .service(me::end_session)
        .service(me::change_password)
        .service(me::logout)
        .service(me::register)
        .service(me::consents)
        .service(me::revoke_consent)
        .service(oidc::userinfo)
        .service(oidc::userinfo_post)
        .service(revocations::snapshot)
        .service(revocations::stream)
        .service(health::live)
        .service(health::ready)
        .service(health::metrics)
        .service(docs::openapi_json)
        .service(docs::docs_redirect)
        .configure(admin::routes);
}

/// Tessera's own pages: HTML for browsers, outside the API document (their contract is
/// OAuth 2.0 and OpenID Connect, and the discovery document names them).
pub(crate) fn pages(cfg: &mut web::ServiceConfig) {
    cfg.service(authorize::start)
        .service(authorize::start_posted)
        .service(authorize::login)
        .service(authorize::consent_page_of_flow)
        .service(authorize::consent)
        .service(oidc::logout_get)
        .service(oidc::logout_post)
        .service(pages::stylesheet);
}

/// The methods a documented path answers, as an `Allow` header value (RFC 9110 §10.2.1).
pub(crate) fn allowed_methods(item: &utoipa::openapi::path::PathItem) -> String {
    [
        ("GET", item.get.is_some()),
        ("HEAD", item.head.is_some()),
        ("POST", item.post.is_some()),
        ("PUT", item.put.is_some()),
        ("PATCH", item.patch.is_some()),
        ("DELETE", item.delete.is_some()),
    ]
    .into_iter()
    .filter_map(|(method, allowed)| allowed.then_some(method))
    .collect::<Vec<_>>()
    .join(", ")
}

/// Whether a concrete path fits a documented template such as `/v1/admin/users/{id}`.
fn fits(template: &str, path: &str) -> bool {
    let mut given = path.split('/');
    let fitted = template.split('/').all(|wanted| match given.next() {
        Some(segment) if wanted.starts_with('{') => !segment.is_empty(),
        Some(segment) => segment == wanted,
        None => false,
    });
    fitted && given.next().is_none()
}

/// Anything unrouted: 405 with `Allow` when the path is documented but not with this
/// method (on any path, scoped or not), else 404; both as problem documents.
pub(crate) async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    use actix_web::http::{header, StatusCode};
    use actix_web::ResponseError;
    let allow = req
        .app_data::<web::Data<crate::http::AppState>>()
        .and_then(|state| {
            state
                .api_paths
                .iter()
                .find(|(template, _)| fits(template, req.path()))
                .map(|(_, allow)| allow.clone())
        });
    let Some(allow) = allow else {
        return Problem::not_found(format!("no route for {} {}", req.method(), req.path()))
            .error_response();
    };
    let mut res = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.path()),
    )
    .error_response();
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::fits;

    #[test]
    fn templates_fit_whole_segments_only() {
        assert!(fits("/v1/admin/users/{id}", "/v1/admin/users/abc"));
        assert!(fits("/healthz", "/healthz"));
        assert!(!fits("/v1/admin/users/{id}", "/v1/admin/users/"));
        assert!(!fits("/v1/admin/users/{id}", "/v1/admin/users/a/b"));
        assert!(!fits("/v1/admin/users", "/v1/admin/users/a"));
    }
}
