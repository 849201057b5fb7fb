//! Key material: generating a key pair (its public half as an RFC 7517 JWK, named by
//! its RFC 7638 thumbprint), and opening a stored private half for signing.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::EncodingKey;
use zeroize::Zeroizing;

use super::KeyError;
use crate::auth::master_key::MasterKey;
use crate::domain::SigningAlgorithm;
use crate::store::signing_keys::SigningKeyRow;

/// A freshly generated key pair, before it is sealed and stored.
pub(super) struct GeneratedKey {
    pub(super) kid: String,
    pub(super) public_jwk: serde_json::Value,
    pub(super) pkcs8: Zeroizing<Vec<u8>>,
}

pub(super) fn generate(algorithm: SigningAlgorithm) -> Result<GeneratedKey, KeyError> {
    let fail = |what: &str| KeyError::Generation(format!("{algorithm}: {what}"));
    let pkcs8: Zeroizing<Vec<u8>> = Zeroizing::new(match algorithm {
        SigningAlgorithm::Es256 => {
            let rng = aws_lc_rs::rand::SystemRandom::new();
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| fail("P-256 generation"))?
                .as_ref()
                .to_vec()
        }
        SigningAlgorithm::EdDsa => {
            let pair = Ed25519KeyPair::generate().map_err(|_| fail("Ed25519 generation"))?;
            AsDer::<Pkcs8V1Der>::as_der(&pair)
                .map_err(|_| fail("Ed25519 encoding"))?
                .as_ref()
                .to_vec()
        }
        SigningAlgorithm::Rs256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| fail("RSA-2048 generation"))?;
            AsDer::<Pkcs8V1Der>::as_der(&pair)
                .map_err(|_| fail("RSA encoding"))?
                .as_ref()
                .to_vec()
        }
    });
    let encoding = encoding_key(algorithm, &pkcs8).map_err(|e| fail(&e))?;
    let mut jwk = Jwk::from_encoding_key(&encoding, algorithm.jwt_algorithm())
        .map_err(|e| fail(&e.to_string()))?;
    // RFC 7638 thumbprint: a kid that names the key itself.
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| fail(&e.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let public_jwk = serde_json::to_value(&jwk).map_err(|e| fail(&e.to_string()))?;
    Ok(GeneratedKey {
        kid,
        public_jwk,
        pkcs8,
    })
}

/// jsonwebtoken wants PKCS#8 DER for EC and Ed25519 but PKCS#1 for RSA; its PEM reader
/// unwraps PKCS#8 for us, so RSA keys go through PEM.
pub(super) fn encoding_key(
    algorithm: SigningAlgorithm,
    pkcs8: &[u8],
) -> Result<EncodingKey, String> {
    match algorithm {
        SigningAlgorithm::Es256 => Ok(EncodingKey::from_ec_der(pkcs8)),
        SigningAlgorithm::EdDsa => Ok(EncodingKey::from_ed_der(pkcs8)),
        SigningAlgorithm::Rs256 => {
            let b64 = Zeroizing::new(STANDARD.encode(pkcs8));
            let mut pem = Zeroizing::new(String::from("-----BEGIN PRIVATE KEY-----\n"));
            for line in b64.as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
                pem.push('\n');
            }
            pem.push_str("-----END PRIVATE KEY-----\n");
            EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())
        }
    }
}

pub(super) fn open_private_key(
    row: &SigningKeyRow,
    master: &MasterKey,
) -> Result<secrecy::SecretSlice<u8>, KeyError> {
    master
        .open(&row.private_key_sealed, row.kid.as_bytes())
        .map_err(|_| KeyError::WrongMasterKey {
            kid: row.kid.clone(),
        })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::DecodingKey;

    use super::*;

    #[test]
    fn every_algorithm_generates_a_usable_key() {
        for algorithm in SigningAlgorithm::ALL {
            let key = generate(algorithm).unwrap();
            let enc = encoding_key(algorithm, &key.pkcs8).unwrap();
            let mut header = jsonwebtoken::Header::new(algorithm.jwt_algorithm());
            header.kid = Some(key.kid.clone());
            let token = jsonwebtoken::encode(
                &header,
                &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
                &enc,
            )
            .unwrap();
            let jwk: Jwk = serde_json::from_value(key.public_jwk.clone()).unwrap();
            let dec = DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(algorithm.jwt_algorithm());
            validation.validate_aud = false;
            jsonwebtoken::decode::<serde_json::Value>(&token, &dec, &validation).unwrap();
            assert_eq!(key.public_jwk["use"], "sig");
            assert_eq!(key.public_jwk["alg"], algorithm.as_str());
            assert_eq!(key.public_jwk["kid"], key.kid.as_str());
        }
    }
}
