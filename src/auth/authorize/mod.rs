//! The authorization endpoint's rules (RFC 6749 §4.1, RFC 7636 PKCE, OpenID Connect
//! Core §3.1.2): which requests are acceptable, and what comes next for one: the login
//! page, the consent page, or a code (or an error) sent back to the app.
//!
//! Errors about the client or its redirect URI are shown on Tessera's own page and
//! never redirected (RFC 6749 §4.1.2.1: an unchecked redirect would be an open
//! redirector); every other error goes back to the app with `error`, `state` and `iss`
//! (RFC 9207).

mod flow;

use std::collections::HashMap;

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use secrecy::SecretString;

pub(crate) use flow::{Flow, FlowKeys, FLOW_TTL};

use super::audit::{self, action};
use super::clients::Client;
use super::{chrono_duration, AuthError, RequestContext, Tessera};
use crate::domain::{GrantType, Scope};
use crate::store::browser_sessions::LiveBrowserSession;
use crate::store::{authorization_codes, consents};

/// How long a code may wait for its exchange (RFC 6749 §4.1.2 recommends at most ten
/// minutes; an app exchanges it at once).
pub(crate) const CODE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Why an authorization request cannot go on.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Shown on Tessera's own error page: the client or the redirect URI cannot be
    /// trusted, so nothing is sent anywhere.
    Page(String),
    /// Sent back to the app's redirect URI.
    Redirect(ErrorRedirect),
}

/// An OAuth error for the app: where it goes, and what it says (a pushed request gets
/// the same error in its answer instead).
#[derive(Debug)]
pub(crate) struct ErrorRedirect {
    pub location: String,
    pub error: String,
    pub description: String,
}

/// An OAuth error for the app, as it goes back in the redirect.
fn error_redirect(
    flow_like: &RedirectTarget<'_>,
    issuer: &str,
    error: &str,
    description: &str,
) -> ErrorRedirect {
    let mut url = url::Url::parse(flow_like.redirect_uri).expect("redirect URIs are absolute URLs");
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", error);
        if !description.is_empty() {
            query.append_pair("error_description", description);
        }
        if let Some(state) = flow_like.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    ErrorRedirect {
        location: url.into(),
        error: error.to_owned(),
        description: description.to_owned(),
    }
}

/// Where an answer for the app goes.
struct RedirectTarget<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
}

impl Flow {
    fn target(&self) -> RedirectTarget<'_> {
        RedirectTarget {
            redirect_uri: &self.redirect_uri,
            state: self.state.as_deref(),
        }
    }

    /// The redirect that answers this flow with an OAuth error.
    pub(crate) fn error(&self, issuer: &str, error: &str, description: &str) -> String {
        error_redirect(&self.target(), issuer, error, description).location
    }
}

/// The longest value Tessera takes for `state`, `nonce` or `login_hint`.
const MAX_PARAMETER_LEN: usize = 1024;

