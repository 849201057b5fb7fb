//! OpenID Connect around the code flow: discovery, the ID token, userinfo, consents
//! at `/v1/me/consents`, RP-initiated logout, and what a client registers for it.

use serde_json::{json, Value};

use crate::browser::{exchange_spa, register_apps, Browser, AFTER_LOGOUT, REDIRECT, VERIFIER};
use crate::helpers::{
    assert_oauth_error, claims_of, header_of, spawn_app, tokens_of, Tokens, ISSUER,
};

async fn signed_in_spa(app: &crate::helpers::TestApp, browser: &mut Browser<'_>) -> Tokens {
    let code = browser.code_for_spa("alice").await;
    let res = exchange_spa(app, &code, VERIFIER).await;
    assert_eq!(res.status(), 200);
    tokens_of(res).await
}

#[tokio::test]
async fn discovery_names_every_endpoint_and_capability() {
    let app = spawn_app().await;
    let doc: Value = app
        .api
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    for (key, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("end_session_endpoint", "/oauth/logout"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("pushed_authorization_request_endpoint", "/oauth/par"),
    ] {
        assert_eq!(doc[key], format!("{ISSUER}{path}"), "{key}");
    }
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );
    assert_eq!(doc["subject_types_supported"], json!(["public"]));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["request_uri_parameter_supported"], false);
    assert!(doc["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("authorization_code")));
    for claim in [
        "sub",
        "auth_time",
        "nonce",
        "sid",
        "at_hash",
        "preferred_username",
    ] {
        assert!(
            doc["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(claim)),
            "{claim}"
        );
    }
}

/// Verifies a JWT's signature with the published JWKS and returns its claims.
async fn verified(app: &crate::helpers::TestApp, token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .api
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("a published key");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&["spa"]);
    validation.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the ID token verifies with the JWKS")
        .claims
}

#[tokio::test]
async fn the_id_token_says_who_signed_in_when_and_for_which_app() {
    let app = spawn_app().await;
    register_apps(&app).await;
    let alice = app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let tokens = signed_in_spa(&app, &mut browser).await;
    let id_token = tokens.body["id_token"].as_str().unwrap();
    assert_eq!(header_of(id_token)["typ"], "JWT");
    let claims = verified(&app, id_token).await;
    assert_eq!(claims["sub"], alice.to_string());
    assert_eq!(claims["aud"], "spa");
    assert_eq!(claims["azp"], "spa");
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["preferred_username"], "alice");
    assert!(claims["auth_time"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert!(claims["exp"].as_i64().unwrap() > claims["iat"].as_i64().unwrap());
    let sid = claims["sid"].as_str().unwrap();
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) FROM browser_sessions WHERE id = '{sid}' AND user_id = '{alice}'"
        )),
        1,
        "sid is the browser session"
    );
    // at_hash: the left half of SHA-256 of the access token (ES256), base64url.
    use base64::Engine;
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, tokens.access_token.as_bytes());
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
    assert_eq!(claims["at_hash"], expected);
    // The access token is for the app (a third party); the ID token is no access token.
    assert_eq!(claims_of(&tokens.access_token)["aud"], "spa");
    let res = app.get_with_token("/oauth/userinfo", id_token).await;
    assert_eq!(
        res.status(),
        401,
        "an ID token is refused where an access token is due"
    );
}

#[tokio::test]
async fn without_openid_there_is_no_id_token_and_no_userinfo() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let mut page = browser.authorize_spa(&[("scope", "profile")]).await;
    page = browser
        .sign_in(&page, "alice", crate::helpers::PASSWORD)
        .await;
    let consent = browser.get(page.location().unwrap()).await;
    let back = browser.answer(&consent, "allow").await;
    let res = exchange_spa(&app, &back.redirect_param("code").unwrap(), VERIFIER).await;
    let tokens = tokens_of(res).await;
    assert!(tokens.body.get("id_token").is_none());
    let res = app
        .get_with_token("/oauth/userinfo", &tokens.access_token)
        .await;
    assert_eq!(res.status(), 403);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("insufficient_scope"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
}

