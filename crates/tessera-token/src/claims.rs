//! The claims of a Tessera access token (RFC 9068 §2.2 plus Tessera's own).

use serde::{Deserialize, Serialize};

use crate::VerifyError;

/// What an access token says. Verification hands these out only after checking the
/// token; the fields are public so that the server can mint them and handler tests can
/// build their own.
///
/// Serialised, this is the token's payload exactly as Tessera signs it: the members in
/// this order, `aud` as a string when there is one audience, and `nbf`, `sid`, `roles`
/// and `preferred_username` left out when absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessClaims {
    /// The issuer.
    pub iss: String,
    /// The user id, or the client id for `client_credentials` tokens.
    pub sub: String,
    /// Who the token is for.
    pub aud: Audience,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Not before, seconds since the Unix epoch. Tessera always sets it; RFC 9068 does
    /// not require it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The token's unique id.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated scopes (RFC 6749 §3.3); see [`AccessClaims::scopes`].
    pub scope: String,
    /// The session (refresh-token chain) the token was minted in; only user tokens
    /// have one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's roles; absent from client tokens, see [`AccessClaims::roles`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// The user's username, when Tessera included it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

impl AccessClaims {
    /// The granted scopes, in order.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    /// Whether `scope` was granted (exact, case-sensitive match of one scope token).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// [`Self::has_scope`] as a `Result`, for `?`.
    pub fn require_scope(&self, scope: &str) -> Result<(), MissingScope> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(MissingScope {
                scope: scope.to_owned(),
            })
        }
    }

    /// The user's roles; empty for client tokens.
    pub fn roles(&self) -> &[String] {
        self.roles.as_deref().unwrap_or_default()
    }

    /// Whether the user has `role`. Always `false` for client tokens.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles().iter().any(|r| r == role)
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

/// `aud`: one string, or several (RFC 7519 §4.1.3). Kept as it came, so that what is
/// read back out (introspection) is what was signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// A string for one audience, an array for any other number.
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 {
            Audience::One(list.remove(0))
        } else {
            Audience::Many(list)
        }
    }

    /// Every audience, in order.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Audience::One(aud) => std::slice::from_ref(aud),
            Audience::Many(list) => list,
        }
    }

    pub fn contains(&self, aud: &str) -> bool {
        self.as_slice().iter().any(|a| a == aud)
    }

    /// Whether this names `aud` and nothing else (a string, or an array of just it).
    pub fn is_exactly(&self, aud: &str) -> bool {
        matches!(self.as_slice(), [a] if a == aud)
    }
}

/// The token is valid but lacks a scope the caller needs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the token lacks the `{scope}` scope")]
pub struct MissingScope {
    scope: String,
}

impl MissingScope {
    /// The scope that was required.
    pub fn scope(&self) -> &str {
        &self.scope
    }
}

/// The payload as it comes off the wire: everything optional, so that a missing claim
/// is reported by name instead of as a JSON error.
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
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