/// Checks an authorization request (its query parameters, each at most once: RFC 6749
/// §3.1) and turns it into a [`Flow`]. The client and the redirect URI are checked
/// first, so that no other error is ever redirected to a URI that was not registered.
#[tracing::instrument(
    name = "authorize.parse",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn parse_request(
    tessera: &Tessera,
    pairs: Vec<(String, String)>,
) -> Result<(Client, Flow), AuthorizeError> {
    let mut params: HashMap<String, String> = HashMap::new();
    let mut repeated: Option<String> = None;
    for (name, value) in pairs {
        match params.entry(name) {
            std::collections::hash_map::Entry::Occupied(taken) => {
                repeated.get_or_insert_with(|| taken.key().clone());
            }
            std::collections::hash_map::Entry::Vacant(free) => {
                free.insert(value);
            }
        }
    }
    let take = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let page = |msg: &str| AuthorizeError::Refused(Refusal::Page(msg.to_owned()));

    // The client and where to answer it: errors here are shown, never redirected.
    let client_id = take("client_id")
        .ok_or_else(|| page("The request names no client (client_id is missing)."))?;
    if repeated
        .as_deref()
        .is_some_and(|r| r == "client_id" || r == "redirect_uri")
    {
        return Err(page("The request repeats client_id or redirect_uri."));
    }
    let client = Client::current(tessera, client_id)
        .await?
        .ok_or_else(|| page("The app that sent you here is not registered with this service."))?;
    let redirect_uri =
        take("redirect_uri").ok_or_else(|| page("The request has no redirect_uri."))?;
    if client.redirect_uri(redirect_uri).is_none() {
        return Err(page(
            "The app asked to send you to an address it has not registered, so this service will not go there.",
        ));
    }
    let state = take("state");
    let target = RedirectTarget {
        redirect_uri,
        state,
    };
    let issuer = tessera.settings.issuer.as_str();
    let refuse = |error: &str, description: &str| {
        AuthorizeError::Refused(Refusal::Redirect(error_redirect(
            &target,
            issuer,
            error,
            description,
        )))
    };
    if let Some(name) = repeated {
        return Err(refuse(
            "invalid_request",
            &format!("the parameter `{}` is repeated", truncate(&name)),
        ));
    }
    if state.is_some_and(|s| s.len() > MAX_PARAMETER_LEN || s.chars().any(char::is_control)) {
        // Not sent back: an oversized state would make the redirect itself oversized.
        let target = RedirectTarget {
            redirect_uri,
            state: None,
        };
        return Err(AuthorizeError::Refused(Refusal::Redirect(error_redirect(
            &target,
            issuer,
            "invalid_request",
            "state must be at most 1024 printable characters",
        ))));
    }
    match take("response_type") {
        None => return Err(refuse("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ))
        }
    }
    if client.may_use_grant(GrantType::AuthorizationCode).is_err() {
        return Err(refuse(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    if take("request").is_some() {
        return Err(refuse(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if take("request_uri").is_some() {
        // A pushed request's `request_uri` is answered by `pulled`, before this; here it
        // is one inside a pushed request, or a request object's (not supported).
        return Err(refuse(
            "invalid_request",
            "request_uri is only for a pushed authorization request's request_uri",
        ));
    }
    if take("response_mode").is_some_and(|m| m != "query") {
        return Err(refuse(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    let requested = match take("scope") {
        None => None,
        Some(raw) => Some(Scope::parse(raw).map_err(|e| refuse("invalid_scope", &e))?),
    };
    let scope = client
        .grant_scope(requested.as_ref())
        .map_err(|e| refuse("invalid_scope", &e.to_string()))?;

    // PKCE (RFC 7636): S256 only (`plain` shows the verifier to whoever sees the
    // request); required of public clients, which have nothing else to bind the code.
    let code_challenge = match (take("code_challenge"), take("code_challenge_method")) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ))
        }
        (Some(_), None) | (Some(_), Some("plain")) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not allowed)",
            ))
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256",
            ))
        }
        (Some(challenge), Some(_)) => {
            if !is_s256_challenge(challenge) {
                return Err(refuse(
                    "invalid_request",
                    "code_challenge must be 43 base64url characters (a SHA-256)",
                ));
            }
            Some(challenge.to_owned())
        }
    };
    if code_challenge.is_none() && !client.confidential {
        return Err(refuse(
            "invalid_request",
            "a public client must use PKCE (code_challenge with S256)",
        ));
    }
    // Without state, only PKCE ties the answer to the browser that asked (RFC 9700
    // §2.1): a request with neither could be finished in a victim's browser.
    if state.is_none() && code_challenge.is_none() {
        return Err(refuse(
            "invalid_request",
            "a request without state must use PKCE",
        ));
    }

    let (mut prompt_none, mut force_login, mut force_consent) = (false, false, false);
    if let Some(prompt) = take("prompt") {
        for value in prompt.split(' ').filter(|v| !v.is_empty()) {
            match value {
                "none" => prompt_none = true,
                "login" => force_login = true,
                "consent" => force_consent = true,
                "select_account" => {}
                _ => {
                    return Err(refuse(
                        "invalid_request",
                        "prompt must be none, login, consent or select_account",
                    ))
                }
            }
        }
        if prompt_none && (force_login || force_consent) {
            return Err(refuse(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            ));
        }
    }
    let max_age = match take("max_age") {
        None => None,
        Some(raw) => Some(
            raw.parse::<u64>()
                .ok()
                .filter(|&s| s <= 10 * 365 * 86_400)
                .ok_or_else(|| {
                    refuse(
                        "invalid_request",
                        "max_age must be a whole number of seconds",
                    )
                })?,
        ),
    };
    let bounded = |name: &str| -> Result<Option<String>, AuthorizeError> {
        match take(name) {
            Some(v) if v.len() > MAX_PARAMETER_LEN || v.chars().any(char::is_control) => {
                Err(refuse(
                    "invalid_request",
                    &format!("{name} must be at most 1024 printable characters"),
                ))
            }
            v => Ok(v.map(str::to_owned)),
        }
    };
    let nonce = bounded("nonce")?;
    let login_hint = bounded("login_hint")?;
    let flow = Flow {
        client_id: client.id.as_str().to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.to_string(),
        state: state.map(str::to_owned),
        nonce,
        code_challenge,
        prompt_none,
        force_login,
        force_consent,
        max_age,
        login_hint,
        pushed: false,
        exp: Utc::now().timestamp() + FLOW_TTL.as_secs() as i64,
    };
    Ok((client, flow))
}

