//! Signing keys: life cycle, rotation (scheduled, forced, emergency), several
//! instances, every algorithm, and the master key.

use std::time::Duration;

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::helpers::{header_of, spawn, Spawn, TestApp};

/// Fast key life cycle for tests: keys are published 1 s before they sign.
fn fast_keys() -> Spawn {
    spawn()
        .with("TESSERA_JWKS_MAX_AGE", "0")
        .with("TESSERA_KEY_PUBLISH_AHEAD", "1s")
        .with("TESSERA_KEY_REFRESH_INTERVAL", "100ms")
}

pub async fn jwks(app: &TestApp) -> Value {
    app.api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn kids(jwks: &Value) -> Vec<String> {
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"].as_str().unwrap().to_owned()
}

/// Polls `check` every 100 ms for up to `secs` seconds.
async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Verifies a JWS with nothing but the JWK and raw signature primitives.
fn verify_raw(token: &str, jwk: &Value) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    let b64 = |field: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[field].as_str().unwrap())
            .unwrap()
    };
    match jwk["alg"].as_str().unwrap() {
        "ES256" => {
            assert_eq!(
                (jwk["kty"].as_str(), jwk["crv"].as_str()),
                (Some("EC"), Some("P-256"))
            );
            let mut point = vec![0x04];
            point.extend(b64("x"));
            point.extend(b64("y"));
            UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, &point)
                .verify(input.as_bytes(), &signature)
                .expect("ES256 signature");
        }
        "EdDSA" => {
            assert_eq!(
                (jwk["kty"].as_str(), jwk["crv"].as_str()),
                (Some("OKP"), Some("Ed25519"))
            );
            UnparsedPublicKey::new(&sig::ED25519, &b64("x"))
                .verify(input.as_bytes(), &signature)
                .expect("EdDSA signature");
        }
        "RS256" => {
            assert_eq!(jwk["kty"], "RSA");
            let n = b64("n");
            assert!(n.len() * 8 >= 2048, "RSA keys are at least 2048 bits");
            sig::RsaPublicKeyComponents {
                n: &n,
                e: &b64("e"),
            }
            .verify(
                &sig::RSA_PKCS1_2048_8192_SHA256,
                input.as_bytes(),
                &signature,
            )
            .expect("RS256 signature");
        }
        other => panic!("unexpected alg {other}"),
    }
}

#[tokio::test]
async fn every_algorithm_signs_tokens_that_verify_from_the_jwks() {
    for alg in ["ES256", "EdDSA", "RS256"] {
        let app = spawn().with("TESSERA_SIGNING_ALG", alg).start().await;
        app.create_user("alice", &[]).await;
        let token = app.login("alice").await.access_token;
        assert_eq!(header_of(&token)["alg"], alg);
        let set = jwks(&app).await;
        let jwk = &set["keys"][0];
        assert_eq!(jwk["alg"], alg);
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"].as_str().unwrap(), kid_of(&token));
        verify_raw(&token, jwk);
        // And through a generic JWT library, from the JWK alone.
        let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&parsed).unwrap();
        let mut validation = jsonwebtoken::Validation::new(
            header_of(&token)["alg"].as_str().unwrap().parse().unwrap(),
        );
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(
            app.get_with_token("/v1/me", &token).await.status(),
            200,
            "{alg}"
        );
    }
}

