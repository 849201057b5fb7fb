//! The authorization request between Tessera's pages, and the CSRF tokens of its forms.
//!
//! A validated request travels from page to page as a sealed *flow* (AES-256-GCM under
//! a key derived from the master key, purpose `authorization-flow/v1`): no row is
//! written before the user signs in, any instance can continue a flow another began,
//! and nothing in it can be altered on the way (a changed redirect URI, scope or PKCE
//! challenge does not open). A flow lasts [`FLOW_TTL`].
//!
//! Every form carries a CSRF token: HMAC-SHA256 (purpose `form-csrf/v1`) over the form's
//! name, what the form is bound to (the login form to a random nonce in a cookie of its
//! own, the consent and sign-out forms to the browser session) and the flow. A form
//! posted from another site, or with a token taken from another browser, does not match.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::auth::master_key::MasterKey;
use crate::auth::sealing::SealingKey;

/// How long a person has to finish signing in once an app sent them to Tessera.
pub(crate) const FLOW_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

const FLOW_PURPOSE: &[u8] = b"authorization-flow/v1";
const FLOW_AAD: &[u8] = b"tessera authorization flow";
const CSRF_PURPOSE: &[u8] = b"form-csrf/v1";

/// An authorization request that passed every check of `GET /oauth/authorize`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Flow {
    pub client_id: String,
    /// As the client sent it (a registered URI, or a loopback one on another port).
    pub redirect_uri: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// RFC 7636 S256 challenge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    /// `prompt=none`: answer at once, never show a page.
    #[serde(default)]
    pub prompt_none: bool,
    /// `prompt=login`, or a `max_age` the current sign-in is older than: sign in again.
    /// Cleared once the person has signed in on this flow.
    #[serde(default)]
    pub force_login: bool,
    /// `prompt=consent`: ask even if consent was given before. Cleared once asked.
    #[serde(default)]
    pub force_consent: bool,
    /// OIDC `max_age` in seconds: the sign-in must be at most this old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// Pushed (RFC 9126) and not yet brought back by the browser: only
    /// `/oauth/authorize`'s `request_uri` opens it, no page takes it.
    #[serde(default)]
    pub pushed: bool,
    /// Unix seconds after which the flow no longer opens.
    pub exp: i64,
}

/// The keys of flows and forms, derived from the master key.
pub struct FlowKeys {
    sealing: SealingKey,
    csrf: hmac::Key,
}

impl FlowKeys {
    pub(crate) fn from_master(master: &MasterKey) -> Self {
        Self {
            sealing: master.derive_sealing_key(FLOW_PURPOSE),
            csrf: master.derive_hmac_key(CSRF_PURPOSE),
        }
    }

    pub(crate) fn seal(&self, flow: &Flow) -> String {
        let json = serde_json::to_vec(flow).expect("a flow serialises");
        URL_SAFE_NO_PAD.encode(self.sealing.seal(&json, FLOW_AAD))
    }

    /// The flow `sealed` holds, if it was sealed here and has not expired.
    pub(crate) fn open(&self, sealed: &str, now: i64) -> Option<Flow> {
        // The largest flow (state, nonce and login_hint at their limits, every character
        // escaped in JSON) seals to about 10 KiB.
        if sealed.len() > 16 * 1024 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let json = self.sealing.open(&bytes, FLOW_AAD).ok()?;
        use secrecy::ExposeSecret;
        let flow: Flow = serde_json::from_slice(json.expose_secret()).ok()?;
        (flow.exp > now).then_some(flow)
    }

    /// The CSRF token of `form`, bound to `binding` and the sealed flow.
    pub(crate) fn csrf(&self, form: &str, binding: &[u8], sealed_flow: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(
            &self.csrf,
            &csrf_input(form, binding, sealed_flow),
        ))
    }

    /// Whether `presented` is the token of `form` for this binding and flow, compared in
    /// constant time.
    pub(crate) fn csrf_matches(
        &self,
        form: &str,
        binding: &[u8],
        sealed_flow: &str,
        presented: &str,
    ) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else {
            return false;
        };
        hmac::verify(&self.csrf, &csrf_input(form, binding, sealed_flow), &tag).is_ok()
    }
}

/// Length-prefixed parts, so no two different inputs run together into the same bytes.
fn csrf_input(form: &str, binding: &[u8], sealed_flow: &str) -> Vec<u8> {
    let mut input = Vec::with_capacity(16 + form.len() + binding.len() + sealed_flow.len());
    for part in [form.as_bytes(), binding, sealed_flow.as_bytes()] {
        input.extend_from_slice(&(part.len() as u32).to_be_bytes());
        input.extend_from_slice(part);
    }
    input
}

impl std::fmt::Debug for FlowKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowKeys([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> FlowKeys {
        FlowKeys::from_master(&MasterKey::from_bytes([7; 32]))
    }

    fn flow(exp: i64) -> Flow {
        Flow {
            client_id: "app".into(),
            redirect_uri: "https://app.test/cb".into(),
            scope: "openid".into(),
            state: Some("s".into()),
            nonce: None,
            code_challenge: None,
            prompt_none: false,
            force_login: false,
            force_consent: false,
            max_age: None,
            login_hint: None,
            pushed: false,
            exp,
        }
    }

    #[test]
    fn a_flow_opens_until_it_expires_and_only_unaltered() {
        let keys = keys();
        let sealed = keys.seal(&flow(100));
        assert_eq!(
            keys.open(&sealed, 99).unwrap().redirect_uri,
            "https://app.test/cb"
        );
        assert!(keys.open(&sealed, 100).is_none());
        let mut altered = sealed.clone().into_bytes();
        let i = altered.len() / 2;
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        assert!(keys
            .open(std::str::from_utf8(&altered).unwrap(), 0)
            .is_none());
        let other = FlowKeys::from_master(&MasterKey::from_bytes([8; 32]));
        assert!(other.open(&sealed, 0).is_none());
    }

    #[test]
    fn a_csrf_token_matches_its_form_binding_and_flow_only() {
        let keys = keys();
        let token = keys.csrf("login", b"nonce-1", "flow-a");
        assert!(keys.csrf_matches("login", b"nonce-1", "flow-a", &token));
        assert!(!keys.csrf_matches("login", b"nonce-2", "flow-a", &token));
        assert!(!keys.csrf_matches("login", b"nonce-1", "flow-b", &token));
        assert!(!keys.csrf_matches("consent", b"nonce-1", "flow-a", &token));
        assert!(!keys.csrf_matches("login", b"nonce-1", "flow-a", "not base64 !"));
    }
}