impl RawClaims {
    /// Every claim RFC 9068 §2.2 requires must be there; `scope`, `nbf` and the user
    /// claims may be absent.
    pub(crate) fn into_claims(self) -> Result<AccessClaims, VerifyError> {
        fn required<T>(value: Option<T>, name: &'static str) -> Result<T, VerifyError> {
            value.ok_or(VerifyError::MissingClaim(name))
        }
        Ok(AccessClaims {
            iss: required(self.iss, "iss")?,
            sub: required(self.sub, "sub")?,
            aud: required(self.aud, "aud")?,
            exp: required(self.exp, "exp")?,
            iat: required(self.iat, "iat")?,
            nbf: self.nbf,
            jti: required(self.jti, "jti")?,
            client_id: required(self.client_id, "client_id")?,
            scope: self.scope.unwrap_or_default(),
            sid: self.sid,
            roles: self.roles,
            preferred_username: self.preferred_username,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// A user's token as Tessera mints it.
    pub(crate) fn user_claims() -> Value {
        json!({
            "iss": "https://auth.example.com",
            "sub": "0190d5a4-0000-7000-8000-000000000001",
            "aud": "https://orders.example.com",
            "exp": 2_000_000_300i64,
            "iat": 2_000_000_000i64,
            "nbf": 2_000_000_000i64,
            "jti": "0190d5a4-0000-7000-8000-000000000002",
            "client_id": "web",
            "scope": "profile  orders:read",
            "sid": "0190d5a4-0000-7000-8000-000000000003",
            "roles": ["admin"],
            "preferred_username": "alice",
        })
    }

    fn parse(value: Value) -> Result<AccessClaims, VerifyError> {
        serde_json::from_value::<RawClaims>(value)
            .unwrap()
            .into_claims()
    }

    #[test]
    fn the_wire_format_is_what_tessera_signs() {
        let claims = parse(user_claims()).unwrap();
        assert_eq!(
            serde_json::to_string(&claims).unwrap(),
            concat!(
                r#"{"iss":"https://auth.example.com","sub":"0190d5a4-0000-7000-8000-000000000001","#,
                r#""aud":"https://orders.example.com","exp":2000000300,"iat":2000000000,"#,
                r#""nbf":2000000000,"jti":"0190d5a4-0000-7000-8000-000000000002","#,
                r#""client_id":"web","scope":"profile  orders:read","#,
                r#""sid":"0190d5a4-0000-7000-8000-000000000003","roles":["admin"],"#,
                r#""preferred_username":"alice"}"#
            )
        );
        let client = AccessClaims {
            aud: Audience::from_list(vec!["a".into(), "b".into()]),
            sid: None,
            roles: None,
            preferred_username: None,
            ..claims
        };
        let text = serde_json::to_string(&client).unwrap();
        assert!(text.contains(r#""aud":["a","b"]"#), "{text}");
        for absent in ["sid", "roles", "preferred_username"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }

    #[test]
    fn each_required_claim_is_named_when_missing() {
        for name in ["iss", "sub", "aud", "exp", "iat", "jti", "client_id"] {
            let mut c = user_claims();
            c.as_object_mut().unwrap().remove(name);
            assert_eq!(parse(c), Err(VerifyError::MissingClaim(name)), "{name}");
        }
    }

    #[test]
    fn nbf_scope_and_the_user_claims_may_be_absent() {
        let mut c = user_claims();
        for name in ["nbf", "scope", "sid", "roles", "preferred_username"] {
            c.as_object_mut().unwrap().remove(name);
        }
        let claims = parse(c).unwrap();
        assert_eq!(claims.nbf, None);
        assert_eq!(claims.scope, "");
        assert!(claims.roles().is_empty());
    }

    #[test]
    fn an_audience_array_is_kept_as_an_array() {
        let mut c = user_claims();
        c["aud"] = json!(["https://orders.example.com"]);
        let claims = parse(c).unwrap();
        assert_eq!(
            claims.aud,
            Audience::Many(vec!["https://orders.example.com".into()])
        );
        assert!(claims.aud.is_exactly("https://orders.example.com"));
        assert_eq!(
            serde_json::to_value(&claims).unwrap()["aud"],
            json!(["https://orders.example.com"])
        );
    }

    #[test]
    fn audience_membership_and_exactness() {
        let many = Audience::from_list(vec!["a".into(), "b".into()]);
        assert!(many.contains("b"));
        assert!(!many.contains("c"));
        assert!(!many.is_exactly("a"));
        let one = Audience::from_list(vec!["a".into()]);
        assert_eq!(one, Audience::One("a".into()));
        assert!(one.is_exactly("a"));
        assert_eq!(one.as_slice(), ["a"]);
        assert!(!Audience::from_list(Vec::new()).contains(""));
    }

    #[test]
    fn scopes_are_whole_space_separated_tokens() {
        let c = parse(user_claims()).unwrap();
        assert_eq!(c.scopes().collect::<Vec<_>>(), ["profile", "orders:read"]);
        assert!(c.has_scope("orders:read"));
        assert!(!c.has_scope("orders"));
        assert!(!c.has_scope(""));
        assert_eq!(
            c.require_scope("orders:write").unwrap_err().scope(),
            "orders:write"
        );
        assert!(c.require_scope("profile").is_ok());
    }

    #[test]
    fn user_and_session_are_only_given_for_user_tokens() {
        let user = parse(user_claims()).unwrap();
        assert_eq!(user.user_id(), Some("0190d5a4-0000-7000-8000-000000000001"));
        assert_eq!(
            user.session_id(),
            Some("0190d5a4-0000-7000-8000-000000000003")
        );
        assert!(user.has_role("admin"));
        let client = AccessClaims {
            sid: None,
            roles: None,
            ..user
        };
        assert_eq!(client.user_id(), None);
        assert_eq!(client.session_id(), None);
        assert!(!client.has_role("admin"));
    }

    #[test]
    fn a_claim_of_the_wrong_type_does_not_decode() {
        let mut c = user_claims();
        c["iss"] = json!(["https://auth.example.com", "https://evil.test"]);
        assert!(serde_json::from_value::<RawClaims>(c).is_err());
    }
}
