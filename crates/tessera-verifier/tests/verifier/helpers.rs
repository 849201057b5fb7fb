//! Shared set-up: signing keys made here, a fake Tessera on 127.0.0.1:0 that serves
//! their JWKS (counting requests, with settable Cache-Control / ETag / failures /
//! latency) and an introspection endpoint, and tokens signed with those keys.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::header;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tessera_verifier::{IntrospectionConfig, Verifier, VerifierConfig};

pub const ISSUER: &str = "https://auth.tessera.test";
pub const AUDIENCE: &str = "https://orders.tessera.test";
pub const CLIENT_ID: &str = "svc-orders";
pub const CLIENT_SECRET: &str = "s3cret:with space";

/// A key pair of one of Tessera's algorithms, published (or not) under `kid`.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public JWK, exactly as Tessera publishes it (`kid`, `use: sig`, `alg`).
    pub jwk: Value,
}

impl TestKey {
    pub fn es256(kid: &str) -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("P-256 key");
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(pkcs8.as_ref()),
        )
    }

    pub fn ed25519(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().expect("Ed25519 key");
        let der = AsDer::<Pkcs8V1Der>::as_der(&pair).expect("Ed25519 PKCS#8");
        Self::new(
            kid,
            Algorithm::EdDSA,
            EncodingKey::from_ed_der(der.as_ref()),
        )
    }

    pub fn rs256(kid: &str) -> Self {
        let pair =
            aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key");
        let der = AsDer::<Pkcs8V1Der>::as_der(&pair).expect("RSA PKCS#8");
        // jsonwebtoken takes PKCS#1 DER for RSA, but its PEM reader unwraps PKCS#8.
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der.as_ref())
        );
        Self::new(
            kid,
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem.as_bytes()).expect("RSA PEM"),
        )
    }

    fn new(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("public JWK");
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk: serde_json::to_value(&jwk).expect("JWK serialises"),
        }
    }

    /// The header Tessera puts on its access tokens.
    pub fn header(&self) -> Header {
        let mut header = Header::new(self.alg);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        header
    }

    pub fn token(&self, claims: &Value) -> String {
        self.token_with(self.header(), claims)
    }

    pub fn token_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("token signs")
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The claims of a user's access token as Tessera mints them, for our audience.
pub fn claims() -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "sub": "0190d5a4-1111-7000-8000-000000000001",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "jti": "0190d5a4-2222-7000-8000-000000000002",
        "client_id": "tessera",
        "scope": "profile orders:read",
        "sid": "0190d5a4-3333-7000-8000-000000000003",
        "roles": ["admin"],
        "preferred_username": "alice",
    })
}

