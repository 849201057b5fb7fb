//! The signature algorithms an access token may be verified with.

use std::fmt;
use std::str::FromStr;

/// A signature algorithm Tessera signs access tokens with.
///
/// Only asymmetric algorithms exist here on purpose: `none` and the `HS*` family cannot
/// be expressed, so no configuration can ever accept them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256 (Tessera's default).
    Es256,
    /// Ed25519.
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of at least 2048 bits.
    Rs256,
}

impl Algorithm {
    /// Every algorithm Tessera can sign with, which is also the default allow-list.
    pub const ALL: [Algorithm; 3] = [Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256];

    /// The JOSE name (`"ES256"`, `"EdDSA"`, `"RS256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
            Algorithm::Rs256 => "RS256",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Exact, case-sensitive JOSE names (RFC 7518 §3.1): `"es256"` is not `ES256`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or(UnknownAlgorithm)
    }
}

/// The name is not one of `ES256`, `EdDSA`, `RS256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported algorithm (expected ES256, EdDSA or RS256)")]
pub struct UnknownAlgorithm;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_jose_names_parse() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
        }
        for name in ["none", "HS256", "es256", "ES384", "PS256", ""] {
            assert!(name.parse::<Algorithm>().is_err(), "{name}");
        }
    }
}
