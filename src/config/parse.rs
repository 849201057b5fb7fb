//! Parsers of raw values. Each takes the trimmed text of one variable and says what is
//! wrong in words an operator can act on; the caller adds the variable's name.

use std::net::SocketAddr;
use std::time::Duration;

use crate::domain::{RedisEndpoint, SentinelEndpoint};

const DURATION_FORMS: &str = "a duration like 300, 90s, 5m, 12h or 14d";

/// A duration: a whole number of seconds, or a number with a unit (`250ms`, `90s`,
/// `5m`, `12h`, `14d`, and what else `humantime` reads, such as `1h 30m`).
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    // A bare number is seconds, which humantime (rightly, in general) refuses.
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v
            .parse()
            .map(Duration::from_secs)
            .map_err(|_| format!("`{v}` is not {DURATION_FORMS}"));
    }
    humantime::parse_duration(v).map_err(|e| match e {
        humantime::DurationError::NumberOverflow => format!("`{v}` is too long"),
        _ => format!("`{v}` is not {DURATION_FORMS}"),
    })
}

pub(super) fn duration_within(v: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if d < min || d > max {
        return Err(format!(
            "`{v}` must be between {}s and {}s",
            min.as_secs_f64(),
            max.as_secs_f64()
        ));
    }
    Ok(d)
}

pub(super) fn number_within<T>(v: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match v.parse::<T>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        _ => Err(format!("`{v}` is not a whole number from {min} to {max}")),
    }
}

pub(super) fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("`{v}` is not a boolean (true/false)")),
    }
}

/// A listening address; `example` is shown in the message (`127.0.0.1:8080`).
pub(super) fn socket_address(v: &str, example: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| format!("`{v}` is not an address like {example}"))
}

pub(super) fn issuer(v: &str) -> Result<String, String> {
    // RFC 8414 §2: an https URL with no query or fragment (http is allowed for local use).
    let ok_scheme = v.starts_with("https://") || v.starts_with("http://");
    if !ok_scheme || v.contains(['?', '#']) || v.chars().any(|c| c.is_whitespace()) {
        return Err(format!(
            "`{v}` is not an http(s) URL without query or fragment"
        ));
    }
    Ok(v.trim_end_matches('/').to_owned())
}

/// Exact origins (`https://app.example.com`), comma-separated; never `*`.
pub(super) fn origins(v: &str) -> Result<Vec<String>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let scheme_ok = o.starts_with("https://") || o.starts_with("http://");
            let host = o.split_once("://").map(|(_, h)| h).unwrap_or_default();
            if scheme_ok && !host.is_empty() && !host.contains(['/', '*', ' ', '?', '#']) {
                Ok(o.to_owned())
            } else {
                Err(format!(
                    "`{o}` is not an origin like https://app.example.com (no path, no wildcard)"
                ))
            }
        })
        .collect()
}

/// A `tracing` filter such as `info` or `tessera=debug,actix_web=info`.
pub(super) fn log_filter(v: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(v)
        .map(|_| v.to_owned())
        .map_err(|e| {
            format!("`{v}` is not a log filter like `info` or `tessera=debug,actix_web=info`: {e}")
        })
}

/// `DATABASE_URL`. One naming several hosts (for failover) gets `connect_timeout=2`
/// unless it sets one: libpq and tokio-postgres try the hosts in order, and a first
/// host whose machine is gone (packets dropped, not refused) would otherwise hold every
/// new connection for the operating system's TCP timeout, longer than any pool waits.
pub(super) fn postgres_url(v: &str) -> Result<String, String> {
    let Some(rest) = v
        .strip_prefix("postgres://")
        .or_else(|| v.strip_prefix("postgresql://"))
    else {
        return Err("must be a postgres:// URL".to_owned());
    };
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let hosts = before_query.split('/').next().unwrap_or_default();
    let hosts = hosts.rsplit_once('@').map_or(hosts, |(_, hosts)| hosts);
    let has_timeout = query.split('&').any(|p| p.starts_with("connect_timeout="));
    if !hosts.contains(',') || has_timeout {
        return Ok(v.to_owned());
    }
    let separator = if v.contains('?') { "&" } else { "?" };
    Ok(format!("{v}{separator}connect_timeout=2"))
}

/// `REDIS_URL`: a `redis://` or `rediss://` URL for one server, or
/// `redis+sentinel://[user:password@]host[:port][,host[:port]...]/master[/db]` for a
/// master found through Sentinel (port 26379 unless given; `sentinel_username` and
/// `sentinel_password` in the query when the Sentinels ask for credentials).
pub(super) fn redis_url(v: &str) -> Result<RedisEndpoint, String> {
    if let Some(rest) = v.strip_prefix("redis+sentinel://") {
        return sentinel_url(rest).map(RedisEndpoint::Sentinel);
    }
    redis::parse_redis_url(v)
        .filter(|u| matches!(u.scheme(), "redis" | "rediss"))
        .map(|_| RedisEndpoint::Single(v.to_owned()))
        .ok_or_else(|| "must be a redis://, rediss:// or redis+sentinel:// URL".to_owned())
}