/// RFC 9126: what `request_uri` starts with.
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request waits for the browser (RFC 9126 §2.2: short-lived).
pub(crate) const PUSHED_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// A pushed authorization request (RFC 9126): checked now, from the client's own
/// connection (so its parameters never pass through the browser, and the client is
/// authenticated), answered with a `request_uri` for the browser to bring back. The
/// `request_uri` is the sealed flow itself: nothing is stored, any instance can take it.
/// It is not one-time (RFC 9126 §4 SHOULD): a second use only starts another sign-in
/// for the same client and redirect URI, within the minute.
#[tracing::instrument(name = "authorize.push", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub(crate) async fn push(
    tessera: &Tessera,
    client: &Client,
    mut pairs: Vec<(String, String)>,
) -> Result<String, AuthorizeError> {
    let refused = |why: &str| AuthorizeError::Refused(Refusal::Page(why.to_owned()));
    if pairs
        .iter()
        .any(|(k, v)| k == "client_id" && v != client.id.as_str())
    {
        return Err(refused("client_id is not the authenticated client"));
    }
    if !pairs.iter().any(|(k, _)| k == "client_id") {
        pairs.push(("client_id".to_owned(), client.id.as_str().to_owned()));
    }
    let (_, mut flow) = parse_request(tessera, pairs).await?;
    flow.pushed = true;
    flow.exp = Utc::now().timestamp() + PUSHED_TTL.as_secs() as i64;
    Ok(format!("{REQUEST_URI_PREFIX}{}", tessera.seal_flow(&flow)?))
}

/// The flow a browser brought back as `request_uri` (with the `client_id` that pushed
/// it; RFC 9126 §4: every other parameter is the pushed request's), ready for the pages.
#[tracing::instrument(
    name = "authorize.pulled",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn pulled(
    tessera: &Tessera,
    client_id: Option<&str>,
    request_uri: &str,
) -> Result<(Client, Flow), AuthorizeError> {
    let page = |msg: &str| AuthorizeError::Refused(Refusal::Page(msg.to_owned()));
    let expired = "The app's sign-in request has expired or is not valid. Go back to the app and sign in again.";
    let flow = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .map(|sealed| tessera.open_flow(sealed))
        .transpose()?
        .flatten()
        .filter(|f| f.pushed)
        .ok_or_else(|| page(expired))?;
    if client_id != Some(flow.client_id.as_str()) {
        return Err(page(
            "The request's client_id is not the app that pushed it.",
        ));
    }
    let client = Client::current(tessera, &flow.client_id)
        .await?
        .filter(|c| c.redirect_uri(&flow.redirect_uri).is_some())
        .ok_or_else(|| page("The app that sent you here is not registered with this service."))?;
    let flow = Flow {
        pushed: false,
        exp: Utc::now().timestamp() + FLOW_TTL.as_secs() as i64,
        ..flow
    };
    Ok((client, flow))
}

