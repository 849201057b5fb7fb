//! A microservice whose API is protected by Tessera access tokens.
//!
//! `GET /orders` needs a valid access token with the `orders:read` scope (401 without a
//! valid token, 403 without the scope); `GET /health` is open.
//!
//! Run Tessera (`cargo run --release` at the workspace root), then this service:
//!
//! ```sh
//! cargo run -p tessera-verifier --example protected_service
//! ```
//!
//! Settings, from the environment:
//!
//! | variable         | default                  | meaning                                  |
//! |------------------|--------------------------|------------------------------------------|
//! | `TESSERA_ISSUER` | `http://127.0.0.1:8080`  | Tessera's issuer; the JWKS is fetched from `{issuer}/.well-known/jwks.json` |
//! | `AUDIENCE`       | `https://orders.example.com` | the `aud` this service accepts; never the issuer |
//! | `BIND`           | `127.0.0.1:9090`         | address to listen on                     |
//!
//! Then, with a token from Tessera:
//!
//! ```sh
//! AT=$(curl -s http://127.0.0.1:8080/oauth/token -d grant_type=password \
//!        -d username=alice -d 'password=correct horse battery staple' | jq -r .access_token)
//! curl -i http://127.0.0.1:9090/orders -H "Authorization: Bearer $AT"
//! ```
//!
//! That token, from the built-in `tessera` client, is for Tessera itself (`aud` = the
//! issuer), so this service refuses it with 401: an API accepts only tokens minted for
//! its own audience. A token from a client with `--audience https://orders.example.com`
//! and the `orders:read` scope gets 200; the same audience without that scope gets 403
//! `insufficient_scope`. Without a token, or with an expired or forged one, the answer
//! is 401 with `WWW-Authenticate: Bearer error="invalid_token"`.

use std::net::TcpListener;

use actix_web::{get, web, App, HttpResponse, HttpServer};
use serde_json::json;
use tessera_verifier::{BearerClaims, InsufficientScope, Verifier, VerifierConfig};

#[get("/orders")]
async fn list_orders(token: BearerClaims) -> Result<HttpResponse, InsufficientScope> {
    token.require_scope("orders:read")?;
    Ok(HttpResponse::Ok().json(json!({
        "owner": token.sub,
        "client_id": token.client_id,
        "orders": [
            { "id": "ord_1001", "total": "42.00", "currency": "EUR" },
            { "id": "ord_1002", "total": "7.50", "currency": "EUR" },
        ],
    })))
}

#[get("/health")]
async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();

    let issuer =
        std::env::var("TESSERA_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let audience =
        std::env::var("AUDIENCE").unwrap_or_else(|_| "https://orders.example.com".to_owned());
    if audience.trim_end_matches('/') == issuer.trim_end_matches('/') {
        // aud = issuer marks tokens for Tessera's own API; accepting them here would let
        // any token of any client (e.g. a user's web login) call this service.
        return Err(std::io::Error::other(
            "AUDIENCE must be this service's own audience, not Tessera's issuer",
        ));
    }
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:9090".to_owned());

    let verifier = Verifier::new(VerifierConfig::new(&issuer, &audience))
        .map_err(|e| std::io::Error::other(format!("invalid verifier settings: {e}")))?;
    // Not fatal: until Tessera answers, requests get 503 and the JWKS is tried again.
    match verifier.warm_up().await {
        Ok(()) => tracing::info!(%issuer, "fetched Tessera's signing keys"),
        Err(error) => tracing::warn!(%error, "Tessera's signing keys are not available yet"),
    }

    let listener = TcpListener::bind(&bind)?;
    tracing::info!(%bind, %audience, "protected_service listening");
    let verifier = web::Data::new(verifier);
    HttpServer::new(move || {
        App::new()
            .app_data(verifier.clone())
            .service(list_orders)
            .service(health)
    })
    .listen(listener)?
    .run()
    .await
}