#[tokio::test]
async fn userinfo_answers_get_and_post_with_the_claims_the_scopes_allow() {
    let app = spawn_app().await;
    register_apps(&app).await;
    let alice = app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let tokens = signed_in_spa(&app, &mut browser).await;
    let get = app
        .get_with_token("/oauth/userinfo", &tokens.access_token)
        .await;
    assert_eq!(get.status(), 200);
    assert_eq!(get.headers()["cache-control"], "no-store");
    let get: Value = get.json().await.unwrap();
    assert_eq!(get["sub"], alice.to_string());
    assert_eq!(get["preferred_username"], "alice");
    let post: Value = app
        .api
        .post(app.url("/oauth/userinfo"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(post, get);
    let none = app
        .api
        .get(app.url("/oauth/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
}

#[tokio::test]
async fn consents_are_listed_and_withdrawing_one_signs_the_app_out() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let spa = signed_in_spa(&app, &mut browser).await;
    let own = app.login("alice").await;
    let list: Value = app
        .get_with_token("/v1/me/consents", &own.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["client_id"], "spa");
    assert_eq!(list[0]["client_name"], "Example SPA");
    assert_eq!(list[0]["scopes"], json!(["openid", "profile"]));

    let res = app
        .api
        .delete(app.url("/v1/me/consents/spa"))
        .bearer_auth(&own.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let info = app
        .get_with_token("/oauth/userinfo", &spa.access_token)
        .await;
    assert_eq!(
        info.status(),
        401,
        "the app's access token is denied at once"
    );
    let refresh = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "spa"),
                ("refresh_token", &spa.refresh_token),
            ],
        )
        .await;
    assert_oauth_error(refresh, 400, "invalid_grant").await;
    let me = app.get_with_token("/v1/me", &own.access_token).await;
    assert_eq!(me.status(), 200, "other sessions are untouched");
    let page = browser.authorize_spa(&[]).await;
    assert!(page.is_consent_page(), "asked again");
    let again = app
        .api
        .delete(app.url("/v1/me/consents/spa"))
        .bearer_auth(&own.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn logout_with_an_id_token_hint_ends_the_browser_session_and_its_tokens() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let tokens = signed_in_spa(&app, &mut browser).await;
    let other = app.login("alice").await;
    let query = serde_urlencoded::to_string([
        ("id_token_hint", tokens.body["id_token"].as_str().unwrap()),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
        ("state", "bye"),
    ])
    .unwrap();
    let page = browser.get(&format!("/oauth/logout?{query}")).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(
        page.location(),
        Some(format!("{AFTER_LOGOUT}?state=bye").as_str())
    );
    assert!(page
        .header("set-cookie")
        .contains("__Host-tessera-session=;"));
    let me = app
        .get_with_token("/oauth/userinfo", &tokens.access_token)
        .await;
    assert_eq!(me.status(), 401);
    let refresh = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "spa"),
                ("refresh_token", &tokens.refresh_token),
            ],
        )
        .await;
    assert_oauth_error(refresh, 400, "invalid_grant").await;
    let me = app.get_with_token("/v1/me", &other.access_token).await;
    assert_eq!(
        me.status(),
        200,
        "a session not started in that browser stays"
    );
    assert!(browser.authorize_spa(&[]).await.is_login_page());
}

