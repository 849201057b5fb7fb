//! The OpenAPI 3.1 document, generated from the registered routes, and the interactive
//! reference at `/docs` (Swagger UI, whose assets are compiled into the binary).

use actix_web::http::header;
use actix_web::{get, web, App, HttpResponse};
use utoipa::openapi::security::{
    AuthorizationCode, ClientCredentials, Flow, Http, HttpAuthScheme, OAuth2, Password, Scopes,
    SecurityScheme,
};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::domain::GrantType;
use crate::http::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "A standalone OAuth-style token service: password, refresh-token and \
                       client-credentials grants, rotating refresh tokens with reuse detection, \
                       a JWKS for offline verification, revocation, introspection and an admin API.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(crate::error::OAuthErrorBody, crate::error::ProblemBody)),
    tags(
        (name = "oauth", description = "RFC 6749 token endpoint, RFC 7009 revocation, RFC 7662 introspection"),
        (name = "discovery", description = "JWKS (RFC 7517) and metadata (RFC 8414)"),
        (name = "oidc", description = "OpenID Connect: userinfo (the login pages and /oauth/authorize are HTML for browsers, named in the discovery document)"),
        (name = "account", description = "The signed-in user's own account (bearer token)"),
        (name = "admin", description = "Administration; needs an access token with the admin role"),
        (name = "revocations", description = "The revocation feed for services that verify tokens offline: a snapshot and a Server-Sent-Events stream (needs a client token with the tessera:revocations scope)"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

const TOKEN_URL: &str = "/oauth/token";

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".to_owned());
        bearer.description = Some("An access token from /oauth/token (RFC 6750)".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "client_secret_basic: client_id and client_secret, each form-encoded (RFC 6749 §2.3.1)"
                .to_owned(),
        );
        components.add_security_scheme("client_basic", SecurityScheme::Http(basic));
        // Where the bearer tokens come from, for tools that obtain them themselves.
        let mut oauth2 = OAuth2::new([
            Flow::AuthorizationCode(AuthorizationCode::new(
                "/oauth/authorize",
                TOKEN_URL,
                Scopes::from_iter([
                    ("openid", "OpenID Connect: an ID token and userinfo"),
                    ("profile", "The username, in the ID token and userinfo"),
                ]),
            )),
            Flow::Password(Password::new(TOKEN_URL, Scopes::new())),
            Flow::ClientCredentials(ClientCredentials::new(TOKEN_URL, Scopes::new())),
        ]);
        oauth2.description = Some(
            "The access tokens `bearer` takes: the authorization_code (with PKCE S256), \
             password and client_credentials grants of /oauth/token"
                .to_owned(),
        );
        components.add_security_scheme("oauth2", SecurityScheme::OAuth2(oauth2));
    }
}

/// The whole document, built from the same route table the server registers.
pub fn document() -> Document {
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(super::routes)
        .split_for_parts();
    let mut doc = doc;
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    CommonResponses.modify(&mut doc);
    cross_field_rules(&mut doc);
    doc
}

