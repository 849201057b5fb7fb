//! bcrypt, run off the async workers with a bounded number of hashes in flight, so a
//! login flood queues here instead of stalling refreshes, JWKS or anything else.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::domain::{NewPassword, Password};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("bcrypt failed: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("the password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

struct Inner {
    cost: u32,
    permits: Semaphore,
    /// Verified against when the account does not exist, so that an unknown username
    /// costs the same time as a wrong password.
    dummy_hash: String,
    waiting: AtomicUsize,
    running: AtomicUsize,
    total: AtomicU64,
}

#[derive(Clone)]
pub struct PasswordHasher(Arc<Inner>);

impl PasswordHasher {
    pub async fn new(cost: u32, max_in_flight: usize) -> Result<Self, HashError> {
        let mut random = [0u8; 24];
        aws_lc_rs::rand::fill(&mut random).expect("the system random generator failed");
        let dummy_hash = tokio::task::spawn_blocking(move || bcrypt::hash(random, cost)).await??;
        Ok(Self(Arc::new(Inner {
            cost,
            permits: Semaphore::new(max_in_flight),
            dummy_hash,
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            total: AtomicU64::new(0),
        })))
    }

    pub fn cost(&self) -> u32 {
        self.0.cost
    }

    /// (waiting, running) bcrypt jobs right now.
    pub fn load(&self) -> (usize, usize) {
        (
            self.0.waiting.load(Ordering::Relaxed),
            self.0.running.load(Ordering::Relaxed),
        )
    }

    /// bcrypt jobs run since start.
    pub fn jobs_total(&self) -> u64 {
        self.0.total.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: NewPassword) -> Result<String, HashError> {
        let cost = self.0.cost;
        self.run(move || Ok(bcrypt::non_truncating_hash(password.expose(), cost)?))
            .await
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is no
    /// account, taking the same time either way. A password longer than bcrypt's 72
    /// bytes can never have been set, so it simply does not match.
    pub async fn verify(
        &self,
        password: Password,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        let inner = Arc::clone(&self.0);
        self.run(move || {
            let (hash, exists) = match &hash {
                Some(h) => (h.as_str(), true),
                None => (inner.dummy_hash.as_str(), false),
            };
            match bcrypt::non_truncating_verify(password.expose(), hash) {
                Ok(matched) => Ok(matched && exists),
                Err(bcrypt::BcryptError::Truncation(_)) => {
                    // Spend the time anyway: the answer must not come back faster.
                    let _ = bcrypt::verify(&password.expose().as_bytes()[..72], hash);
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// True when `hash` was made with another cost than the configured one.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        hash_cost(hash) != Some(self.0.cost)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        self.0.waiting.fetch_add(1, Ordering::Relaxed);
        let permit = self.0.permits.acquire().await;
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
        let _permit = permit.expect("the bcrypt semaphore is never closed");
        self.0.running.fetch_add(1, Ordering::Relaxed);
        self.0.total.fetch_add(1, Ordering::Relaxed);
        let result = tokio::task::spawn_blocking(job).await;
        self.0.running.fetch_sub(1, Ordering::Relaxed);
        result?
    }
}

/// The cost of a `$2b$12$...` hash.
fn hash_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_and_rejects() {
        let hasher = PasswordHasher::new(4, 2).await.unwrap();
        let hash = hasher
            .hash(NewPassword::parse("correct horse".into(), 8).unwrap())
            .await
            .unwrap();
        assert!(!hasher.needs_rehash(&hash));
        let ok = |p: &str| Password::parse(p.into()).unwrap();
        assert!(hasher
            .verify(ok("correct horse"), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!hasher
            .verify(ok("wrong horse"), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!hasher.verify(ok("correct horse"), None).await.unwrap());
        // 73 bytes whose first 72 match must not be accepted (no truncation).
        let long = format!("{}x", "a".repeat(72));
        let hash72 = bcrypt::hash("a".repeat(72), 4).unwrap();
        assert!(!hasher.verify(ok(&long), Some(hash72)).await.unwrap());
    }

    #[test]
    fn reads_the_cost_of_a_hash() {
        assert_eq!(hash_cost("$2b$12$abcdefghijklmnopqrstuv"), Some(12));
        assert_eq!(hash_cost("garbage"), None);
    }
}
