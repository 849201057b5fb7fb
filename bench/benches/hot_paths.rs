//! Microbenchmarks of Tessera's per-request cryptography, through its public API:
//! minting and verifying an access token for each signing algorithm, issuing a refresh
//! token (its HMAC) and parsing and verifying a presented one, the JWKS document, and
//! the verifier crate's revocation-set check with 100,000 entries.
//!
//! Run: `cargo bench --manifest-path bench/Cargo.toml`.
//!
//! Signing keys can only be made by `KeyRing::start`, which keeps them in PostgreSQL
//! (`auth::keys::generate` and `KeySet::build` are private), so the token and JWKS
//! benchmarks need the local PostgreSQL: they use a scratch database,
//! `tessera_bench_micro` (or `TESSERA_BENCH_MICRO_DATABASE_URL`), dropped at the end.
//! Without PostgreSQL only the refresh-token benchmarks run.

use std::hint::black_box;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tessera::auth::clients::hash_secret;
use tessera::auth::keys::{KeyPolicy, KeyRing, KeySet, RecordRotation};
use tessera::auth::master_key::MasterKey;
use tessera::auth::refresh_mac::RefreshMac;
use tessera::auth::tokens::{self, Subject, TokenRequest};
use tessera::domain::{Chain, RefreshToken, SigningAlgorithm};
use tessera::store::{self, Db};

const ISSUER: &str = "http://127.0.0.1:8080";
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tessera_bench_micro";

fn database_url() -> String {
    std::env::var("TESSERA_BENCH_MICRO_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// Runs SQL against the server's `postgres` database (to drop the scratch one).
fn psql_admin(url: &str, sql: &str) -> bool {
    let Some((server, _database)) = url.rsplit_once('/') else {
        return false;
    };
    Command::new("psql")
        // No NOTICE when the database to drop is not there.
        .env("PGOPTIONS", "-c client_min_messages=warning")
        .args(["-X", "-q", "-d", &format!("{server}/postgres"), "-c", sql])
        .status()
        .is_ok_and(|s| s.success())
}

fn drop_database(url: &str) {
    let name = url.rsplit('/').next().unwrap_or_default();
    if !psql_admin(
        url,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    ) {
        eprintln!("could not drop the scratch database {name}");
    }
}

fn policy(algorithm: SigningAlgorithm) -> KeyPolicy {
    KeyPolicy {
        algorithm,
        rotation_interval: Duration::from_secs(30 * 24 * 3600),
        publish_ahead: Duration::from_secs(3600),
    }
}

/// A key set whose current key signs with `algorithm`: a key ring started with that
/// policy, forced over by an emergency rotation when an earlier key is current.
async fn key_set(db: &Db, algorithm: SigningAlgorithm) -> Result<Arc<KeySet>, String> {
    // A fixed master key: the scratch database holds nothing worth protecting.
    let master = MasterKey::from_bytes([7; 32]);
    let ring = KeyRing::start(db.clone(), master, policy(algorithm))
        .await
        .map_err(|e| e.to_string())?;
    let signs_with = |ring: &KeyRing| {
        ring.snapshot()
            .signing()
            .map(|k| k.algorithm == algorithm)
            .unwrap_or(false)
    };
    if !signs_with(&ring) {
        // A scratch database: the rotation needs no audit record.
        let unrecorded: Box<RecordRotation> = Box::new(|_, _| Ok(()));
        ring.rotate(true, unrecorded)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(ring.snapshot())
}

/// One key set per algorithm, or `None` (with the reason) without PostgreSQL.
fn key_sets(url: &str) -> Option<Vec<(SigningAlgorithm, Arc<KeySet>)>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    drop_database(url);
    let made = runtime.block_on(async {
        let owned = url.to_owned();
        tokio::task::spawn_blocking(move || store::prepare_database(&owned))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let db = Db::new(url, 2, Duration::from_secs(5));
        let mut sets = Vec::new();
        for algorithm in SigningAlgorithm::ALL {
            sets.push((algorithm, key_set(&db, algorithm).await?));
        }
        Ok::<_, String>(sets)
    });
    match made {
        Ok(sets) => Some(sets),
        Err(e) => {
            eprintln!("skipping the access-token and JWKS benchmarks: {e}");
            None
        }
    }
}

/// What the password and refresh grants ask for: a user's token for Tessera's own API.
fn token_request(roles: &[String]) -> TokenRequest<'_> {
    TokenRequest {
        issuer: ISSUER,
        subject: Subject::User {
            id: uuid::Uuid::now_v7(),
            username: "alice",
            roles,
            session_id: uuid::Uuid::now_v7(),
        },
        client_id: "tessera",
        scope: "profile",
        audiences: vec![ISSUER.to_owned()],
        ttl: Duration::from_secs(300),
        issued_at: None,
    }
}

fn access_tokens(c: &mut Criterion, sets: &[(SigningAlgorithm, Arc<KeySet>)]) {
    let roles = vec!["admin".to_owned()];
    let mut group = c.benchmark_group("access_token");
    for (algorithm, keys) in sets {
        group.bench_function(BenchmarkId::new("mint", algorithm), |b| {
            b.iter(|| black_box(tokens::mint(keys, token_request(&roles)).expect("minting works")))
        });
        // First sight of a token: header, key, signature and claims.
        group.bench_function(BenchmarkId::new("verify_first", algorithm), |b| {
            b.iter_batched(
                || {
                    tokens::mint(keys, token_request(&roles))
                        .expect("minting works")
                        .token
                },
                |token| {
                    black_box(
                        tokens::verify(keys, black_box(&token), ISSUER, Some(ISSUER))
                            .expect("a fresh token verifies"),
                    )
                },
                criterion::BatchSize::SmallInput,
            )
        });
        // The same token again: remembered by the key set, only the claims re-checked.
        let minted = tokens::mint(keys, token_request(&roles)).expect("minting works");
        group.bench_function(BenchmarkId::new("verify_again", algorithm), |b| {
            b.iter(|| {
                black_box(
                    tokens::verify(keys, black_box(&minted.token), ISSUER, Some(ISSUER))
                        .expect("a fresh token verifies"),
                )
            })
        });
    }
    group.finish();
}

fn refresh_tokens(c: &mut Criterion) {
    let mac = RefreshMac::from_master(&MasterKey::from_bytes([7; 32]));
    let chain = Chain {
        session_id: uuid::Uuid::now_v7(),
        generation: 41,
    };
    let mut group = c.benchmark_group("refresh_token");
    // What a refresh (and a login) does to hand out a token: HMAC-SHA256 over 25 bytes
    // and base64url.
    group.bench_function("issue", |b| {
        b.iter(|| black_box(mac.issue(black_box(chain))))
    });
    let raw = mac.issue(chain).expose().to_owned();
    // What the refresh grant does with the token it is given, before any I/O.
    group.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            let token = RefreshToken::parse(black_box(&raw)).expect("well-formed");
            black_box(mac.verify(&token).expect("a genuine token"))
        })
    });
    group.finish();

    // The shape of the secrets Tessera generates: cs_ and 43 base64url characters.
    let secret = format!("cs_{}", &raw[3..46]);
    c.bench_function("client_secret/hash", |b| {
        b.iter(|| black_box(hash_secret(black_box(&secret))))
    });
}

