use std::str::FromStr;

use super::vocabulary::vocabulary;

vocabulary! {
    /// Where a signing key is in its life cycle: `next -> current -> retired`.
    pub enum KeyState {
        /// Published in the JWKS, not yet signing.
        Next = "next",
        /// Signing; at most one key at a time.
        Current = "current",
        /// No longer signing; published until every token it signed has expired.
        Retired = "retired",
    }
}

impl FromStr for KeyState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
            .ok_or_else(|| format!("`{s}` is not a key state ({})", Self::names(", ", ", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_nothing_else_parses() {
        for state in KeyState::ALL {
            assert_eq!(state.as_str().parse(), Ok(state));
        }
        assert!("Current".parse::<KeyState>().is_err());
        assert!("".parse::<KeyState>().is_err());
    }
}
