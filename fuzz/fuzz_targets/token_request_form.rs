//! `POST /oauth/token` with a form body: whatever the bytes, the parser answers a
//! token request or an OAuth error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    tessera_fuzz::parse_token_request("application/x-www-form-urlencoded", body);
});
