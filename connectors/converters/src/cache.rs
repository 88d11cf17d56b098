//! A small bounded cache shared by the converters' schema caches.
//!
//! Java's converters use an LRU cache sized by `schemas.cache.size`. Lookups
//! happen once per record, inserts only on a miss, so eviction scans the map
//! for the least recently used entry instead of keeping a linked list.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};

/// A least-recently-used cache with a fixed capacity.
#[derive(Debug)]
pub(crate) struct LruCache<K, V> {
    capacity: usize,
    clock: AtomicU64,
    entries: HashMap<K, (V, AtomicU64)>,
}

impl<K: Hash + Eq + Clone, V: Clone> LruCache<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        LruCache {
            capacity,
            clock: AtomicU64::new(0),
            entries: HashMap::new(),
        }
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let (value, used) = self.entries.get(key)?;
        used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        Some(value.clone())
    }

    pub(crate) fn put(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| used.load(Ordering::Relaxed))
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        self.entries.insert(key, (value, AtomicU64::new(now)));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut c = LruCache::new(2);
        c.put("a", 1);
        c.put("b", 2);
        assert_eq!(c.get("a"), Some(1));
        c.put("c", 3);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("c"), Some(3));
        let mut zero = LruCache::new(0);
        zero.put("a", 1);
        assert_eq!(zero.get("a"), None);
    }
}