fn truncate(s: &str) -> String {
    s.chars().take(40).filter(|c| !c.is_control()).collect()
}

/// 43 base64url characters: the encoding of a SHA-256 digest without padding.
fn is_s256_challenge(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
pub(crate) fn is_code_verifier(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) equals the challenge, compared in
/// constant time.
pub(crate) fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    use subtle::ConstantTimeEq;
    let computed = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum AuthorizeError {
    #[error("the authorization request was refused")]
    Refused(Refusal),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        AuthorizeError::Auth(AuthError::Store(e))
    }
}

/// What happens next in a flow.
pub(crate) enum Next {
    /// Show the login page.
    SignIn,
    /// Ask the signed-in person whether the client may have these scopes.
    Consent { session: LiveBrowserSession },
    /// Send the browser back to the app (with a code, or an error).
    Redirect(String),
}

/// Decides the next step of a flow for the browser session at hand, if any.
#[tracing::instrument(name = "authorize.proceed", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub(crate) async fn proceed(
    tessera: &Tessera,
    client: &Client,
    flow: &Flow,
    session: Option<LiveBrowserSession>,
    ctx: &RequestContext,
) -> Result<Next, AuthError> {
    let issuer = tessera.settings.issuer.as_str();
    let now = Utc::now();
    let session = session.filter(|s| {
        let fresh_enough = flow
            .max_age
            .is_none_or(|max| (now - s.auth_time).num_seconds() <= max as i64);
        !flow.force_login && fresh_enough
    });
    let Some(session) = session else {
        return Ok(if flow.prompt_none {
            Next::Redirect(flow.error(issuer, "login_required", "the user is not signed in"))
        } else {
            Next::SignIn
        });
    };
    if needs_consent(tessera, client, flow, &session).await? {
        return Ok(if flow.prompt_none {
            Next::Redirect(flow.error(
                issuer,
                "consent_required",
                "the user has not allowed this app",
            ))
        } else {
            Next::Consent { session }
        });
    }
    let code = issue_code(tessera, client, flow, &session, ctx).await?;
    Ok(Next::Redirect(code_redirect(flow, issuer, &code)))
}

async fn needs_consent(
    tessera: &Tessera,
    client: &Client,
    flow: &Flow,
    session: &LiveBrowserSession,
) -> Result<bool, AuthError> {
    if client.first_party {
        return Ok(false);
    }
    if flow.force_consent {
        return Ok(true);
    }
    let (user_id, client_id) = (session.user_id, client.id.as_str().to_owned());
    let given = tessera
        .db
        .run(move |conn| consents::find(conn, user_id, &client_id))
        .await?;
    let Some(given) = given else {
        return Ok(true);
    };
    Ok(flow
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .any(|s| !given.iter().any(|g| g == s)))
}

/// The person's answer on the consent page: allowed, the consent is remembered and a
/// code goes back; denied, `access_denied` goes back.
#[tracing::instrument(name = "authorize.consent", level = "debug", skip_all, fields(client_id = %client.id, allowed), err(level = "debug"))]
pub(crate) async fn answer_consent(
    tessera: &Tessera,
    client: &Client,
    flow: &Flow,
    session: &LiveBrowserSession,
    allowed: bool,
    ctx: &RequestContext,
) -> Result<String, AuthError> {
    let issuer = tessera.settings.issuer.as_str();
    if !allowed {
        return Ok(flow.error(issuer, "access_denied", "the user did not allow this app"));
    }
    let scopes: Vec<String> = flow
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let (user_id, client_id, ctx2) = (session.user_id, client.id.as_str().to_owned(), ctx.clone());
    let event = audit::AuditEvent::new(action::CONSENT_GRANTED)
        .user(user_id)
        .client(&client_id)
        .detail("scopes", scopes.join(" "));
    tessera
        .db
        .run(move |conn| {
            use diesel::Connection;
            conn.transaction(|conn| {
                consents::grant(conn, user_id, &client_id, &scopes)?;
                audit::record(conn, &[event], &ctx2)
            })
        })
        .await?;
    let code = issue_code(tessera, client, flow, session, ctx).await?;
    Ok(code_redirect(flow, issuer, &code))
}

