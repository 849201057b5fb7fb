use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ok, Admin};
use crate::auth::keys;
use crate::domain::{KeyState, SigningAlgorithm};
use crate::error::{Problem, ProblemBody};
use crate::http::body::JsonBody;
use crate::http::AppState;

/// State and dates of a signing key; never private material.
#[derive(Serialize, ToSchema)]
pub(crate) struct KeyView {
    kid: String,
    #[schema(value_type = String)]
    algorithm: SigningAlgorithm,
    #[schema(value_type = String)]
    state: KeyState,
    /// Whether it is in the JWKS right now.
    published: bool,
    created_at: DateTime<Utc>,
    /// When it started signing (for the next key: when it is due to).
    activated_at: Option<DateTime<Utc>>,
    retired_at: Option<DateTime<Utc>>,
    publish_until: Option<DateTime<Utc>>,
}

async fn views(state: &AppState) -> Result<Vec<KeyView>, Problem> {
    let now = Utc::now();
    Ok(keys::list(&state.tessera)
        .await?
        .into_iter()
        .map(|k| KeyView {
            published: k.state != KeyState::Retired || k.publish_until.is_some_and(|t| t > now),
            kid: k.kid,
            algorithm: k.algorithm,
            state: k.state,
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_at: k.retired_at,
            publish_until: k.publish_until,
        })
        .collect())
}

/// Signing keys with their state and dates; never private material.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_keys_list",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<KeyView>), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/keys")]
pub(crate) async fn list(
    _admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    Ok(ok(&views(&state).await?))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rotate {
    /// Stop using the current key at once and drop it from the JWKS (a leaked key).
    #[serde(default)]
    emergency: bool,
}

/// What a rotation did, and the keys after it.
#[derive(Serialize, ToSchema)]
pub(crate) struct RotationView {
    /// The new key: for a normal rotation the published `next` key, for an emergency
    /// the key that signs now.
    kid: String,
    /// A `next` key was already published and waiting: nothing was created, its start
    /// was only brought forward.
    already_pending: bool,
    /// When `kid` starts (or started) signing.
    signs_at: DateTime<Utc>,
    /// Emergency only: the key that was signing and is now gone from the JWKS.
    dropped_kid: Option<String>,
    keys: Vec<KeyView>,
}

/// Starts a key rotation, or with `emergency` replaces the signing key at once.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_keys_rotate",
    security(("bearer" = [])),
    request_body = Option<Rotate>,
    responses((status = 200, description = "What the rotation did, and the keys after it", body = RotationView), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[post("/keys/rotate")]
pub(crate) async fn rotate(
    admin: Admin,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body: Rotate = body.parse_optional()?.unwrap_or_default();
    let report = keys::rotate(&state.tessera, body.emergency, &admin.actor).await?;
    let rotation = report.rotation;
    Ok(ok(&RotationView {
        kid: rotation.kid,
        already_pending: rotation.already_pending,
        signs_at: rotation.signs_at,
        dropped_kid: rotation.dropped,
        keys: views(&state).await?,
    }))
}