/// `{header}.{claims}.{signature}` from raw JSON, for tokens no library would sign.
pub fn hand_built(header: &Value, claims: &Value, signature: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[derive(Clone, Debug)]
pub struct IntrospectionRequest {
    pub authorization: Option<String>,
    pub form: HashMap<String, String>,
}

#[derive(Default)]
struct FakeState {
    keys: Mutex<Vec<Value>>,
    cache_control: Mutex<Option<String>>,
    etag: Mutex<Option<String>>,
    failing: AtomicBool,
    latency: Mutex<Duration>,
    jwks_hits: AtomicUsize,
    not_modified: AtomicUsize,
    if_none_match: Mutex<Vec<String>>,
    active: AtomicBool,
    introspections: Mutex<Vec<IntrospectionRequest>>,
}

/// A stand-in for Tessera's `/.well-known/jwks.json` and `/oauth/introspect`.
pub struct FakeTessera {
    pub base_url: String,
    state: Arc<FakeState>,
}

impl FakeTessera {
    pub async fn start() -> Self {
        let state = Arc::new(FakeState::default());
        state.active.store(true, Ordering::SeqCst);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let app_state = web::Data::from(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .route("/.well-known/jwks.json", web::get().to(jwks))
                .route("/oauth/introspect", web::post().to(introspect))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self { base_url, state }
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base_url)
    }

    /// Our issuer and audience, this server's JWKS, and intervals short enough for tests.
    pub fn config(&self) -> VerifierConfig {
        VerifierConfig::new(ISSUER, AUDIENCE)
            .jwks_url(self.jwks_url())
            .min_refresh_interval(Duration::from_millis(200))
            .http_timeout(Duration::from_secs(2))
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.config()).expect("valid test config")
    }

    pub fn online_verifier(&self) -> Verifier {
        let introspection = IntrospectionConfig::new(CLIENT_ID, CLIENT_SECRET)
            .url(format!("{}/oauth/introspect", self.base_url));
        Verifier::new(self.config().introspection(introspection)).expect("valid test config")
    }

    pub fn publish(&self, key: &TestKey) {
        self.state.keys.lock().unwrap().push(key.jwk.clone());
    }

    pub fn publish_raw(&self, jwk: Value) {
        self.state.keys.lock().unwrap().push(jwk);
    }

    pub fn set_cache_control(&self, value: &str) {
        *self.state.cache_control.lock().unwrap() = Some(value.to_owned());
    }

    pub fn set_etag(&self, value: &str) {
        *self.state.etag.lock().unwrap() = Some(value.to_owned());
    }

    pub fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().unwrap() = latency;
    }

    pub fn set_active(&self, active: bool) {
        self.state.active.store(active, Ordering::SeqCst);
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn not_modified_answers(&self) -> usize {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    pub fn if_none_match_received(&self) -> Vec<String> {
        self.state.if_none_match.lock().unwrap().clone()
    }

    pub fn introspections(&self) -> Vec<IntrospectionRequest> {
        self.state.introspections.lock().unwrap().clone()
    }

    /// Waits (up to 5 s) until the JWKS has been requested `hits` times: for refreshes
    /// that run in the background.
    pub async fn wait_for_jwks_hits(&self, hits: usize) {
        for _ in 0..500 {
            if self.jwks_hits() >= hits {
                // Let the verifier store what it received.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the JWKS was requested {} times, expected {hits}",
            self.jwks_hits()
        );
    }
}

/// A fake Tessera with one published ES256 key, and that key.
pub async fn tessera_with_es256_key() -> (FakeTessera, TestKey) {
    let tessera = FakeTessera::start().await;
    let key = TestKey::es256("es256-key");
    tessera.publish(&key);
    (tessera, key)
}

/// A `http://127.0.0.1:<port>` URL where nothing listens.
pub fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

async fn jwks(req: HttpRequest, state: web::Data<FakeState>) -> HttpResponse {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let latency = *state.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if state.failing.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().finish();
    }
    let if_none_match = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(value) = &if_none_match {
        state.if_none_match.lock().unwrap().push(value.clone());
    }
    let etag = state.etag.lock().unwrap().clone();
    let cache_control = state.cache_control.lock().unwrap().clone();
    let unchanged = etag.is_some() && if_none_match == etag;
    let mut res = if unchanged {
        state.not_modified.fetch_add(1, Ordering::SeqCst);
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    if let Some(value) = cache_control {
        res.insert_header((header::CACHE_CONTROL, value));
    }
    if let Some(value) = etag {
        res.insert_header((header::ETAG, value));
    }
    if unchanged {
        res.finish()
    } else {
        let keys = state.keys.lock().unwrap().clone();
        res.content_type("application/jwk-set+json")
            .json(json!({ "keys": keys }))
    }
}

async fn introspect(
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
    state: web::Data<FakeState>,
) -> HttpResponse {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state
        .introspections
        .lock()
        .unwrap()
        .push(IntrospectionRequest {
            authorization,
            form: form.into_inner(),
        });
    if state.active.load(Ordering::SeqCst) {
        HttpResponse::Ok().json(json!({ "active": true, "client_id": "tessera" }))
    } else {
        HttpResponse::Ok().json(json!({ "active": false }))
    }
}
