//! Forged tokens against every bearer-protected route and introspection, and hostile
//! input at the edge. Every one must get a clear 4xx: never a 2xx, never a 5xx.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{claims_of, spawn_app, TestApp, ISSUER};

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn attacker_key() -> EncodingKey {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    EncodingKey::from_ec_der(pkcs8.as_ref())
}

/// Claims an admin would have, for a user that exists.
fn admin_claims(user_id: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": ISSUER, "sub": user_id, "aud": ISSUER, "exp": now + 300, "iat": now, "nbf": now,
        "jti": uuid::Uuid::new_v4().to_string(), "client_id": "tessera", "scope": "profile",
        "sid": uuid::Uuid::new_v4().to_string(), "roles": ["admin"]
    })
}

fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(header, claims, key).unwrap()
}

/// Every forged token, by name.
fn forgeries(app: &TestApp, real: &str, user_id: &str) -> Vec<(&'static str, String)> {
    let keys = app.tessera.key_set();
    let key = keys.signing().unwrap();
    let kid = key.kid.clone();
    let header = |typ: &str| {
        let mut h = Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some(kid.clone());
        h.typ = Some(typ.to_owned());
        h
    };
    let claims = admin_claims(user_id);
    let with = |field: &str, value: Value| {
        let mut c = claims.clone();
        c[field] = value;
        c
    };
    let now = chrono::Utc::now().timestamp();
    let real_key = key.encoding_key();

    // alg none, with the real kid.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&claims)
    );
    // HS256 keyed with the published public key material.
    let jwks = keys.jwks();
    let jwk: Value = serde_json::from_slice(jwks).unwrap();
    let public = serde_json::to_vec(&jwk["keys"][0]).unwrap();
    let hs_input = format!(
        "{}.{}",
        b64(&json!({"alg": "HS256", "typ": "at+jwt", "kid": kid})),
        b64(&claims)
    );
    let hs = |secret: &[u8]| {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, secret),
            hs_input.as_bytes(),
        );
        format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    };
    let x = URL_SAFE_NO_PAD
        .decode(jwk["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    // Tampered: a real token with roles rewritten, signature kept.
    let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    let mut tampered_claims = claims_of(real);
    tampered_claims["roles"] = json!(["admin"]);
    parts[1] = b64(&tampered_claims);
    let tampered = parts.join(".");
    // jku / x5u / embedded jwk pointing at the attacker's key.
    let attacker = attacker_key();
    let mut jku = header("at+jwt");
    jku.jku = Some("http://127.0.0.1:1/evil-jwks.json".to_owned());
    jku.kid = Some("attacker".to_owned());
    let mut x5u = header("at+jwt");
    x5u.x5u = Some("http://127.0.0.1:1/evil.pem".to_owned());
    let mut path_kid = header("at+jwt");
    path_kid.kid = Some("../../../../etc/passwd".to_owned());
    let mut null_kid = header("at+jwt");
    null_kid.kid = Some("kid\u{0}with\u{0}nul".to_owned());

    vec![
        ("alg none", none),
        ("HS256 with the JWK as secret", hs(&public)),
        ("HS256 with the raw public key", hs(&x)),
        (
            "unknown kid",
            sign(
                &{
                    let mut h = header("at+jwt");
                    h.kid = Some("nope".into());
                    h
                },
                &claims,
                &attacker,
            ),
        ),
        ("path-like kid", sign(&path_kid, &claims, &attacker)),
        ("kid with NUL", sign(&null_kid, &claims, &attacker)),
        ("jku to the attacker", sign(&jku, &claims, &attacker)),
        ("x5u with the real kid", sign(&x5u, &claims, &attacker)),
        (
            "the real kid, another key",
            sign(&header("at+jwt"), &claims, &attacker),
        ),
        ("tampered payload", tampered),
        (
            "expired",
            sign(&header("at+jwt"), &with("exp", json!(now - 3600)), real_key),
        ),
        (
            "not yet valid",
            sign(&header("at+jwt"), &with("nbf", json!(now + 3600)), real_key),
        ),
        (
            "wrong issuer",
            sign(
                &header("at+jwt"),
                &with("iss", json!("https://evil.example")),
                real_key,
            ),
        ),
        (
            "wrong audience",
            sign(
                &header("at+jwt"),
                &with("aud", json!("https://elsewhere.example")),
                real_key,
            ),
        ),
        ("wrong typ", sign(&header("JWT"), &claims, real_key)),
        (
            "no typ",
            sign(
                &{
                    let mut h = header("at+jwt");
                    h.typ = None;
                    h
                },
                &claims,
                real_key,
            ),
        ),
        (
            "crit header",
            sign(
                &{
                    let mut h = header("at+jwt");
                    h.crit = Some(vec!["exp".into()]);
                    h
                },
                &claims,
                real_key,
            ),
        ),
        (
            "huge",
            format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c"),
        ),
    ]
}

/// Every operation of the OpenAPI document that takes a bearer token.
fn bearer_routes() -> Vec<(reqwest::Method, String)> {
    let doc: Value =
        serde_json::from_str(&tessera::http::docs::document().to_json().unwrap()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["security"][0].get("bearer").is_some() {
                let path = path
                    .replace("{id}", "00000000-0000-0000-0000-000000000000")
                    .replace("{sid}", "00000000-0000-0000-0000-000000000000");
                routes.push((
                    reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    path,
                ));
            }
        }
    }
    routes
}

