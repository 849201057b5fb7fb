//! An access token presented to Tessera's own API (`/v1/me`, logout, admin): checked
//! with the published keys for Tessera's own audience, then against the denylist.

use super::revocation::{self, CheckError};
use super::tokens::{self, AccessClaims, InvalidToken};
use super::Tessera;

/// Why a presented token was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error(transparent)]
    Invalid(InvalidToken),
    /// The denylist cannot be read, so whether it was revoked is unknown: fail closed.
    #[error(transparent)]
    Unavailable(CheckError),
}

#[tracing::instrument(name = "access.check", level = "debug", skip_all, err(level = "debug"))]
pub(crate) async fn check(tessera: &Tessera, token: &str) -> Result<AccessClaims, Refused> {
    check_for(tessera, token, Some(tessera.settings.own_audience())).await
}

/// For OpenID Connect userinfo, which answers any app's access token (whatever its
/// audience: a third-party app's tokens are for the app itself) with the claims its
/// scopes allow.
#[tracing::instrument(
    name = "access.check_for_userinfo",
    level = "debug",
    skip_all,
    err(level = "debug")
)]
pub(crate) async fn check_for_userinfo(
    tessera: &Tessera,
    token: &str,
) -> Result<AccessClaims, Refused> {
    check_for(tessera, token, None).await
}

async fn check_for(
    tessera: &Tessera,
    token: &str,
    audience: Option<&str>,
) -> Result<AccessClaims, Refused> {
    let keys = tessera.keys.snapshot();
    let claims = tokens::verify(&keys, token, &tessera.settings.issuer, audience)
        .map_err(Refused::Invalid)?;
    revocation::ensure_not_revoked(tessera, &claims)
        .await
        .map_err(|e| match e {
            CheckError::Revoked => Refused::Invalid(InvalidToken::Revoked),
            e @ CheckError::Unavailable(_) => Refused::Unavailable(e),
        })?;
    Ok(claims)
}
