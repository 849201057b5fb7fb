use super::vocabulary::vocabulary;
use super::RefreshToken;

vocabulary! {
    /// The two kinds of token Tessera issues, by their `token_type_hint` names
    /// (RFC 7009 §2.1, also used by RFC 7662).
    pub enum TokenType {
        /// A JWT access token.
        AccessToken = "access_token",
        /// An opaque, rotating refresh token.
        RefreshToken = "refresh_token",
    }
}

impl std::str::FromStr for TokenType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s).ok_or_else(|| format!("must be one of: {}", Self::names(", ", ", ")))
    }
}

impl TokenType {
    /// The kinds to look a presented token up as, in order. The hint only decides which
    /// comes first (RFC 7009 §2.1: a server that does not find the token under the hint
    /// extends its search); without one, the token's shape does.
    pub(crate) fn lookup_order(hint: Option<TokenType>, token: &str) -> [TokenType; 2] {
        let refresh_first = match hint {
            Some(hint) => hint == TokenType::RefreshToken,
            None => RefreshToken::looks_like(token),
        };
        if refresh_first {
            [TokenType::RefreshToken, TokenType::AccessToken]
        } else {
            [TokenType::AccessToken, TokenType::RefreshToken]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_decides_the_order_else_the_shape() {
        use TokenType::{AccessToken, RefreshToken};
        let refresh_shaped = "rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert_eq!(
            TokenType::lookup_order(None, refresh_shaped),
            [RefreshToken, AccessToken]
        );
        assert_eq!(
            TokenType::lookup_order(None, "eyJ..."),
            [AccessToken, RefreshToken]
        );
        assert_eq!(
            TokenType::lookup_order(Some(AccessToken), refresh_shaped),
            [AccessToken, RefreshToken]
        );
        assert_eq!(
            TokenType::lookup_order(Some(RefreshToken), "eyJ..."),
            [RefreshToken, AccessToken]
        );
        assert_eq!(TokenType::parse("refresh_token"), Some(RefreshToken));
        assert_eq!(TokenType::parse("id_token"), None);
    }
}
