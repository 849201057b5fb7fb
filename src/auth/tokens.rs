//! Access tokens: JWTs per RFC 9068, minted with the current key and checked against
//! the published ones.

use std::time::Duration;

use jsonwebtoken::Header;
use tessera_token::{Algorithm, ClaimRules, ACCESS_TOKEN_TYP};
use uuid::Uuid;

use super::keys::{KeyError, KeySet};

/// The claims and the rules are `tessera_token`'s, the same ones `tessera-verifier`
/// checks in every microservice; the refusals are called `InvalidToken` here, after
/// RFC 6750's `invalid_token`.
pub(crate) use tessera_token::{AccessClaims, Audience, VerifyError as InvalidToken, LEEWAY};

/// The user behind a user's token (its `sub`, when it has a session), as the id it
/// was minted from.
pub(crate) fn user_id(claims: &AccessClaims) -> Option<Uuid> {
    claims.user_id().and_then(|id| Uuid::parse_str(id).ok())
}

/// The session a user's token was minted in.
pub(crate) fn session_id(claims: &AccessClaims) -> Option<Uuid> {
    claims.session_id().and_then(|id| Uuid::parse_str(id).ok())
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

pub(crate) fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tracing::instrument(name = "token.mint", level = "debug", skip_all, fields(client_id = req.client_id, kid = keys.signing().ok().map(|k| k.kid.as_str())), err(level = "debug"))]
pub fn mint(keys: &KeySet, req: TokenRequest<'_>) -> Result<MintedToken, KeyError> {
    super::keys::signer::install();
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
        nbf: Some(now),
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

/// Checks `typ`, the key by `kid`, the signature, `iss`, `aud` (unless `None`:
/// introspection and revocation accept any audience), `exp` and `nbf` against the
/// published keys, by `tessera_token`'s rules. Revocation is checked separately (it
/// needs Redis).
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
    // Bounds what the remembered-token lookup hashes.
    tessera_token::check_shape(token)?;
    let rules = ClaimRules {
        issuer,
        audiences: audience.as_ref().map(std::slice::from_ref),
        leeway: LEEWAY,
    };
    if let Some(claims) = keys.verified(token) {
        rules.check(&claims, now_unix())?;
        return Ok(claims);
    }
    let claims = tessera_token::verify_signed(token, keys, &Algorithm::ALL)?;
    rules.check(&claims, now_unix())?;
    keys.remember_verified(token, claims.clone());
    Ok(claims)
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::auth::keys::tests::test_key_set;
    use crate::domain::SigningAlgorithm;

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
        let rules = ClaimRules::<&str> {
            issuer: ISS,
            audiences: None,
            leeway: LEEWAY,
        };
        assert_eq!(
            rules.check(&claims, claims.exp + 60).unwrap_err(),
            InvalidToken::Expired
        );
    }

    /// The payload as signed, as text.
    fn payload(token: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let encoded = token.split('.').nth(1).unwrap();
        String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap()
    }

    /// `names` all appear in `json`, in this order.
    fn assert_members_in_order(json: &str, names: &[&str]) {
        let positions: Vec<usize> = names
            .iter()
            .map(|name| {
                json.find(&format!("\"{name}\":"))
                    .unwrap_or_else(|| panic!("no {name} in {json}"))
            })
            .collect();
        assert!(positions.is_sorted(), "{names:?} out of order in {json}");
    }

    #[test]
    fn minted_payloads_keep_their_wire_format() {
        let keys = test_key_set(SigningAlgorithm::Es256);
        let spec = [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "client_id",
            "scope",
        ];
        let client = payload(&minted(&keys));
        assert_members_in_order(&client, &spec);
        assert!(client.contains(&format!(r#""aud":"{ISS}""#)), "{client}");
        for absent in ["sid", "roles", "preferred_username"] {
            assert!(!client.contains(absent), "{absent} in {client}");
        }
        let user = mint(
            &keys,
            TokenRequest {
                issuer: ISS,
                subject: Subject::User {
                    id: Uuid::now_v7(),
                    username: "alice",
                    roles: &[],
                    session_id: Uuid::now_v7(),
                },
                client_id: "web",
                scope: "profile",
                audiences: vec![ISS.to_owned(), "https://orders.test".to_owned()],
                ttl: Duration::from_secs(60),
                issued_at: None,
            },
        )
        .unwrap();
        let user = payload(&user.token);
        assert_members_in_order(&user, &spec);
        assert_members_in_order(&user, &["scope", "sid", "roles", "preferred_username"]);
        assert!(user.contains(r#""roles":[],"#), "{user}");
        assert!(
            user.contains(&format!(r#""aud":["{ISS}","https://orders.test"]"#)),
            "{user}"
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
