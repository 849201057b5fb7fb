//! Signing with key pairs parsed once.
//!
//! jsonwebtoken's aws-lc provider builds the key pair from the key's bytes for every
//! signature: `EcdsaKeyPair::from_pkcs8` recomputes and checks the public point (as much
//! work again as the ES256 signature itself), `RsaKeyPair::from_der` re-validates the
//! whole RSA key. Tessera installs its own provider through jsonwebtoken's extension
//! point ([`CryptoProvider`]): the same aws-lc signatures, from key pairs parsed on first
//! use and kept, found by the SHA-256 of the algorithm and key bytes, until the key set
//! changes. Verification and the JWK helpers are aws-lc's own.

use std::sync::{Arc, LazyLock};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use jsonwebtoken::crypto::{aws_lc, CryptoProvider, JwtSigner};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::signature::{Error as SignatureError, Signer};
use jsonwebtoken::{Algorithm, EncodingKey};

/// More than a process ever signs with (the current key, the next, a few rotations).
const PARSED_KEYS: u64 = 16;

static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: signer,
    verifier_factory: aws_lc::DEFAULT_PROVIDER.verifier_factory,
    key_utils: aws_lc::DEFAULT_PROVIDER.key_utils.clone(),
});

/// Parsed key pairs are private keys in memory: each is dropped once unused for this
/// long, and all of them whenever the key set changes ([`forget`]), so a retired or
/// dropped key does not outlive the set it was in.
const IDLE: std::time::Duration = std::time::Duration::from_secs(600);

static PARSED: LazyLock<moka::sync::Cache<[u8; 32], Arc<KeyPair>>> = LazyLock::new(|| {
    moka::sync::Cache::builder()
        .max_capacity(PARSED_KEYS)
        .time_to_idle(IDLE)
        .build()
});

/// Makes this the process's provider. It must run before jsonwebtoken is first used
/// (which otherwise settles on its own); later calls change nothing.
pub fn install() {
    let _ = PROVIDER.install_default();
}

/// Drops every parsed key pair (the key set changed); the keys in use are parsed again
/// on their next signature.
pub(crate) fn forget() {
    PARSED.invalidate_all();
}

enum KeyPair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rs256(RsaKeyPair),
}

struct CachedSigner {
    algorithm: Algorithm,
    key: Arc<KeyPair>,
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>, Error> {
    if !matches!(
        algorithm,
        Algorithm::ES256 | Algorithm::EdDSA | Algorithm::RS256
    ) {
        // Nothing Tessera signs with: aws-lc's own signer.
        return (aws_lc::DEFAULT_PROVIDER.signer_factory)(algorithm, key);
    }
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(format!("{algorithm:?}").as_bytes());
    ctx.update(b"\0");
    ctx.update(key.as_bytes());
    let mut id = [0u8; 32];
    id.copy_from_slice(ctx.finish().as_ref());
    let parsed = PARSED.try_get_with(id, || parse(*algorithm, key).map(Arc::new));
    let key = parsed.map_err(|e| Error::from((*e).clone()))?;
    Ok(Box::new(CachedSigner {
        algorithm: *algorithm,
        key,
    }))
}

fn parse(algorithm: Algorithm, key: &EncodingKey) -> Result<KeyPair, ErrorKind> {
    let bytes = key.as_bytes();
    match algorithm {
        Algorithm::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, bytes)
            .map(KeyPair::Es256)
            .map_err(|_| ErrorKind::InvalidEcdsaKey),
        Algorithm::EdDSA => Ed25519KeyPair::from_pkcs8(bytes)
            .map(KeyPair::EdDsa)
            .map_err(|_| ErrorKind::InvalidEddsaKey),
        Algorithm::RS256 => RsaKeyPair::from_der(bytes)
            .map(KeyPair::Rs256)
            .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string())),
        _ => Err(ErrorKind::InvalidAlgorithm),
    }
}

impl Signer<Vec<u8>> for CachedSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        match &*self.key {
            KeyPair::Es256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(SignatureError::from_source),
            KeyPair::EdDsa(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            KeyPair::Rs256(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(SignatureError::from_source)?;
                Ok(signature)
            }
        }
    }
}

impl JwtSigner for CachedSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}
