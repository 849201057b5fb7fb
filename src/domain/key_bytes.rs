//! Key material written as text (an environment variable, a key file).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

/// The 32 key bytes of a base64 or hex text, if it is one.
pub(crate) fn decode_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let mut key = [0u8; 32];
    if hex::decode_to_slice(text, &mut key).is_ok() {
        return Some(key);
    }
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .ok()?;
    bytes.try_into().ok()
}
