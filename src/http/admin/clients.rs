use actix_web::{delete, get, patch, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{created, ok, Admin, Page, PageQuery};
use crate::auth;
use crate::auth::clients::ClientRow;
use crate::auth::clients::ClientSpec;
use crate::domain::GrantType;
use crate::error::{Problem, ProblemBody};
use crate::http::body::{JsonBody, QueryString};
use crate::http::AppState;

#[derive(Serialize, ToSchema)]
pub(crate) struct ClientView {
    client_id: String,
    name: String,
    confidential: bool,
    grant_types: Vec<String>,
    scopes: Vec<String>,
    audiences: Vec<String>,
    access_token_ttl_seconds: Option<i32>,
    browser_mode: bool,
    /// Introspection tells this client about every token (else only its own and its
    /// audiences').
    introspect_any: bool,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    /// The operator's own app: its users see no consent page.
    first_party: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Until when the previous secret still works after a rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<DateTime<Utc>>,
    /// Only in the answer that created or rotated it: shown once, never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

impl ClientView {
    fn new(row: ClientRow, secret: Option<String>) -> Self {
        let previous_live = row
            .previous_secret_expires_at
            .filter(|until| *until > Utc::now());
        Self {
            client_id: row.client_id,
            name: row.name,
            confidential: row.confidential,
            grant_types: row.grant_types,
            scopes: row.scopes,
            audiences: row.audiences,
            access_token_ttl_seconds: row.access_token_ttl_seconds,
            browser_mode: row.browser_mode,
            introspect_any: row.introspect_any,
            redirect_uris: row.redirects.redirect_uris,
            post_logout_redirect_uris: row.redirects.post_logout_redirect_uris,
            first_party: row.first_party,
            created_at: row.created_at,
            updated_at: row.updated_at,
            previous_secret_expires_at: previous_live,
            client_secret: secret,
        }
    }
}

/// A new OAuth client, as `POST /v1/admin/clients` takes it (the body is read as
/// [`ClientSpec`]; this is what the rules in `auth::clients` accept).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // A schema only.
pub(crate) struct NewClient {
    /// Letters, digits and `. _ : -`; generated (`c_...`) when absent.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    client_id: Option<String>,
    /// For people; defaults to the client_id.
    #[schema(
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    name: Option<String>,
    /// Confidential clients get a secret; default false (public).
    confidential: Option<bool>,
    /// At least one; `client_credentials` only for confidential clients.
    #[schema(min_items = 1)]
    grant_types: Vec<GrantType>,
    #[schema(value_type = Option<Vec<ScopeToken>>)]
    scopes: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Audience>>)]
    audiences: Option<Vec<String>>,
    /// Seconds; overrides TESSERA_ACCESS_TOKEN_TTL for this client.
    #[schema(minimum = 10, maximum = 86400)]
    access_token_ttl_seconds: Option<i64>,
    /// For single-page apps: the refresh token is set as an `HttpOnly; Secure;
    /// SameSite=Strict` cookie scoped to `/oauth`, never returned in a body, and
    /// cookie-borne requests need an allowed `Origin` and the `X-Tessera-CSRF` header.
    browser_mode: Option<bool>,
    /// Confidential clients only: introspection tells this client about every token,
    /// not only those issued to it or meant for its audiences (a gateway).
    introspect_any: Option<bool>,
    /// For `authorization_code` (at least one then): where the browser may be sent
    /// back with a code, each matched exactly (any port on a loopback IP literal,
    /// RFC 8252 §7.3); https, or http on localhost, 127.0.0.1 or [::1]; no fragment, no
    /// wildcard.
    #[schema(value_type = Option<Vec<RedirectUriText>>, max_items = 10)]
    redirect_uris: Option<Vec<String>>,
    /// Where `/oauth/logout` may send the browser after signing out.
    #[schema(value_type = Option<Vec<RedirectUriText>>, max_items = 10)]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// The operator's own app: its users see no consent page.
    first_party: Option<bool>,
}

/// Changes to an OAuth client (`PATCH`); absent fields stay as they are. The type
/// (public or confidential) and the id never change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // A schema only.
pub(crate) struct ClientChanges {
    #[schema(
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    name: Option<String>,
    /// At least one; `client_credentials` only for confidential clients.
    #[schema(min_items = 1)]
    grant_types: Option<Vec<GrantType>>,
    #[schema(value_type = Option<Vec<ScopeToken>>)]
    scopes: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Audience>>)]
    audiences: Option<Vec<String>>,
    /// Seconds; `null` clears the override.
    #[schema(minimum = 10, maximum = 86400, nullable)]
    access_token_ttl_seconds: Option<i64>,
    browser_mode: Option<bool>,
    /// Confidential clients only: introspection answers about every token.
    introspect_any: Option<bool>,
    /// For `authorization_code` (at least one then): where the browser may be sent
    /// back with a code, each matched exactly (any port on a loopback IP literal,
    /// RFC 8252 §7.3); https, or http on localhost, 127.0.0.1 or [::1]; no fragment, no
    /// wildcard.
    #[schema(value_type = Option<Vec<RedirectUriText>>, max_items = 10)]
    redirect_uris: Option<Vec<String>>,
    /// Where `/oauth/logout` may send the browser after signing out.
    #[schema(value_type = Option<Vec<RedirectUriText>>, max_items = 10)]
    post_logout_redirect_uris: Option<Vec<String>>,
    /// The operator's own app: its users see no consent page.
    first_party: Option<bool>,
}

