//! Every path that sets a password, over lengths 0 to 100 bytes of ASCII and
//! multi-byte characters: a clear 400 or success, never a 5xx. bcrypt hashes 72 bytes
//! in full; the domain type refuses anything longer.

use serde_json::{json, Value};

use crate::helpers::{spawn, TestApp, PASSWORD};

/// The representative passwords: each character repeated to lengths around the
/// minimum (8 characters) and the maximum (72 bytes), and up to 100 bytes.
fn candidates() -> Vec<String> {
    let mut out = vec![String::new()];
    for c in ['a', 'é', '😀'] {
        let width = c.len_utf8();
        let mut counts = vec![1, 7, 8, 9];
        for bytes in [35, 36, 68, 70, 71, 72, 73, 76, 99, 100] {
            counts.push(bytes / width);
            counts.push(bytes.div_ceil(width));
        }
        counts.sort_unstable();
        counts.dedup();
        for n in counts {
            let s: String = std::iter::repeat_n(c, n).collect();
            if s.len() <= 100 {
                out.push(s);
            }
        }
    }
    // Mixed: one byte short of, at, and one past the limit with a multi-byte tail.
    out.push(format!("{}é", "a".repeat(70))); // 72 bytes
    out.push(format!("{}é", "a".repeat(71))); // 73 bytes
    out.push(format!("{}😀", "a".repeat(68))); // 72 bytes
    out.push(format!("{}😀", "a".repeat(69))); // 73 bytes
    out
}

/// What every password-setting path must answer: 8+ characters within 72 bytes is
/// accepted, anything else is a 400.
fn acceptable(password: &str) -> bool {
    password.chars().count() >= 8 && password.len() <= 72
}

async fn assert_problem(res: reqwest::Response, expected_ok: u16, password: &str) {
    let status = res.status().as_u16();
    let what = format!(
        "{} bytes, {} chars",
        password.len(),
        password.chars().count()
    );
    if acceptable(password) {
        assert_eq!(status, expected_ok, "{what}: {}", res.text().await.unwrap());
    } else {
        assert_eq!(status, 400, "{what}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{what}"
        );
        let body: Value = res.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        if password.len() > 72 {
            assert!(detail.contains("72 bytes"), "{what}: {detail}");
        }
    }
}

async fn app() -> TestApp {
    spawn()
        .with("TESSERA_ALLOW_REGISTRATION", "true")
        .start()
        .await
}

#[tokio::test]
async fn admin_user_create_answers_400_or_201_for_every_length() {
    let app = app().await;
    let admin = app.admin_token().await;
    for (i, password) in candidates().iter().enumerate() {
        let res = app
            .api
            .post(app.url("/v1/admin/users"))
            .bearer_auth(&admin)
            .json(&json!({"username": format!("user{i}"), "password": password}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 201, password).await;
        if acceptable(password) {
            let res = app.password_grant(&format!("user{i}"), password).await;
            assert_eq!(res.status(), 200, "{} bytes", password.len());
        }
    }
}

#[tokio::test]
async fn admin_password_reset_answers_400_or_204_for_every_length() {
    let app = app().await;
    let admin = app.admin_token().await;
    let alice = app.create_user("alice", &[]).await;
    for password in candidates() {
        let res = app
            .api
            .post(app.url(&format!("/v1/admin/users/{alice}/password")))
            .bearer_auth(&admin)
            .json(&json!({ "password": password }))
            .send()
            .await
            .unwrap();
        assert_problem(res, 204, &password).await;
    }
}

#[tokio::test]
async fn password_change_answers_400_or_204_for_every_length() {
    let app = app().await;
    app.create_user("alice", &[]).await;
    let token = app.login("alice").await.access_token;
    let mut current = PASSWORD.to_owned();
    for password in candidates() {
        let res = app
            .api
            .post(app.url("/v1/me/password"))
            .bearer_auth(&token)
            .json(&json!({"current_password": current, "new_password": password}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 204, &password).await;
        if acceptable(&password) {
            current = password;
        }
    }
}

#[tokio::test]
async fn registration_answers_400_or_201_for_every_length() {
    let app = app().await;
    for (i, password) in candidates().iter().enumerate() {
        let res = app
            .api
            .post(app.url("/v1/users"))
            .json(&json!({"username": format!("new{i}"), "password": password}))
            .send()
            .await
            .unwrap();
        assert_problem(res, 201, password).await;
    }
}

#[tokio::test]
async fn a_password_over_72_bytes_is_a_clear_400_not_a_500() {
    let app = app().await;
    let admin = app.admin_token().await;
    let res = app
        .api
        .post(app.url("/v1/admin/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "carol", "password": "p".repeat(73)}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("never truncated"),
        "{body}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM users WHERE username = 'carol'"),
        0
    );
}

#[tokio::test]
async fn a_bootstrap_admin_password_of_73_bytes_stops_start_up_with_a_clear_message() {
    let settings = spawn()
        .with("TESSERA_BOOTSTRAP_ADMIN", "boss")
        .with(
            "TESSERA_BOOTSTRAP_ADMIN_PASSWORD",
            &format!("{}a", "é".repeat(36)),
        )
        .settings();
    let database = url::Url::parse(&settings.database.url).unwrap().path()[1..].to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let outcome = tessera::startup::Application::build_with_listener(settings, listener).await;
    {
        use diesel::{Connection, RunQueryDsl};
        let mut conn =
            diesel::PgConnection::establish(&crate::helpers::database_url("postgres")).unwrap();
        diesel::sql_query(format!(
            "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
        ))
        .execute(&mut conn)
        .unwrap();
    }
    let error = match outcome {
        Ok(_) => panic!("start-up must refuse the password"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("TESSERA_BOOTSTRAP_ADMIN_PASSWORD"),
        "{error}"
    );
    assert!(error.contains("72 bytes"), "{error}");
    assert!(!error.contains("é"), "never the password itself: {error}");

    // 72 bytes is fine.
    let app = spawn()
        .with("TESSERA_BOOTSTRAP_ADMIN", "boss")
        .with("TESSERA_BOOTSTRAP_ADMIN_PASSWORD", &"é".repeat(36))
        .start()
        .await;
    let res = app.password_grant("boss", &"é".repeat(36)).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn the_password_grant_answers_rfc_6749_errors_for_every_length() {
    let app = spawn()
        .with("TESSERA_LOGIN_DELAY_AFTER", "1000")
        .with("TESSERA_LOGIN_LOCKOUT_AFTER", "1000")
        .with("TESSERA_LOGIN_IP_LIMIT", "1000")
        .start()
        .await;
    app.create_user("alice", &[]).await;
    for password in candidates() {
        let res = app.password_grant("alice", &password).await;
        let what = format!("{} bytes", password.len());
        assert_eq!(res.status(), 400, "{what}");
        assert_eq!(res.headers()["cache-control"], "no-store", "{what}");
        let body: Value = res.json().await.unwrap();
        // No password at all is a malformed request; any other is simply not hers.
        let expected = if password.is_empty() {
            "invalid_request"
        } else {
            "invalid_grant"
        };
        assert_eq!(body["error"], expected, "{what}: {body}");
    }
    // None of it counted against the right password.
    assert_eq!(app.login("alice").await.body["token_type"], "Bearer");
}
