//! Finding the session a presented refresh token belongs to, for introspection and
//! revocation (a refresh goes through `grants::refresh_token`).

use super::{AuthError, Tessera};
use crate::domain::{Chain, RefreshToken};
use crate::store::refresh::{self, ChainState};

/// A genuine refresh token's link and its session's chain as it stands.
pub(crate) struct Found {
    pub chain: Chain,
    pub state: ChainState,
}

impl Found {
    /// The token is the chain's live link and the session can still be refreshed.
    pub(crate) fn is_live(&self) -> bool {
        self.state.live
            && i64::try_from(self.chain.generation).is_ok_and(|g| g == self.state.generation)
    }
}

/// `None` for anything that is not a genuine refresh token of a session that exists
/// (malformed, forged, retired, or its session deleted).
pub(crate) async fn find(tessera: &Tessera, raw: &str) -> Result<Option<Found>, AuthError> {
    let Ok(token) = RefreshToken::parse(raw) else {
        return Ok(None);
    };
    let Some(chain) = tessera.refresh_mac()?.verify(&token) else {
        return Ok(None);
    };
    let state = tessera
        .db
        .run(move |conn| refresh::state(conn, chain.session_id, 0.0))
        .await?;
    Ok(state.map(|state| Found { chain, state }))
}