/// A scope: up to 128 visible ASCII characters except `"` and `\`.
#[derive(ToSchema)]
#[schema(pattern = "^[!#-\\[\\]-~]{0,128}$")]
#[allow(dead_code)]
pub(crate) struct ScopeToken(String);

/// A redirect URI: an absolute https URL, or http on a loopback host.
#[derive(ToSchema)]
#[schema(
    pattern = "^(https://[a-z][a-z0-9-]{0,20}(\\.[a-z][a-z0-9-]{0,20}){0,4}|http://(localhost|127\\.0\\.0\\.1|\\[::1\\]))(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]*)?$",
    max_length = 256
)]
#[allow(dead_code)]
pub(crate) struct RedirectUriText(String);

/// An audience (`aud`): 1 to 256 visible ASCII characters.
#[derive(ToSchema)]
#[schema(pattern = "^[!-~]{1,256}$")]
#[allow(dead_code)]
pub(crate) struct Audience(String);

/// Lists OAuth clients.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_clients_list",
    security(("bearer" = [])),
    params(("limit" = Option<i64>, Query, description = "1 to 200, default 50", minimum = 1, maximum = 200), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page (a client_id)", pattern = "^[A-Za-z0-9._:-]{1,128}$")),
    responses((status = 200, body = Page<ClientView>), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/clients")]
pub(crate) async fn list(
    _admin: Admin,
    query: QueryString,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let query: PageQuery = query.parse()?;
    let limit = query.limit()?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            crate::domain::ClientId::parse(c).map_err(|_| Problem::bad_request("invalid cursor"))
        })
        .transpose()?;
    let rows = auth::clients::list(&state.tessera, after, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |c| c.client_id.clone());
    Ok(ok(&page.map(|c| ClientView::new(c, None))))
}

/// Creates an OAuth client; a confidential client's secret is in this answer only.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_clients_create",
    security(("bearer" = [])),
    request_body = NewClient,
    responses((status = 201, description = "Created; `client_secret` appears here only, for confidential clients", body = ClientView), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 409, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[post("/clients")]
pub(crate) async fn create(
    admin: Admin,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let spec: ClientSpec = body.parse()?;
    let (row, secret) = auth::clients::create(&state.tessera, spec, &admin.actor).await?;
    let secret = secret.map(|s| s.expose_secret().to_owned());
    Ok(created(&ClientView::new(row, secret)))
}

/// One OAuth client (never its secret).
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_clients_get",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "client_id")),
    responses((status = 200, body = ClientView), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[get("/clients/{id}")]
pub(crate) async fn get(
    _admin: Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let row = auth::clients::find(&state.tessera, &path).await?;
    Ok(ok(&ClientView::new(row, None)))
}

/// Changes what a client may do.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_clients_update",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "client_id")),
    request_body = ClientChanges,
    responses((status = 200, body = ClientView), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "client_credentials for a public client", body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[patch("/clients/{id}")]
pub(crate) async fn update(
    admin: Admin,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let spec: ClientSpec = body.parse()?;
    let row = auth::clients::update(&state.tessera, &path, spec, &admin.actor).await?;
    Ok(ok(&ClientView::new(row, None)))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateSecret {
    /// How long the old secret keeps working; default 1 hour, at most 30 days.
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 2592000)]
    #[serde(default, deserialize_with = "crate::domain::whole_number")]
    overlap_seconds: Option<i64>,
}

/// Issues a new client secret; the old one keeps working for the overlap.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_clients_rotate_secret",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "client_id")),
    request_body = Option<RotateSecret>,
    responses((status = 200, description = "The new secret, shown once", body = ClientView), (status = 400, body = ProblemBody, content_type = "application/problem+json"), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 409, description = "The client is public: it has no secret", body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[post("/clients/{id}/secret")]
pub(crate) async fn rotate_secret(
    admin: Admin,
    path: web::Path<String>,
    body: JsonBody,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body: RotateSecret = body.parse_optional()?.unwrap_or_default();
    let overlap = body.overlap_seconds.unwrap_or(3600);
    let Ok(overlap) = u64::try_from(overlap) else {
        return Err(Problem::bad_request(
            "overlap_seconds must be from 0 to 2592000 (30 days)",
        ));
    };
    if overlap > 30 * 86_400 {
        return Err(Problem::bad_request(
            "overlap_seconds must be from 0 to 2592000 (30 days)",
        ));
    }
    let (row, secret) = auth::clients::rotate_secret(
        &state.tessera,
        &path,
        std::time::Duration::from_secs(overlap),
        &admin.actor,
    )
    .await?;
    Ok(ok(&ClientView::new(
        row,
        Some(secret.expose_secret().to_owned()),
    )))
}

/// Deletes the client; its sessions go with it and its live access tokens are denied.
#[utoipa::path(
    tag = "admin",
    operation_id = "admin_clients_delete",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "client_id")),
    responses((status = 204, description = "Deleted; its sessions and live access tokens revoked"), (status = 404, body = ProblemBody, content_type = "application/problem+json"), (status = 401, description = "No valid token", body = ProblemBody, content_type = "application/problem+json"), (status = 403, description = "No admin role", body = ProblemBody, content_type = "application/problem+json"))
)]
#[delete("/clients/{id}")]
pub(crate) async fn delete(
    admin: Admin,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    auth::clients::delete(&state.tessera, &path, &admin.actor).await?;
    Ok(HttpResponse::NoContent().finish())
}
