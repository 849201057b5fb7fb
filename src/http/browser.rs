//! Browser mode for single-page apps: the refresh token lives in an
//! `HttpOnly; Secure; SameSite=Strict` cookie with the `__Host-` prefix (so `Path=/`
//! and no `Domain`: no sibling subdomain can set or shadow it), so JavaScript (and any
//! XSS) never sees it. Because the browser attaches the cookie by itself, every
//! request of a browser-mode client must prove it comes from an allowed page: an
//! `Origin` that is an allowed CORS origin (or Tessera's own) and a custom header
//! (`X-Tessera-CSRF`), which no cross-site form can send and which forces a CORS
//! preflight for scripts.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponseBuilder};

use crate::config::Settings;
use crate::error::OAuthError;

pub const COOKIE: &str = "__Host-tessera-rt";
pub const CSRF_HEADER: &str = "x-tessera-csrf";
/// `__Host-` cookies must have `Path=/` (and `Secure`, and no `Domain`).
const COOKIE_PATH: &str = "/";

/// The scheme://host[:port] of a URL.
fn origin_of(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find('/').map(|j| i + 3 + j).unwrap_or(url.len());
            &url[..end]
        }
        None => url,
    }
}

pub fn check_csrf(req: &HttpRequest, settings: &Settings) -> Result<(), OAuthError> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            OAuthError::invalid_request("browser-mode requests need an Origin header")
        })?;
    let allowed = settings.http.cors_origins.iter().any(|o| o == origin)
        || origin == origin_of(&settings.issuer);
    if !allowed {
        return Err(OAuthError::invalid_request("this Origin is not allowed"));
    }
    if !req.headers().contains_key(CSRF_HEADER) {
        return Err(OAuthError::invalid_request(
            "browser-mode requests need the X-Tessera-CSRF header",
        ));
    }
    Ok(())
}

/// The refresh token from the cookie, if any.
pub fn refresh_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE).map(|c| c.value().to_owned())
}

pub fn set_refresh_cookie(
    res: &mut HttpResponseBuilder,
    token: &str,
    max_age: std::time::Duration,
) {
    let cookie = Cookie::build(COOKIE, token.to_owned())
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish();
    res.cookie(cookie);
}

pub fn clear_refresh_cookie(res: &mut HttpResponseBuilder) {
    let mut cookie = Cookie::build(COOKIE, "")
        .path(COOKIE_PATH)
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .finish();
    cookie.make_removal();
    res.cookie(cookie);
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins_are_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://auth.example.com/base"),
            "https://auth.example.com"
        );
        assert_eq!(origin_of("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
    }
}
