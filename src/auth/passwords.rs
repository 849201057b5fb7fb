//! bcrypt, on its own small pool of threads (one per allowed job in flight) that run
//! at a lower CPU priority. A login flood queues here: it cannot stall refreshes, JWKS
//! or anything else on the async workers, and when other work needs the CPU the kernel
//! gives it the CPU first; when nothing else runs, bcrypt still gets every core.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::domain::{NewPassword, Password, BCRYPT_MAX_BYTES};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("bcrypt failed: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("the password hashing pool is gone")]
    PoolGone,
}

type Job = Box<dyn FnOnce() + Send>;

struct Inner {
    cost: u32,
    queue: mpsc::Sender<Job>,
    /// Verified against when the account does not exist, so that an unknown username
    /// costs the same time as a wrong password.
    dummy_hash: String,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    waiting: AtomicUsize,
    running: AtomicUsize,
    total: AtomicU64,
}

#[derive(Clone)]
pub(crate) struct PasswordHasher(Arc<Inner>);

/// Lowers the calling thread's scheduling priority (Linux: per-thread nice).
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    unsafe {
        // SAFETY: plain syscalls on the current thread; failure only leaves the
        // priority unchanged.
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

impl PasswordHasher {
    /// Starts `threads` bcrypt threads at the given nice value (0 = normal priority).
    #[tracing::instrument(name = "passwords.start", level = "debug", skip_all, fields(%cost, %threads), err(level = "debug"))]
    pub(crate) async fn new(cost: u32, threads: usize, nice: i32) -> Result<Self, HashError> {
        // Bounded, so a flood waits in line (each waiter is a parked request) instead
        // of growing memory without end.
        let (queue, jobs) = mpsc::channel::<Job>(threads * 64);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("bcrypt-{n}"))
                .spawn(move || {
                    lower_priority(nice);
                    loop {
                        let job = jobs.lock().expect("bcrypt queue lock").blocking_recv();
                        match job {
                            Some(job) => job(),
                            None => return,
                        }
                    }
                })
                .expect("a bcrypt thread starts");
        }
        let counters = Arc::new(Counters::default());
        let mut random = [0u8; 24];
        aws_lc_rs::rand::fill(&mut random).expect("the system random generator failed");
        let dummy_hash = run(&queue, &counters, move || Ok(bcrypt::hash(random, cost)?)).await?;
        Ok(Self(Arc::new(Inner {
            cost,
            queue,
            dummy_hash,
            counters,
        })))
    }

    pub(crate) fn cost(&self) -> u32 {
        self.0.cost
    }

    /// (waiting, running) bcrypt jobs right now.
    pub(crate) fn load(&self) -> (usize, usize) {
        (
            self.0.counters.waiting.load(Ordering::Relaxed),
            self.0.counters.running.load(Ordering::Relaxed),
        )
    }

    /// bcrypt jobs run since start.
    pub(crate) fn jobs_total(&self) -> u64 {
        self.0.counters.total.load(Ordering::Relaxed)
    }

    #[tracing::instrument(
        name = "passwords.hash",
        level = "debug",
        skip_all,
        err(level = "debug")
    )]
    pub(crate) async fn hash(&self, password: NewPassword) -> Result<String, HashError> {
        let cost = self.0.cost;
        // bcrypt keys on at most 72 bytes, so a `NewPassword` (72 bytes at most) is
        // used whole. The crate's `non_truncating_*` calls would refuse exactly 72
        // bytes: they count the terminating NUL, which bcrypt drops at that length.
        self.run(move || Ok(bcrypt::hash(password.expose(), cost)?))
            .await
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is no
    /// account, taking the same time either way. A password longer than bcrypt's 72
    /// bytes can never have been set, so it simply does not match.
    #[tracing::instrument(
        name = "passwords.verify",
        level = "debug",
        skip_all,
        err(level = "debug")
    )]
    pub(crate) async fn verify(
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
            let bytes = password.expose().as_bytes();
            if bytes.len() > BCRYPT_MAX_BYTES {
                // Spend the time anyway: the answer must not come back faster.
                let _ = bcrypt::verify(&bytes[..BCRYPT_MAX_BYTES], hash);
                return Ok(false);
            }
            Ok(bcrypt::verify(bytes, hash)? && exists)
        })
        .await
    }

    /// True when `hash` was made with another cost than the configured one.
    pub(crate) fn needs_rehash(&self, hash: &str) -> bool {
        hash_cost(hash) != Some(self.0.cost)
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        run(&self.0.queue, &self.0.counters, job).await
    }
}

async fn run<T: Send + 'static>(
    queue: &mpsc::Sender<Job>,
    counters: &Arc<Counters>,
    job: impl FnOnce() -> Result<T, HashError> + Send + 'static,
) -> Result<T, HashError> {
    let (done, result) = oneshot::channel();
    let c = Arc::clone(counters);
    c.waiting.fetch_add(1, Ordering::Relaxed);
    let wrapped: Job = Box::new(move || {
        c.waiting.fetch_sub(1, Ordering::Relaxed);
        // Nobody is waiting for the answer any more (the request was dropped): skip the
        // work instead of burning a bcrypt slot on it.
        if done.is_closed() {
            return;
        }
        c.running.fetch_add(1, Ordering::Relaxed);
        c.total.fetch_add(1, Ordering::Relaxed);
        let outcome = job();
        c.running.fetch_sub(1, Ordering::Relaxed);
        let _ = done.send(outcome);
    });
    if queue.send(wrapped).await.is_err() {
        counters.waiting.fetch_sub(1, Ordering::Relaxed);
        return Err(HashError::PoolGone);
    }
    result.await.map_err(|_| HashError::PoolGone)?
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
        let hasher = PasswordHasher::new(4, 2, 10).await.unwrap();
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

    /// Every password the domain type lets through hashes on the pool (what the
    /// admin API, registration, password changes, the CLI and the bootstrap admin all
    /// call): 0 to 100 bytes of 1-, 2- and 4-byte characters.
    #[tokio::test]
    async fn every_password_the_domain_accepts_hashes() {
        let hasher = PasswordHasher::new(4, 2, 10).await.unwrap();
        for c in ['a', 'é', '😀'] {
            for n in 0..=100 / c.len_utf8() {
                let raw: String = std::iter::repeat_n(c, n).collect();
                let Ok(password) = NewPassword::parse(raw.clone(), 1) else {
                    assert!(raw.is_empty() || raw.len() > crate::domain::BCRYPT_MAX_BYTES);
                    continue;
                };
                let hash = hasher.hash(password).await;
                assert!(hash.is_ok(), "{} bytes: {hash:?}", raw.len());
                let again = Password::parse(raw.clone()).unwrap();
                assert!(hasher.verify(again, hash.ok()).await.unwrap());
            }
        }
    }

    #[test]
    fn reads_the_cost_of_a_hash() {
        assert_eq!(hash_cost("$2b$12$abcdefghijklmnopqrstuv"), Some(12));
        assert_eq!(hash_cost("garbage"), None);
    }
}