fn sentinel_url(rest: &str) -> Result<SentinelEndpoint, String> {
    const FORM: &str = "a redis+sentinel:// URL must read \
        redis+sentinel://[user:password@]host[:port][,host[:port]...]/master[/db]";
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').ok_or(FORM)?;
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let decode = |s: &str| -> Result<Option<String>, String> {
        let decoded = percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .map_err(|_| "the credentials are not UTF-8".to_owned())?;
        Ok((!decoded.is_empty()).then(|| decoded.into_owned()))
    };
    let (username, password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((user, password)) => (decode(user)?, decode(password)?),
            None => (decode(info)?, None),
        },
        None => (None, None),
    };
    let sentinels = hosts
        .split(',')
        .map(|host| host_and_port(host, 26379))
        .collect::<Result<Vec<_>, _>>()?;
    let mut segments = path.trim_end_matches('/').split('/');
    let master = segments.next().filter(|m| !m.is_empty()).ok_or(FORM)?;
    let db = match segments.next() {
        None => 0,
        Some(db) => db
            .parse::<i64>()
            .ok()
            .filter(|db| *db >= 0)
            .ok_or_else(|| format!("`{db}` is not a database number"))?,
    };
    if segments.next().is_some() {
        return Err(FORM.to_owned());
    }
    let mut endpoint = SentinelEndpoint {
        sentinels,
        master: decode(master)?.ok_or(FORM)?,
        db,
        username,
        password,
        sentinel_username: None,
        sentinel_password: None,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sentinel_username" => endpoint.sentinel_username = decode(value)?,
            "sentinel_password" => endpoint.sentinel_password = decode(value)?,
            other => return Err(format!("`{other}` is not a redis+sentinel:// option")),
        }
    }
    Ok(endpoint)
}

/// `host[:port]`, `[v6]` or `[v6]:port`.
fn host_and_port(v: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad = || format!("`{v}` is not a host[:port]");
    let (host, port) = if let Some(v6) = v.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match v.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (v, None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(bad());
    }
    let port = match port {
        Some(port) => port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?,
        None => default_port,
    };
    Ok((host.to_owned(), port))
}

