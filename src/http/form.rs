//! Reading OAuth request bodies and client credentials (RFC 6749 §2.3.1, §3.2).
//! Form-encoded per the RFC, JSON for front ends; anything else is refused before it
//! reaches a grant.

use actix_web::http::{header, StatusCode};
use actix_web::web::Bytes;
use actix_web::HttpRequest;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::percent_decode;
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use super::body::{media_type, unread, MediaType, Unread};
use crate::auth::clients::ClientCredentials;
use crate::domain::ClientId;
use crate::error::{describe_json_error, OAuthError};

/// Parses the body as `application/x-www-form-urlencoded` or `application/json`.
/// `body` is the extractor's result, so an oversized body becomes an OAuth error too.
pub fn parse_body<T: DeserializeOwned>(
    req: &HttpRequest,
    body: Result<Bytes, actix_web::Error>,
    limit: usize,
) -> Result<T, OAuthError> {
    let body = body.map_err(|e| match unread(&e) {
        Unread::TooLarge => OAuthError::invalid_request_with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        ),
        Unread::Broken => OAuthError::invalid_request("the request body could not be read"),
    })?;
    match media_type(req) {
        MediaType::Form => {
            if looks_like_json(&body) {
                return Err(OAuthError::invalid_request(
                    "the body is JSON but Content-Type says application/x-www-form-urlencoded; \
                     send it with Content-Type: application/json, or form-encode it",
                ));
            }
            check_form_encoding(&body)?;
            serde_urlencoded::from_bytes(&body).map_err(|e| {
                OAuthError::invalid_request(format!("malformed form body: {}", without_values(&e)))
            })
        }
        MediaType::Json if !body.trim_ascii_start().starts_with(b"{") => Err(
            OAuthError::invalid_request("the request body must be a JSON object"),
        ),
        MediaType::Json => serde_json::from_slice(&body)
            .map_err(|e| OAuthError::invalid_request(describe_json_error(&e))),
        MediaType::Absent if body.is_empty() => Err(OAuthError::invalid_request(
            "the request has no body; send the parameters form-encoded \
             (Content-Type: application/x-www-form-urlencoded) or as application/json",
        )),
        _ => Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        )),
    }
}

/// A JSON document sent as a form parses as one odd parameter name: say so instead of
/// "missing parameter".
fn looks_like_json(body: &[u8]) -> bool {
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{') | Some(b'[')
    )
}

/// A form decoding error, without the value that did not fit.
fn without_values(e: &serde_urlencoded::de::Error) -> String {
    let message = e.to_string();
    if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "a parameter has the wrong type".to_owned()
    } else {
        message
    }
}

/// Every parameter the OAuth endpoints read. Others are ignored, even repeated
/// (RFC 6749 §3.1: unrecognised parameters MUST be ignored).
const PARAMETERS: [&str; 12] = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "username",
    "password",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
];

/// Form decoding elsewhere replaces invalid UTF-8 silently; here it is an error, as is
/// a parameter given twice (RFC 6749 §3.2).
fn check_form_encoding(body: &[u8]) -> Result<(), OAuthError> {
    let mut seen = std::collections::HashSet::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let mut parts = pair.splitn(2, |b| *b == b'=');
        let name = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        let decode = |raw: &[u8]| -> Result<String, OAuthError> {
            let plus_as_space: Vec<u8> = raw
                .iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect();
            percent_decode(&plus_as_space)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| OAuthError::invalid_request("the request body is not valid UTF-8"))
        };
        let name = decode(name)?;
        decode(value)?;
        if PARAMETERS.contains(&name.as_str()) && !seen.insert(name.clone()) {
            return Err(OAuthError::invalid_request(format!(
                "parameter `{name}` is repeated"
            )));
        }
    }
    Ok(())
}

/// Works out which client credentials a request carries: HTTP Basic
/// (`client_secret_basic`), or `client_id`/`client_secret` in the body
/// (`client_secret_post`), or a bare `client_id` (public client), or nothing.
pub(crate) fn client_credentials(
    req: &HttpRequest,
    body_client_id: Option<&str>,
    body_client_secret: Option<String>,
) -> Result<ClientCredentials, OAuthError> {
    let basic = basic_credentials(req)?;
    let parse_id = |raw: &str| {
        ClientId::parse(raw).map_err(|_| {
            OAuthError::new(
                crate::error::OAuthErrorCode::InvalidClient,
                "client authentication failed",
            )
        })
    };
    match (basic, body_client_id, body_client_secret) {
        (Some((id, secret)), body_id, None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the one in the Authorization header",
                ));
            }
            Ok(ClientCredentials::Secret(parse_id(&id)?, secret))
        }
        (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
            "use one client authentication method, not both HTTP Basic and client_secret",
        )),
        (None, Some(id), Some(secret)) => Ok(ClientCredentials::Secret(
            parse_id(id)?,
            SecretString::from(secret),
        )),
        (None, None, Some(_)) => Err(OAuthError::invalid_request(
            "client_secret was sent without client_id",
        )),
        (None, Some(id), None) => Ok(ClientCredentials::Public(parse_id(id)?)),
        (None, None, None) => Ok(ClientCredentials::None),
    }
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, SecretString)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || {
        OAuthError::new(
            crate::error::OAuthErrorCode::InvalidClient,
            "malformed HTTP Basic credentials",
        )
    };
    let value = value.to_str().map_err(|_| invalid())?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err(invalid());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::new(
            crate::error::OAuthErrorCode::InvalidClient,
            "only HTTP Basic client authentication is supported here",
        ));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let unescape = |s: &str| {
        percent_decode(s.replace('+', " ").as_bytes())
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid())
    };
    Ok(Some((unescape(id)?, SecretString::from(unescape(secret)?))))
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::check_form_encoding;

    proptest! {
        #[test]
        fn form_checking_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = check_form_encoding(&body);
        }

        #[test]
        fn well_formed_forms_pass(pairs in prop::collection::btree_map("[a-z_]{1,12}", "\\PC{0,30}", 0..8)) {
            let body = serde_urlencoded::to_string(&pairs).unwrap();
            prop_assert!(check_form_encoding(body.as_bytes()).is_ok());
        }
    }
}
