use std::time::Duration;

use actix_web::{get, web, HttpResponse, ResponseError};
use serde_json::json;

use crate::error::{Problem, ProblemBody};
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = serde_json::Value)))]
#[get("/healthz")]
pub async fn live() -> HttpResponse {
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
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if state.settings.metrics_bind.is_some() {
        return Problem::not_found("no route for GET /metrics").error_response();
    }
    metrics_text(state).await
}

/// Anything else on the metrics listener.
pub async fn only_metrics() -> HttpResponse {
    Problem::not_found("this listener serves GET /metrics only").error_response()
}

/// The metrics, wherever they are served.
pub async fn metrics_text(state: web::Data<AppState>) -> HttpResponse {
    let (waiting, running) = state.passwords.load();
    let pool = state.db.state();
    let sample = crate::metrics::Sample {
        bcrypt_waiting: waiting,
        bcrypt_running: running,
        bcrypt_total: state.passwords.jobs_total(),
        db_in_use: pool.connections - pool.idle_connections,
        db_idle: pool.idle_connections,
        db_max: state.db.max_size(),
        db_waiting: state.db.waiting(),
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&sample))
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
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    const LIMIT: Duration = Duration::from_secs(1);
    let postgres = tokio::time::timeout(
        LIMIT,
        state.db.run(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1")
                .map_err(crate::store::StoreError::from)
        }),
    );
    let redis = tokio::time::timeout(LIMIT, state.denylist.ping());
    let (postgres, redis) = tokio::join!(postgres, redis);
    let postgres_ok = matches!(postgres, Ok(Ok(())));
    let redis_ok = matches!(redis, Ok(Ok(())));
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
