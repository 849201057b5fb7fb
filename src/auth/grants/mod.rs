//! The grants of the token endpoint, one module each: `password`, `refresh_token`,
//! `client_credentials`. What they share is here: what a grant hands back, and how an
//! access token is minted for a client.

mod client_credentials;
mod password;
mod refresh_token;

use std::time::Duration;

use uuid::Uuid;

pub(crate) use client_credentials::client_credentials;
pub(crate) use password::password;
pub(crate) use refresh_token::refresh;

use super::clients::Client;
use super::tokens::{self, MintedToken, Subject, TokenRequest};
use super::{AuthError, Tessera};
use crate::domain::{GrantType, RefreshToken, Scope};

/// What a successful grant hands back; the handler turns it into RFC 6749 §5.1 JSON.
pub(crate) struct Granted {
    pub access: MintedToken,
    pub refresh_token: Option<RefreshToken>,
    pub scope: Scope,
}

/// RFC 9068 audience restriction: a token is good for the APIs its client names. A
/// client that names none gets tokens for Tessera's own API (`/v1/me`, logout, admin);
/// a client for other APIs must list Tessera's issuer too for its tokens to work here,
/// so a token handed to a third-party API cannot be replayed against Tessera.
pub(super) fn audiences(tessera: &Tessera, client: &Client) -> Vec<String> {
    if client.audiences.is_empty() {
        vec![tessera.settings.own_audience().to_owned()]
    } else {
        client.audiences.clone()
    }
}

pub(super) fn access_ttl(tessera: &Tessera, client: &Client) -> Duration {
    client
        .access_token_ttl
        .unwrap_or(tessera.settings.tokens.access_ttl)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn mint_for_user(
    tessera: &Tessera,
    client: &Client,
    user_id: Uuid,
    username: &str,
    roles: &[String],
    session_id: Uuid,
    scope: &Scope,
    issued_at: Option<i64>,
) -> Result<MintedToken, AuthError> {
    let keys = tessera.keys.snapshot();
    Ok(tokens::mint(
        &keys,
        TokenRequest {
            issuer: &tessera.settings.issuer,
            subject: Subject::User {
                id: user_id,
                username,
                roles,
                session_id,
            },
            client_id: client.id.as_str(),
            scope: &scope.to_string(),
            audiences: audiences(tessera, client),
            ttl: access_ttl(tessera, client),
            issued_at,
        },
    )?)
}

/// The `tokens_issued` metric, by grant.
pub(super) fn count_issued(tessera: &Tessera, grant: GrantType) {
    tessera
        .metrics
        .tokens_issued
        .with_label_values(&[grant.as_str()])
        .inc();
}
