//! How long a JWKS response may be used without asking again (RFC 9111), as far as a
//! private cache holding a single document needs it.

use std::time::Duration;

use reqwest::header::{HeaderMap, AGE, CACHE_CONTROL, ETAG};

/// Nobody needs keys cached longer than a day, and a typo like `max-age=31536000` must
/// not pin a key that Tessera has since withdrawn.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Freshness {
    /// How long from now the response is fresh. Zero means "revalidate when next
    /// used" (still at most once per `min_refresh_interval`).
    pub lifetime: Duration,
    /// The validator to send as `If-None-Match`; none under `no-store`.
    pub etag: Option<String>,
}

/// `no-store` and `no-cache` make the response stale at once (and `no-store` drops
/// the validator), `max-age` minus `Age` is the lifetime, anything else gets
/// `default_lifetime`. `s-maxage` is for shared caches and does not apply to us.
pub(crate) fn freshness(headers: &HeaderMap, default_lifetime: Duration) -> Freshness {
    let mut max_age = None;
    let mut no_cache = false;
    let mut no_store = false;
    let directives = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for directive in directives {
        let (name, value) = match directive.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("max-age") {
            // RFC 9111 §4.2.1: an invalid max-age makes the response stale; the first
            // one wins when repeated.
            let seconds = value.and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            max_age.get_or_insert(Duration::from_secs(seconds));
        } else if name.eq_ignore_ascii_case("no-cache") {
            no_cache = true;
        } else if name.eq_ignore_ascii_case("no-store") {
            no_store = true;
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_default();
    let lifetime = if no_store || no_cache {
        Duration::ZERO
    } else {
        max_age
            .map(|max_age| max_age.saturating_sub(age))
            .unwrap_or(default_lifetime)
            .min(MAX_LIFETIME)
    };
    let etag = if no_store {
        None
    } else {
        headers
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Freshness { lifetime, etag }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    const DEFAULT: Duration = Duration::from_secs(300);

    fn headers(pairs: &[(reqwest::header::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn max_age_sets_the_lifetime() {
        let f = freshness(
            &headers(&[(CACHE_CONTROL, "public, max-age=60"), (ETAG, "\"v1\"")]),
            DEFAULT,
        );
        assert_eq!(f.lifetime, Duration::from_secs(60));
        assert_eq!(f.etag.as_deref(), Some("\"v1\""));
    }

    #[test]
    fn age_is_subtracted() {
        let f = freshness(
            &headers(&[(CACHE_CONTROL, "max-age=60"), (AGE, "45")]),
            DEFAULT,
        );
        assert_eq!(f.lifetime, Duration::from_secs(15));
    }

    #[test]
    fn without_max_age_the_default_applies() {
        assert_eq!(freshness(&headers(&[]), DEFAULT).lifetime, DEFAULT);
        assert_eq!(
            freshness(&headers(&[(CACHE_CONTROL, "public")]), DEFAULT).lifetime,
            DEFAULT
        );
    }

    #[test]
    fn no_cache_means_revalidate() {
        let f = freshness(
            &headers(&[(CACHE_CONTROL, "no-cache, max-age=600"), (ETAG, "\"v1\"")]),
            DEFAULT,
        );
        assert_eq!(f.lifetime, Duration::ZERO);
        assert!(f.etag.is_some());
    }

    #[test]
    fn no_store_drops_the_validator() {
        let f = freshness(
            &headers(&[(CACHE_CONTROL, "no-store"), (ETAG, "\"v1\"")]),
            DEFAULT,
        );
        assert_eq!(f.lifetime, Duration::ZERO);
        assert_eq!(f.etag, None);
    }

    #[test]
    fn a_huge_max_age_is_capped() {
        let f = freshness(&headers(&[(CACHE_CONTROL, "max-age=31536000")]), DEFAULT);
        assert_eq!(f.lifetime, MAX_LIFETIME);
    }

    #[test]
    fn directives_are_case_insensitive_and_may_span_headers() {
        let f = freshness(
            &headers(&[(CACHE_CONTROL, "public"), (CACHE_CONTROL, "Max-Age=\"30\"")]),
            DEFAULT,
        );
        assert_eq!(f.lifetime, Duration::from_secs(30));
    }
}
