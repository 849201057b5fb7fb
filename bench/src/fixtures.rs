//! The benchmark's data: users, a confidential client and sessions with their refresh
//! tokens, written straight into the database (bench/sql). Nothing here goes through a
//! login: 100k refresh tokens through 100k bcrypt verifications would take hours.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::postgres::Postgres;

/// Users per bcrypt cost; logins go round-robin over them.
pub const USERS_PER_SET: u64 = 256;

/// The refresh tokens the driver presents to Tessera.
pub const TESSERA_TOKENS: &str = "bench";
/// The refresh tokens pgbench spends, never presented to Tessera.
pub const PGBENCH_TOKENS: &str = "pgbench";

/// HKDF salt and purpose of Tessera's refresh-token MAC key (src/auth/master_key.rs,
/// src/auth/refresh_mac.rs): the same derivation, so the tokens are genuine.
const DERIVATION_SALT: &[u8] = b"tessera/master-key";
const REFRESH_MAC_PURPOSE: &[u8] = b"refresh-token-mac/v1";
/// The first byte of a refresh token (src/domain/refresh_token.rs).
const TOKEN_VERSION: u8 = 1;

/// The key Tessera checks refresh tokens with, derived from the master key the bench
/// gives the server: HKDF-SHA256 (salt `tessera/master-key`, info
/// `refresh-token-mac/v1`), 32 bytes, used as an HMAC-SHA256 key.
#[derive(Clone)]
pub struct RefreshKey(Hmac<Sha256>);

impl RefreshKey {
    pub fn from_master(master: &[u8; 32]) -> Self {
        let mut okm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(DERIVATION_SALT), master)
            .expand(REFRESH_MAC_PURPOSE, &mut okm)
            .expect("32 bytes is one block of HKDF-SHA256");
        Self(Hmac::new_from_slice(&okm).expect("HMAC takes a key of any length"))
    }

    /// The token of (session, generation): `rt_` and unpadded base64url of
    /// `version 1 || session id (16) || generation (u64, big-endian) || tag (32)`,
    /// the tag HMAC-SHA256 over the first 25 bytes.
    pub fn token(&self, session: [u8; 16], generation: u64) -> String {
        let mut bytes = Vec::with_capacity(57);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&session);
        bytes.extend_from_slice(&generation.to_be_bytes());
        let mut mac = self.0.clone();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        format!("rt_{}", URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl std::fmt::Debug for RefreshKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshKey([redacted])")
    }
}

/// The id of session `i` of a set, as bench/sql/prepare_tokens.sql computes it:
/// `md5('<set>-session-<i>')::uuid`, whose 16 bytes are the digest itself.
pub fn session_id(set: &str, i: u64) -> [u8; 16] {
    Md5::digest(format!("{set}-session-{i}").as_bytes()).into()
}

/// Token `i` of a set: the refresh token of its prepared session at generation 0, the
/// one a login would have handed out.
pub fn refresh_token(key: &RefreshKey, set: &str, i: u64) -> String {
    key.token(session_id(set, i), 0)
}

/// Code `i` of a set, as bench/sql/prepare_codes.sql stores its hash: `ac_` and the
/// base64url of sha256('<set>-code-<i>') (the shape of Tessera's codes: 256 bits).
pub fn authorization_code(set: &str, i: u64) -> String {
    let digest = Sha256::digest(format!("{set}-code-{i}").as_bytes());
    format!("ac_{}", URL_SAFE_NO_PAD.encode(digest))
}

/// RFC 7636 Appendix B: the verifier whose S256 challenge bench/sql/prepare_codes.sql
/// binds every code to.
pub const CODE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A growing set of prepared authorization codes, each exchanged once.
pub struct CodeSet {
    name: &'static str,
    owners: String,
    prepared: AtomicU64,
    next: AtomicU64,
}

impl CodeSet {
    pub fn new(name: &'static str, owner_cost: u32) -> Arc<Self> {
        Arc::new(Self {
            name,
            owners: user_set(owner_cost),
            prepared: AtomicU64::new(0),
            next: AtomicU64::new(0),
        })
    }