#[tokio::test]
async fn forged_tokens_are_refused_everywhere() {
    let app = spawn_app().await;
    let user = app.create_user("root", &["admin"]).await.to_string();
    let tokens = app.login("root").await;
    // Allowed to introspect any token, so it can judge every forgery.
    let (_, secret) = app
        .create_client(json!({
            "client_id": "orders-api", "confidential": true,
            "grant_types": ["client_credentials"], "introspect_any": true,
        }))
        .await;
    let secret = secret.unwrap();
    let routes = bearer_routes();
    assert!(routes.len() >= 20, "{} bearer routes", routes.len());
    let mut forged = forgeries(&app, &tokens.access_token, &user);
    forged.push(("a refresh token", tokens.refresh_token.clone()));

    for (name, token) in &forged {
        for (method, path) in &routes {
            if *name == "wrong audience" && path == "/oauth/userinfo" {
                // Signed with Tessera's own key: userinfo takes any app's token, whatever
                // its audience, and this one lacks `openid` (tests/api/oidc.rs).
                continue;
            }
            let res = app
                .api
                .request(method.clone(), app.url(path))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401, "{name}: {method} {path}");
            let challenge = res.headers()["www-authenticate"].to_str().unwrap();
            assert!(challenge.contains("invalid_token"), "{name}: {challenge}");
        }
        let res = app
            .api
            .post(app.url("/oauth/introspect"))
            .basic_auth("orders-api", Some(&secret))
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
        let body: Value = res.json().await.unwrap();
        if *name == "a refresh token" {
            assert_eq!(
                body["active"], true,
                "a live refresh token introspects as one"
            );
            assert_eq!(body["token_type"], "refresh_token");
        } else if *name == "wrong audience" {
            // Genuinely ours, for another audience: introspection says so, and the
            // resource server judges `aud` (RFC 7662 §2.2).
            assert_eq!(body["aud"], "https://elsewhere.example");
        } else {
            assert_eq!(body, json!({"active": false}), "{name}");
        }
    }
    // The genuine token still works (so the refusals were about the forgeries).
    assert_eq!(
        app.get_with_token("/v1/admin/users", &tokens.access_token)
            .await
            .status(),
        200
    );
}

/// Sends raw bytes and returns the status line.
async fn raw_request(app: &TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .map(|r| r.unwrap_or(0))
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn control_characters_and_invalid_utf8_in_headers_are_client_errors() {
    let app = spawn_app().await;
    for request in [
        &b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\x01def\r\n\r\n"[..],
        &b"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n"[..],
        &b"GET /v1/me HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\x7fb\r\nAuthorization: Bearer a.b.c\r\n\r\n"[..],
        &b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \xff\xff\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 29\r\n\r\ngrant_type=client_credentials"[..],
    ] {
        let status = raw_request(&app, request).await;
        let code: u16 = status.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        assert!((400..500).contains(&code), "{status:?} for {:?}", String::from_utf8_lossy(request));
    }
}

#[tokio::test]
async fn deeply_nested_and_huge_json_bodies_are_refused() {
    let app = spawn_app().await;
    let admin = {
        app.create_user("root", &["admin"]).await;
        app.login("root").await.access_token
    };
    let nested = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(nested.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .api
        .post(app.url("/v1/admin/users"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let huge = json!({"username": "x".repeat(100_000), "password": "y"});
    let res = app
        .api
        .post(app.url("/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let res = app
        .api
        .post(app.url("/v1/admin/users"))
        .bearer_auth(&admin)
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error());
}

#[tokio::test]
async fn oversized_request_headers_are_refused_before_any_handler_runs() {
    let app = spawn_app().await;
    for size in [20 * 1024, 64 * 1024] {
        let res = app
            .api
            .get(app.url("/v1/me"))
            .header("x-padding", "a".repeat(size))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 431, "{size} bytes of headers");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let res = app.api.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the server is still up");
}
