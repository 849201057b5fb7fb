//! The overall time limit of a request (`TESSERA_REQUEST_TIMEOUT`): past it the handler
//! is dropped and the caller gets a 503 with `Retry-After`, whose body quotes the
//! request id.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;

use crate::http::AppState;
use crate::telemetry::REQUEST_LOG_TARGET;

/// The limit when the application state is missing (the settings default).
const DEFAULT_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("the request took longer than {0:?}")]
struct Timeout(Duration);

pub(crate) async fn timeout(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<actix_web::web::Data<AppState>>()
        .map(|s| s.settings().http.request_timeout)
        .unwrap_or(DEFAULT_LIMIT);
    let path = req.path().to_owned();
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(result) => result,
        Err(_) => {
            // The request itself went down with the handler's future, so the answer
            // travels as an error (the request id is in its body, not a header).
            tracing::warn!(target: REQUEST_LOG_TARGET, "request timed out after {limit:?}");
            let res = crate::error::error_response_for(
                &path,
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is temporarily unavailable; retry shortly",
            );
            Err(actix_web::error::InternalError::from_response(Timeout(limit), res).into())
        }
    }
}
