//! OpenID Connect ID tokens (Core §2): who signed in, when and how, for one client;
//! signed with the current signing key like access tokens, but typed `JWT`, so an ID
//! token is never accepted where an access token is expected (those must be `at+jwt`).

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};
use tessera_token::VerificationKeys;
use uuid::Uuid;

use super::keys::{KeyError, KeySet};
use crate::domain::SigningAlgorithm;

pub(crate) const ID_TOKEN_TYP: &str = "JWT";

/// The claims of an ID token.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    /// The client it was issued to (Core §2), the same as `aud`.
    pub azp: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The browser session the person signed in with (what `/oauth/logout` ends).
    pub sid: String,
    /// Core §3.1.3.6: the left half of the hash of the access token issued with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// How the person authenticated (RFC 8176): a password.
    #[serde(default)]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// With the `profile` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

/// What an ID token says about one sign-in, before signing.
pub(crate) struct IdTokenRequest<'a> {
    pub issuer: &'a str,
    pub user_id: Uuid,
    pub client_id: &'a str,
    pub browser_session_id: Uuid,
    pub auth_time: i64,
    pub issued_at: i64,
    pub ttl: std::time::Duration,
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
    pub username: Option<&'a str>,
}

/// Core §3.1.3.6: the hash of the JWS algorithm (SHA-256 for ES256 and RS256; SHA-512
/// for EdDSA with Ed25519), its left half, base64url.
fn token_hash(algorithm: SigningAlgorithm, token: &str) -> String {
    let hash = match algorithm {
        SigningAlgorithm::Es256 | SigningAlgorithm::Rs256 => {
            digest::digest(&digest::SHA256, token.as_bytes())
        }
        SigningAlgorithm::EdDsa => digest::digest(&digest::SHA512, token.as_bytes()),
    };
    let bytes = hash.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

#[tracing::instrument(name = "id_token.mint", level = "debug", skip_all, fields(client_id = req.client_id), err(level = "debug"))]
pub(crate) fn mint(keys: &KeySet, req: IdTokenRequest<'_>) -> Result<String, KeyError> {
    super::keys::signer::install();
    let key = keys.signing()?;
    let claims = IdClaims {
        iss: req.issuer.to_owned(),
        sub: req.user_id.to_string(),
        aud: req.client_id.to_owned(),
        azp: req.client_id.to_owned(),
        exp: req.issued_at + req.ttl.as_secs() as i64,
        iat: req.issued_at,
        auth_time: req.auth_time,
        nonce: req.nonce.map(str::to_owned),
        sid: req.browser_session_id.to_string(),
        at_hash: Some(token_hash(key.algorithm, req.access_token)),
        amr: vec!["pwd".to_owned()],
        acr: Some("1".to_owned()),
        preferred_username: req.username.map(str::to_owned),
    };
    let mut header = Header::new(key.algorithm.jwt_algorithm());
    header.typ = Some(ID_TOKEN_TYP.to_owned());
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, key.encoding_key()).map_err(|e| KeyError::Unusable {
        kid: key.kid.clone(),
        reason: e.to_string(),
    })
}

/// An ID token presented back to Tessera (`id_token_hint`): one it issued, with any
/// published key. Expiry is not checked (Core RP-Initiated Logout §2: an expired ID
/// token is still a good hint of who is signing out).
pub(crate) fn verify_hint(keys: &KeySet, issuer: &str, token: &str) -> Option<IdClaims> {
    if token.len() > tessera_token::MAX_TOKEN_LEN {
        return None;
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(ID_TOKEN_TYP))
    {
        return None;
    }
    let (algorithm, key) = keys.key(header.kid.as_deref()?)?;
    if algorithm.as_str() != jwt_name(header.alg) {
        return None;
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<IdClaims>(token, key, &validation)
        .ok()?
        .claims;
    (claims.iss == issuer).then_some(claims)
}

fn jwt_name(alg: jsonwebtoken::Algorithm) -> &'static str {
    match alg {
        jsonwebtoken::Algorithm::ES256 => "ES256",
        jsonwebtoken::Algorithm::EdDSA => "EdDSA",
        jsonwebtoken::Algorithm::RS256 => "RS256",
        _ => "",
    }
}

impl super::Tessera {
    /// The claims of an ID token Tessera issued, presented as `id_token_hint`.
    pub(crate) fn id_token_hint(&self, token: &str) -> Option<IdClaims> {
        verify_hint(&self.keys.snapshot(), &self.settings.issuer, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::tests::test_key_set;

    fn request(access_token: &str) -> IdTokenRequest<'_> {
        IdTokenRequest {
            issuer: "https://issuer.test",
            user_id: Uuid::nil(),
            client_id: "app",
            browser_session_id: Uuid::nil(),
            auth_time: 1,
            issued_at: 2,
            ttl: std::time::Duration::from_secs(60),
            nonce: Some("n"),
            access_token,
            username: None,
        }
    }

    #[test]
    fn an_id_token_verifies_as_a_hint_and_never_as_an_access_token() {
        for alg in SigningAlgorithm::ALL {
            let keys = test_key_set(alg);
            let token = mint(&keys, request("access")).unwrap();
            let claims = verify_hint(&keys, "https://issuer.test", &token).unwrap();
            assert_eq!(
                (claims.aud.as_str(), claims.nonce.as_deref()),
                ("app", Some("n"))
            );
            assert!(verify_hint(&keys, "https://other.test", &token).is_none());
            assert_eq!(
                tessera_token::verify_signed(&token, &keys, &tessera_token::Algorithm::ALL)
                    .unwrap_err(),
                tessera_token::VerifyError::WrongType
            );
        }
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // OpenID Connect Core §A.3's example access token and at_hash (RS256).
        assert_eq!(
            token_hash(
                SigningAlgorithm::Rs256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(token_hash(SigningAlgorithm::EdDsa, "x").len(), 43);
    }
}