/// Rules across fields, which derived schemas cannot say: a public client may not
/// have the `client_credentials` grant; a revocation names exactly one target.
fn cross_field_rules(doc: &mut Document) {
    use utoipa::openapi::schema::{
        AllOfBuilder, AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Type,
    };
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let mut constrain = |name: &str, rule: utoipa::openapi::RefOr<utoipa::openapi::Schema>| {
        if let Some(fields) = components.schemas.remove(name) {
            let schema = AllOfBuilder::new().item(fields).item(rule);
            components.schemas.insert(name.to_owned(), schema.into());
        }
    };
    let target = |field: &str| {
        ObjectBuilder::new()
            .property(field, ObjectBuilder::new().schema_type(Type::String))
            .required(field)
    };
    constrain(
        "CreateRevocation",
        OneOfBuilder::new()
            .item(target("token"))
            .item(target("jti"))
            .item(target("sid"))
            .description(Some("Exactly one of token, jti or sid"))
            .into(),
    );
    let confidential = ObjectBuilder::new()
        .property(
            "confidential",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([true])),
        )
        .required("confidential");
    let public_client = ObjectBuilder::new()
        .property(
            "grant_types",
            ArrayBuilder::new().items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(
                        GrantType::ALL
                            .into_iter()
                            .filter(|g| !g.needs_confidential_client())
                            .map(GrantType::as_str),
                    )),
            ),
        )
        .property(
            "introspect_any",
            // Absent, null or false: only a confidential client may have it on.
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                    Type::Boolean,
                    Type::Null,
                ]))
                .enum_values(Some([
                    serde_json::Value::Bool(false),
                    serde_json::Value::Null,
                ])),
        );
    constrain(
        "NewClient",
        AnyOfBuilder::new()
            .item(confidential)
            .item(public_client)
            .description(Some(
                "client_credentials and introspect_any only for confidential clients",
            ))
            .into(),
    );
    let grants_without = |left_out: GrantType| {
        ObjectBuilder::new().property(
            "grant_types",
            ArrayBuilder::new().items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(
                        GrantType::ALL
                            .into_iter()
                            .filter(|g| *g != left_out)
                            .map(GrantType::as_str),
                    )),
            ),
        )
    };
    let with_redirect_uris = ObjectBuilder::new()
        .property(
            "redirect_uris",
            ArrayBuilder::new()
                .items(utoipa::openapi::Ref::from_schema_name("RedirectUriText"))
                .min_items(Some(1))
                .max_items(Some(10)),
        )
        .required("redirect_uris");
    constrain(
        "NewClient",
        AnyOfBuilder::new()
            .item(grants_without(GrantType::AuthorizationCode))
            .item(with_redirect_uris)
            .description(Some("authorization_code needs at least one redirect URI"))
            .into(),
    );
}

/// The answers any operation can give besides its own, added to each operation so the
/// document lists every status a route can answer: 431 (request head too large), 500
/// and 503 (a dependency down, or the request time limit) everywhere; 400, 413 and 415
/// (RFC 6749 endpoints: 400 and 413) where a body is read; 401 and 403 where a bearer
/// token is needed. An operation's own description of a status wins.
struct CommonResponses;

impl CommonResponses {
    fn common(oauth: bool, has_body: bool, bearer: bool) -> Vec<(u16, &'static str)> {
        let mut statuses = vec![
            (431, "The request headers are larger than 16 KiB"),
            (
                500,
                "An internal error; quote the request id when reporting it",
            ),
            (
                503,
                "A dependency is unavailable or the request took too long (with Retry-After)",
            ),
        ];
        if has_body {
            statuses.push((400, "The request body is missing or invalid"));
            statuses.push((
                413,
                "The request body is larger than TESSERA_MAX_BODY_BYTES",
            ));
            if !oauth {
                statuses.push((415, "The request body is not application/json"));
            }
        }
        if bearer {
            statuses.push((401, "Missing, invalid, expired or revoked access token"));
            statuses.push((403, "The token lacks what this operation needs"));
        }
        statuses
    }
}

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut Document) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        for (path, item) in doc.paths.paths.iter_mut() {
            let oauth = path.starts_with("/oauth/");
            let schema = if oauth {
                "OAuthErrorBody"
            } else {
                "ProblemBody"
            };
            let media_type = if oauth {
                "application/json"
            } else {
                "application/problem+json"
            };
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in operations.into_iter().flatten() {
                let bearer = serde_json::to_value(&op.security)
                    .is_ok_and(|s| s.to_string().contains("\"bearer\""));
                let statuses = Self::common(oauth, op.request_body.is_some(), bearer);
                for (status, description) in statuses {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    media_type,
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name(schema)))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

/// The document as committed under `openapi/openapi.yaml`.
pub fn document_yaml() -> String {
    document()
        .to_yaml()
        .expect("the OpenAPI document serialises to YAML")
}

/// This document, as JSON.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = serde_json::Value))
)]
#[get("/openapi.json")]
pub(crate) async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(state.openapi.clone())
}

/// The interactive API reference (Swagger UI) lives under `/docs/`.
#[utoipa::path(
    tag = "operations",
    responses((status = 308, description = "To the interactive API reference at /docs/"))
)]
#[get("/docs")]
pub(crate) async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Swagger UI, served from assets compiled into the binary (no CDN).
pub(crate) fn swagger_ui() -> utoipa_swagger_ui::SwaggerUi {
    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
        .config(utoipa_swagger_ui::Config::from("/openapi.json"))
}
