//! The authorization endpoint, the login and consent pages, and the code exchange: as a
//! browser and an app see them, including every hostile case the flow must refuse.

use crate::browser::{exchange_spa, register_apps, Browser, CHALLENGE, REDIRECT, VERIFIER};
use crate::helpers::{assert_oauth_error, spawn, spawn_app, tokens_of, ISSUER, PASSWORD};

#[tokio::test]
async fn a_user_signs_in_allows_the_app_and_the_code_buys_tokens() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);

    let login = browser.authorize_spa(&[]).await;
    assert!(login.is_login_page(), "{}", login.body);
    assert!(login.body.contains("Example SPA"), "names the app");
    assert!(login.header("set-cookie").contains("__Host-tessera-login="));
    let signed_in = browser.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(signed_in.status, 303);
    let session_cookie = signed_in.header("set-cookie");
    assert!(
        session_cookie.contains("__Host-tessera-session=bs_"),
        "{session_cookie}"
    );
    let consent = browser.get(signed_in.location().unwrap()).await;
    assert!(
        consent.is_consent_page(),
        "a third-party app asks: {}",
        consent.body
    );
    assert!(
        consent.body.contains("See your username"),
        "scopes in words"
    );
    let back = browser.answer(&consent, "allow").await;
    assert_eq!(back.status, 303);
    assert!(back.location().unwrap().starts_with(REDIRECT));
    assert_eq!(back.redirect_param("state").as_deref(), Some("st4te"));
    assert_eq!(
        back.redirect_param("iss").as_deref(),
        Some(ISSUER),
        "RFC 9207"
    );

    let res = exchange_spa(&app, &back.redirect_param("code").unwrap(), VERIFIER).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens = tokens_of(res).await;
    assert!(tokens.refresh_token.starts_with("rt_"));
    assert!(tokens.body["id_token"].is_string());
    assert_eq!(tokens.body["scope"], "openid profile");
    let info = app
        .get_with_token("/oauth/userinfo", &tokens.access_token)
        .await;
    assert_eq!(info.status(), 200);
    // The same session machinery as every login: the refresh token rotates.
    let refreshed = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "spa"),
                ("refresh_token", &tokens.refresh_token),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    assert_eq!(
        app.count("SELECT count(*) FROM sessions WHERE browser_session_id IS NOT NULL"),
        1
    );
}

#[tokio::test]
async fn a_signed_in_browser_gets_a_code_without_pages_for_a_first_party_app() {
    let app = spawn_app().await;
    let secret = register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    browser.code_for_spa("alice").await;
    // Single sign-on: another app, no login page, no consent page (first party).
    let page = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "s"),
        ])
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
    let code = page.redirect_param("code").expect("a code at once");
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "a confidential client may skip PKCE");
}

