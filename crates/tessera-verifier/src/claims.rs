//! The claims of a verified access token are `tessera_token`'s, shared with the server;
//! what is added here is the answer for a missing scope.

use tessera_token::MissingScope;

/// The token is valid but lacks a scope the endpoint needs. [`Claims::require_scope`]
/// gives a [`MissingScope`], which `?` turns into this. With the `actix` feature it
/// answers 403 with `WWW-Authenticate: Bearer error="insufficient_scope"` (RFC 6750
/// §3.1).
///
/// [`Claims::require_scope`]: crate::Claims::require_scope
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct InsufficientScope(MissingScope);

impl InsufficientScope {
    /// The scope that was required.
    pub fn scope(&self) -> &str {
        self.0.scope()
    }
}

impl From<MissingScope> for InsufficientScope {
    fn from(missing: MissingScope) -> Self {
        Self(missing)
    }
}

#[cfg(test)]
mod tests {
    use tessera_token::{AccessClaims, Audience};

    use super::*;

    #[test]
    fn a_missing_scope_becomes_insufficient_scope_with_its_name() {
        let claims = AccessClaims {
            iss: "https://auth.example.com".into(),
            sub: "svc".into(),
            aud: Audience::One("https://orders.example.com".into()),
            exp: 2,
            iat: 1,
            nbf: Some(1),
            jti: "j".into(),
            client_id: "svc".into(),
            scope: "orders:read".into(),
            sid: None,
            roles: None,
            preferred_username: None,
        };
        let refusal = || -> Result<(), InsufficientScope> {
            claims.require_scope("orders:write")?;
            Ok(())
        };
        let error = refusal().unwrap_err();
        assert_eq!(error.scope(), "orders:write");
        assert_eq!(
            error.to_string(),
            "the token lacks the `orders:write` scope"
        );
    }
}
