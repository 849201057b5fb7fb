//! The verifier crate's revocation subscription against real Tessera instances, through
//! a proxy the tests can cut: after every fault the verifier's set equals Tessera's
//! snapshot, and no revoked token is accepted past the staleness bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tessera_verifier::{
    RevocationConfig, RevocationState, RevokedEntry, Verifier, VerifierConfig, VerifyError,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::faults::PrivateRedis;
use crate::helpers::{spawn, spawn_app, TestApp, ISSUER};
use crate::revocation_feed::{client_token, create_subscriber};

/// A TCP proxy in front of Tessera instances (round robin) whose connections the test
/// can cut, and whose backends it can change.
struct Proxy {
    port: u16,
    backends: Arc<Mutex<Vec<u16>>>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    async fn start(backends: &[&TestApp]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let backends = Arc::new(Mutex::new(
            backends.iter().map(|a| port_of(a)).collect::<Vec<_>>(),
        ));
        let cut = watch::channel(0).0;
        let next = Arc::new(AtomicUsize::new(0));
        {
            let backends = backends.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let ports = backends.lock().unwrap().clone();
                    if ports.is_empty() {
                        continue; // dropped: refused
                    }
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    let mut cut = cut.subscribe();
                    tokio::spawn(async move {
                        // Round robin, skipping instances that refuse (as a load
                        // balancer's health check would).
                        let mut outbound = None;
                        for i in 0..ports.len() {
                            let port = ports[(first + i) % ports.len()];
                            if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
                                outbound = Some(stream);
                                break;
                            }
                        }
                        let Some(mut outbound) = outbound else {
                            return;
                        };
                        let mut inbound = inbound;
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            });
        }
        Self {
            port,
            backends,
            cut,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Closes every open connection.
    fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// From now on, connect to these instances (none: refuse every connection).
    fn route_to(&self, apps: &[&TestApp]) {
        *self.backends.lock().unwrap() = apps.iter().map(|a| port_of(a)).collect();
    }
}

fn port_of(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// The subscriber client, created once per database.
async fn subscriber(app: &TestApp) -> (String, String) {
    let id = "orders-verifier";
    (id.to_owned(), create_subscriber(app, id).await)
}

async fn subscribed_verifier(
    proxy: &Proxy,
    client: &(String, String),
    staleness: Duration,
    fail_open: bool,
) -> Verifier {
    let verifier = Verifier::new(
        VerifierConfig::new(ISSUER, ISSUER)
            .jwks_url(format!("{}/.well-known/jwks.json", proxy.url()))
            .revocations(
                RevocationConfig::new(&client.0, &client.1)
                    .url(proxy.url())
                    .staleness(staleness)
                    .fail_open(fail_open),
            ),
    )
    .unwrap();
    assert!(
        verifier.revocations_ready(Duration::from_secs(5)).await,
        "the first snapshot arrives"
    );
    verifier
}

/// Tessera's snapshot, as the verifier holds it.
async fn snapshot_entries(app: &TestApp, client: &(String, String)) -> Vec<RevokedEntry> {
    let token = client_token(app, &client.0, &client.1).await;
    let body: Value = app
        .get_with_token("/v1/revocations", &token)
        .await
        .json()
        .await
        .unwrap();
    let mut entries: Vec<RevokedEntry> = serde_json::from_value(body["entries"].clone()).unwrap();
    entries.sort();
    entries
}

/// Waits (up to 5 s) until the verifier holds exactly the snapshot.
async fn assert_converges(verifier: &Verifier, app: &TestApp, client: &(String, String)) {
    let expected = snapshot_entries(app, client).await;
    for _ in 0..100 {
        if verifier.revocation_entries().unwrap() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        verifier.revocation_entries().unwrap(),
        expected,
        "the verifier's set is the snapshot"
    );
}

/// Polls until the verifier refuses the token; panics if it still accepts it after
/// `within`. Refusal is `Revoked`, or `RevocationsStale` while it cannot know.
async fn assert_refused_within(verifier: &Verifier, token: &str, within: Duration) -> VerifyError {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match verifier.verify(token).await {
            Err(e @ (VerifyError::Revoked | VerifyError::RevocationsStale)) => return e,
            Err(e) => panic!("unexpected refusal: {e}"),
            Ok(_) if tokio::time::Instant::now() >= deadline => {
                panic!("a revoked token was still accepted after {within:?}")
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn revoke(app: &TestApp, access_token: &str) {
    let res = app
        .post_form("/oauth/revoke", &[("token", access_token)])
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_subscribed_verifier_refuses_a_revoked_token_within_a_second_without_asking_per_request()
{
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let client = subscriber(&app).await;
    let proxy = Proxy::start(&[&app]).await;
    let verifier = subscribed_verifier(&proxy, &client, Duration::from_secs(30), false).await;
    let revoked = app.login("alice").await.access_token;
    let kept = app.login("alice").await.access_token;
    assert!(verifier.verify(&revoked).await.is_ok());

    revoke(&app, &revoked).await;

    let refusal = assert_refused_within(&verifier, &revoked, Duration::from_secs(1)).await;
    assert_eq!(refusal, VerifyError::Revoked);
    assert!(
        verifier.verify(&kept).await.is_ok(),
        "only the revoked token"
    );
    let health = verifier.revocation_health().unwrap();
    assert_eq!(health.state, RevocationState::Live);
    assert_eq!(health.entries, 1);
    assert_eq!(
        health.connections, 1,
        "one stream, no call per verification"
    );
}

#[tokio::test]
async fn after_a_connection_cut_mid_stream_the_set_catches_up_to_the_snapshot() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let client = subscriber(&app).await;
    let proxy = Proxy::start(&[&app]).await;
    let verifier = subscribed_verifier(&proxy, &client, Duration::from_secs(30), false).await;
    revoke(&app, &app.login("alice").await.access_token).await;
    assert_converges(&verifier, &app, &client).await;

    proxy.route_to(&[]);
    proxy.cut();
    let missed = app.login("alice").await.access_token;
    revoke(&app, &missed).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.route_to(&[&app]);

    assert_refused_within(&verifier, &missed, Duration::from_secs(5)).await;
    assert_converges(&verifier, &app, &client).await;
    assert!(verifier.revocation_health().unwrap().connections >= 2);
}

#[tokio::test]
async fn after_tessera_restarts_the_set_catches_up_to_the_snapshot() {
    let first = spawn_app().await;
    first.create_user("alice", &[]).await;
    let client = subscriber(&first).await;
    let proxy = Proxy::start(&[&first]).await;
    let verifier = subscribed_verifier(&proxy, &client, Duration::from_secs(30), false).await;
    revoke(&first, &first.login("alice").await.access_token).await;
    assert_converges(&verifier, &first, &client).await;

    first.stop().await;
    let restarted = spawn().sharing_database_of(&first).start().await;
    let missed = restarted.login("alice").await.access_token;
    revoke(&restarted, &missed).await;
    proxy.route_to(&[&restarted]);

    assert_refused_within(&verifier, &missed, Duration::from_secs(5)).await;
    assert_converges(&verifier, &restarted, &client).await;
}

#[tokio::test]
async fn after_redis_is_flushed_the_set_still_equals_the_snapshot() {
    let redis = PrivateRedis::start();
    let app = spawn().with("REDIS_URL", &redis.url()).start().await;
    app.create_user("alice", &[]).await;
    let client = subscriber(&app).await;
    let proxy = Proxy::start(&[&app]).await;
    let verifier = subscribed_verifier(&proxy, &client, Duration::from_secs(30), false).await;
    revoke(&app, &app.login("alice").await.access_token).await;

    redis.flushall();
    let after = app.login("alice").await.access_token;
    revoke(&app, &after).await;

    assert_refused_within(&verifier, &after, Duration::from_secs(1)).await;
    assert_converges(&verifier, &app, &client).await;
    assert_eq!(verifier.revocation_entries().unwrap().len(), 2);
}

#[tokio::test]
async fn when_one_of_two_instances_is_killed_the_verifier_follows_the_other() {
    let first = spawn_app().await;
    let second = spawn().sharing_database_of(&first).start().await;
    first.create_user("alice", &[]).await;
    let client = subscriber(&first).await;
    // The stream is on the first instance; then both are behind the balancer.
    let proxy = Proxy::start(&[&first]).await;
    let verifier = subscribed_verifier(&proxy, &client, Duration::from_secs(30), false).await;
    for _ in 0..100 {
        if verifier.revocation_health().unwrap().connections == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.route_to(&[&first, &second]);

    // Killed: its streams end, and connections to it are refused from now on.
    first.stop().await;
    let token = second.login("alice").await.access_token;
    revoke(&second, &token).await;

    assert_refused_within(&verifier, &token, Duration::from_secs(5)).await;
    assert_converges(&verifier, &second, &client).await;
    assert!(
        verifier.revocation_health().unwrap().connections >= 2,
        "it moved to the second: {:?}",
        verifier.revocation_health()
    );
}

#[tokio::test]
async fn a_verifier_that_stops_hearing_from_tessera_fails_closed_after_the_staleness_bound() {
    let app = spawn()
        .with("TESSERA_REVOCATION_HEARTBEAT", "200ms")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    let client = subscriber(&app).await;
    let proxy = Proxy::start(&[&app]).await;
    let staleness = Duration::from_millis(1_500);
    let closed = subscribed_verifier(&proxy, &client, staleness, false).await;
    let open = subscribed_verifier(&proxy, &client, staleness, true).await;
    let token = app.login("alice").await.access_token;
    // Heartbeats keep an idle subscription live well past the bound.
    tokio::time::sleep(staleness * 2).await;
    assert!(closed.verify(&token).await.is_ok());
    assert!(open.verify(&token).await.is_ok());

    proxy.route_to(&[]);
    proxy.cut();
    // Revoked while the verifiers cannot hear of it.
    revoke(&app, &token).await;

    let refusal = assert_refused_within(&closed, &token, staleness + Duration::from_secs(1)).await;
    assert_eq!(refusal, VerifyError::RevocationsStale);
    assert_eq!(refusal.status_code(), 503);
    assert_eq!(
        closed.revocation_health().unwrap().state,
        RevocationState::Stale
    );
    // Failing open accepts what it cannot know about, and counts it.
    for _ in 0..100 {
        if open.revocation_health().unwrap().state == RevocationState::Stale {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let accepted = open.verify(&token).await;
    assert!(
        accepted.is_ok(),
        "{accepted:?} {:?}",
        open.revocation_health()
    );
    assert!(open.revocation_health().unwrap().stale_accepts >= 1);

    proxy.route_to(&[&app]);
    let refusal = assert_refused_within(&open, &token, Duration::from_secs(5)).await;
    assert_eq!(refusal, VerifyError::Revoked);
}
