//! Access tokens: JWTs per RFC 9068, minted with the current key and checked against
//! the published ones.

use std::time::Duration;

use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::{KeyError, KeySet};

/// RFC 9068 §2.1: the `typ` header of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(5);

/// Longest JWT Tessera will even try to parse.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// `aud`: one string, or several (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 {
            Audience::One(list.remove(0))
        } else {
            Audience::Many(list)
        }
    }

    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(list) => list.iter().any(|a| a == aud),
        }
    }

    /// Whether this names `aud` and nothing else (a string, or an array of just it).
    pub fn is_exactly(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(list) => matches!(list.as_slice(), [a] if a == aud),
        }
    }

    pub fn to_list(&self) -> Vec<String> {
        match self {
            Audience::One(a) => vec![a.clone()],
            Audience::Many(list) => list.clone(),
        }
    }
}

/// The claims of a Tessera access token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user id, or the client id for `client_credentials`.
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// The session (refresh-token chain) this token was minted in; none for clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
}

impl AccessClaims {
    pub fn user_id(&self) -> Option<Uuid> {
        self.sid.as_ref()?;
        Uuid::parse_str(&self.sub).ok()
    }

    pub fn session_id(&self) -> Option<Uuid> {
        self.sid.as_deref().and_then(|s| Uuid::parse_str(s).ok())
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles
            .as_ref()
            .is_some_and(|roles| roles.iter().any(|r| r == role))
    }

    pub fn remaining_lifetime(&self, now: i64) -> Duration {
        Duration::from_secs(u64::try_from(self.exp - now).unwrap_or(0))
    }
}

/// Who a token is for.
pub enum Subject<'a> {
    User {
        id: Uuid,
        username: &'a str,
        roles: &'a [String],
        session_id: Uuid,
    },
    Client,
}

pub struct TokenRequest<'a> {
    pub issuer: &'a str,
    pub subject: Subject<'a>,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub audiences: Vec<String>,
    pub ttl: Duration,
    /// `iat` (and `nbf`) when it must be fixed before minting (a login takes it inside
    /// the transaction that starts the session); now by default.
    pub issued_at: Option<i64>,
}

pub struct MintedToken {
    pub token: String,
    pub claims: AccessClaims,
    pub expires_in: u64,
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tracing::instrument(name = "token.mint", level = "debug", skip_all, fields(client_id = req.client_id, kid = keys.signing().ok().map(|k| k.kid.as_str())), err(level = "debug"))]
pub fn mint(keys: &KeySet, req: TokenRequest<'_>) -> Result<MintedToken, KeyError> {
    let key = keys.signing()?;
    let now = req.issued_at.unwrap_or_else(now_unix);
    let ttl = req.ttl.as_secs();
    let (sub, sid, roles, preferred_username) = match req.subject {
        Subject::User {
            id,
            username,
            roles,
            session_id,
        } => (
            id.to_string(),
            Some(session_id.to_string()),
            Some(roles.to_vec()),
            Some(username.to_owned()),
        ),
        Subject::Client => (req.client_id.to_owned(), None, None, None),
    };
    let claims = AccessClaims {
        iss: req.issuer.to_owned(),
        sub,
        aud: Audience::from_list(req.audiences),
        exp: now + ttl as i64,
        iat: now,
        nbf: now,
        jti: Uuid::now_v7().to_string(),
        client_id: req.client_id.to_owned(),
        scope: req.scope.to_owned(),
        sid,
        roles,
        preferred_username,
    };
    let mut header = Header::new(key.algorithm.jwt_algorithm());
    header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(&header, &claims, key.encoding_key()).map_err(|e| {
        KeyError::Unusable {
            kid: key.kid.clone(),
            reason: e.to_string(),
        }
    })?;
    Ok(MintedToken {
        token,
        claims,
        expires_in: ttl,
    })
}

/// Why a bearer token was refused. The text goes to logs and the
/// `error_description`; it never contains the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidToken {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    WrongAlgorithm,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token has been revoked")]
    Revoked,
}

