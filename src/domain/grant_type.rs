use std::str::FromStr;

use super::vocabulary::{string_enum_schema, vocabulary};

vocabulary! {
    /// The grants of the token endpoint.
    pub enum GrantType {
        /// RFC 6749 §4.1: a code from Tessera's login page, with PKCE (RFC 7636).
        AuthorizationCode = "authorization_code",
        /// RFC 6749 §4.3: a user's name and password, for first-party clients.
        Password = "password",
        /// RFC 6749 §6: a rotating refresh token.
        RefreshToken = "refresh_token",
        /// RFC 6749 §4.4: a confidential client for itself.
        ClientCredentials = "client_credentials",
    }
}

string_enum_schema!(GrantType, "The grants of the token endpoint.");

impl GrantType {
    /// Only a client that can keep a secret may have this grant: it authenticates with
    /// nothing but that secret.
    pub(crate) fn needs_confidential_client(self) -> bool {
        matches!(self, GrantType::ClientCredentials)
    }
}

/// The name is not one of [`GrantType::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown grant type")]
pub struct UnknownGrantType;

impl FromStr for GrantType {
    type Err = UnknownGrantType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(UnknownGrantType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for grant in GrantType::ALL {
            assert_eq!(grant.as_str().parse(), Ok(grant));
            assert_eq!(
                serde_json::to_value(grant).unwrap(),
                serde_json::json!(grant.as_str())
            );
        }
        for name in [
            "",
            "implicit",
            "authorization-code",
            "Password",
            "password ",
        ] {
            assert_eq!(name.parse::<GrantType>(), Err(UnknownGrantType), "{name}");
        }
        assert_eq!(
            GrantType::names(", ", " or "),
            "authorization_code, password, refresh_token or client_credentials"
        );
    }
}
