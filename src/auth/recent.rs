//! A small in-process memory of recent database reads, for records that every request
//! needs and that rarely change (clients, user profiles). A change made through this
//! instance is forgotten at once; a change made through another instance is seen within
//! the time-to-live. The database stays the only truth.

use std::hash::Hash;
use std::time::Duration;

use moka::sync::Cache;

pub(crate) struct RecentReads<K, V>(Cache<K, V>);

impl<K, V> RecentReads<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `max` bounds the memory: past it, entries read least often make room (a flood of
    /// made-up keys does not push out the records in use).
    pub(crate) fn new(ttl: Duration, max: usize) -> Self {
        Self(
            Cache::builder()
                .time_to_live(ttl)
                .max_capacity(u64::try_from(max).unwrap_or(u64::MAX))
                .build(),
        )
    }

    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.0.get(key)
    }

    pub(crate) fn put(&self, key: K, value: V) {
        self.0.insert(key, value);
    }

    pub(crate) fn forget(&self, key: &K) {
        self.0.invalidate(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let recent = RecentReads::new(Duration::from_millis(50), 2);
        recent.put("a", 1);
        assert_eq!(recent.get(&"a"), Some(1));
        recent.forget(&"a");
        assert_eq!(recent.get(&"a"), None);
        recent.put("b", 2);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(recent.get(&"b"), None, "expired");
    }

    #[test]
    fn the_memory_stays_bounded() {
        let recent = RecentReads::new(Duration::from_secs(60), 2);
        for i in 0..100 {
            recent.put(i, i);
        }
        recent.0.run_pending_tasks();
        assert!(recent.0.entry_count() <= 2, "{}", recent.0.entry_count());
    }
}
