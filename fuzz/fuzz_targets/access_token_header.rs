//! A bearer token as any route receives it: random text, or a token whose header is
//! the fuzzer's bytes in front of a well-formed payload and signature. Verification
//! answers claims or a reason, never a panic, and never accepts a header Tessera did
//! not sign.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tessera_fuzz::verify_access_token(data);
});