#[tokio::test]
async fn a_rotation_publishes_first_and_old_tokens_keep_working() {
    let app = fast_keys().start().await;
    app.create_user("alice", &[]).await;
    let before = app.login("alice").await;
    let old_kid = kid_of(&before.access_token);

    tessera::auth::keys::rotate(&app.tessera, false, &tessera::auth::Actor::command_line())
        .await
        .unwrap();

    // Published at once, not yet signing.
    let set = jwks(&app).await;
    assert_eq!(set["keys"].as_array().unwrap().len(), 2);
    let new_kid = kids(&set).into_iter().find(|k| *k != old_kid).unwrap();
    assert_eq!(kid_of(&app.login("alice").await.access_token), old_kid);

    // After the publish-ahead time the new key signs.
    assert!(
        eventually(5, || async {
            kid_of(&app.login("alice").await.access_token) == new_kid
        })
        .await,
        "the new key never started signing"
    );
    // Tokens signed by the old key still verify until they expire.
    assert_eq!(
        app.get_with_token("/v1/me", &before.access_token)
            .await
            .status(),
        200
    );
    assert!(
        kids(&jwks(&app).await).contains(&old_kid),
        "the retired key stays published"
    );
    let retired = app.count(&format!(
        "SELECT count(*) FROM signing_keys WHERE kid = '{old_kid}' AND state = 'retired'
           AND publish_until > now() + interval '5 minutes'
           AND octet_length(private_key_sealed) = 0"
    ));
    assert_eq!(
        retired, 1,
        "retired, published for a token lifetime, private part wiped"
    );
}

#[tokio::test]
async fn keys_rotate_on_schedule() {
    let app = fast_keys()
        .with("TESSERA_KEY_ROTATION_INTERVAL", "3s")
        .start()
        .await;
    let first = kids(&jwks(&app).await);
    assert_eq!(first.len(), 1);
    app.create_user("alice", &[]).await;
    assert!(
        eventually(8, || async {
            kid_of(&app.login("alice").await.access_token) != first[0]
        })
        .await,
        "no scheduled rotation happened"
    );
    assert!(app.count("SELECT count(*) FROM signing_keys WHERE state = 'retired'") >= 1);
}

