//! A small in-process memory of recent database reads, for records that every request
//! needs and that rarely change (clients, user profiles). A change made through this
//! instance is forgotten at once; a change made through another instance is seen within
//! the time-to-live. The database stays the only truth.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

pub struct RecentReads<K, V> {
    ttl: Duration,
    max: usize,
    entries: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K: Hash + Eq, V: Clone> RecentReads<K, V> {
    /// `max` bounds the memory: when full it is simply cleared.
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            entries: RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.read().expect("recent-reads lock");
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.write().expect("recent-reads lock");
        if entries.len() >= self.max {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn forget(&self, key: &K) {
        self.entries.write().expect("recent-reads lock").remove(key);
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
        recent.put("c", 3);
        recent.put("d", 4);
        recent.put("e", 5);
        assert_eq!(recent.get(&"e"), Some(5), "bounded, still working");
    }
}
