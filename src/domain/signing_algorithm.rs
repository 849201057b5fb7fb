use std::str::FromStr;

use jsonwebtoken::Algorithm;

use super::vocabulary::vocabulary;

vocabulary! {
    /// The algorithm access tokens are signed with (`TESSERA_SIGNING_ALG`), by its JOSE
    /// name (RFC 7518 §3.1), as the JWKS and `signing_keys.algorithm` carry it.
    pub enum SigningAlgorithm {
        /// ECDSA on P-256 with SHA-256, the default.
        Es256 = "ES256",
        /// Ed25519.
        EdDsa = "EdDSA",
        /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
        Rs256 = "RS256",
    }
}

impl SigningAlgorithm {
    pub fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Rs256 => Algorithm::RS256,
        }
    }
}

impl FromStr for SigningAlgorithm {
    type Err = String;

    /// Any letter case, and the curve's name for EdDSA: what an operator may write.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .or_else(|| s.eq_ignore_ascii_case("ed25519").then_some(Self::EdDsa))
            .ok_or_else(|| format!("`{s}` is not one of: {}", Self::names(", ", ", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_parse() {
        assert_eq!("es256".parse(), Ok(SigningAlgorithm::Es256));
        assert_eq!("EdDSA".parse(), Ok(SigningAlgorithm::EdDsa));
        assert_eq!("ed25519".parse(), Ok(SigningAlgorithm::EdDsa));
        assert_eq!("RS256".parse(), Ok(SigningAlgorithm::Rs256));
        assert!("HS256".parse::<SigningAlgorithm>().is_err());
        assert!("none".parse::<SigningAlgorithm>().is_err());
        assert_eq!(
            "HS256".parse::<SigningAlgorithm>(),
            Err("`HS256` is not one of: ES256, EdDSA, RS256".to_owned())
        );
    }
}
