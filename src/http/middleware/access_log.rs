//! The access log and the request metrics: one line per answered request (method,
//! route pattern, status, latency) and the `http_requests_total` and
//! `http_request_duration_seconds` series. Runs inside the request's span.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

use crate::http::AppState;
use crate::telemetry::REQUEST_LOG_TARGET;

/// Metric label for a method: clients may invent methods, and every label value makes a
/// new series, so anything unusual is counted together.
fn method_label(method: &Method) -> &'static str {
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

/// Logs and counts each answer. Unmatched paths count as the route `unmatched`, so a
/// scan of random paths creates no new series.
pub(crate) async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let method = req.method().clone();
    let started = Instant::now();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    if let Some(state) = res.request().app_data::<actix_web::web::Data<AppState>>() {
        state.tessera.metrics().observe_request(
            &route,
            method_label(&method),
            status,
            elapsed.as_secs_f64(),
        );
    }
    let span = tracing::Span::current();
    span.record("route", route.as_str());
    tracing::info!(
        target: REQUEST_LOG_TARGET,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "{method} {route} -> {status}"
    );
    Ok(res)
}
