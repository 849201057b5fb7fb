//! The revocation feed: snapshot, Server-Sent-Events stream, cursors, SETs, and the
//! instances that serve it.

use std::time::Duration;

use serde_json::Value;

use crate::faults::PrivateRedis;
use crate::helpers::{claims_of, spawn, spawn_app, TestApp, Tokens};

pub const FEED_SCOPE: &str = "tessera:revocations";

/// A confidential client allowed the feed's scope (and nothing else); its secret.
pub async fn create_subscriber(app: &TestApp, id: &str) -> String {
    let (_, secret) = app
        .create_client(serde_json::json!({
            "client_id": id, "confidential": true,
            "grant_types": ["client_credentials"], "scopes": [FEED_SCOPE],
        }))
        .await;
    secret.unwrap()
}

/// A subscriber client's token.
pub async fn subscriber_token(app: &TestApp) -> String {
    let secret = create_subscriber(app, "edge-verifier").await;
    client_token(app, "edge-verifier", &secret).await
}

pub async fn client_token(app: &TestApp, id: &str, secret: &str) -> String {
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn snapshot(app: &TestApp, token: &str, query: &str) -> Value {
    let res = app
        .get_with_token(&format!("/v1/revocations{query}"), token)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

/// The cursor of a snapshot taken now: where a stream starts.
async fn cursor_now(app: &TestApp, token: &str) -> String {
    snapshot(app, token, "").await["cursor"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The JWKS the app publishes.
async fn published_keys(app: &TestApp) -> Value {
    let res = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    res.json().await.unwrap()
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

/// An open stream, read frame by frame.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    pub async fn open(
        app: &TestApp,
        token: &str,
        query: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut req = app
            .api
            .get(app.url(&format!("/v1/revocations/stream{query}")))
            .bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200, "the stream opens");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (heartbeats included), or `None` if none comes within 10 s or
    /// the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.parse() {
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The first complete event in the buffer, if any (frames of no event, such as
    /// `retry`, are skipped).
    fn parse(&mut self) -> Option<SseEvent> {
        while let Some(end) = self.buffer.find("\n\n") {
            let frame: String = self.buffer.drain(..end + 2).collect();
            let mut event = SseEvent {
                id: None,
                event: String::new(),
                data: String::new(),
            };
            for line in frame.lines() {
                match line.split_once(": ") {
                    Some(("id", v)) => event.id = Some(v.to_owned()),
                    Some(("event", v)) => event.event = v.to_owned(),
                    Some(("data", v)) => event.data = v.to_owned(),
                    _ => {}
                }
            }
            if !event.event.is_empty() {
                return Some(event);
            }
        }
        None
    }

    /// What comes until the stream ends, which it must within 10 s.
    pub async fn until_end(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(event) = self.parse() {
                events.push(event);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("the stream ends within 10 s");
            match chunk {
                Ok(Some(chunk)) => self.buffer.push_str(std::str::from_utf8(&chunk).unwrap()),
                Ok(None) | Err(_) => return events,
            }
        }
    }

    /// Asserts the stream ends (heartbeats aside) with an `end` event of this reason.
    pub async fn assert_ends(&mut self, reason: &str) {
        let mut rest = self.until_end().await;
        rest.retain(|e| e.event != "heartbeat");
        assert_eq!(rest.len(), 1, "{rest:?}");
        assert_eq!(rest[0].event, "end");
        let data: Value = serde_json::from_str(&rest[0].data).unwrap();
        assert_eq!(data["reason"], reason);
    }

    /// The next event that is not a heartbeat.
    pub async fn next_revocation(&mut self) -> Option<SseEvent> {
        loop {
            let event = self.next().await?;
            if event.event != "heartbeat" {
                return Some(event);
            }
        }
    }
}

/// Ends a session through the admin API; answers its id.
async fn revoke_session(app: &TestApp, admin: &str, tokens: &Tokens) -> String {
    let sid = claims_of(&tokens.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .api
        .post(app.url("/v1/admin/revocations"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"sid": sid, "reason": "lost laptop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    sid
}

async fn revoke_access_token(app: &TestApp, tokens: &Tokens) -> String {
    let res = app
        .post_form("/oauth/revoke", &[("token", &tokens.access_token)])
        .await;
    assert_eq!(res.status(), 200);
    claims_of(&tokens.access_token)["jti"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_snapshot_lists_every_entry_in_force_and_a_cursor() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user("alice", &[]).await;
    let alice = app.login("alice").await;
    let jti = revoke_access_token(&app, &alice).await;
    let sid = revoke_session(&app, &admin, &app.login("alice").await).await;
    // An entry that no longer matters is left out.
    app.execute(
        "UPDATE revocations SET expires_at = now() - interval '1 second' WHERE kind = 'jti'",
    );
    let token = subscriber_token(&app).await;

    let body = snapshot(&app, &token, "").await;

    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{body}");
    assert_eq!(entries[0]["kind"], "sid");
    assert_eq!(entries[0]["value"], sid.as_str());
    assert_eq!(entries[0]["not_before"], Value::Null);
    let expires_at = entries[0]["expires_at"].as_i64().unwrap();
    let revoked_at = entries[0]["revoked_at"].as_i64().unwrap();
    assert!(
        expires_at > revoked_at + 3600,
        "a session entry outlives any access token"
    );
    assert!(body["cursor"]
        .as_str()
        .unwrap()
        .starts_with(|c: char| c.is_ascii_digit()));
    assert!(!body.to_string().contains(&jti));
}

#[tokio::test]
async fn only_a_client_token_with_the_feed_scope_reads_it() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (id, secret) = app
        .create_client(serde_json::json!({
            "client_id": "orders", "confidential": true,
            "grant_types": ["client_credentials"], "scopes": ["orders:read"],
        }))
        .await;
    let unscoped = client_token(&app, &id, &secret.unwrap()).await;

    // The scope, but a token that is also meant for another API (which could replay it).
    let (id, secret) = app
        .create_client(serde_json::json!({
            "client_id": "gateway", "confidential": true,
            "grant_types": ["client_credentials"], "scopes": [FEED_SCOPE],
            "audiences": ["https://orders.example", crate::helpers::ISSUER],
        }))
        .await;
    let shared_audience = client_token(&app, &id, &secret.unwrap()).await;
    // The scope on a user's token.
    app.create_client(serde_json::json!({
        "client_id": "console", "grant_types": ["password"], "scopes": [FEED_SCOPE],
    }))
    .await;
    app.create_user("alice", &[]).await;
    let res = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "console"),
                ("username", "alice"),
                ("password", crate::helpers::PASSWORD),
            ],
        )
        .await;
    let users = crate::helpers::tokens_of(res).await.access_token;
    assert!(claims_of(&users)["scope"]
        .as_str()
        .unwrap()
        .contains(FEED_SCOPE));

    for path in ["/v1/revocations", "/v1/revocations/stream"] {
        let res = app.api.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path} without a token");
        for token in [&admin, &unscoped, &shared_audience, &users] {
            let res = app.get_with_token(path, token).await;
            assert_eq!(res.status(), 403, "{path}");
            assert!(res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("insufficient_scope"));
        }
    }
}

#[tokio::test]
async fn the_stream_delivers_a_revocation_the_moment_it_commits() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user("alice", &[]).await;
    let alice = app.login("alice").await;
    let token = subscriber_token(&app).await;
    let cursor = cursor_now(&app, &token).await;
    let mut stream = Sse::open(&app, &token, &format!("?cursor={cursor}"), None).await;

    let sid = revoke_session(&app, &admin, &alice).await;

    let event = stream.next_revocation().await.expect("an event");
    assert_eq!(event.event, "revocation");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["kind"], "sid");
    assert_eq!(data["value"], sid.as_str());
    let id = event.id.unwrap();
    assert_ne!(id, cursor);
    // The event's id is the snapshot's cursor from then on.
    assert_eq!(snapshot(&app, &token, "").await["cursor"], id.as_str());
}

#[tokio::test]
async fn reconnecting_with_last_event_id_resumes_with_nothing_lost_or_repeated() {
    let app = spawn_app().await;
    app.create_user("alice", &[]).await;
    let token = subscriber_token(&app).await;
    let start = cursor_now(&app, &token).await;
    let mut jtis = Vec::new();
    for _ in 0..2 {
        jtis.push(revoke_access_token(&app, &app.login("alice").await).await);
    }
    let mut stream = Sse::open(&app, &token, &format!("?cursor={start}"), None).await;
    let first = stream.next_revocation().await.unwrap();
    drop(stream);
    // Missed while away.
    for _ in 0..3 {
        jtis.push(revoke_access_token(&app, &app.login("alice").await).await);
    }

    let mut stream = Sse::open(&app, &token, "", first.id.as_deref()).await;
    let mut seen = vec![serde_json::from_str::<Value>(&first.data).unwrap()["value"].clone()];
    for _ in 1..jtis.len() {
        let event = stream.next_revocation().await.expect("the rest");
        seen.push(serde_json::from_str::<Value>(&event.data).unwrap()["value"].clone());
    }

    assert_eq!(
        seen, jtis,
        "every revocation once, in the order they committed"
    );
}

#[tokio::test]
async fn a_cursor_that_cannot_be_resumed_asks_for_a_snapshot() {
    let app = spawn_app().await;
    let token = subscriber_token(&app).await;

    let unknown = format!("7-{}", uuid::Uuid::now_v7().simple());
    let res = app
        .api
        .get(app.url("/v1/revocations/stream"))
        .bearer_auth(&token)
        .header("Last-Event-ID", &unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);
    let body: Value = res.json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("GET /v1/revocations"));

    // A cursor older than anything still in force.
    app.create_user("alice", &[]).await;
    revoke_access_token(&app, &app.login("alice").await).await;
    let old = cursor_now(&app, &token).await;
    app.execute("UPDATE revocations SET created_at = now() - interval '2 days'");
    let res = app
        .api
        .get(app.url(&format!("/v1/revocations/stream?cursor={old}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 410);

    for bad in ["abc", "1-xyz", "-1-00000000000000000000000000000000"] {
        let res = app
            .get_with_token(&format!("/v1/revocations/stream?cursor={bad}"), &token)
            .await;
        assert_eq!(res.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn an_idle_stream_sends_heartbeats_that_carry_the_cursor() {
    let app = spawn()
        .with("TESSERA_REVOCATION_HEARTBEAT", "200ms")
        .start()
        .await;
    let token = subscriber_token(&app).await;
    let cursor = cursor_now(&app, &token).await;
    let mut stream = Sse::open(&app, &token, &format!("?cursor={cursor}"), None).await;

    for _ in 0..3 {
        let event = stream.next().await.expect("a heartbeat");
        assert_eq!(event.event, "heartbeat");
        assert_eq!(event.id.as_deref(), Some(cursor.as_str()));
    }
}

#[tokio::test]
async fn every_event_is_also_a_security_event_token_signed_with_the_published_keys() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user("alice", &[]).await;
    let token = subscriber_token(&app).await;
    let cursor = cursor_now(&app, &token).await;
    let mut stream = Sse::open(&app, &token, &format!("?format=set&cursor={cursor}"), None).await;
    let sid = revoke_session(&app, &admin, &app.login("alice").await).await;

    let event = stream.next_revocation().await.unwrap();
    let from_snapshot = snapshot(&app, &token, "?format=set").await;

    assert_eq!(event.event, "set");
    // The same claims (ECDSA signatures differ every time).
    let payload = |jws: &str| jws.split('.').nth(1).unwrap().to_owned();
    assert_eq!(
        payload(from_snapshot["sets"][0].as_str().unwrap()),
        payload(&event.data)
    );
    let header = jsonwebtoken::decode_header(&event.data).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(published_keys(&app).await).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_issuer(&[crate::helpers::ISSUER]);
    let set = jsonwebtoken::decode::<Value>(
        &event.data,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("the SET verifies with the JWKS")
    .claims;
    assert_eq!(set["txn"], event.id.unwrap().as_str());
    assert_eq!(
        set["sub_id"],
        serde_json::json!({"format": "opaque", "id": sid})
    );
    let body =
        &set["events"]["https://schemas.openid.net/secevent/caep/event-type/session-revoked"];
    assert_eq!(body["kind"], "sid");
    assert_eq!(body["value"], sid.as_str());
    assert!(body["expires_at"].as_i64().unwrap() > set["iat"].as_i64().unwrap());
    // A SET is never an access token.
    let res = app.get_with_token("/v1/me", &event.data).await;
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_revocation_through_one_instance_streams_from_every_other() {
    let first = spawn_app().await;
    let second = spawn().sharing_database_of(&first).start().await;
    let admin = first.admin_token().await;
    first.create_user("alice", &[]).await;
    let token = subscriber_token(&first).await;
    let cursor = cursor_now(&second, &token).await;
    let mut on_second = Sse::open(&second, &token, &format!("?cursor={cursor}"), None).await;
    let mut on_first = Sse::open(&first, &token, &format!("?cursor={cursor}"), None).await;

    let sid = revoke_session(&first, &admin, &first.login("alice").await).await;

    for stream in [&mut on_first, &mut on_second] {
        let event = stream
            .next_revocation()
            .await
            .expect("the event on each instance");
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data["value"], sid.as_str());
    }
}

#[tokio::test]
async fn a_restarted_instance_replays_what_its_subscribers_missed_from_postgres() {
    let first = spawn_app().await;
    first.create_user("alice", &[]).await;
    let token = subscriber_token(&first).await;
    let cursor = cursor_now(&first, &token).await;
    let early = revoke_access_token(&first, &first.login("alice").await).await;
    let mut stream = Sse::open(&first, &token, &format!("?cursor={cursor}"), None).await;
    let seen = stream.next_revocation().await.unwrap();
    first.stop().await;
    stream.assert_ends("shutting_down").await;
    let late = {
        let other = spawn().sharing_database_of(&first).start().await;
        revoke_access_token(&other, &other.login("alice").await).await
    };

    let restarted = spawn().sharing_database_of(&first).start().await;
    let mut stream = Sse::open(&restarted, &token, "", seen.id.as_deref()).await;

    let data: Value = serde_json::from_str(&seen.data).unwrap();
    assert_eq!(data["value"], early.as_str());
    let event = stream.next_revocation().await.expect("the missed event");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["value"], late.as_str());
}

#[tokio::test]
async fn the_stream_goes_on_when_redis_loses_its_data() {
    let redis = PrivateRedis::start();
    let app = spawn().with("REDIS_URL", &redis.url()).start().await;
    app.create_user("alice", &[]).await;
    let token = subscriber_token(&app).await;
    let cursor = cursor_now(&app, &token).await;
    let mut stream = Sse::open(&app, &token, &format!("?cursor={cursor}"), None).await;
    let before = revoke_access_token(&app, &app.login("alice").await).await;
    assert!(stream.next_revocation().await.is_some());

    redis.flushall();
    let after = revoke_access_token(&app, &app.login("alice").await).await;

    let event = stream.next_revocation().await.expect("the stream goes on");
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["value"], after.as_str());
    let entries = snapshot(&app, &token, "").await["entries"].clone();
    let values: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, [before.as_str(), after.as_str()]);
}

#[tokio::test]
async fn revoking_the_subscribers_own_client_ends_its_stream() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let token = subscriber_token(&app).await;
    let mut stream = Sse::open(&app, &token, "", None).await;

    let res = app
        .api
        .post(app.url("/v1/admin/revocations"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"token": token, "reason": "leaked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let event = stream.next_revocation().await.expect("its own revocation");
    assert!(event
        .data
        .contains(claims_of(&token)["jti"].as_str().unwrap()));
    stream.assert_ends("token_revoked").await;
    assert_eq!(
        app.get_with_token("/v1/revocations", &token).await.status(),
        401
    );
}

#[tokio::test]
async fn the_stream_ends_when_the_subscribers_token_expires() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_client(serde_json::json!({
            "client_id": "short-lived", "confidential": true,
            "grant_types": ["client_credentials"], "scopes": [FEED_SCOPE],
            "access_token_ttl_seconds": 10,
        }))
        .await;
    let token = client_token(&app, &id, &secret.unwrap()).await;
    let mut stream = Sse::open(&app, &token, "", None).await;
    let exp = claims_of(&token)["exp"].as_i64().unwrap();

    let mut rest = Vec::new();
    while let Some(event) = stream.next().await {
        rest.push(event);
    }

    let end = rest.last().expect("an end event");
    assert_eq!(end.event, "end");
    assert_eq!(end.data, r#"{"reason":"token_expired"}"#);
    assert!(chrono::Utc::now().timestamp() >= exp);
}

#[tokio::test]
async fn after_a_key_rotation_every_set_is_signed_with_a_published_key() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.create_user("alice", &[]).await;
    let secret = create_subscriber(&app, "edge-verifier").await;
    let token = client_token(&app, "edge-verifier", &secret).await;
    revoke_access_token(&app, &app.login("alice").await).await;
    let before = snapshot(&app, &token, "?format=set").await["sets"][0]
        .as_str()
        .unwrap()
        .to_owned();

    let res = app
        .api
        .post(app.url("/v1/admin/keys/rotate"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"emergency": true}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    // The subscriber's own token died with the old key.
    let token = client_token(&app, "edge-verifier", &secret).await;
    let mut stream = Sse::open(&app, &token, "?format=set&cursor=0", None).await;
    let replayed = stream.next_revocation().await.unwrap().data;
    let again = snapshot(&app, &token, "?format=set").await["sets"][0]
        .as_str()
        .unwrap()
        .to_owned();

    let jwks = published_keys(&app).await;
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let kid = |jws: &str| jsonwebtoken::decode_header(jws).unwrap().kid.unwrap();
    assert!(
        !published.contains(&kid(&before).as_str()),
        "the emergency rotation withdrew the old key"
    );
    for set in [&replayed, &again] {
        assert!(published.contains(&kid(set).as_str()), "{published:?}");
    }
}

#[tokio::test]
async fn subscribers_keep_their_feed_while_redis_is_down() {
    let mut redis = PrivateRedis::start();
    let app = spawn().with("REDIS_URL", &redis.url()).start().await;
    app.create_user("alice", &[]).await;
    let token = subscriber_token(&app).await;
    let alice = app.login("alice").await;

    redis.stop();
    // Recorded in PostgreSQL, pushed to Redis later.
    let jti = revoke_access_token(&app, &alice).await;

    let body = snapshot(&app, &token, "").await;
    assert_eq!(body["entries"][0]["value"], jti.as_str());
    let mut stream = Sse::open(&app, &token, "?cursor=0", None).await;
    let event = stream
        .next_revocation()
        .await
        .expect("the stream works without Redis");
    assert!(event.data.contains(&jti));
}
