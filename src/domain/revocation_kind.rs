use std::str::FromStr;

use super::vocabulary::{string_enum_schema, vocabulary};

vocabulary! {
    /// What a revocation denies: one access token, a session, a user's tokens, a client's.
    pub enum RevocationKind {
        /// One access token, by `jti`.
        Token = "jti",
        /// Every access token of a session, by `sid`.
        Session = "sid",
        /// Every access token of a user issued before a time.
        User = "user",
        /// Every access token minted through a client before a time.
        Client = "client",
    }
}

string_enum_schema!(
    RevocationKind,
    "What a revocation denies: one access token, a session, a user's tokens, a client's."
);

/// The name is not one of [`RevocationKind::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("must be one of: {}", RevocationKind::names(", ", ", "))]
pub struct UnknownRevocationKind;

impl FromStr for RevocationKind {
    type Err = UnknownRevocationKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(UnknownRevocationKind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for kind in RevocationKind::ALL {
            assert_eq!(kind.as_str().parse(), Ok(kind));
        }
        assert_eq!("JTI".parse::<RevocationKind>(), Err(UnknownRevocationKind));
        assert_eq!(
            UnknownRevocationKind.to_string(),
            "must be one of: jti, sid, user, client"
        );
    }
}
