//! Values that can only be built valid. Handlers parse raw input into these at the edge,
//! so nothing past a handler is a bare `String` that could be a secret, an id or a scope.

mod client_id;
mod password;
mod refresh_token;
mod role;
mod scope;
mod username;

pub use client_id::ClientId;
pub use password::{NewPassword, Password, PasswordError, BCRYPT_MAX_BYTES};
pub use refresh_token::{RefreshToken, RefreshTokenHash};
pub use role::Role;
pub use scope::Scope;
pub use username::Username;
