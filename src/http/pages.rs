//! Tessera's own HTML pages (login, consent, sign-out, errors): server-rendered from
//! compile-time-checked templates (askama, `templates/`), no JavaScript, one stylesheet
//! of our own, and a content security policy that lets a page load that stylesheet and
//! the configured logo, post its forms to Tessera (and follow the redirect to the app
//! the flow answers), and nothing else; no one may frame it.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{get, web, HttpResponse, HttpResponseBuilder};
use askama::Template;

use crate::config::Settings;
use crate::http::AppState;

/// The signed-in browser session (single sign-on across apps).
pub(crate) const SESSION_COOKIE: &str = "__Host-tessera-session";
/// The nonce the login form's CSRF token is bound to.
pub(crate) const LOGIN_COOKIE: &str = "__Host-tessera-login";

/// What every page shows of the operator's branding.
pub(crate) struct Brand {
    pub product_name: String,
    pub logo_url: Option<String>,
}

impl Brand {
    pub(crate) fn of(settings: &Settings) -> Self {
        Self {
            product_name: settings.login_page.product_name.clone(),
            logo_url: settings.login_page.logo_url.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub brand: Brand,
    pub client_name: &'a str,
    pub flow: &'a str,
    pub csrf: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage<'a> {
    pub brand: Brand,
    pub client_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<String>,
    pub flow: &'a str,
    pub csrf: &'a str,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub(crate) struct LogoutPage<'a> {
    pub brand: Brand,
    pub username: &'a str,
    pub csrf: &'a str,
    pub post_logout_redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    pub client_id: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub brand: Brand,
    pub heading: &'a str,
    pub message: &'a str,
    pub is_error: bool,
}

#[derive(Template)]
#[template(path = "tessera.css", escape = "none")]
struct Stylesheet<'a> {
    accent: &'a str,
}

/// What a scope lets an app do, in words, for the consent page.
pub(crate) fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are (your account id)".to_owned(),
        "profile" => "See your username".to_owned(),
        "offline_access" => "Stay signed in when you are not using it".to_owned(),
        other => format!("Use the permission “{other}”"),
    }
}

/// The origin of an absolute URL, for a CSP source list.
fn origin(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// A page's response: `no-store`, no framing, and the CSP. `form_target` is where the
/// page's form may end up after Tessera's redirect (the app's redirect URI): Chromium
/// applies `form-action` to the redirects that follow a form post.
pub(crate) fn page(
    settings: &Settings,
    status: StatusCode,
    html: Result<String, askama::Error>,
    form_target: Option<&str>,
) -> HttpResponse {
    let html = match html {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            return HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("internal error");
        }
    };
    let mut img = "'self'".to_owned();
    if let Some(logo) = settings.login_page.logo_url.as_deref().and_then(origin) {
        img = format!("{img} {logo}");
    }
    let mut form = "'self'".to_owned();
    if let Some(target) = form_target.and_then(origin) {
        form = format!("{form} {target}");
    }
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src {img}; form-action {form}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let mut res = HttpResponse::build(status);
    headers(&mut res, &csp);
    res.content_type("text/html; charset=utf-8").body(html)
}

fn headers(res: &mut HttpResponseBuilder, csp: &str) {
    res.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp.to_owned()))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
}

/// A page that says something went wrong (or that something is done).
pub(crate) fn message(
    settings: &Settings,
    status: StatusCode,
    heading: &str,
    message: &str,
) -> HttpResponse {
    let html = MessagePage {
        brand: Brand::of(settings),
        heading,
        message,
        is_error: status.is_client_error() || status.is_server_error(),
    }
    .render();
    let mut res = page(settings, status, html, None);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
    }
    res
}

/// A redirect out of a page: `303 See Other` after a form post (the browser follows it
/// with GET), `302 Found` from a GET.
pub(crate) fn redirect(status: StatusCode, location: &str) -> HttpResponseBuilder {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::LOCATION, location.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    res
}

/// A `__Host-` cookie: `Secure`, `Path=/`, no `Domain` (no sibling subdomain can set
/// or shadow it), `HttpOnly`, and `SameSite=Lax`: sent when an app sends the browser
/// to Tessera (a top-level navigation), never on another site's subresource or POST.
pub(crate) fn cookie(
    name: &'static str,
    value: &str,
    max_age: std::time::Duration,
) -> Cookie<'static> {
    Cookie::build(name, value.to_owned())
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
        ))
        .finish()
}

pub(crate) fn removal(name: &'static str) -> Cookie<'static> {
    let mut cookie = cookie(name, "", std::time::Duration::ZERO);
    cookie.make_removal();
    cookie
}

/// The login pages' stylesheet, with the configured accent colour.
#[get("/oauth/assets/tessera.css")]
pub(crate) async fn stylesheet(state: web::Data<AppState>) -> HttpResponse {
    match (Stylesheet {
        accent: &state.settings().login_page.accent_color,
    })
    .render()
    {
        Ok(css) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .content_type("text/css; charset=utf-8")
            .body(css),
        Err(e) => {
            tracing::error!(error = %e, "the stylesheet failed to render");
            HttpResponse::InternalServerError().finish()
        }
    }
}
