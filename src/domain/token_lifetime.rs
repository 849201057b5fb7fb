use std::time::Duration;

/// The shortest lifetime an access token may be configured with (setting or client
/// override).
pub(crate) const MIN_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(10);

/// No access token lives longer than this, whatever the configuration or a client's
/// override: revocations and retired keys are kept for this long, so that lowering a
/// lifetime or deleting a client never lets an older, longer-lived token slip through.
pub(crate) const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(86_400);

/// A client's access-token lifetime override, in whole seconds within
/// [`MIN_ACCESS_TOKEN_TTL`] and [`MAX_ACCESS_TOKEN_TTL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AccessTokenTtl(u32);

/// A lifetime outside [`MIN_ACCESS_TOKEN_TTL`] ..= [`MAX_ACCESS_TOKEN_TTL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be from {} to {}",
    MIN_ACCESS_TOKEN_TTL.as_secs(),
    MAX_ACCESS_TOKEN_TTL.as_secs()
)]
pub(crate) struct TtlOutOfRange;

impl AccessTokenTtl {
    pub(crate) fn from_secs(seconds: i64) -> Result<Self, TtlOutOfRange> {
        let within = u64::try_from(seconds).is_ok_and(|s| {
            (MIN_ACCESS_TOKEN_TTL.as_secs()..=MAX_ACCESS_TOKEN_TTL.as_secs()).contains(&s)
        });
        match u32::try_from(seconds) {
            Ok(s) if within => Ok(Self(s)),
            _ => Err(TtlOutOfRange),
        }
    }

    pub(crate) fn as_secs(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lifetimes_within_the_cap_are_taken() {
        assert_eq!(AccessTokenTtl::from_secs(10).unwrap().as_secs(), 10);
        assert_eq!(AccessTokenTtl::from_secs(86_400).unwrap().as_secs(), 86_400);
        for out in [9, 86_401, 0, -1, i64::MAX] {
            assert_eq!(AccessTokenTtl::from_secs(out), Err(TtlOutOfRange), "{out}");
        }
        assert_eq!(TtlOutOfRange.to_string(), "must be from 10 to 86400");
    }
}
