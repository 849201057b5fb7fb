//! Headers every response carries, and a limit on the size of the request head.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;

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
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses oversized request heads, then adds the headers every response carries: no
/// sniffing, no framing, no referrer, and a content security policy that lets a page do
/// only what it must.
pub(crate) async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
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
        let res = crate::error::error_response_for(
            req.path(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!("the request headers are larger than {MAX_HEADER_BYTES} bytes"),
        );
        req.into_response(res).map_into_right_body()
    } else {
        next.call(req).await?.map_into_left_body()
    };
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A page sets its own policy (its form may lead to the app it answers).
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(csp),
        );
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(res)
}
