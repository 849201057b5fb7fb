//! OAuth client authentication (RFC 6749 §2.3) and what a client may ask for.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::AuthError;
use crate::domain::{ClientId, Scope};
use crate::store::clients::ClientRow;
use crate::store::{self, Db};

/// What the request offered to prove which client it is.
pub enum ClientCredentials {
    /// Nothing: the built-in public client.
    None,
    /// `client_id` alone: a public client.
    Public(ClientId),
    /// `client_id` and `client_secret`, from HTTP Basic or the body.
    Secret(ClientId, SecretString),
}

/// A client whose identity has been established for this request.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: ClientId,
    pub confidential: bool,
    pub grant_types: Vec<String>,
    pub scopes: Scope,
    pub audiences: Vec<String>,
    pub access_token_ttl: Option<std::time::Duration>,
}

impl Client {
    fn from_row(row: ClientRow) -> Result<Self, AuthError> {
        let corrupt = |what: String| {
            AuthError::Store(store::StoreError::Corrupt(format!(
                "client {}: {what}",
                row.client_id
            )))
        };
        Ok(Self {
            id: ClientId::parse(&row.client_id).map_err(corrupt)?,
            confidential: row.confidential,
            scopes: Scope::from_tokens(&row.scopes).map_err(corrupt)?,
            grant_types: row.grant_types,
            audiences: row.audiences,
            access_token_ttl: row
                .access_token_ttl_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(std::time::Duration::from_secs),
        })
    }

    pub fn may_use_grant(&self, grant_type: &str) -> Result<(), AuthError> {
        if self.grant_types.iter().any(|g| g == grant_type) {
            Ok(())
        } else {
            Err(AuthError::UnauthorizedClient(format!(
                "client `{}` may not use the {grant_type} grant",
                self.id
            )))
        }
    }

    /// RFC 6749 §3.3: the requested scope, which must lie within what the client may
    /// have; with none requested, everything it may have.
    pub fn grant_scope(&self, requested: Option<&Scope>) -> Result<Scope, AuthError> {
        match requested {
            None => Ok(self.scopes.clone()),
            Some(scope) if scope.is_subset(&self.scopes) => Ok(scope.clone()),
            Some(scope) => Err(AuthError::InvalidScope(format!(
                "scope not allowed for this client: {}",
                scope
                    .excess_over(&self.scopes)
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    }
}

pub const SECRET_PREFIX: &str = "cs_";

/// A new client secret (256 random bits) and the hash that is stored.
pub fn generate_secret() -> (SecretString, [u8; 32]) {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash_secret(&secret);
    (SecretString::from(secret), hash)
}

pub fn hash_secret(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref());
    out
}

/// Establishes which client is calling. Every failure is `invalid_client`, and says
/// no more than needed.
pub async fn authenticate(db: &Db, credentials: ClientCredentials) -> Result<Client, AuthError> {
    let (id, secret) = match credentials {
        ClientCredentials::None => (ClientId::builtin(), None),
        ClientCredentials::Public(id) => (id, None),
        ClientCredentials::Secret(id, secret) => (id, Some(secret)),
    };
    let lookup = id.as_str().to_owned();
    let row = db
        .run(move |conn| store::clients::find(conn, &lookup))
        .await?;
    let presented = secret.as_ref().map(|s| hash_secret(s.expose_secret()));
    let unknown = || AuthError::InvalidClient("client authentication failed".to_owned());
    let Some(row) = row else {
        return Err(unknown());
    };
    match (row.confidential, presented) {
        (false, None) => Client::from_row(row),
        (false, Some(_)) => Err(AuthError::InvalidClient(
            "this is a public client: it has no secret".to_owned(),
        )),
        (true, None) => Err(AuthError::InvalidClient(
            "this client must authenticate with its secret".to_owned(),
        )),
        (true, Some(presented)) => {
            let stored = row.secret_hash.as_deref().unwrap_or(&[]);
            if bool::from(presented.as_slice().ct_eq(stored)) {
                Client::from_row(row)
            } else {
                Err(unknown())
            }
        }
    }
}
