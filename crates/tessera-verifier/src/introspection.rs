//! RFC 7662 token introspection: asking Tessera whether a token is still active.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{StatusCode, Url};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::config::IntrospectionConfig;
use crate::error::describe;
use crate::IntrospectionError;

/// An RFC 7662 answer is a small JSON object; refuse to buffer anything much larger.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

pub(crate) struct Introspector {
    url: Url,
    client: reqwest::Client,
    timeout: Duration,
    /// `Basic ...`, marked sensitive so it is never printed or logged.
    authorization: HeaderValue,
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
}

impl Introspector {
    pub(crate) fn new(
        url: Url,
        settings: &IntrospectionConfig,
        client: reqwest::Client,
        timeout: Duration,
    ) -> Result<Self, crate::ConfigError> {
        // RFC 6749 §2.3.1: client_secret_basic form-encodes id and secret before
        // base64, and Tessera decodes them that way.
        let credentials = format!(
            "{}:{}",
            form_encode(&settings.client_id),
            form_encode(settings.client_secret.expose_secret())
        );
        let mut authorization =
            HeaderValue::try_from(format!("Basic {}", STANDARD.encode(credentials)))
                .map_err(|e| crate::ConfigError::HttpClient(e.to_string()))?;
        authorization.set_sensitive(true);
        Ok(Self {
            url,
            client,
            timeout,
            authorization,
        })
    }

    /// Whether Tessera says the token is active. The token travels only in the form
    /// body, never in the URL (which may be logged).
    pub(crate) async fn is_active(&self, token: &str) -> Result<bool, IntrospectionError> {
        tokio::time::timeout(self.timeout, self.ask(token))
            .await
            .unwrap_or_else(|_| {
                Err(IntrospectionError::Request {
                    url: self.url.to_string(),
                    reason: format!("no answer within {:?}", self.timeout),
                })
            })
    }

    async fn ask(&self, token: &str) -> Result<bool, IntrospectionError> {
        let url = || self.url.to_string();
        let request_failed = |e: reqwest::Error| IntrospectionError::Request {
            url: url(),
            reason: describe(&e),
        };
        let mut response = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(request_failed)?;
        let status = response.status();
        if status != StatusCode::OK {
            return Err(IntrospectionError::Status {
                url: url(),
                status: status.as_u16(),
            });
        }
        let invalid = |reason: String| IntrospectionError::Invalid { url: url(), reason };
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_failed)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(invalid("response too large".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| invalid(format!("{e}")))?;
        Ok(answer.active)
    }
}

/// `application/x-www-form-urlencoded` for one value: everything but the unreserved
/// characters is percent-encoded (encoding more than strictly needed is always safe).
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_separators() {
        assert_eq!(form_encode("svc-orders"), "svc-orders");
        assert_eq!(form_encode("a:b c+é"), "a%3Ab%20c%2B%C3%A9");
    }
}