#[tokio::test]
async fn logout_goes_only_to_a_registered_address() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let tokens = signed_in_spa(&app, &mut browser).await;
    let query = serde_urlencoded::to_string([
        ("id_token_hint", tokens.body["id_token"].as_str().unwrap()),
        ("post_logout_redirect_uri", "https://evil.example/"),
    ])
    .unwrap();
    let page = browser.get(&format!("/oauth/logout?{query}")).await;
    assert_eq!(page.status, 400);
    assert!(page.location().is_none());
    let forged = browser
        .get("/oauth/logout?id_token_hint=eyJhbGciOiJub25lIn0.e30.&post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A5555%2F")
        .await;
    assert_eq!(forged.status, 400);
    // Nothing was ended by either.
    assert_eq!(
        app.get_with_token("/oauth/userinfo", &tokens.access_token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn logout_without_a_hint_asks_first() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    let mut browser = Browser::new(&app);
    let tokens = signed_in_spa(&app, &mut browser).await;
    let page = browser.get("/oauth/logout").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Sign out?"), "{}", page.body);
    assert_eq!(
        app.get_with_token("/oauth/userinfo", &tokens.access_token)
            .await
            .status(),
        200,
        "nothing ended by a GET without a hint"
    );
    let forged = browser.post("/oauth/logout", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
    let csrf = page.hidden("csrf");
    let done = browser.post("/oauth/logout", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("You are signed out"));
    assert_eq!(
        app.get_with_token("/oauth/userinfo", &tokens.access_token)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn redirect_uris_are_checked_when_a_client_is_registered() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let create = |spec: Value| {
        let (app, admin) = (&app, admin.clone());
        async move {
            app.api
                .post(app.url("/v1/admin/clients"))
                .bearer_auth(&admin)
                .json(&spec)
                .send()
                .await
                .unwrap()
        }
    };
    for uri in [
        "http://app.example.com/cb",
        "https://app.example.com/cb#x",
        "https://*.example.com/cb",
        "/relative",
    ] {
        let res = create(json!({
            "grant_types": ["authorization_code"], "redirect_uris": [uri],
        }))
        .await;
        assert_eq!(res.status(), 400, "{uri}");
    }
    let res = create(json!({"grant_types": ["authorization_code"]})).await;
    assert_eq!(res.status(), 400, "the code flow needs a redirect URI");
    let res = create(json!({
        "client_id": "app", "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": ["https://app.example.com/cb", "http://127.0.0.1/cb"],
        "post_logout_redirect_uris": ["https://app.example.com/"],
    }))
    .await;
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["first_party"], false, "third party unless asked");
    assert_eq!(body["redirect_uris"][1], "http://127.0.0.1/cb");
    let res = app
        .api
        .patch(app.url("/v1/admin/clients/app"))
        .bearer_auth(&admin)
        .json(&json!({"redirect_uris": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409, "it still has the code grant");
    // The built-in client keeps the password grant for the quick start, first party.
    let builtin: Value = app
        .get_with_token("/v1/admin/clients/tessera", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(builtin["first_party"], true);
    let _ = REDIRECT;
}

#[tokio::test]
async fn another_persons_id_token_hint_signs_no_one_out_without_asking() {
    let app = spawn_app().await;
    register_apps(&app).await;
    app.create_user("alice", &[]).await;
    app.create_user("mallory", &[]).await;
    let mut victim = Browser::new(&app);
    let tokens = signed_in_spa(&app, &mut victim).await;
    let mut attacker = Browser::new(&app);
    let code = attacker.code_for_spa("mallory").await;
    let theirs = tokens_of(exchange_spa(&app, &code, VERIFIER).await).await;
    // A page the victim visits links to logout with the attacker's own ID token.
    let query =
        serde_urlencoded::to_string([("id_token_hint", theirs.body["id_token"].as_str().unwrap())])
            .unwrap();
    let page = victim.get(&format!("/oauth/logout?{query}")).await;
    assert_eq!(page.status, 200, "asked, not signed out");
    assert!(page.body.contains("Sign out?"));
    assert!(!page.header("set-cookie").contains("__Host-tessera-session"));
    assert_eq!(
        app.get_with_token("/oauth/userinfo", &tokens.access_token)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get_with_token("/oauth/userinfo", &theirs.access_token)
            .await
            .status(),
        200,
        "the hint's own sign-in is in another browser: not ended from this one"
    );
}
