//! `grant_type=client_credentials`: a confidential client's token for itself.

use super::{access_ttl, audiences, count_issued, Granted};
use crate::auth::clients::Client;
use crate::auth::tokens::{self, Subject, TokenRequest};
use crate::auth::{AuthError, Tessera};
use crate::domain::{GrantType, Scope};

/// `grant_type=client_credentials` (RFC 6749 §4.4): a token for the client itself.
#[tracing::instrument(name = "grant.client_credentials", level = "debug", skip_all, fields(client_id = %client.id), err(level = "debug"))]
pub(crate) fn client_credentials(
    tessera: &Tessera,
    client: &Client,
    requested: Option<&Scope>,
) -> Result<Granted, AuthError> {
    let grant = GrantType::ClientCredentials;
    client.may_use_grant(grant)?;
    if grant.needs_confidential_client() && !client.confidential {
        return Err(AuthError::UnauthorizedClient(format!(
            "only confidential clients may use the {grant} grant"
        )));
    }
    let scope = client.grant_scope(requested)?;
    let audiences = audiences(tessera, client);
    let keys = tessera.keys.snapshot();
    let access = tokens::mint(
        &keys,
        TokenRequest {
            issuer: &tessera.settings.issuer,
            subject: Subject::Client,
            client_id: client.id.as_str(),
            scope: &scope.to_string(),
            audiences,
            ttl: access_ttl(tessera, client),
            issued_at: None,
        },
    )?;
    count_issued(tessera, grant);
    Ok(Granted {
        access,
        refresh_token: None,
        scope,
        id_token: None,
    })
}