#[tokio::test]
async fn an_emergency_rotation_drops_the_old_key_at_once() {
    let app = fast_keys().start().await;
    app.create_user("alice", &[]).await;
    let before = app.login("alice").await;
    let old_kid = kid_of(&before.access_token);

    tessera::auth::keys::rotate(&app.tessera, true, &tessera::auth::Actor::command_line())
        .await
        .unwrap();

    assert!(!kids(&jwks(&app).await).contains(&old_kid));
    assert_eq!(
        app.get_with_token("/v1/me", &before.access_token)
            .await
            .status(),
        401
    );
    let after = app.login("alice").await;
    assert_ne!(kid_of(&after.access_token), old_kid);
    assert_eq!(
        app.get_with_token("/v1/me", &after.access_token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn two_instances_converge_after_a_rotation_through_either() {
    let one = fast_keys().start().await;
    let two = fast_keys().sharing_database_of(&one).start().await;
    assert_eq!(kids(&jwks(&one).await), kids(&jwks(&two).await));

    tessera::auth::keys::rotate(&one.tessera, true, &tessera::auth::Actor::command_line())
        .await
        .unwrap();
    let converged = eventually(5, || async {
        kids(&jwks(&one).await) == kids(&jwks(&two).await)
    })
    .await;
    assert!(converged, "instance two did not pick up the rotation");

    tessera::auth::keys::rotate(&two.tessera, false, &tessera::auth::Actor::command_line())
        .await
        .unwrap();
    let converged = eventually(5, || async {
        let (a, b) = (kids(&jwks(&one).await), kids(&jwks(&two).await));
        a == b && a.len() == 2
    })
    .await;
    assert!(converged, "instance one did not pick up the next key");

    // A token minted by one verifies at the other.
    one.create_user("alice", &[]).await;
    let token = one.login("alice").await.access_token;
    assert_eq!(two.get_with_token("/v1/me", &token).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_create_one_key() {
    // Four instances start at once on one empty database: none of them finds a key.
    let owner = fast_keys();
    let others: Vec<Spawn> = (0..3)
        .map(|_| fast_keys().sharing_database_with(&owner))
        .collect();
    {
        use diesel::{Connection, RunQueryDsl};
        let url = url::Url::parse(&owner.settings().database.url).unwrap();
        let name = url.path().trim_start_matches('/').to_owned();
        let mut conn =
            diesel::PgConnection::establish(&crate::helpers::database_url("postgres")).unwrap();
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .unwrap();
    }
    let starts: Vec<_> = std::iter::once(owner)
        .chain(others)
        .map(|spawn| tokio::spawn(spawn.start()))
        .collect();
    let mut apps = Vec::new();
    for start in starts {
        apps.push(start.await.unwrap());
    }
    assert_eq!(
        apps[0].count("SELECT count(*) FROM signing_keys"),
        1,
        "one first key"
    );
    let kids: Vec<Vec<String>> = futures_util::future::join_all(apps.iter().map(jwks))
        .await
        .iter()
        .map(kids)
        .collect();
    assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");

    // And all of them asked to rotate at once: one next key.
    let cli = tessera::auth::Actor::command_line();
    let rotations = apps
        .iter()
        .map(|app| tessera::auth::keys::rotate(&app.tessera, false, &cli));
    for rotation in futures_util::future::join_all(rotations).await {
        rotation.unwrap();
    }
    assert_eq!(
        apps[0].count("SELECT count(*) FROM signing_keys WHERE state = 'current'"),
        1
    );
    assert_eq!(
        apps[0].count("SELECT count(*) FROM signing_keys WHERE state = 'next'"),
        1
    );
}

#[tokio::test]
async fn changing_the_algorithm_is_a_rotation() {
    let one = fast_keys().start().await;
    let old = kids(&jwks(&one).await);
    // A redeploy with a new TESSERA_SIGNING_ALG: the old instance is gone.
    one.stop().await;
    let two = fast_keys()
        .sharing_database_of(&one)
        .with("TESSERA_SIGNING_ALG", "EdDSA")
        .start()
        .await;
    two.create_user("alice", &[]).await;
    // The EdDSA key is published first, then signs.
    let set = jwks(&two).await;
    let algs: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert!(
        algs.contains(&"ES256") && algs.contains(&"EdDSA"),
        "{algs:?}"
    );
    assert!(
        eventually(5, || async {
            header_of(&two.login("alice").await.access_token)["alg"] == "EdDSA"
        })
        .await,
        "the EdDSA key never started signing"
    );
    assert!(
        kids(&jwks(&two).await).contains(&old[0]),
        "the ES256 key is still published"
    );
}

#[tokio::test]
async fn a_wrong_master_key_stops_start_up_and_changes_nothing() {
    let app = spawn().start().await;
    let before = app.count("SELECT count(*) FROM signing_keys");
    let settings = spawn()
        .sharing_database_of(&app)
        .with(
            "TESSERA_MASTER_KEY",
            &tessera::auth::master_key::MasterKey::generate_encoded(),
        )
        .settings();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = tessera::startup::Application::build_with_listener(settings, listener)
        .await
        .err()
        .expect("start-up must fail");
    let message = err.to_string();
    assert!(message.contains("master key"), "{message}");
    assert!(message.contains("Nothing was changed"), "{message}");
    assert_eq!(app.count("SELECT count(*) FROM signing_keys"), before);
}

#[tokio::test]
async fn a_missing_master_key_file_stops_start_up() {
    let app = spawn().start().await;
    let settings = spawn()
        .sharing_database_of(&app)
        .without("TESSERA_MASTER_KEY")
        .with("TESSERA_MASTER_KEY_FILE", "/nonexistent/tessera/master.key")
        .settings();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = tessera::startup::Application::build_with_listener(settings, listener)
        .await
        .err()
        .expect("start-up must fail");
    assert!(err.to_string().contains("TESSERA_MASTER_KEY_FILE"), "{err}");
}

#[tokio::test]
async fn the_jwks_is_cacheable_and_its_etag_follows_the_keys() {
    let app = spawn().with("TESSERA_JWKS_MAX_AGE", "120").start().await;
    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "public, max-age=120");
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    tessera::auth::keys::rotate(&app.tessera, false, &tessera::auth::Actor::command_line())
        .await
        .unwrap();
    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the old ETag no longer matches");
    assert_ne!(res.headers()["etag"].to_str().unwrap(), etag);
}