#[tokio::test]
async fn consent_is_asked_once_and_deny_sends_access_denied() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let login = browser.authorize_spa(&[]).await;
    let signed_in = browser.sign_in(&login, "alice", PASSWORD).await;
    let consent = browser.get(signed_in.location().unwrap()).await;
    let denied = browser.answer(&consent, "deny").await;
    assert_eq!(
        denied.redirect_param("error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(denied.redirect_param("state").as_deref(), Some("st4te"));
    // Asked again, allowed, then remembered.
    let consent = browser.authorize_spa(&[]).await;
    let allowed = browser.answer(&consent, "allow").await;
    assert!(allowed.redirect_param("code").is_some());
    let again = browser.authorize_spa(&[]).await;
    assert_eq!(again.status, 302);
    assert!(
        again.redirect_param("code").is_some(),
        "no second consent page"
    );
    // prompt=consent asks anyway.
    let forced = browser.authorize_spa(&[("prompt", "consent")]).await;
    assert!(forced.is_consent_page());
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_page() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let login = browser.authorize_spa(&[]).await;
    let wrong = browser.sign_in(&login, "alice", "not the password").await;
    let unknown = browser.sign_in(&login, "nobody", "not the password").await;
    for page in [&wrong, &unknown] {
        assert_eq!(page.status, 400);
        assert!(page.is_login_page() || page.body.contains("action=\"/oauth/authorize/login\""));
        assert!(
            page.body.contains("Invalid username or password."),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("role=\"alert\""),
            "announced to screen readers"
        );
    }
    assert!(
        wrong.body.contains("value=\"alice\""),
        "the typed name stays"
    );
    assert!(
        !wrong.body.contains("not the password"),
        "the password never comes back"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'login.failed'"),
        2
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_like_the_password_grant() {
    let app = spawn()
        .with("TESSERA_LOGIN_DELAY_AFTER", "2")
        .with("TESSERA_LOGIN_MAX_DELAY", "30s")
        .start()
        .await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let login = browser.authorize_spa(&[]).await;
    let mut last = None;
    for _ in 0..3 {
        last = Some(browser.sign_in(&login, "alice", "wrong").await);
    }
    let last = last.unwrap();
    assert_eq!(last.status, 429, "{}", last.body);
    assert!(last.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert!(last.body.contains("Too many failed attempts"));
    // The password grant counts the same failures.
    let res = app.password_grant("alice", PASSWORD).await;
    assert_eq!(res.status(), 429);
}

#[tokio::test]
async fn the_login_form_needs_this_browsers_csrf_token() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut victim = Browser::new(&app);
    let login = victim.authorize_spa(&[]).await;
    let flow = login.hidden("flow");

    // No token at all.
    let res = victim
        .post(
            "/oauth/authorize/login",
            &[
                ("flow", &flow),
                ("username", "alice"),
                ("password", PASSWORD),
                ("csrf", ""),
            ],
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.header("set-cookie").is_empty(), "no session started");

    // Another browser's token (its own login cookie) does not fit this browser.
    let mut attacker = Browser::new(&app);
    let theirs = attacker.authorize_spa(&[]).await;
    let res = victim
        .post(
            "/oauth/authorize/login",
            &[
                ("flow", &theirs.hidden("flow")),
                ("csrf", &theirs.hidden("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, 403);
    // A cross-site form post arrives without the SameSite=Lax login cookie.
    let mut no_cookies = Browser::new(&app);
    let res = no_cookies
        .post(
            "/oauth/authorize/login",
            &[
                ("flow", &flow),
                ("csrf", &login.hidden("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, 403);
    assert_eq!(app.count("SELECT count(*) FROM browser_sessions"), 0);
}

#[tokio::test]
async fn an_altered_or_foreign_flow_is_refused() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let other = spawn_app().await;
    register_apps(&other).await;
    let mut browser = Browser::new(&app);
    let login = browser.authorize_spa(&[]).await;
    let mut flow = login.hidden("flow").into_bytes();
    let i = flow.len() / 2;
    flow[i] = if flow[i] == b'A' { b'B' } else { b'A' };
    let res = browser
        .post(
            "/oauth/authorize/login",
            &[
                ("flow", std::str::from_utf8(&flow).unwrap()),
                ("csrf", &login.hidden("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, 400);
    assert!(res.body.contains("expired or was altered"));
    // A flow sealed by another deployment (another master key) does not open here.
    let mut elsewhere = Browser::new(&other);
    let foreign = elsewhere.authorize_spa(&[]).await;
    let res = browser
        .post(
            "/oauth/authorize/login",
            &[
                ("flow", &foreign.hidden("flow")),
                ("csrf", &login.hidden("csrf")),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn pages_may_not_be_framed_and_load_only_their_own_stylesheet() {
    let app = spawn()
        .with("TESSERA_LOGIN_LOGO_URL", "https://cdn.example.com/logo.svg")
        .with("TESSERA_LOGIN_PRODUCT_NAME", "Acme Accounts")
        .with("TESSERA_LOGIN_ACCENT_COLOR", "#aa3300")
        .start()
        .await;
    register_apps(&app).await;
    let mut browser = Browser::new(&app);
    let login = browser.authorize_spa(&[]).await;
    let csp = login.header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(!csp.contains("script-src"), "no script may run: {csp}");
    assert!(
        csp.contains("img-src 'self' https://cdn.example.com"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' http://localhost:5555"),
        "the form may lead back to the app: {csp}"
    );
    assert_eq!(login.header("x-frame-options"), "DENY");
    assert_eq!(login.header("cache-control"), "no-store");
    assert!(login
        .body
        .contains("src=\"https://cdn.example.com/logo.svg\""));
    assert!(login.body.contains("alt=\"Acme Accounts\""));
    assert!(login
        .body
        .contains("<label for=\"username\">Username</label>"));
    assert!(login
        .body
        .contains("<label for=\"password\">Password</label>"));
    assert!(login.body.contains("autocomplete=\"current-password\""));
    assert!(!login.body.contains("<script"), "no JavaScript");
    let css = browser.get("/oauth/assets/tessera.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.body.contains("--accent: #aa3300"));
}

#[tokio::test]
async fn unregistered_and_look_alike_redirect_uris_are_shown_never_followed() {
    let app = spawn_app().await;
    register_apps(&app).await;
    let mut browser = Browser::new(&app);
    for uri in [
        "https://evil.example/cb",
        "http://localhost:5555/cb/extra",
        "http://localhost:5556/cb",
        "https://localhost:5555/cb",
        "http://localhost.:5555/cb",
        "http://localhost:5555/cb?x=1",
        "http://localhost:5555/CB",
        "",
    ] {
        let page = browser.authorize_spa(&[("redirect_uri", uri)]).await;
        assert_eq!(page.status, 400, "{uri}");
        assert!(page.location().is_none(), "never redirected: {uri}");
        assert!(page.header("content-type").starts_with("text/html"));
        assert_eq!(page.header("x-frame-options"), "DENY");
    }
    let unknown = browser.authorize_spa(&[("client_id", "nobody")]).await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.location().is_none());
    assert!(unknown.body.contains("not registered"));
}

#[tokio::test]
async fn a_loopback_redirect_uri_matches_any_port() {
    let app = spawn_app().await;
    register_apps(&app).await;
    let mut browser = Browser::new(&app);
    let page = browser
        .authorize_spa(&[("redirect_uri", "http://127.0.0.1:49152/native")])
        .await;
    assert!(page.is_login_page(), "RFC 8252 §7.3: {}", page.body);
    let page = browser
        .authorize_spa(&[("redirect_uri", "http://127.0.0.1:49152/native/x")])
        .await;
    assert_eq!(page.status, 400, "the path still matches exactly");
}

/// What an error sent back to the app carries.
fn assert_redirected_error(page: &crate::browser::Page, error: &str, state: Option<&str>) {
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(page.location().unwrap().starts_with(REDIRECT));
    assert_eq!(page.redirect_param("error").as_deref(), Some(error));
    assert_eq!(page.redirect_param("state").as_deref(), state);
    assert_eq!(page.redirect_param("iss").as_deref(), Some(ISSUER));
    assert!(page.redirect_param("code").is_none());
}

#[tokio::test]
async fn a_public_client_must_use_pkce_with_s256() {
    let app = spawn_app().await;
    register_apps(&app).await;
    let mut browser = Browser::new(&app);
    let missing = browser
        .authorize_spa(&[("code_challenge", ""), ("code_challenge_method", "")])
        .await;
    assert_redirected_error(&missing, "invalid_request", Some("st4te"));
    let plain = browser
        .authorize_spa(&[
            ("code_challenge_method", "plain"),
            ("code_challenge", VERIFIER),
        ])
        .await;
    assert_redirected_error(&plain, "invalid_request", Some("st4te"));
    let no_method = browser
        .authorize_spa(&[("code_challenge_method", "")])
        .await;
    assert_redirected_error(&no_method, "invalid_request", Some("st4te"));
    let short = browser.authorize_spa(&[("code_challenge", "abc")]).await;
    assert_redirected_error(&short, "invalid_request", Some("st4te"));
}

#[tokio::test]
async fn other_bad_requests_go_back_to_the_app_with_state_and_iss() {
    let app = spawn_app().await;
    register_apps(&app).await;
    let mut browser = Browser::new(&app);
    let token = browser.authorize_spa(&[("response_type", "token")]).await;
    assert_redirected_error(&token, "unsupported_response_type", Some("st4te"));
    let scope = browser.authorize_spa(&[("scope", "openid admin")]).await;
    assert_redirected_error(&scope, "invalid_scope", Some("st4te"));
    let prompt = browser.authorize_spa(&[("prompt", "none login")]).await;
    assert_redirected_error(&prompt, "invalid_request", Some("st4te"));
    let request = browser.authorize_spa(&[("request", "eyJ.x.y")]).await;
    assert_redirected_error(&request, "request_not_supported", Some("st4te"));
    let max_age = browser.authorize_spa(&[("max_age", "-1")]).await;
    assert_redirected_error(&max_age, "invalid_request", Some("st4te"));
    let query = format!(
        "/oauth/authorize?response_type=code&client_id=spa&redirect_uri={}&state=a&state=b\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        urlencode(REDIRECT)
    );
    let repeated = browser.get(&query).await;
    assert_eq!(
        repeated.redirect_param("error").as_deref(),
        Some("invalid_request")
    );
    // A client that may not use the code flow.
    app.create_client(serde_json::json!({
        "client_id": "cli", "grant_types": ["password", "refresh_token"],
        "redirect_uris": [REDIRECT],
    }))
    .await;
    let refused = browser.authorize_spa(&[("client_id", "cli")]).await;
    assert_redirected_error(&refused, "unauthorized_client", Some("st4te"));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn without_state_the_answer_carries_none_and_pkce_is_required() {
    let app = spawn_app().await;
    let secret = register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    browser.code_for_spa("alice").await;
    // With PKCE: fine, and no state is made up.
    let page = browser.authorize_spa(&[("state", "")]).await;
    assert_eq!(page.status, 302);
    assert!(page.redirect_param("code").is_some());
    assert!(page.redirect_param("state").is_none());
    // Neither state nor PKCE (a confidential client may skip PKCE only with state).
    let page = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_redirected_error(&page, "invalid_request", None);
    let _ = secret;
}

#[tokio::test]
async fn prompt_none_answers_without_a_page() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let page = browser.authorize_spa(&[("prompt", "none")]).await;
    assert_redirected_error(&page, "login_required", Some("st4te"));
    // Signed in (through the first-party app), but the SPA was never allowed.
    let login = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("state", "w"),
        ])
        .await;
    browser.sign_in(&login, "alice", PASSWORD).await;
    let page = browser.authorize_spa(&[("prompt", "none")]).await;
    assert_redirected_error(&page, "consent_required", Some("st4te"));
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_the_password_again() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    browser.code_for_spa("alice").await;
    let page = browser.authorize_spa(&[("prompt", "login")]).await;
    assert!(page.is_login_page(), "prompt=login");
    // The sign-in is an hour old; max_age=60 wants one from the last minute.
    app.execute("UPDATE users SET password_changed_at = password_changed_at - interval '2 hours'");
    app.execute("UPDATE browser_sessions SET auth_time = auth_time - interval '1 hour'");
    let page = browser.authorize_spa(&[("max_age", "60")]).await;
    assert!(page.is_login_page(), "max_age");
    let page = browser.authorize_spa(&[("max_age", "7200")]).await;
    assert_eq!(page.status, 302, "recent enough");
    // Signing in again satisfies it, and the ID token says when.
    let login = browser.authorize_spa(&[("max_age", "60")]).await;
    let signed_in = browser.sign_in(&login, "alice", PASSWORD).await;
    let code = signed_in
        .redirect_param("code")
        .expect("consent was remembered");
    let tokens = tokens_of(exchange_spa(&app, &code, VERIFIER).await).await;
    let id = crate::helpers::claims_of(tokens.body["id_token"].as_str().unwrap());
    let age = id["iat"].as_i64().unwrap() - id["auth_time"].as_i64().unwrap();
    assert!(age <= 60, "auth_time is the new sign-in: {id}");
}

#[tokio::test]
async fn a_code_is_single_use_and_its_replay_revokes_what_it_issued() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let code = Browser::new(&app).code_for_spa("alice").await;
    let first = tokens_of(exchange_spa(&app, &code, VERIFIER).await).await;
    let replay = exchange_spa(&app, &code, VERIFIER).await;
    assert_oauth_error(replay, 400, "invalid_grant").await;
    let me = app.get_with_token("/v1/me", &first.access_token).await;
    assert_eq!(
        me.status(),
        401,
        "the first exchange's access token is revoked"
    );
    let refresh = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "spa"),
                ("refresh_token", &first.refresh_token),
            ],
        )
        .await;
    assert_oauth_error(refresh, 400, "invalid_grant").await;
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE action = 'authorization_code.replayed'"),
        1
    );
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_and_verifier() {
    let app = spawn_app().await;
    let secret = register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let code = browser.code_for_spa("alice").await;
    let wrong_verifier = exchange_spa(&app, &code, &"x".repeat(43)).await;
    assert_oauth_error(wrong_verifier, 400, "invalid_grant").await;
    let no_verifier = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_oauth_error(no_verifier, 400, "invalid_grant").await;
    let other_uri = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1/native"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_oauth_error(other_uri, 400, "invalid_grant").await;
    let other_client = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(other_client, 400, "invalid_grant").await;
    // None of that spent the code: its own client still gets its tokens.
    let res = exchange_spa(&app, &code, VERIFIER).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_verifier_for_a_code_issued_without_a_challenge_is_refused() {
    let app = spawn_app().await;
    let secret = register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let login = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ])
        .await;
    let back = browser.sign_in(&login, "alice", PASSWORD).await;
    let code = back.redirect_param("code").unwrap();
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let code = Browser::new(&app).code_for_spa("alice").await;
    let ttl = app.count(
        "SELECT extract(epoch FROM expires_at - created_at)::bigint FROM authorization_codes",
    );
    assert!(ttl <= 60, "codes live at most 60 s, not {ttl}");
    app.execute("UPDATE authorization_codes SET expires_at = now() - interval '1 second'");
    let res = exchange_spa(&app, &code, VERIFIER).await;
    assert_oauth_error(res, 400, "invalid_grant").await;
}

#[tokio::test]
async fn a_made_up_code_is_refused_and_the_store_keeps_only_hashes() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let code = Browser::new(&app).code_for_spa("alice").await;
    let made_up = format!("ac_{}", "A".repeat(43));
    assert_oauth_error(
        exchange_spa(&app, &made_up, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_oauth_error(
        exchange_spa(&app, "garbage", VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM authorization_codes WHERE encode(code_hash, 'escape') LIKE '%{}%'",
            &code[3..13]
        )),
        0
    );
}

#[tokio::test]
async fn a_disabled_user_or_a_new_password_ends_single_sign_on() {
    let app = spawn_app().await;
    register_apps(&app).await;
    let alice = app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let code = browser.code_for_spa("alice").await;
    let admin = app.admin_token().await;
    let res = app
        .api
        .patch(app.url(&format!("/v1/admin/users/{alice}")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page = browser.authorize_spa(&[]).await;
    assert!(page.is_login_page(), "the browser session no longer counts");
    assert_oauth_error(
        exchange_spa(&app, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_third_party_apps_tokens_carry_no_roles_and_do_not_work_on_tesseras_api() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &["admin"]).await;
    let code = Browser::new(&app).code_for_spa("alice").await;
    let tokens = tokens_of(exchange_spa(&app, &code, VERIFIER).await).await;
    let claims = crate::helpers::claims_of(&tokens.access_token);
    assert_eq!(claims["aud"], "spa", "for the app itself: {claims}");
    assert!(
        claims.get("roles").is_none() || claims["roles"] == serde_json::json!([]),
        "an administrator's roles are not handed to a third-party app: {claims}"
    );
    for path in ["/v1/me", "/v1/me/consents", "/v1/admin/users"] {
        let res = app.get_with_token(path, &tokens.access_token).await;
        assert_eq!(res.status(), 401, "{path}");
    }
    let res = app
        .api
        .post(app.url("/v1/logout"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let info = app
        .get_with_token("/oauth/userinfo", &tokens.access_token)
        .await;
    assert_eq!(info.status(), 200, "userinfo answers any app's token");
}

#[tokio::test]
async fn a_first_party_apps_tokens_work_on_tesseras_api() {
    let app = spawn_app().await;
    let secret = register_apps(&app).await;
    app.create_user("alice", &["admin"]).await;
    let mut browser = Browser::new(&app);
    let login = browser
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ])
        .await;
    let back = browser.sign_in(&login, "alice", PASSWORD).await;
    let res = app
        .api
        .post(app.url("/oauth/token"))
        .basic_auth("web", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", back.redirect_param("code").unwrap().as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    let tokens = tokens_of(res).await;
    let claims = crate::helpers::claims_of(&tokens.access_token);
    assert_eq!(claims["aud"], ISSUER);
    assert_eq!(claims["roles"], serde_json::json!(["admin"]));
    assert_eq!(
        app.get_with_token("/v1/me", &tokens.access_token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_code_issued_before_the_consent_was_withdrawn_buys_nothing() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let code = Browser::new(&app).code_for_spa("alice").await;
    let own = app.login("alice").await;
    let res = app
        .api
        .delete(app.url("/v1/me/consents/spa"))
        .bearer_auth(&own.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_oauth_error(
        exchange_spa(&app, &code, VERIFIER).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn signing_in_as_someone_else_signs_the_previous_person_out() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    app.create_user("bob", &[]).await;
    let mut browser = Browser::new(&app);
    let code = browser.code_for_spa("alice").await;
    let alice = tokens_of(exchange_spa(&app, &code, VERIFIER).await).await;
    let login = browser.authorize_spa(&[("prompt", "login")]).await;
    browser.sign_in(&login, "bob", PASSWORD).await;
    assert_eq!(
        app.get_with_token("/oauth/userinfo", &alice.access_token)
            .await
            .status(),
        401,
        "alice's app session ended with her browser session"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM browser_sessions WHERE ended_at IS NULL"),
        1
    );
}

#[tokio::test]
async fn signing_in_again_as_the_same_person_keeps_the_apps_signed_in() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let code = browser.code_for_spa("alice").await;
    let tokens = tokens_of(exchange_spa(&app, &code, VERIFIER).await).await;
    let login = browser.authorize_spa(&[("prompt", "login")]).await;
    browser.sign_in(&login, "alice", PASSWORD).await;
    assert_eq!(
        app.get_with_token("/oauth/userinfo", &tokens.access_token)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.count("SELECT count(*) FROM browser_sessions WHERE ended_at IS NULL"),
        1,
        "one sign-in per browser"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM sessions s JOIN browser_sessions b ON b.id = s.browser_session_id \
             WHERE b.ended_at IS NULL"
        ),
        1,
        "the app's session moved to the new sign-in, so a sign-out still ends it"
    );
}

#[tokio::test]
async fn the_authorization_request_may_be_posted() {
    let app = spawn_app().await;
    register_apps(&app).await;
    let mut browser = Browser::new(&app);
    let page = browser
        .post(
            "/oauth/authorize",
            &[
                ("response_type", "code"),
                ("client_id", "spa"),
                ("redirect_uri", REDIRECT),
                ("state", "s"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .await;
    assert!(page.is_login_page(), "{} {}", page.status, page.body);
    let control = browser.authorize_spa(&[("state", "a\u{1}b")]).await;
    assert_eq!(
        control.redirect_param("error").as_deref(),
        Some("invalid_request")
    );
}

async fn push(
    app: &crate::helpers::TestApp,
    auth: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = app.api.post(app.url("/oauth/par")).form(form);
    if let Some((id, secret)) = auth {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn a_pushed_request_is_brought_back_by_its_request_uri_alone() {
    let app = spawn_app().await;
    let secret = register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let res = push(
        &app,
        Some(("web", &secret)),
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "pushed-state"),
        ],
    )
    .await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: serde_json::Value = res.json().await.unwrap();
    let request_uri = body["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(body["expires_in"], 60);
    let mut browser = Browser::new(&app);
    // RFC 9126 §4: only the pushed parameters count; these are ignored.
    let login = browser
        .authorize(&[
            ("client_id", "web"),
            ("request_uri", request_uri),
            ("redirect_uri", "https://evil.example/cb"),
            ("state", "not-this"),
        ])
        .await;
    assert!(login.is_login_page(), "{}", login.body);
    let back = browser.sign_in(&login, "alice", PASSWORD).await;
    assert!(back.location().unwrap().starts_with(REDIRECT));
    assert_eq!(
        back.redirect_param("state").as_deref(),
        Some("pushed-state")
    );
    assert!(back.redirect_param("code").is_some());
}

#[tokio::test]
async fn a_pushed_request_is_checked_like_any_other_and_authenticated() {
    let app = spawn_app().await;
    let secret = register_apps(&app).await;
    let wrong = push(
        &app,
        Some(("web", "cs_wrong")),
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ],
    )
    .await;
    assert_oauth_error(wrong, 401, "invalid_client").await;
    let evil = push(
        &app,
        Some(("web", &secret)),
        &[
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/cb"),
            ("state", "s"),
        ],
    )
    .await;
    assert_oauth_error(evil, 400, "invalid_request").await;
    let token = push(
        &app,
        Some(("web", &secret)),
        &[
            ("response_type", "token"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
        ],
    )
    .await;
    assert_oauth_error(token, 400, "unsupported_response_type").await;
    // A public client pushes with its client_id, and still needs PKCE.
    let no_pkce = push(
        &app,
        None,
        &[
            ("client_id", "spa"),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_oauth_error(no_pkce, 400, "invalid_request").await;
    let ok = push(
        &app,
        None,
        &[
            ("client_id", "spa"),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(ok.status(), 201);
    let request_uri = ok.json::<serde_json::Value>().await.unwrap()["request_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut browser = Browser::new(&app);
    let other = browser
        .authorize(&[("client_id", "web"), ("request_uri", &request_uri)])
        .await;
    assert_eq!(other.status, 400, "another client's request_uri");
    assert!(other.location().is_none());
    let made_up = browser
        .authorize(&[
            ("client_id", "spa"),
            ("request_uri", "urn:ietf:params:oauth:request_uri:AAAA"),
        ])
        .await;
    assert_eq!(made_up.status, 400);
    // The sealed request cannot be posted to the login form as a page's flow.
    let sealed = request_uri.trim_start_matches("urn:ietf:params:oauth:request_uri:");
    let res = browser
        .post(
            "/oauth/authorize/login",
            &[
                ("flow", sealed),
                ("csrf", "x"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status, 400);
}
