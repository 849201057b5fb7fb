//! A browser, as far as Tessera's pages can tell: a cookie jar, forms posted by hand,
//! redirects looked at rather than followed. The real-browser run is
//! `scripts/oidc.sh` (Chromium driving an SPA that uses oidc-client-ts).

use std::collections::HashMap;

use crate::helpers::{TestApp, PASSWORD};

/// RFC 7636 Appendix B: a verifier and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Where the test apps are sent back to (nothing listens there: redirects are read).
pub const REDIRECT: &str = "http://localhost:5555/cb";
pub const AFTER_LOGOUT: &str = "http://localhost:5555/";

/// A response as a browser would get it.
pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// A query parameter of the redirect's target.
    pub fn redirect_param(&self, name: &str) -> Option<String> {
        let location = self.location()?;
        let url = url::Url::parse(location)
            .or_else(|_| {
                url::Url::parse("http://tessera.test")
                    .unwrap()
                    .join(location)
            })
            .ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The value of a hidden input of the page's form.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no input {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn is_login_page(&self) -> bool {
        self.status == 200 && self.body.contains("action=\"/oauth/authorize/login\"")
    }

    pub fn is_consent_page(&self) -> bool {
        self.status == 200 && self.body.contains("action=\"/oauth/authorize/consent\"")
    }
}

pub struct Browser<'a> {
    app: &'a TestApp,
    pub cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, res: reqwest::Response) -> Page {
        for set in res.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: res.status().as_u16(),
            headers: res.headers().clone(),
            body: res.text().await.unwrap(),
        }
    }

    /// GET a path of Tessera (or a redirect's location on Tessera).
    pub async fn get(&mut self, path: &str) -> Page {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            self.app.url(path)
        };
        let res = self
            .app
            .api
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let res = self
            .app
            .api
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(res).await
    }

    /// `GET /oauth/authorize` with these parameters.
    pub async fn authorize(&mut self, params: &[(&str, &str)]) -> Page {
        let query = serde_urlencoded::to_string(params).unwrap();
        self.get(&format!("/oauth/authorize?{query}")).await
    }

    /// The usual request of the test SPA (public, PKCE), with extra parameters.
    pub async fn authorize_spa(&mut self, extra: &[(&str, &str)]) -> Page {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", "spa"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile"),
            ("state", "st4te"),
            ("nonce", "n0nce"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        for (k, v) in extra {
            params.retain(|(name, _)| name != k);
            if !v.is_empty() {
                params.push((k, v));
            }
        }
        self.authorize(&params).await
    }

    /// Submits the login page's form.
    pub async fn sign_in(&mut self, login: &Page, username: &str, password: &str) -> Page {
        assert!(
            login.is_login_page(),
            "not a login page: {} {}",
            login.status,
            login.body
        );
        let (flow, csrf) = (login.hidden("flow"), login.hidden("csrf"));
        self.post(
            "/oauth/authorize/login",
            &[
                ("flow", &flow),
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Answers the consent page.
    pub async fn answer(&mut self, consent: &Page, decision: &str) -> Page {
        assert!(
            consent.is_consent_page(),
            "not a consent page: {}",
            consent.body
        );
        let (flow, csrf) = (consent.hidden("flow"), consent.hidden("csrf"));
        self.post(
            "/oauth/authorize/consent",
            &[("flow", &flow), ("csrf", &csrf), ("decision", decision)],
        )
        .await
    }

    /// The whole flow of the test SPA for `username`: login, consent when asked; the
    /// code from the redirect.
    pub async fn code_for_spa(&mut self, username: &str) -> String {
        let mut page = self.authorize_spa(&[]).await;
        if page.is_login_page() {
            page = self.sign_in(&page, username, PASSWORD).await;
        }
        if page.status == 303
            && page
                .location()
                .is_some_and(|l| l.starts_with("/oauth/authorize/consent"))
        {
            let location = page.location().unwrap().to_owned();
            page = self.get(&location).await;
        }
        if page.is_consent_page() {
            page = self.answer(&page, "allow").await;
        }
        assert!(
            page.location().is_some_and(|l| l.starts_with(REDIRECT)),
            "not sent back to the app: {} {:?} {}",
            page.status,
            page.location(),
            page.body
        );
        page.redirect_param("code").expect("a code")
    }
}

/// The test SPA (public, third party) and the test web app (confidential, first party).
pub async fn register_apps(app: &TestApp) -> String {
    app.create_client(serde_json::json!({
        "client_id": "spa", "name": "Example SPA",
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile"],
        "redirect_uris": [REDIRECT, "http://127.0.0.1/native"],
        "post_logout_redirect_uris": [AFTER_LOGOUT],
    }))
    .await;
    let (_, secret) = app
        .create_client(serde_json::json!({
            "client_id": "web", "name": "Example web app", "confidential": true,
            "first_party": true,
            "grant_types": ["authorization_code", "refresh_token"],
            "scopes": ["openid", "profile"],
            "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": [AFTER_LOGOUT],
        }))
        .await;
    secret.unwrap()
}

/// Exchanges a code of the test SPA.
pub async fn exchange_spa(app: &TestApp, code: &str, verifier: &str) -> reqwest::Response {
    app.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await
}
