//! Fetching and caching the JWKS: rate limit, single flight, Cache-Control, ETag,
//! stale-if-error, unavailability.

use std::time::Duration;

use tessera_verifier::{Verifier, VerifierConfig, VerifyError};

use crate::helpers::{claims, closed_port_url, tessera_with_es256_key, TestKey, AUDIENCE, ISSUER};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_kid_flood_refetches_at_most_once_per_interval() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_latency(Duration::from_millis(200));
    let verifier = Verifier::new(
        tessera
            .config()
            .min_refresh_interval(Duration::from_secs(2)),
    )
    .unwrap();
    verifier.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(tessera.jwks_hits(), 1);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let forger = TestKey::es256("unused");

    for round in 0..2 {
        // Spawn them all first, so they really run at the same time.
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let verifier = verifier.clone();
                let mut header = forger.header();
                header.kid = Some(format!("forged-{round}-{i}"));
                let token = forger.token_with(header, &claims());
                tokio::spawn(async move { verifier.verify(&token).await })
            })
            .collect();
        for task in tasks {
            let result = task.await.unwrap();
            assert!(matches!(result, Err(VerifyError::UnknownKey)), "{result:?}");
        }
        assert_eq!(tessera.jwks_hits(), 2, "after round {round}");
    }
    // The genuine key still works throughout.
    verifier.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(tessera.jwks_hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_verifications_share_one_fetch() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_latency(Duration::from_millis(200));
    let verifier = tessera.verifier();
    let token = key.token(&claims());

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let verifier = verifier.clone();
            let token = token.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        let result = task.await.unwrap();
        assert!(result.is_ok(), "{result:?}");
    }

    assert_eq!(tessera.jwks_hits(), 1);
}

#[tokio::test]
async fn newly_published_key_is_found_by_refetching() {
    let (tessera, key) = tessera_with_es256_key().await;
    let verifier = tessera.verifier();
    verifier.verify(&key.token(&claims())).await.unwrap();
    let next = TestKey::ed25519("next-key");
    tessera.publish(&next);
    tokio::time::sleep(Duration::from_millis(250)).await;

    let result = verifier.verify(&next.token(&claims())).await;

    assert!(result.is_ok(), "{result:?}");
    assert_eq!(tessera.jwks_hits(), 2);
}

#[tokio::test]
async fn max_age_is_honoured() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_cache_control("public, max-age=60");
    let verifier = tessera.verifier();
    verifier.verify(&key.token(&claims())).await.unwrap();
    // Well past min_refresh_interval (200 ms), well within max-age.
    tokio::time::sleep(Duration::from_millis(500)).await;

    verifier.verify(&key.token(&claims())).await.unwrap();

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(tessera.jwks_hits(), 1);
}

#[tokio::test]
async fn stale_jwks_is_revalidated_with_its_etag() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_cache_control("public, max-age=1");
    tessera.set_etag("\"jwks-v1\"");
    let verifier = Verifier::new(
        tessera
            .config()
            .min_refresh_interval(Duration::from_millis(100)),
    )
    .unwrap();
    verifier.verify(&key.token(&claims())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // Stale but holding the kid: answered at once, revalidated in the background.
    verifier.verify(&key.token(&claims())).await.unwrap();
    tessera.wait_for_jwks_hits(2).await;

    assert_eq!(tessera.if_none_match_received(), ["\"jwks-v1\""]);
    assert_eq!(tessera.not_modified_answers(), 1);
    // The 304 made the cached set fresh again for another max-age.
    verifier.verify(&key.token(&claims())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    verifier.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(tessera.jwks_hits(), 2);
}

#[tokio::test]
async fn no_cache_jwks_is_revalidated_after_the_interval() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_cache_control("no-cache");
    tessera.set_etag("\"jwks-v1\"");
    let verifier = Verifier::new(
        tessera
            .config()
            .min_refresh_interval(Duration::from_secs(1)),
    )
    .unwrap();
    verifier.verify(&key.token(&claims())).await.unwrap();
    // Within min_refresh_interval nothing is fetched, no-cache or not.
    verifier.verify(&key.token(&claims())).await.unwrap();
    assert_eq!(tessera.jwks_hits(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    verifier.verify(&key.token(&claims())).await.unwrap();
    tessera.wait_for_jwks_hits(2).await;

    assert_eq!(tessera.not_modified_answers(), 1);
}

#[tokio::test]
async fn cached_jwks_is_used_while_refreshes_fail() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_cache_control("max-age=0");
    let verifier = tessera.verifier();
    verifier.verify(&key.token(&claims())).await.unwrap();
    tessera.set_failing(true);
    tokio::time::sleep(Duration::from_millis(250)).await;

    verifier.verify(&key.token(&claims())).await.unwrap();
    tessera.wait_for_jwks_hits(2).await;

    let result = verifier.verify(&key.token(&claims())).await;
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn jwks_too_stale_is_unavailable_when_refresh_fails() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_cache_control("max-age=0");
    let verifier = Verifier::new(tessera.config().max_stale(Duration::from_millis(100))).unwrap();
    verifier.verify(&key.token(&claims())).await.unwrap();
    tessera.set_failing(true);
    tokio::time::sleep(Duration::from_millis(250)).await;

    let result = verifier.verify(&key.token(&claims())).await;

    assert!(
        matches!(result, Err(VerifyError::JwksUnavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn unreachable_jwks_with_empty_cache_is_unavailable() {
    let key = TestKey::es256("k");
    let verifier = Verifier::new(
        VerifierConfig::new(ISSUER, AUDIENCE)
            .jwks_url(format!("{}/.well-known/jwks.json", closed_port_url())),
    )
    .unwrap();

    let error = verifier.verify(&key.token(&claims())).await.unwrap_err();

    assert!(
        matches!(error, VerifyError::JwksUnavailable(_)),
        "{error:?}"
    );
    assert!(!error.is_caller_fault());
    assert_eq!(error.status_code(), 503);
}

#[tokio::test]
async fn jwks_server_error_with_empty_cache_is_unavailable() {
    let (tessera, key) = tessera_with_es256_key().await;
    tessera.set_failing(true);

    let error = tessera
        .verifier()
        .verify(&key.token(&claims()))
        .await
        .unwrap_err();

    assert!(
        matches!(
            &error,
            VerifyError::JwksUnavailable(tessera_verifier::JwksError::Status { status: 500, .. })
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn warm_up_fetches_before_the_first_token() {
    let (tessera, key) = tessera_with_es256_key().await;
    let verifier = tessera.verifier();

    verifier.warm_up().await.unwrap();
    assert_eq!(tessera.jwks_hits(), 1);
    verifier.verify(&key.token(&claims())).await.unwrap();

    assert_eq!(tessera.jwks_hits(), 1);
}

#[tokio::test]
async fn plain_http_jwks_off_loopback_is_refused_by_config() {
    let result = Verifier::new(
        VerifierConfig::new(ISSUER, AUDIENCE)
            .jwks_url("http://tessera.internal/.well-known/jwks.json"),
    );

    assert!(
        matches!(result, Err(tessera_verifier::ConfigError::PlainHttp { .. })),
        "{result:?}"
    );
}
