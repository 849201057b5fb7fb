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
pub fn method_fallbacks(cfg: &mut web::ServiceConfig, paths: &[(String, String)]) {
    for (path, allow) in paths {
        let allow = allow.clone();
        cfg.service(
            web::resource(path.as_str())
                .to(move |req: actix_web::HttpRequest| method_not_allowed(req, allow.clone())),
        );
    }
}

/// The methods a documented path answers, as an `Allow` header value (RFC 9110 §10.2.1).
pub fn allowed_methods(item: &utoipa::openapi::path::PathItem) -> String {
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

/// A known path with the wrong method.
async fn method_not_allowed(req: actix_web::HttpRequest, allow: String) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    let mut res = Problem::new(
        actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.path()),
    )
    .error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
        res.headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    res
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
        .map_err(|e| Problem::bad_request(crate::error::describe_json_error(&e)))
}

/// The API answers JSON only, so its pages may load nothing and be framed by no one.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
/// The API reference runs the embedded Swagger UI: its own scripts, styles (some set
/// inline), data: icons, and calls back to this origin.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// The most request-header bytes (names and values together) Tessera reads. A bearer
/// token and a browser-mode cookie fit many times over; the HTTP parser alone only
/// limits heads that arrive in pieces.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses oversized request heads, then adds the headers every response carries: no
/// sniffing, no framing, no referrer, and a content security policy that lets a page do
/// only what it must.
pub async fn security_headers(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<
    actix_web::dev::ServiceResponse<actix_web::body::EitherBody<impl actix_web::body::MessageBody>>,
    actix_web::Error,
> {
    use actix_web::http::header::{self, HeaderValue};
    use actix_web::ResponseError;
    let csp = if req.path() == "/docs" || req.path().starts_with("/docs/") {
        DOCS_CSP
    } else {
        API_CSP
    };
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let mut res = if header_bytes > MAX_HEADER_BYTES {
        let problem = Problem::new(
            actix_web::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"),
        );
        req.into_response(problem.error_response())
            .map_into_right_body()
    } else {
        next.call(req).await?.map_into_left_body()
    };
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}
