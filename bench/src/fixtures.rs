//! The benchmark's data: users, a confidential client and refresh tokens, written
//! straight into the database (bench/sql). Nothing here goes through a login: 100k
//! refresh tokens through 100k bcrypt verifications would take hours.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::postgres::Postgres;

/// Users per bcrypt cost; logins go round-robin over them.
pub const USERS_PER_SET: u64 = 256;

/// The refresh tokens the driver presents to Tessera.
pub const TESSERA_TOKENS: &str = "bench";
/// The refresh tokens pgbench spends, never presented to Tessera.
pub const PGBENCH_TOKENS: &str = "pgbench";

/// Token `i` of a set, as bench/sql/prepare_tokens.sql stores it: `rt_` and the
/// unpadded base64url of sha256("<set>-<i>"), the shape Tessera issues and accepts.
pub fn refresh_token(set: &str, i: u64) -> String {
    let digest = Sha256::digest(format!("{set}-{i}").as_bytes());
    format!("rt_{}", URL_SAFE_NO_PAD.encode(digest))
}

pub fn user_set(cost: u32) -> String {
    format!("bench{cost}")
}

pub fn username(cost: u32, i: u64) -> String {
    format!("{}-{}", user_set(cost), i % USERS_PER_SET)
}

/// 32 bytes from the kernel's CSPRNG, base64url.
fn random_string() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A value the driver needs but must never print.
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn random(prefix: &str) -> anyhow::Result<Self> {
        Ok(Self(format!("{prefix}{}", random_string()?)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Creates the users of one bcrypt cost, sharing one hash of `password`.
pub fn create_users(pg: &Postgres, cost: u32, password: &Secret) -> anyhow::Result<()> {
    let hash = bcrypt::hash(password.expose(), cost).context("bcrypt")?;
    pg.run_file(
        "prepare_users.sql",
        &[
            ("set", user_set(cost)),
            ("count", USERS_PER_SET.to_string()),
            ("password_hash", hash),
        ],
    )
}

/// The confidential client of the client_credentials and introspection scenarios.
pub struct ConfidentialClient {
    pub id: String,
    pub secret: Secret,
}

impl ConfidentialClient {
    pub fn create(pg: &Postgres) -> anyhow::Result<Self> {
        // The shape of the secrets Tessera generates (src/auth/clients.rs).
        let client = Self {
            id: "bench-service".to_owned(),
            secret: Secret::random("cs_")?,
        };
        let hash = hex::encode(Sha256::digest(client.secret.expose().as_bytes()));
        pg.run_file(
            "prepare_client.sql",
            &[("client_id", client.id.clone()), ("secret_hash", hash)],
        )?;
        Ok(client)
    }
}

/// A growing set of prepared refresh tokens, each handed out once.
pub struct TokenSet {
    name: &'static str,
    owners: String,
    prepared: AtomicU64,
    next: AtomicU64,
}

impl TokenSet {
    pub fn new(name: &'static str, owner_cost: u32) -> Arc<Self> {
        Arc::new(Self {
            name,
            owners: user_set(owner_cost),
            prepared: AtomicU64::new(0),
            next: AtomicU64::new(0),
        })
    }

    /// A token never handed out before, or `None` when the prepared ones are spent.
    pub fn take(&self) -> Option<String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.prepared.load(Ordering::Relaxed)).then(|| refresh_token(self.name, i))
    }

    /// Token numbers handed out so far (or reserved for pgbench via [`Self::reserve`]).
    pub fn used(&self) -> u64 {
        self.next
            .load(Ordering::Relaxed)
            .min(self.prepared.load(Ordering::Relaxed))
    }

    /// Reserves `count` tokens for someone else (pgbench), returning the first number.
    pub fn reserve(&self, count: u64) -> u64 {
        self.next.fetch_add(count, Ordering::Relaxed)
    }

    /// Makes sure at least `fresh` tokens are prepared beyond those handed out. Call
    /// it between scenarios, never during one: inserting is heavy.
    pub fn ensure_fresh(&self, pg: &Postgres, fresh: u64) -> anyhow::Result<()> {
        let prepared = self.prepared.load(Ordering::Relaxed);
        // After a run dry the counter is past the end; the numbers it skipped were
        // never presented, and preparing them too keeps the sequence simple.
        let wanted = self.next.load(Ordering::Relaxed) + fresh;
        if wanted <= prepared {
            return Ok(());
        }
        pg.run_file(
            "prepare_tokens.sql",
            &[
                ("prefix", self.name.to_owned()),
                ("first", prepared.to_string()),
                ("last", (wanted - 1).to_string()),
                ("user_set", self.owners.clone()),
                ("users", USERS_PER_SET.to_string()),
            ],
        )?;
        // Fresh statistics, so the planner sees the tables as they now are.
        pg.query("VACUUM ANALYZE sessions, refresh_tokens")?;
        self.prepared.store(wanted, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::refresh_token;

    #[test]
    fn tokens_have_the_shape_tessera_issues() {
        let token = refresh_token("bench", 7);
        assert_eq!(token.len(), 46);
        assert!(token.starts_with("rt_"));
        assert!(!token.contains('='));
    }

    #[test]
    fn tokens_match_the_sql_derivation() {
        // sha256('t-7') in base64url, as bench/sql/prepare_tokens.sql computes it.
        assert_eq!(
            refresh_token("t", 7),
            "rt_TksI-v1bbh6sW_nULOAiMLfBNtu-28gh2zpyFdVtjvY"
        );
    }
}
