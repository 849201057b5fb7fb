//! Authenticated encryption (AES-256-GCM, random 96-bit nonces) for what Tessera must
//! store but not expose: private signing keys, under the master key.
//!
//! Sealed layout: `version (1) || nonce (12) || ciphertext || tag (16)`.

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use secrecy::SecretSlice;
use zeroize::Zeroizing;

const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
#[error("sealed data could not be opened: wrong key, or the data was altered")]
pub struct OpenError;

pub struct SealingKey(RandomizedNonceKey);

impl SealingKey {
    pub(crate) fn from_bytes(key: &[u8; 32]) -> Self {
        Self(RandomizedNonceKey::new(&AES_256_GCM, key).expect("a 32-byte key fits AES-256-GCM"))
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        // A copy of the plaintext until sealed in place, wiped on every way out; room for
        // the tag up front, so appending it never moves the plaintext to a new buffer.
        let mut in_out =
            Zeroizing::new(Vec::with_capacity(plaintext.len() + AES_256_GCM.tag_len()));
        in_out.extend_from_slice(plaintext);
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(aad), &mut *in_out)
            .expect("AES-GCM sealing does not fail for in-memory data");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        sealed
    }

    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<SecretSlice<u8>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + AES_256_GCM.tag_len() || sealed[0] != VERSION {
            return Err(OpenError);
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| OpenError)?;
        let mut in_out = sealed[1 + NONCE_LEN..].to_vec();
        let len = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut in_out)
            .map_err(|_| OpenError)?
            .len();
        in_out.truncate(len);
        Ok(SecretSlice::from(in_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn round_trip_and_tamper_detection() {
        let key = SealingKey::from_bytes(&[7u8; 32]);
        let sealed = key.seal(b"secret", b"kid-1");
        assert_eq!(
            key.open(&sealed, b"kid-1").unwrap().expose_secret(),
            b"secret"
        );
        assert!(key.open(&sealed, b"kid-2").is_err(), "AAD is bound");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open(&altered, b"kid-1").is_err());
        let other = SealingKey::from_bytes(&[8u8; 32]);
        assert!(other.open(&sealed, b"kid-1").is_err());
    }
}
