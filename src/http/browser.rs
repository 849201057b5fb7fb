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

pub(crate) const COOKIE: &str = "__Host-tessera-rt";
pub(crate) const CSRF_HEADER: &str = "x-tessera-csrf";
/// `__Host-` cookies must have `Path=/` (and `Secure`, and no `Domain`).
const COOKIE_PATH: &str = "/";

/// The origin (RFC 6454: scheme, host and port, the port left out when it is the
/// scheme's default) of a URL, as a browser writes it in `Origin`. URLs without one
/// (opaque origins, which browsers send as `null`) have none.
fn origin_of(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

pub(crate) fn check_csrf(req: &HttpRequest, settings: &Settings) -> Result<(), OAuthError> {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            OAuthError::invalid_request("browser-mode requests need an Origin header")
        })?;
    let allowed = settings.http.cors_origins.iter().any(|o| o == origin)
        || origin_of(&settings.issuer).is_some_and(|own| own == origin);
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
pub(crate) fn refresh_cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE).map(|c| c.value().to_owned())
}

pub(crate) fn set_refresh_cookie(
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

pub(crate) fn clear_refresh_cookie(res: &mut HttpResponseBuilder) {
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
            origin_of("https://auth.example.com/base").as_deref(),
            Some("https://auth.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("https://Auth.Example.com:443/").as_deref(),
            Some("https://auth.example.com"),
            "as a browser sends it: lowercase host, no default port"
        );
    }

    #[test]
    fn an_opaque_origin_matches_nothing() {
        assert_eq!(origin_of("data:text/plain,x"), None);
        assert_eq!(origin_of("not a url"), None);
    }
}
