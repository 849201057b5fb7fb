use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::helpers::{header_of, spawn_app, ISSUER};

#[tokio::test]
async fn jwks_publishes_the_signing_key() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let tokens = app.login("alice").await;

    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/jwk-set+json");
    assert!(res.headers()["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("public, max-age="));
    let jwks: Value = res.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kid"], header_of(&tokens.access_token)["kid"]);
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "ES256");
    assert!(key.get("d").is_none(), "no private part is ever published");
}

#[tokio::test]
async fn an_issued_token_verifies_with_nothing_but_the_jwks() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let token = app.login("alice").await.access_token;
    let jwks: JwkSet = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = header_of(&token)["kid"].as_str().unwrap().to_owned();
    let jwk = jwks.find(&kid).expect("the token's kid is published");

    // A generic JWT library, given only the JWK.
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[ISSUER]);
    let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    assert_eq!(data.claims["iss"], ISSUER);

    // And by hand, with raw ECDSA over the JWS signing input: no JWT library at all.
    let raw: Value = serde_json::to_value(jwk).unwrap();
    let mut point = vec![0x04];
    point.extend(URL_SAFE_NO_PAD.decode(raw["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(raw["y"].as_str().unwrap()).unwrap());
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(signing_input.as_bytes(), &signature)
        .expect("the signature verifies with the published key");
}

#[tokio::test]
async fn jwks_has_a_strong_etag_and_answers_304() {
    let app = spawn_app().await;
    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong ETag: {etag}"
    );

    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["etag"].to_str().unwrap(), etag);

    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// RFC 9110 §13.1.2: `If-None-Match` compares weakly, takes a list, and `*` matches any.
#[tokio::test]
async fn if_none_match_compares_weakly_and_takes_lists() {
    let app = spawn_app().await;
    let url = app.url("/.well-known/jwks.json");
    let res = app.api.get(&url).send().await.unwrap();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    for (header, status) in [
        (format!("W/{etag}"), 304),
        (format!("\"other\", {etag}"), 304),
        ("*".to_owned(), 304),
        ("\"other\", W/\"another\"".to_owned(), 200),
        (etag.trim_matches('"').to_owned(), 200),
    ] {
        let res = app
            .api
            .get(&url)
            .header("if-none-match", &header)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "If-None-Match: {header}");
    }
}

#[tokio::test]
async fn authorization_server_metadata_is_published() {
    let app = spawn_app().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let res = app.api.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let meta: Value = res.json().await.unwrap();
        assert_eq!(meta["issuer"], ISSUER);
        assert_eq!(meta["token_endpoint"], format!("{ISSUER}/oauth/token"));
        assert_eq!(meta["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
        let grants = meta["grant_types_supported"].as_array().unwrap();
        for grant in ["password", "refresh_token", "client_credentials"] {
            assert!(grants.iter().any(|g| g == grant), "{grant}");
        }
    }
}
