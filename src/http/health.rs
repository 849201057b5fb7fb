use std::time::Duration;

use actix_web::{get, web, HttpResponse, ResponseError};
use serde_json::json;

use super::AppState;
use crate::error::{Problem, ProblemBody};

/// Liveness: the process answers.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = serde_json::Value)))]
#[get("/healthz")]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Prometheus metrics (text exposition format): requests by route, method and status
/// with latency histograms, tokens issued by grant, refresh reuse, revocations, login
/// failures and lockouts, bcrypt jobs waiting and running, the PostgreSQL pool, Redis
/// errors. With `TESSERA_METRICS_BIND` they are served on that listener only.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4"),
        (status = 404, description = "Metrics are served on the separate `TESSERA_METRICS_BIND` listener", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
#[get("/metrics")]
pub(crate) async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if state.tessera.settings().http.metrics_bind.is_some() {
        return Problem::not_found("no route for GET /metrics").error_response();
    }
    metrics_text(state).await
}

/// Anything else on the metrics listener.
pub(crate) async fn only_metrics() -> HttpResponse {
    Problem::not_found("this listener serves GET /metrics only").error_response()
}

/// The metrics, wherever they are served.
pub(crate) async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.tessera.render_metrics())
}

/// Readiness: PostgreSQL and Redis both answer within a second.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready: `{\"status\":\"ready\",\"checks\":{...}}`", body = serde_json::Value),
        (status = 503, description = "A dependency is down (with Retry-After)", body = serde_json::Value),
    )
)]
#[get("/readyz")]
pub(crate) async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let checks = state.tessera.readiness(Duration::from_secs(1)).await;
    let (postgres_ok, redis_ok) = (checks.postgres, checks.redis);
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let body = json!({
        "status": if postgres_ok && redis_ok { "ready" } else { "unavailable" },
        "checks": {"postgres": word(postgres_ok), "redis": word(redis_ok)},
    });
    if postgres_ok && redis_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    }
}