    /// A code never presented before, or `None` when the prepared ones are spent.
    pub fn take(&self) -> Option<String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.prepared.load(Ordering::Relaxed)).then(|| authorization_code(self.name, i))
    }

    /// Makes sure at least `fresh` codes are prepared beyond those handed out (between
    /// scenarios, never during one).
    pub fn ensure_fresh(&self, pg: &Postgres, fresh: u64) -> anyhow::Result<()> {
        let prepared = self.prepared.load(Ordering::Relaxed);
        let wanted = self.next.load(Ordering::Relaxed) + fresh;
        if wanted <= prepared {
            return Ok(());
        }
        pg.run_file(
            "prepare_codes.sql",
            &[
                ("prefix", self.name.to_owned()),
                ("first", prepared.to_string()),
                ("last", (wanted - 1).to_string()),
                ("user_set", self.owners.clone()),
            ],
        )?;
        pg.query("VACUUM ANALYZE authorization_codes")?;
        self.prepared.store(wanted, Ordering::Relaxed);
        Ok(())
    }
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

/// A growing set of prepared sessions, each with its generation-0 refresh token,
/// handed out once.
pub struct TokenSet {
    name: &'static str,
    owners: String,
    key: RefreshKey,
    prepared: AtomicU64,
    next: AtomicU64,
}

impl TokenSet {
    pub fn new(name: &'static str, owner_cost: u32, key: RefreshKey) -> Arc<Self> {
        Arc::new(Self {
            name,
            owners: user_set(owner_cost),
            key,
            prepared: AtomicU64::new(0),
            next: AtomicU64::new(0),
        })
    }

    /// A token never handed out before, or `None` when the prepared ones are spent.
    pub fn take(&self) -> Option<String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.prepared.load(Ordering::Relaxed)).then(|| refresh_token(&self.key, self.name, i))
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

    /// Makes sure at least `fresh` sessions are prepared beyond those handed out. Call
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
        pg.query("VACUUM ANALYZE sessions")?;
        self.prepared.store(wanted, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use hmac::Mac;

    use super::{refresh_token, session_id, RefreshKey};

    /// `SELECT md5('t-session-7')::uuid`, as PostgreSQL 15 printed it.
    const SQL_SESSION_T_7: &str = "24ce6416-98d8-1db1-edf9-9a0ea6ba7d2b";

    fn key() -> RefreshKey {
        RefreshKey::from_master(&[7; 32])
    }

    #[test]
    fn codes_have_the_shape_tessera_issues() {
        let code = super::authorization_code("c", 7);
        assert!(code.starts_with("ac_") && code.len() == 46, "{code}");
    }

    #[test]
    fn tokens_have_the_shape_tessera_issues() {
        let token = refresh_token(&key(), "bench", 7);
        // rt_ + base64url of 57 bytes (src/domain/refresh_token.rs, LEN).
        assert_eq!(token.len(), 79);
        assert!(token.starts_with("rt_"));
        assert!(!token.contains('='));
    }

    #[test]
    fn tokens_match_a_fixed_vector() {
        // Computed once, outside this crate, with Python's hmac and hashlib: HKDF-SHA256
        // of master key [7; 32] (salt "tessera/master-key", info
        // "refresh-token-mac/v1"), then HMAC-SHA256 over 0x01 || md5("t-session-7") ||
        // 0u64 big-endian.
        assert_eq!(
            refresh_token(&key(), "t", 7),
            "rt_ASTOZBaY2B2x7fmaDqa6fSsAAAAAAAAAAOOlP4_Y5coRoKYO0gx6Rv4MAsMN8RA12XdmG7ZlM0XU"
        );
    }

    #[test]
    fn a_token_names_the_session_sql_derives_at_generation_0() {
        let token = refresh_token(&key(), "t", 7);
        let bytes = URL_SAFE_NO_PAD.decode(&token[3..]).unwrap();
        assert_eq!(bytes.len(), 57);
        assert_eq!(bytes[0], 1, "version");
        let sql_id = hex::decode(SQL_SESSION_T_7.replace('-', "")).unwrap();
        assert_eq!(&bytes[1..17], &sql_id[..], "md5('t-session-7')::uuid");
        assert_eq!(&bytes[1..17], &session_id("t", 7));
        assert_eq!(&bytes[17..25], &[0u8; 8], "generation 0");
        let mut mac = key().0;
        mac.update(&bytes[..25]);
        mac.verify_slice(&bytes[25..])
            .expect("the tag covers the first 25 bytes");
    }

    #[test]
    fn another_master_key_or_generation_gives_another_token() {
        let other = RefreshKey::from_master(&[8; 32]);
        assert_ne!(refresh_token(&key(), "t", 7), refresh_token(&other, "t", 7));
        let id = session_id("t", 7);
        assert_ne!(key().token(id, 0), key().token(id, 1));
    }
}