/// `TESSERA_REDIS_CLUSTER_NODES`: some nodes of a Redis Cluster, comma-separated, each a
/// `redis://`/`rediss://` URL or a `host:port` that takes the scheme and credentials of
/// `REDIS_URL`.
pub(super) fn redis_cluster_nodes(v: &str, url: &RedisEndpoint) -> Result<RedisEndpoint, String> {
    let RedisEndpoint::Single(base) = url else {
        return Err("cannot be combined with a redis+sentinel:// REDIS_URL".to_owned());
    };
    let base = url::Url::parse(base).map_err(|e| e.to_string())?;
    let nodes = v
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|node| {
            if node.contains("://") {
                return match redis::parse_redis_url(node) {
                    Some(u) if matches!(u.scheme(), "redis" | "rediss") => Ok(node.to_owned()),
                    _ => Err(format!("`{node}` is not a redis:// or rediss:// URL")),
                };
            }
            let (host, port) = host_and_port(node, 6379)?;
            let mut url = base.clone();
            url.set_host(Some(&host))
                .map_err(|e| format!("`{node}`: {e}"))?;
            url.set_port(Some(port))
                .map_err(|()| format!("`{node}`: no port"))?;
            url.set_path("");
            Ok(url.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    if nodes.is_empty() {
        return Err("names no node".to_owned());
    }
    Ok(RedisEndpoint::Cluster(nodes))
}

pub(super) fn redis_prefix(v: &str) -> Result<String, String> {
    // Braces would change the hash tags that keep related keys together on a Cluster.
    if v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
    {
        Ok(v.to_owned())
    } else {
        Err("must be at most 64 visible ASCII characters, without braces".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentinel_urls_name_the_master_and_every_sentinel() {
        let RedisEndpoint::Sentinel(s) = redis_url(
            "redis+sentinel://:p%40ss@s1,s2:26380,[::1]:26381/mymaster/2?sentinel_password=x",
        )
        .unwrap() else {
            panic!("not a sentinel endpoint");
        };
        assert_eq!(
            s.sentinels,
            [
                ("s1".to_owned(), 26379),
                ("s2".to_owned(), 26380),
                ("::1".to_owned(), 26381)
            ]
        );
        assert_eq!((s.master.as_str(), s.db), ("mymaster", 2));
        assert_eq!((s.username, s.password.as_deref()), (None, Some("p@ss")));
        assert_eq!(s.sentinel_password.as_deref(), Some("x"));
        for bad in [
            "redis+sentinel://s1:26379",
            "redis+sentinel://s1:26379/",
            "redis+sentinel://s1:port/m",
            "redis+sentinel://s1/m/x",
            "redis+sentinel://s1/m?tls=1",
            "memcached://s1",
        ] {
            assert!(redis_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn failover_database_urls_get_a_connect_timeout() {
        assert_eq!(
            postgres_url("postgres://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write"),
            Ok("postgres://u:p@h1:5432,h2:5432/db?target_session_attrs=read-write&connect_timeout=2".to_owned())
        );
        for kept in [
            "postgres://u@h1,h2/db?connect_timeout=5",
            "postgres://u@h1:5432/db",
        ] {
            assert_eq!(postgres_url(kept).as_deref(), Ok(kept));
        }
    }

    #[test]
    fn cluster_nodes_take_the_credentials_of_redis_url() {
        let base = redis_url("redis://:secret@ignored:6379/0").unwrap();
        assert_eq!(
            redis_cluster_nodes("10.0.0.1:7000, 10.0.0.2:7001,rediss://other:7002", &base),
            Ok(RedisEndpoint::Cluster(vec![
                "redis://:secret@10.0.0.1:7000".to_owned(),
                "redis://:secret@10.0.0.2:7001".to_owned(),
                "rediss://other:7002".to_owned(),
            ]))
        );
        let sentinel = redis_url("redis+sentinel://s1/m").unwrap();
        assert!(redis_cluster_nodes("a:1", &sentinel).is_err());
        assert!(redis_cluster_nodes(" , ", &base).is_err());
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5 m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("14d"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-5").is_err());
    }

    #[test]
    fn a_bad_duration_shows_the_accepted_forms() {
        assert_eq!(
            parse_duration("forever"),
            Err("`forever` is not a duration like 300, 90s, 5m, 12h or 14d".to_owned())
        );
        assert_eq!(
            parse_duration("99999999999999999999d"),
            Err("`99999999999999999999d` is too long".to_owned())
        );
    }

    #[test]
    fn a_duration_out_of_range_names_the_range() {
        assert_eq!(
            duration_within("5s", Duration::from_secs(10), Duration::from_secs(60)),
            Err("`5s` must be between 10s and 60s".to_owned())
        );
        assert_eq!(
            duration_within("250ms", Duration::from_millis(100), Duration::from_secs(1)),
            Ok(Duration::from_millis(250))
        );
    }

    #[test]
    fn numbers_are_whole_and_in_range() {
        assert_eq!(number_within("12", 4u32, 31), Ok(12));
        assert_eq!(
            number_within("99", 4u32, 31),
            Err("`99` is not a whole number from 4 to 31".to_owned())
        );
        assert!(number_within("1.5", 1u32, 2).is_err());
    }

    #[test]
    fn booleans_take_the_usual_words() {
        for yes in ["1", "true", "YES", "on"] {
            assert_eq!(boolean(yes), Ok(true), "{yes}");
        }
        for no in ["0", "False", "no", "off"] {
            assert_eq!(boolean(no), Ok(false), "{no}");
        }
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn origins_are_exact() {
        assert_eq!(
            origins("https://a.example, http://localhost:5173"),
            Ok(vec![
                "https://a.example".to_owned(),
                "http://localhost:5173".to_owned()
            ])
        );
        assert!(origins("https://*.example").is_err());
        assert!(origins("https://a.example/path").is_err());
        assert!(origins("*").is_err());
    }

    #[test]
    fn an_issuer_loses_its_trailing_slash_and_may_not_carry_a_query() {
        assert_eq!(
            issuer("https://auth.example.com/"),
            Ok("https://auth.example.com".to_owned())
        );
        assert!(issuer("https://auth.example.com/?x=1").is_err());
        assert!(issuer("ftp://auth.example.com").is_err());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn durations_never_panic(raw in "\\PC{0,30}") {
            let _ = super::parse_duration(&raw);
        }

        #[test]
        fn seconds_parse_as_seconds(n in 0u64..1_000_000) {
            prop_assert_eq!(super::parse_duration(&n.to_string()), Ok(std::time::Duration::from_secs(n)));
        }

        #[test]
        fn a_unit_multiplies(n in 0u64..100_000) {
            prop_assert_eq!(super::parse_duration(&format!("{n}ms")), Ok(std::time::Duration::from_millis(n)));
            prop_assert_eq!(super::parse_duration(&format!("{n}m")), Ok(std::time::Duration::from_secs(n * 60)));
            prop_assert_eq!(super::parse_duration(&format!("{n}d")), Ok(std::time::Duration::from_secs(n * 86_400)));
        }
    }
}

/// A name to show people: 1 to 64 characters, no control characters.
pub(super) fn display_name(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > 64 || v.chars().any(char::is_control) {
        return Err("must be 1 to 64 printable characters".to_owned());
    }
    Ok(v.to_owned())
}

/// An image a login page may load: an absolute https URL (http only on loopback).
pub(super) fn image_url(v: &str) -> Result<String, String> {
    let url = url::Url::parse(v).map_err(|_| format!("`{v}` is not an absolute URL"))?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(v.to_owned()),
        "http" if loopback => Ok(v.to_owned()),
        _ => Err(format!("`{v}` must be an https URL")),
    }
}

/// A CSS colour as `#rgb` or `#rrggbb`.
pub(super) fn css_hex_color(v: &str) -> Result<String, String> {
    let hex = v.strip_prefix('#').unwrap_or("");
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(format!("`{v}` is not a colour like #2454d6"))
    }
}
