//! Where Redis is: one server, a Redis Cluster, or a master found through Sentinel.
//! Built valid by `config` (from `REDIS_URL` and `TESSERA_REDIS_CLUSTER_NODES`); the
//! store connects to it.

/// How Tessera reaches Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisEndpoint {
    /// One server: a `redis://` or `rediss://` URL.
    Single(String),
    /// A Redis Cluster: some of its nodes as `redis://` URLs; the client learns the
    /// rest, and who serves which slot, from them.
    Cluster(Vec<String>),
    /// A master (with replicas) watched by Sentinels, which name the current master.
    Sentinel(SentinelEndpoint),
}

/// A `redis+sentinel://` URL, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelEndpoint {
    /// The Sentinels, host and port each.
    pub sentinels: Vec<(String, u16)>,
    /// The name the Sentinels know the master by.
    pub master: String,
    pub db: i64,
    /// Credentials for the master and its replicas.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Credentials for the Sentinels themselves, when they ask for them.
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
}

impl RedisEndpoint {
    /// A copy safe to print: every password shown as `[redacted]`.
    pub fn redacted(&self) -> RedisEndpoint {
        let hide = |p: &Option<String>| p.as_ref().map(|_| "[redacted]".to_owned());
        match self {
            RedisEndpoint::Single(url) => RedisEndpoint::Single(without_password(url)),
            RedisEndpoint::Cluster(nodes) => {
                RedisEndpoint::Cluster(nodes.iter().map(|n| without_password(n)).collect())
            }
            RedisEndpoint::Sentinel(s) => RedisEndpoint::Sentinel(SentinelEndpoint {
                password: hide(&s.password),
                sentinel_password: hide(&s.sentinel_password),
                ..s.clone()
            }),
        }
    }

    /// Every address Tessera may talk to, for messages (never with a password).
    pub fn describe(&self) -> String {
        match self {
            RedisEndpoint::Single(url) => without_password(url),
            RedisEndpoint::Cluster(nodes) => format!(
                "cluster {}",
                nodes
                    .iter()
                    .map(|n| without_password(n))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            RedisEndpoint::Sentinel(s) => format!(
                "master `{}` by sentinels {}",
                s.master,
                s.sentinels
                    .iter()
                    .map(|(h, p)| format!("{h}:{p}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// `url` with its password, if any, shown as `[redacted]`.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[unparsable URL]".to_owned();
    };
    // The userinfo ends at the last `@` before the query (a password may hold a `/`).
    let before_query = rest.find('?').unwrap_or(rest.len());
    match rest[..before_query].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let shown = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:[redacted]"),
                None => userinfo.to_owned(),
            };
            format!("{scheme}://{shown}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            without_password("redis+sentinel://u:hunter2@a:1,b:2/mymaster"),
            "redis+sentinel://u:[redacted]@a:1,b:2/mymaster"
        );
        assert_eq!(
            without_password("redis://:p%40ss@cache:6379/0"),
            "redis://:[redacted]@cache:6379/0"
        );
        assert_eq!(
            without_password("postgres://u:pa/ss@db1:5432,db2:5432/x?sslmode=require"),
            "postgres://u:[redacted]@db1:5432,db2:5432/x?sslmode=require"
        );
        assert_eq!(without_password("redis://cache:6379"), "redis://cache:6379");
    }
}
