//! Black-box tests of tessera-verifier against a fake Tessera served over real HTTP on
//! 127.0.0.1. One test binary (so it links once), one module per concern.

mod claims;
#[cfg(feature = "actix")]
mod extractor;
mod header;
mod helpers;
mod introspection;
mod jwks_cache;
mod signatures;