/// Checks signature, `typ`, `iss`, `aud` (unless `None`: introspection and revocation
/// accept any audience), `exp`, `nbf` against the published keys. Revocation is checked
/// separately (it needs Redis).
///
/// A token whose signature was verified once is remembered by the key set it was
/// verified with (a key change starts a new set, so an emergency rotation forgets
/// everything at once); later calls only re-check the claims, which change with time.
#[tracing::instrument(name = "token.verify", level = "debug", skip_all, err(level = "debug"))]
pub fn verify(
    keys: &KeySet,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, InvalidToken> {
    if token.len() > MAX_TOKEN_LEN || token.bytes().filter(|b| *b == b'.').count() != 2 {
        return Err(InvalidToken::Malformed);
    }
    let claims = match keys.verified(token) {
        Some(claims) => claims,
        None => {
            let claims = verify_signature(keys, token, issuer)?;
            keys.remember_verified(token, claims.clone());
            claims
        }
    };
    check_claims(claims, issuer, audience, now_unix())
}

/// What may change between two uses of one token: time, and who is asking.
fn check_claims(
    claims: AccessClaims,
    issuer: &str,
    audience: Option<&str>,
    now: i64,
) -> Result<AccessClaims, InvalidToken> {
    let leeway = LEEWAY.as_secs() as i64;
    if claims.iss != issuer {
        return Err(InvalidToken::WrongIssuer);
    }
    if claims.exp + leeway <= now {
        return Err(InvalidToken::Expired);
    }
    if claims.nbf - leeway > now {
        return Err(InvalidToken::NotYetValid);
    }
    if audience.is_some_and(|aud| !claims.aud.contains(aud)) {
        return Err(InvalidToken::WrongAudience);
    }
    Ok(claims)
}

/// The expensive part: header rules, the key by `kid`, the signature, required claims.
fn verify_signature(
    keys: &KeySet,
    token: &str,
    issuer: &str,
) -> Result<AccessClaims, InvalidToken> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| InvalidToken::Malformed)?;
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(InvalidToken::WrongType);
    }
    // RFC 7515 §4.1.11: extensions we do not understand make the token unacceptable.
    if header.crit.is_some() {
        return Err(InvalidToken::Malformed);
    }
    // Only a kid we published selects a key; jku, x5u, jwk and x5c are never followed.
    let kid = header.kid.as_deref().ok_or(InvalidToken::UnknownKey)?;
    let key = keys.verifying(kid).ok_or(InvalidToken::UnknownKey)?;
    if header.alg != key.algorithm.jwt_algorithm() {
        return Err(InvalidToken::WrongAlgorithm);
    }
    let mut validation = Validation::new(key.algorithm.jwt_algorithm());
    validation.leeway = LEEWAY.as_secs();
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    // The audience depends on who asks; it is checked in `check_claims`.
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<AccessClaims>(token, key.decoding_key(), &validation)
        .map(|data| data.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature => InvalidToken::BadSignature,
                ErrorKind::ExpiredSignature => InvalidToken::Expired,
                ErrorKind::ImmatureSignature => InvalidToken::NotYetValid,
                ErrorKind::InvalidIssuer => InvalidToken::WrongIssuer,
                ErrorKind::InvalidAlgorithm => InvalidToken::WrongAlgorithm,
                _ => InvalidToken::Malformed,
            }
        })
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::auth::keys::tests::test_key_set;
    use crate::auth::keys::SigningAlgorithm;

    const ISS: &str = "https://issuer.test";

    fn minted(keys: &KeySet) -> String {
        mint(
            keys,
            TokenRequest {
                issuer: ISS,
                subject: Subject::Client,
                client_id: "svc",
                scope: "a b",
                audiences: vec![ISS.to_owned()],
                ttl: Duration::from_secs(60),
                issued_at: None,
            },
        )
        .unwrap()
        .token
    }

    #[test]
    fn a_remembered_token_is_still_checked_for_time_and_audience() {
        let keys = test_key_set(SigningAlgorithm::Es256);
        let token = minted(&keys);
        verify(&keys, &token, ISS, Some(ISS)).unwrap();
        assert!(
            keys.verified(&token).is_some(),
            "remembered after a first check"
        );
        assert_eq!(
            verify(&keys, &token, ISS, Some("someone-else")).unwrap_err(),
            InvalidToken::WrongAudience
        );
        assert_eq!(
            verify(&keys, &token, "https://other.test", None).unwrap_err(),
            InvalidToken::WrongIssuer
        );
        let claims = keys.verified(&token).unwrap();
        let later = claims.exp + 60;
        assert_eq!(
            check_claims(claims, ISS, None, later).unwrap_err(),
            InvalidToken::Expired
        );
    }

    #[test]
    fn a_minted_token_verifies() {
        let keys = test_key_set(SigningAlgorithm::Es256);
        let claims = verify(&keys, &minted(&keys), ISS, Some(ISS)).unwrap();
        assert_eq!(claims.client_id, "svc");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_strings_are_refused_without_panicking(raw in "\\PC{0,300}") {
            let keys = test_key_set(SigningAlgorithm::EdDsa);
            prop_assert!(verify(&keys, &raw, ISS, Some(ISS)).is_err());
        }

        #[test]
        fn any_altered_character_is_refused(index in 0usize..400, c in "[A-Za-z0-9_.-]") {
            let keys = test_key_set(SigningAlgorithm::Es256);
            let token = minted(&keys);
            let index = index % token.len();
            // The last character of a segment carries padding bits that a lenient
            // decoder might ignore; every other character carries only data.
            let segment_end = index + 1 == token.len() || token.as_bytes()[index + 1] == b'.';
            prop_assume!(!segment_end);
            let mut altered = token.clone();
            altered.replace_range(index..index + 1, &c);
            if altered != token {
                prop_assert!(verify(&keys, &altered, ISS, Some(ISS)).is_err());
            }
        }
    }
}
