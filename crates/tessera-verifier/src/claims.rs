//! The claims of a verified Tessera access token (RFC 9068 §2.2 plus Tessera's own).

use serde::{Deserialize, Serialize};

use crate::VerifyError;

/// What a verified access token says. Only [`Verifier`](crate::Verifier) hands these
/// out after checking the token; the fields are public so that handler tests can build
/// their own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The issuer, equal to the configured one.
    pub iss: String,
    /// The user id, or the client id for `client_credentials` tokens.
    pub sub: String,
    /// Every audience of the token; at least one of them is one you accept.
    pub aud: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: Option<i64>,
    /// The token's unique id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes (RFC 6749 §3.3); see [`Claims::scopes`].
    pub scope: String,
    /// The session the token belongs to; only user tokens have one.
    pub sid: Option<String>,
    /// The user's roles; empty for client tokens.
    pub roles: Vec<String>,
    /// The user's username, when Tessera included it.
    pub preferred_username: Option<String>,
}

impl Claims {
    /// The granted scopes, in order.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    /// Whether `scope` was granted (exact, case-sensitive match of one scope token).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// [`Self::has_scope`] as a `Result`, for `?` in a handler. With the `actix`
    /// feature the error answers 403 with `WWW-Authenticate: Bearer
    /// error="insufficient_scope"` (RFC 6750 §3.1).
    pub fn require_scope(&self, scope: &str) -> Result<(), InsufficientScope> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(InsufficientScope {
                scope: scope.to_owned(),
            })
        }
    }

    /// Whether the user has `role`. Always `false` for client tokens.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// The user behind the token (`sub`), or `None` for a client's own token
    /// (`client_credentials`, which has no session).
    pub fn user_id(&self) -> Option<&str> {
        self.sid.as_ref().map(|_| self.sub.as_str())
    }

    /// The session the token was minted in; `None` for client tokens.
    pub fn session_id(&self) -> Option<&str> {
        self.sid.as_deref()
    }
}

/// The token is valid but lacks a scope the endpoint needs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the token lacks the `{scope}` scope")]
pub struct InsufficientScope {
    pub(crate) scope: String,
}

impl InsufficientScope {
    /// The scope that was required.
    pub fn scope(&self) -> &str {
        &self.scope
    }
}

/// The payload as it comes off the wire: everything optional, so that a missing claim
/// is reported by name instead of as a JSON error, and only after jsonwebtoken has
/// checked the signature, `exp`, `nbf`, `iss` and `aud`.
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<OneOrMany>,
    exp: Option<i64>,
    iat: Option<i64>,
    nbf: Option<i64>,
    jti: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    sid: Option<String>,
    roles: Option<Vec<String>>,
    preferred_username: Option<String>,
}

/// `aud` is one string or an array of them (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl RawClaims {
    /// Every claim RFC 9068 §2.2 requires must be there; `scope`, `nbf` and the user
    /// claims may be absent.
    pub(crate) fn into_claims(self) -> Result<Claims, VerifyError> {
        fn required<T>(value: Option<T>, name: &'static str) -> Result<T, VerifyError> {
            value.ok_or(VerifyError::MissingClaim(name))
        }
        let aud = match required(self.aud, "aud")? {
            OneOrMany::One(aud) => vec![aud],
            OneOrMany::Many(list) => list,
        };
        Ok(Claims {
            iss: required(self.iss, "iss")?,
            sub: required(self.sub, "sub")?,
            aud,
            exp: required(self.exp, "exp")?,
            iat: required(self.iat, "iat")?,
            nbf: self.nbf,
            jti: required(self.jti, "jti")?,
            client_id: required(self.client_id, "client_id")?,
            scope: self.scope.unwrap_or_default(),
            sid: self.sid,
            roles: self.roles.unwrap_or_default(),
            preferred_username: self.preferred_username,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: &str, sid: Option<&str>) -> Claims {
        Claims {
            iss: "https://auth.example.com".into(),
            sub: "0190d5a4-0000-7000-8000-000000000001".into(),
            aud: vec!["https://orders.example.com".into()],
            exp: 2,
            iat: 1,
            nbf: Some(1),
            jti: "j".into(),
            client_id: "web".into(),
            scope: scope.into(),
            sid: sid.map(Into::into),
            roles: vec!["admin".into()],
            preferred_username: None,
        }
    }

    #[test]
    fn scopes_are_whole_space_separated_tokens() {
        let c = claims("profile  orders:read", None);
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["profile", "orders:read"]);
        assert!(c.has_scope("orders:read"));
        assert!(!c.has_scope("orders"));
        assert!(!c.has_scope(""));
        assert_eq!(
            c.require_scope("orders:write").unwrap_err().scope(),
            "orders:write"
        );
    }

    #[test]
    fn user_id_is_only_given_for_user_tokens() {
        assert_eq!(
            claims("", Some("s")).user_id(),
            Some("0190d5a4-0000-7000-8000-000000000001")
        );
        assert_eq!(claims("", None).user_id(), None);
    }

    #[test]
    fn missing_client_id_is_named() {
        let raw: RawClaims = serde_json::from_value(serde_json::json!({
            "iss": "i", "sub": "s", "aud": ["a", "b"], "exp": 2, "iat": 1, "jti": "j"
        }))
        .unwrap();
        assert!(matches!(
            raw.into_claims(),
            Err(VerifyError::MissingClaim("client_id"))
        ));
    }
}
