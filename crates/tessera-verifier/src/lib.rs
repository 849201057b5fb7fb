//! Verify Tessera access tokens in a Rust microservice, offline,
//! from Tessera's JWKS.
//!
//! A [`Verifier`] fetches `{issuer}/.well-known/jwks.json` when it first needs it, keeps
//! it as long as `Cache-Control` allows, revalidates it with its `ETag`, and checks each
//! token the way RFC 9068 asks: `typ: at+jwt`, a key chosen only by `kid` from that
//! JWKS, the algorithm of that key (never `none`, never `HS*`), the signature, `iss`,
//! `aud`, `exp` and `nbf`. A token with an unknown `kid` triggers at most one refetch
//! per [`VerifierConfig::min_refresh_interval`], however many arrive.
//!
//! ```no_run
//! use tessera_verifier::{Verifier, VerifierConfig, VerifyError};
//!
//! # async fn handle(authorization_token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! // Once, at start-up: the issuer (TESSERA_ISSUER) and the audience of this API.
//! let verifier = Verifier::new(VerifierConfig::new(
//!     "https://auth.example.com",
//!     "https://orders.example.com",
//! ))?;
//!
//! // Per request:
//! match verifier.verify(authorization_token).await {
//!     Ok(claims) if claims.has_scope("orders:read") => { /* serve claims.sub */ }
//!     Ok(_) => { /* 403: valid token, missing scope */ }
//!     Err(e) if e.is_caller_fault() => { /* 401, WWW-Authenticate: Bearer error="invalid_token" */ }
//!     Err(e) => { /* 503: Tessera's keys are unavailable; log e's source chain */ }
//! }
//! # Ok(()) }
//! ```
//!
//! With actix-web (feature `actix`, on by default), take [`BearerClaims`] in a handler
//! and register the verifier as app data:
//!
//! ```no_run
//! # #[cfg(feature = "actix")] {
//! use actix_web::{web, App, HttpResponse};
//! use tessera_verifier::{BearerClaims, InsufficientScope, Verifier, VerifierConfig};
//!
//! async fn orders(token: BearerClaims) -> Result<HttpResponse, InsufficientScope> {
//!     token.require_scope("orders:read")?;
//!     Ok(HttpResponse::Ok().body(format!("orders of {}", token.sub)))
//! }
//!
//! let verifier = Verifier::new(VerifierConfig::new(
//!     "https://auth.example.com",
//!     "https://orders.example.com",
//! ))
//! .expect("valid verifier settings");
//! let app = App::new()
//!     .app_data(web::Data::new(verifier))
//!     .route("/orders", web::get().to(orders));
//! # let _ = app; }
//! ```
//!
//! Revocation: offline verification alone cannot see that a token was revoked before
//! it expires (Tessera's tokens live 5 minutes by default). Two ways to see it:
//! - [`VerifierConfig::revocations`]: subscribe to Tessera's revocation feed. The
//!   verifier keeps every revocation in force in memory (a snapshot, then a stream)
//!   and [`Verifier::verify`] checks it with no call per request; a revoked token is
//!   refused within about a second of the revocation. If the feed has not been heard
//!   from for longer than the staleness bound (30 s by default), verification fails
//!   closed with [`VerifyError::RevocationsStale`] (503), or, configured to fail open,
//!   accepts and counts it; [`Verifier::revocation_health`] says which.
//! - [`VerifierConfig::introspection`] with [`Verifier::verify_online`] or the
//!   `OnlineBearerClaims` extractor, which ask Tessera (RFC 7662) on every call.
//!
//! ```no_run
//! use tessera_verifier::{RevocationConfig, Verifier, VerifierConfig};
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let verifier = Verifier::new(
//!     VerifierConfig::new("https://auth.example.com", "https://orders.example.com")
//!         .revocations(RevocationConfig::new("orders-verifier", "cs_...")),
//! )?;
//! // Optional: wait for the first snapshot before serving.
//! verifier.revocations_ready(std::time::Duration::from_secs(5)).await;
//! # Ok(()) }
//! ```
//!
//! Features: `actix` (extractors and error responses for actix-web 4) and `rustls`
//! (HTTPS to Tessera with rustls on aws-lc-rs and the platform's root certificates),
//! both on by default.

#[cfg(feature = "actix")]
mod actix;
mod claims;
mod config;
mod error;
mod introspection;
mod jwks;
mod revocations;
mod verifier;

#[cfg(feature = "actix")]
pub use actix::{BearerClaims, BearerError, OnlineBearerClaims};
pub use claims::InsufficientScope;
pub use config::{ConfigError, IntrospectionConfig, RevocationConfig, VerifierConfig};
pub use revocations::{RevocationHealth, RevocationSet, RevocationState, RevokedEntry};
/// The claims type, the errors and the algorithms are `tessera_token`'s: the server
/// verifies its own tokens with the same rules.
pub use tessera_token::{
    AccessClaims as Claims, Algorithm, Audience, IntrospectionError, JwksError, MissingScope,
    UnknownAlgorithm, VerifyError,
};
pub use verifier::Verifier;
