//! The counters every cache keeps: plain atomics on the hot path, read as a [`CacheStats`]
//! snapshot by `/metrics` and by Rust code.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds, in seconds, of the load-duration histogram buckets.
pub const LOAD_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub loads: AtomicU64,
    pub evicted_size: AtomicU64,
    pub evicted_expired: AtomicU64,
    pub invalidations: AtomicU64,
    /// Lookups that dropped a loaded value because a write had overtaken it.
    pub stale_discards: AtomicU64,
    /// Requests answered with a last known value: the source failed (stale-if-error) or another
    /// fetch of the key was under way (stale-while-revalidate).
    pub stale_served: AtomicU64,
    /// Background reloads ahead of expiry that stored a value.
    pub refreshes: AtomicU64,
    load_buckets: [AtomicU64; LOAD_BUCKETS.len()],
    load_nanos: AtomicU64,
}

impl Counters {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn record_load(&self, elapsed: Duration) {
        self.loads.fetch_add(1, Relaxed);
        self.load_nanos.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Relaxed,
        );
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = LOAD_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.load_buckets[i].fetch_add(1, Relaxed);
        }
    }

    pub fn snapshot(&self, entries: u64) -> CacheStats {
        let mut cumulative = 0;
        let load_buckets = std::array::from_fn(|i| {
            cumulative += self.load_buckets[i].load(Relaxed);
            cumulative
        });
        CacheStats {
            entries,
            bytes: 0,
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            loads: self.loads.load(Relaxed),
            load_seconds_sum: self.load_nanos.load(Relaxed) as f64 / 1e9,
            load_buckets,
            evicted_size: self.evicted_size.load(Relaxed),
            evicted_expired: self.evicted_expired.load(Relaxed),
            invalidations: self.invalidations.load(Relaxed),
            stale_discards: self.stale_discards.load(Relaxed),
            stale_served: self.stale_served.load(Relaxed),
            refreshes: self.refreshes.load(Relaxed),
        }
    }
}

/// A snapshot of one cache's numbers (the story's `CacheStats`, without moka's missing counters).
#[derive(Debug, Clone, PartialEq)]
pub struct CacheStats {
    /// Entries held now; exact after `AppCache::run_pending_tasks`.
    pub entries: u64,
    /// What those entries cost in memory (JSON, tag and a fixed overhead each): the byte budget's
    /// measure.
    pub bytes: u64,
    /// Requests answered from an entry already cached.
    pub hits: u64,
    /// Requests that were not (including those that waited on another request's load).
    pub misses: u64,
    /// Loads actually run against the source (database or upstream), refreshes included.
    pub loads: u64,
    pub load_seconds_sum: f64,
    /// Cumulative counts of loads at or under each bound of [`LOAD_BUCKETS`].
    pub load_buckets: [u64; LOAD_BUCKETS.len()],
    pub evicted_size: u64,
    pub evicted_expired: u64,
    /// Explicit invalidations asked for by writes.
    pub invalidations: u64,
    /// Lookups that dropped a loaded value because a write had overtaken it (the race where an
    /// invalidation lands while a load is in flight).
    pub stale_discards: u64,
    /// Requests answered with a last known value: the source failed (stale-if-error) or another
    /// fetch of the key was under way (stale-while-revalidate).
    pub stale_served: u64,
    /// Background reloads ahead of expiry that stored a value (refresh ahead).
    pub refreshes: u64,
}

impl CacheStats {
    /// Hits over lookups, 0 when there were none.
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}
