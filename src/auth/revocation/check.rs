//! The check every bearer token goes through: fail unless the denylist positively says
//! the token is alive.

use std::sync::atomic::Ordering;

use super::sync::{catch_up, rebuild, Rebuild};
use super::CheckError;
use crate::auth::tokens::{self, AccessClaims};
use crate::auth::Tessera;
use crate::store::denylist::DenyState;

/// Fails unless the denylist positively says the token is alive.
#[tracing::instrument(name = "revocation.ensure_not_revoked", level = "debug", skip_all, fields(jti = %claims.jti), err(level = "debug"))]
pub(crate) async fn ensure_not_revoked(
    tessera: &Tessera,
    claims: &AccessClaims,
) -> Result<(), CheckError> {
    if tessera.denylist_sync.suspect.load(Ordering::Acquire) {
        catch_up(tessera).await?;
    }
    let user = tokens::user_id(claims).map(|u| u.to_string());
    let check = || {
        tessera.denylist.check(
            &claims.jti,
            claims.sid.as_deref(),
            user.as_deref(),
            &claims.client_id,
        )
    };
    let mut deny = match check().await {
        Ok(d) => d,
        Err(e) => {
            tessera.metrics.redis_errors.inc();
            tessera.denylist_sync.suspect.store(true, Ordering::Relaxed);
            return Err(e.into());
        }
    };
    let sync = &tessera.denylist_sync;
    let went_back = |deny: &DenyState| {
        deny.marker
            .is_some_and(|m| m < sync.highest_marker.fetch_max(m, Ordering::AcqRel))
    };
    if !deny.ready || went_back(&deny) {
        let scope = if deny.ready {
            tracing::warn!(
                marker = deny.marker,
                seen = sync.highest_marker.load(Ordering::Acquire),
                "the denylist in Redis went back to an older generation; writing what it lost"
            );
            Rebuild::Behind
        } else {
            Rebuild::IfLost
        };
        rebuild(tessera, scope).await?;
        deny = check().await?;
        if !deny.ready || went_back(&deny) {
            return Err(CheckError::Unavailable(
                "the denylist is being rebuilt".to_owned(),
            ));
        }
    }
    let before = |nb: Option<i64>| nb.is_some_and(|nb| claims.iat < nb);
    if deny.token || deny.session || before(deny.user_not_before) || before(deny.client_not_before)
    {
        return Err(CheckError::Revoked);
    }
    Ok(())
}