fn code_redirect(flow: &Flow, issuer: &str, code: &SecretString) -> String {
    use secrecy::ExposeSecret;
    let mut url = url::Url::parse(&flow.redirect_uri).expect("redirect URIs are absolute URLs");
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("code", code.expose_secret());
        if let Some(state) = &flow.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", issuer);
    }
    url.into()
}

const CODE_PREFIX: &str = "ac_";

/// The stored form of a code: its SHA-256.
pub(crate) fn code_hash(code: &str) -> [u8; 32] {
    super::clients::hash_secret(code)
}

/// Whether `code` has the shape of one of Tessera's codes (`ac_` and 43 base64url).
pub(crate) fn is_code(code: &str) -> bool {
    code.strip_prefix(CODE_PREFIX)
        .is_some_and(is_s256_challenge)
}

async fn issue_code(
    tessera: &Tessera,
    client: &Client,
    flow: &Flow,
    session: &LiveBrowserSession,
    _ctx: &RequestContext,
) -> Result<SecretString, AuthError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
    let code = format!("{CODE_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = code_hash(&code);
    let (client_id, flow, session) = (client.id.as_str().to_owned(), flow.clone(), session.clone());
    let expires_at = Utc::now() + chrono_duration(CODE_TTL);
    tessera
        .db
        .run(move |conn| {
            authorization_codes::insert(
                conn,
                &authorization_codes::NewCode {
                    code_hash: &hash,
                    client_id: &client_id,
                    user_id: session.user_id,
                    browser_session_id: session.id,
                    redirect_uri: &flow.redirect_uri,
                    scope: &flow.scope,
                    code_challenge: flow.code_challenge.as_deref(),
                    nonce: flow.nonce.as_deref(),
                    auth_time: session.auth_time,
                    expires_at,
                },
            )
        })
        .await?;
    Ok(SecretString::from(code))
}

impl Tessera {
    /// A flow sealed for the pages to carry.
    pub(crate) fn seal_flow(&self, flow: &Flow) -> Result<String, AuthError> {
        Ok(self.flow_keys()?.seal(flow))
    }

    /// The flow a page carried, unless it was altered or has expired.
    pub(crate) fn open_flow(&self, sealed: &str) -> Result<Option<Flow>, AuthError> {
        Ok(self.flow_keys()?.open(sealed, Utc::now().timestamp()))
    }

    /// The CSRF token of a page's form (see `flow`).
    pub(crate) fn form_csrf(
        &self,
        form: &str,
        binding: &[u8],
        sealed_flow: &str,
    ) -> Result<String, AuthError> {
        Ok(self.flow_keys()?.csrf(form, binding, sealed_flow))
    }

    pub(crate) fn form_csrf_matches(
        &self,
        form: &str,
        binding: &[u8],
        sealed_flow: &str,
        presented: &str,
    ) -> bool {
        self.flow_keys()
            .is_ok_and(|keys| keys.csrf_matches(form, binding, sealed_flow, presented))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_the_base64url_sha256_of_the_verifier() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_code_verifier(verifier));
        assert!(verifier_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!verifier_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
    }

    #[test]
    fn verifiers_are_43_to_128_unreserved_characters() {
        assert!(!is_code_verifier(&"a".repeat(42)));
        assert!(is_code_verifier(&"a".repeat(128)));
        assert!(!is_code_verifier(&"a".repeat(129)));
        assert!(!is_code_verifier(&format!("{}+", "a".repeat(43))));
    }
}