fn jwks(c: &mut Criterion, keys: &KeySet) {
    let mut group = c.benchmark_group("jwks");
    // Per request Tessera only clones the document it serialised at the last key
    // change (reference-counted bytes).
    group.bench_function("serve_cached", |b| {
        b.iter(|| black_box(keys.jwks().clone()))
    });
    // The serialisation itself happens in the private `KeySet::build`; this rebuilds
    // the same `{"keys": [...]}` document from the published JWKs with serde_json.
    let published: serde_json::Value =
        serde_json::from_slice(keys.jwks()).expect("the JWKS is JSON");
    let jwks: Vec<serde_json::Value> = published["keys"].as_array().expect("a keys array").clone();
    group.bench_function("serialise", |b| {
        b.iter(|| {
            black_box(
                serde_json::to_vec(&serde_json::json!({ "keys": black_box(&jwks) }))
                    .expect("JSON values serialise"),
            )
        })
    });
    group.finish();
}

/// The verifier crate's check against its revocation set (what a subscribed service
/// adds to every verification) with 100,000 entries: 25,000 of each kind.
fn revocation_set(c: &mut Criterion) {
    use tessera_verifier::{Claims, RevocationSet, RevokedEntry};
    let mut set = RevocationSet::default();
    for i in 0..25_000u32 {
        for kind in ["jti", "sid", "user", "client"] {
            let cut = matches!(kind, "user" | "client").then_some(1_700_000_000);
            set.insert(RevokedEntry {
                kind: kind.to_owned(),
                value: format!("{kind}-{i}"),
                not_before: cut,
                expires_at: i64::MAX,
            });
        }
    }
    assert_eq!(set.len(), 100_000);
    let claims = |jti: &str, sid: &str| Claims {
        iss: ISSUER.to_owned(),
        sub: uuid::Uuid::now_v7().to_string(),
        aud: tessera_verifier::Audience::from_list(vec![ISSUER.to_owned()]),
        exp: 1_800_000_300,
        iat: 1_800_000_000,
        nbf: Some(1_800_000_000),
        jti: jti.to_owned(),
        client_id: "orders".to_owned(),
        scope: "orders:read".to_owned(),
        sid: Some(sid.to_owned()),
        roles: Some(vec![]),
        preferred_username: None,
    };
    let alive = claims(
        &uuid::Uuid::now_v7().to_string(),
        &uuid::Uuid::now_v7().to_string(),
    );
    let revoked = claims("jti-12345", &uuid::Uuid::now_v7().to_string());
    let mut group = c.benchmark_group("revocation_set_100k");
    group.bench_function("alive_token", |b| {
        b.iter(|| assert!(!set.denies(black_box(&alive))))
    });
    group.bench_function("revoked_token", |b| {
        b.iter(|| assert!(set.denies(black_box(&revoked))))
    });
    group.finish();
}

fn hot_paths(c: &mut Criterion) {
    // What `Tessera::open` does first: signatures with key pairs parsed once, as the
    // server makes them (jsonwebtoken settles on its own provider at its first use).
    tessera::auth::keys::signer::install();
    refresh_tokens(c);
    revocation_set(c);
    let url = database_url();
    if let Some(sets) = key_sets(&url) {
        access_tokens(c, &sets);
        // The default deployment: one ES256 key published.
        if let Some((_, keys)) = sets.first() {
            jwks(c, keys);
        }
        drop_database(&url);
    }
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
