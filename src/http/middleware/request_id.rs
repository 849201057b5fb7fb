//! Request ids: the caller's `X-Request-Id` when it is short and plain, else a new
//! UUIDv7. The id names the request's span (so every log line of the request carries
//! it), is what error bodies quote, and is echoed in the response header.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::telemetry::{with_request_id, REQUEST_LOG_TARGET};

pub(crate) static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// A client-supplied id is kept if it is short and plain; otherwise we make one.
fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    ok.then(|| s.to_owned())
}

/// Gives the request its id and its span, and the response its `X-Request-Id`. An
/// error (a timeout) travels on without the header: its body carries the id instead.
pub(crate) async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(acceptable_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let span = tracing::info_span!(
        target: REQUEST_LOG_TARGET,
        "request",
        request_id = %id,
        method = %req.method(),
        route = tracing::field::Empty
    );
    let mut res = with_request_id(id.clone(), next.call(req).instrument(span)).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER.clone(), value);
    }
    Ok(res)
}
