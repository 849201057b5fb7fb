//! Values that can only be built valid. Handlers parse raw input into these at the edge,
//! so nothing past a handler is a bare `String` that could be a secret, an id or a scope.

mod vocabulary;

mod client_id;
mod grant_type;
mod key_bytes;
mod key_state;
mod password;
mod redirect_uri;
mod redis_endpoint;
mod refresh_token;
mod revocation_kind;
mod role;
mod scope;
mod signing_algorithm;
mod token_lifetime;
mod token_type;
mod username;

pub use client_id::ClientId;
pub(crate) use grant_type::GrantType;
pub(crate) use key_bytes::decode_key;
pub(crate) use key_state::KeyState;
pub use password::{NewPassword, Password, PasswordError, BCRYPT_MAX_BYTES};
pub use redirect_uri::RedirectUri;
pub use redis_endpoint::{without_password, RedisEndpoint, SentinelEndpoint};
pub use refresh_token::{Chain, RefreshToken};
pub use revocation_kind::{RevocationKind, UnknownRevocationKind};
pub use role::Role;
pub(crate) use scope::Scope;
pub use signing_algorithm::SigningAlgorithm;
pub(crate) use token_lifetime::{AccessTokenTtl, MAX_ACCESS_TOKEN_TTL, MIN_ACCESS_TOKEN_TTL};
pub(crate) use token_type::TokenType;
pub use username::Username;

/// A whole number from JSON, also when written `60.0`: JSON Schema counts that as an
/// integer, so clients generated from the OpenAPI document may send it.
pub(crate) fn whole_number<'de, D>(de: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let Some(number) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(de)? else {
        return Ok(None);
    };
    number
        .as_i64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("expected a whole number"))
}
