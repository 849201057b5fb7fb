//! Logging set-up and the per-request middleware: request ids and the access log.
//! Only the method, route and status of a request are logged: never its query string,
//! headers or body, where tokens and passwords travel.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The request id, also stored in the request's extensions for handlers.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Installs the global subscriber once; later calls (tests start many apps) are no-ops.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    // Colours only for a person at a terminal, never into a file or pipe.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
    };
    let _ = result;
}

/// Metric label for a method: clients may invent methods, and every label value makes a
/// new series, so anything unusual is counted together.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// A client-supplied id is kept if it is short and plain; otherwise we make one.
fn acceptable_request_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    ok.then(|| s.to_owned())
}

#[derive(Debug, thiserror::Error)]
#[error("the request took longer than {0:?}")]
struct Timeout(std::time::Duration);

/// Request ids, the access log, metrics and the overall request time limit.
pub async fn request_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(acceptable_request_id)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let span =
        tracing::info_span!("request", request_id = %id, %method, route = tracing::field::Empty);
    let started = Instant::now();
    let limit = req
        .app_data::<actix_web::web::Data<crate::http::AppState>>()
        .map(|s| s.settings().http.request_timeout)
        .unwrap_or(std::time::Duration::from_secs(30));
    let path = req.path().to_owned();
    let handled = REQUEST_ID.scope(id.clone(), next.call(req).instrument(span.clone()));
    let mut res = match tokio::time::timeout(limit, handled).await {
        Ok(result) => result?,
        Err(_) => {
            // The request itself went down with the handler's future, so the answer
            // travels as an error (the request id is in its body, not a header).
            tracing::warn!(parent: &span, "request timed out after {limit:?}");
            let res = REQUEST_ID.sync_scope(id.clone(), || {
                crate::error::error_response_for(
                    &path,
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                    "the service is temporarily unavailable; retry shortly",
                )
            });
            return Err(actix_web::error::InternalError::from_response(Timeout(limit), res).into());
        }
    };
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = res
        .request()
        .app_data::<actix_web::web::Data<crate::http::AppState>>()
    {
        state.tessera.metrics().observe_request(
            &route,
            method_label(&method),
            status,
            elapsed.as_secs_f64(),
        );
    }
    span.record("route", route.as_str());
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "{method} {route} -> {status}"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER.clone(), value);
    }
    Ok(res)
}
