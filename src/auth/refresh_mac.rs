//! The key that makes refresh tokens unforgeable.
//!
//! A refresh token names its session and generation and carries HMAC-SHA256 over them
//! (`domain::RefreshToken`). The MAC key is derived from the master key with HKDF
//! (purpose `refresh-token-mac/v1`), so it exists only where the master key does: a
//! dump of the database, which holds no token and no key, lets no one mint a token,
//! and a token seen in a log names one link of one chain, nothing more. Checking a tag
//! takes constant time and no I/O, so a forged token is refused before the database
//! hears of it.

use aws_lc_rs::hmac;

use super::master_key::MasterKey;
use crate::domain::{Chain, RefreshToken};

/// HKDF purpose of the refresh-token MAC key; a new version makes every token invalid.
pub(crate) const PURPOSE: &[u8] = b"refresh-token-mac/v1";

#[derive(Clone)]
pub struct RefreshMac(hmac::Key);

impl RefreshMac {
    pub fn from_master(master: &MasterKey) -> Self {
        Self(master.derive_hmac_key(PURPOSE))
    }

    /// The token of `chain`.
    pub fn issue(&self, chain: Chain) -> RefreshToken {
        let tag = hmac::sign(&self.0, &RefreshToken::signed_bytes(chain));
        let mut bytes = [0u8; RefreshToken::TAG_LEN];
        bytes.copy_from_slice(tag.as_ref());
        RefreshToken::assemble(chain, &bytes)
    }

    /// The chain link a genuine token names; `None` for a forged, altered or retired one.
    pub fn verify(&self, token: &RefreshToken) -> Option<Chain> {
        let (signed, tag) = token.split()?;
        hmac::verify(&self.0, &signed, &tag).ok()?;
        Some(RefreshToken::chain_of(&signed))
    }
}

impl std::fmt::Debug for RefreshMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshMac([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn mac(byte: u8) -> RefreshMac {
        RefreshMac::from_master(&MasterKey::from_bytes([byte; 32]))
    }

    fn chain(generation: u64) -> Chain {
        Chain {
            session_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            generation,
        }
    }

    #[test]
    fn a_token_verifies_under_its_own_key_only() {
        let token = mac(1).issue(chain(3));
        assert_eq!(mac(1).verify(&token), Some(chain(3)));
        assert_eq!(mac(2).verify(&token), None);
    }

    #[test]
    fn issuing_is_deterministic_so_a_successor_can_be_recomputed() {
        assert_eq!(
            mac(1).issue(chain(4)).expose(),
            mac(1).issue(chain(4)).expose()
        );
        assert_ne!(
            mac(1).issue(chain(4)).expose(),
            mac(1).issue(chain(5)).expose()
        );
    }

    #[test]
    fn any_changed_character_is_refused() {
        let token = mac(1).issue(chain(9));
        let text = token.expose();
        for index in 3..text.len() {
            let mut altered = text.to_owned();
            let replacement = if &text[index..=index] == "A" {
                "B"
            } else {
                "A"
            };
            altered.replace_range(index..=index, replacement);
            if let Ok(altered) = RefreshToken::parse(&altered) {
                assert_eq!(mac(1).verify(&altered), None, "altered at {index}");
            }
        }
    }
}
