//! One read-through cache: moka underneath, a generation check on top so that a write is never
//! followed by a read of what it replaced, and the behaviour trusted of HTTP caches in front of
//! slow upstreams: refresh ahead, stale-if-error (a grace store) and negative caching.
//!
//! # Why generations
//!
//! moka coalesces concurrent loads of a key, but an `invalidate` that runs while a load is in
//! flight does not stop it: the load then stores the value it read before the write. So every key
//! maps (by hash) to one of [`STRIPES`] generation counters. A write bumps the key's counter
//! *after* its commit and *before* its response; a load reads the counter *before* it reads the
//! source and stores the value tagged with it. An entry is served only while its tag equals the
//! counter, so any value read before a write's commit is never served once that write has
//! answered. Two keys sharing a stripe only cost each other a reload.
//!
//! The same tag guards every other way a value is served: a background refresh stores only what it
//! loaded under the current generation, and a grace entry (stale-if-error) is served only while
//! its tag is still the counter's value, so a value a write replaced is never served, stale or not.

use std::any::Any;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::Expiry;
use serde::Serialize;

use super::stats::{CacheStats, Counters};
use super::{CacheKind, CacheSettings};

/// Generation counters per cache. More stripes, fewer needless reloads when unrelated keys share
/// one; 4096 x 8 bytes is 32 KiB per cache.
pub const STRIPES: usize = 4096;

/// What an entry costs beyond its JSON and tag, counted in its size: the entry itself, its key
/// (at most a few hundred bytes), and moka's bookkeeping, rounded up.
pub const ENTRY_OVERHEAD: usize = 512;

/// How often a read retries when every load it sees was started before a newer write. After that
/// it answers from a load of its own and does not store it.
const MAX_ATTEMPTS: usize = 3;

/// An entry read after this share of its TTL is reloaded in the background (refresh ahead).
pub const REFRESH_AT: f64 = 0.8;

/// How long a last known value that a failing source fell back to answers before the source is
/// asked again: at most one load per key and second while an upstream is down.
pub const FALLBACK_RETRY: Duration = Duration::from_secs(1);

/// How long a last known value answers while another fetch of its key is under way: short, so
/// that the fetch's result is picked up soon after it lands.
pub const UPDATING_RETRY: Duration = Duration::from_millis(250);

/// Why a loader answered with a last known value rather than a fresh one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The source failed with this status (stale-if-error; RFC 9211 `fwd-status`).
    Failed(u16),
    /// Another fetch of the key is under way, its result not in yet (stale-while-revalidate).
    Updating,
}

/// What a loader found: the value, how old it already was (a mirror row fetched a while ago), and
/// whether it is a last known value the loader fell back to.
#[derive(Debug)]
pub struct Fetched<V> {
    pub value: V,
    pub age: Duration,
    /// `Some(why)`: `value` is the last known one, not a fresh one.
    pub fallback: Option<Fallback>,
}

impl<V> Fetched<V> {
    /// A value read from the source just now.
    pub fn fresh(value: V) -> Self {
        Self::aged(value, Duration::ZERO)
    }

    /// A value the source fetched `age` ago (it expires that much sooner).
    pub fn aged(value: V, age: Duration) -> Self {
        Self {
            value,
            age,
            fallback: None,
        }
    }

    /// The last known value, answered because the source failed with `status`.
    pub fn fallback(value: V, age: Duration, status: u16) -> Self {
        Self {
            value,
            age,
            fallback: Some(Fallback::Failed(status)),
        }
    }

    /// The last known value, answered because another fetch of the key is under way.
    pub fn updating(value: V, age: Duration) -> Self {
        Self {
            value,
            age,
            fallback: Some(Fallback::Updating),
        }
    }
}

/// A strong entity tag of a representation: the first 128 bits of its SHA-256, in hex, quoted.
/// A hash rather than a version number so that it needs no column in the database, and is the
/// same on every replica for the same bytes.
pub fn etag_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    use std::fmt::Write;
    let digest = sha2::Sha256::digest(bytes);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    tag
}

/// A cached value, kept as its JSON only (serialized once when it was loaded): what every read
/// answers, and one representation per entry, so the cache's bytes are what it holds.
#[derive(Debug)]
pub struct Cached<V> {
    json: Bytes,
    /// A strong validator of `json`, quoted (`"…"`), the same on every replica. Kept as `Bytes`
    /// so that a hit's `ETag` header shares it instead of copying it.
    etag: Bytes,
    generation: u64,
    stored_at: Instant,
    /// Age of the value when it was loaded.
    age_at_load: Duration,
    /// How long it may be served fresh from `stored_at`.
    lifetime: Duration,
    fallback: Option<Fallback>,
    /// Set once a refresh ahead of expiry was started for this entry.
    refreshing: AtomicBool,
    /// Hits on this entry: which keys are the most read ([`CacheLayer::hottest`]).
    reads: AtomicU64,
    value: PhantomData<fn() -> V>,
}

impl<V: Serialize> Cached<V> {
    fn new(fetched: Fetched<V>, generation: u64, ttl: Duration) -> Result<Self, serde_json::Error> {
        let json = Bytes::from(serde_json::to_vec(&fetched.value)?);
        let etag = Bytes::from(etag_of(&json));
        let lifetime = match fetched.fallback {
            Some(Fallback::Failed(_)) => FALLBACK_RETRY,
            Some(Fallback::Updating) => UPDATING_RETRY,
            None => ttl.saturating_sub(fetched.age),
        };
        Ok(Self {
            json,
            etag,
            generation,
            stored_at: Instant::now(),
            age_at_load: fetched.age,
            lifetime,
            fallback: fetched.fallback,
            refreshing: AtomicBool::new(false),
            reads: AtomicU64::new(0),
            value: PhantomData,
        })
    }
}

impl<V> Cached<V> {
    /// The value, read back from its JSON (the cache keeps no typed copy).
    pub fn decode(&self) -> serde_json::Result<V>
    where
        V: serde::de::DeserializeOwned,
    {
        serde_json::from_slice(&self.json)
    }

    /// What the entry costs in memory: its JSON and tag, plus [`ENTRY_OVERHEAD`].
    pub fn bytes(&self) -> u64 {
        (self.json.len() + self.etag.len() + ENTRY_OVERHEAD) as u64
    }

    /// The JSON of the value: the same bytes on every hit as on the miss that stored them.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The entity tag of [`Self::json`]: equal JSON, equal tag, whichever replica loaded it.
    pub fn etag(&self) -> &str {
        std::str::from_utf8(&self.etag).unwrap_or_default()
    }

    /// [`Self::etag`] as shared bytes: a header value made of it copies nothing.
    pub fn etag_bytes(&self) -> &Bytes {
        &self.etag
    }

    /// How old the value is: its age when loaded plus the time since.
    pub fn age(&self) -> Duration {
        self.age_at(Instant::now())
    }

    fn age_at(&self, now: Instant) -> Duration {
        self.age_at_load + now.saturating_duration_since(self.stored_at)
    }

    fn ttl_left_at(&self, now: Instant) -> Duration {
        self.lifetime
            .saturating_sub(now.saturating_duration_since(self.stored_at))
    }

    /// A hit on this entry at `now`, counted in its reads.
    fn hit_at(&self, now: Instant) -> LookupStatus {
        self.reads.fetch_add(1, Relaxed);
        LookupStatus::Hit {
            ttl_left: self.ttl_left_at(now),
            age: self.age_at(now),
        }
    }
}

/// A remembered "not found" from the source (negative caching): the loader's own error, kept
/// type-erased because one cache serves loaders of any error type.
struct Absent {
    error: Box<dyn Any + Send + Sync>,
    generation: u64,
}

/// What moka holds for a key.
enum Slot<V> {
    Value(Arc<Cached<V>>),
    Absent(Arc<Absent>),
}

impl<V> Clone for Slot<V> {
    fn clone(&self) -> Self {
        match self {
            Slot::Value(cached) => Slot::Value(Arc::clone(cached)),
            Slot::Absent(absent) => Slot::Absent(Arc::clone(absent)),
        }
    }
}

impl<V> Slot<V> {
    fn generation(&self) -> u64 {
        match self {
            Slot::Value(cached) => cached.generation,
            Slot::Absent(absent) => absent.generation,
        }
    }
}

/// Per-entry lifetimes: aged values expire sooner, fallbacks and "not found" quickly.
struct Lifetimes {
    negative_ttl: Duration,
}

impl<K, V> Expiry<K, Slot<V>> for Lifetimes {
    fn expire_after_create(&self, _key: &K, slot: &Slot<V>, _at: Instant) -> Option<Duration> {
        Some(match slot {
            Slot::Value(cached) => cached.lifetime,
            Slot::Absent(_) => self.negative_ttl,
        })
    }

    fn expire_after_update(
        &self,
        key: &K,
        slot: &Slot<V>,
        at: Instant,
        _left: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, slot, at)
    }
}

fn fallback_status(fallback: Fallback, age: Duration) -> LookupStatus {
    match fallback {
        Fallback::Failed(fwd_status) => LookupStatus::Stale { age, fwd_status },
        Fallback::Updating => LookupStatus::Updating { age },
    }
}

/// What the client asked of the cache (RFC 9111 request directives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// Answer from the cache where it can.
    #[default]
    Normal,
    /// `Cache-Control: no-cache` (or `max-age=0`): load from the source whatever the cache
    /// holds, store the result and answer it.
    Reload,
    /// `Cache-Control: no-store`: load from the source, answer it, store nothing.
    NoStore,
}

/// How a lookup was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupStatus {
    /// From an entry already cached, which lives `ttl_left` more at most and is `age` old.
    Hit { ttl_left: Duration, age: Duration },
    /// Loaded for this request (`collapsed`: by a concurrent request this one waited on);
    /// `stored` if the value was kept for later requests.
    Miss { stored: bool, collapsed: bool },
    /// The source failed with `fwd_status`; answered with the last known value, `age` old, which
    /// no acknowledged write has replaced (stale-if-error).
    Stale { age: Duration, fwd_status: u16 },
    /// Another fetch of the key was under way; answered with the last known value, `age` old,
    /// which no acknowledged write has replaced (stale-while-revalidate).
    Updating { age: Duration },
    /// The client's `Cache-Control` sent the request to the source (RFC 9211 `fwd=request`);
    /// `stored` if the value replaced the cached one.
    Forwarded { stored: bool },
    /// The cache is turned off (capacity 0).
    Bypass,
}

impl LookupStatus {
    pub fn is_hit(self) -> bool {
        matches!(self, LookupStatus::Hit { .. })
    }
}

#[derive(Debug)]
pub struct Lookup<V> {
    pub entry: Arc<Cached<V>>,
    pub status: LookupStatus,
}

/// What a load can fail with: the loader's own error, or the serialization of its value.
pub trait LoadError: Clone + Send + Sync + 'static + From<serde_json::Error> {
    /// The source says the key does not exist: remembered for the cache's negative TTL.
    fn is_not_found(&self) -> bool {
        false
    }

    /// `Some(status)` when the source failed in a way a last known value may answer for
    /// (unreachable, timed out, 5xx, rate-limited): the status this service would answer.
    fn stale_status(&self) -> Option<u16> {
        None
    }
}

/// moka's weigher: an entry's bytes, and at least the budget's share of one entry, so that the one
/// bound moka keeps (the total weight) holds both the byte budget and the entry capacity.
fn weight(bytes: u64, floor: u64) -> u32 {
    u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
}

/// The weight every entry has at least, and the total weight: with a byte budget, its share per
/// entry of capacity and the budget; without one, 1 per entry and the capacity.
fn weight_bounds(settings: &CacheSettings) -> (u64, u64) {
    match settings.max_bytes {
        Some(budget) if budget > 0 => (budget.div_ceil(settings.capacity.max(1)), budget),
        _ => (1, settings.capacity),
    }
}

/// Everything a cache shares with its background refreshes.
struct Inner<K, V> {
    kind: CacheKind,
    settings: CacheSettings,
    cache: Option<Cache<K, Slot<V>>>,
    /// Values kept past their TTL for stale-if-error, for `settings.grace`.
    grace: Option<Cache<K, Arc<Cached<V>>>>,
    generations: Box<[AtomicU64]>,
    hasher: std::hash::RandomState,
    counters: Arc<Counters>,
    /// The most-read keys when the cache was last emptied, with their reads.
    hot_before_purge: std::sync::Mutex<Vec<(K, u64)>>,
}

pub struct CacheLayer<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> CacheLayer<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Serialize + Send + Sync + 'static,
{
    pub fn new(kind: CacheKind, settings: CacheSettings) -> Self {
        let counters = Arc::new(Counters::default());
        let (floor, max_weight) = weight_bounds(&settings);
        let cache = (settings.capacity > 0).then(|| {
            let listener_counters = Arc::clone(&counters);
            let mut builder = Cache::builder()
                .name(kind.as_str())
                .max_capacity(max_weight)
                .weigher(move |_key, slot: &Slot<V>| match slot {
                    _ if floor <= 1 => 1,
                    Slot::Value(cached) => weight(cached.bytes(), floor),
                    Slot::Absent(_) => weight(ENTRY_OVERHEAD as u64, floor),
                })
                .time_to_live(settings.ttl)
                .expire_after(Lifetimes {
                    negative_ttl: settings.negative_ttl.unwrap_or(Duration::ZERO),
                })
                .eviction_listener(move |_key, _value, cause| match cause {
                    RemovalCause::Size => Counters::inc(&listener_counters.evicted_size),
                    RemovalCause::Expired => Counters::inc(&listener_counters.evicted_expired),
                    RemovalCause::Explicit | RemovalCause::Replaced => {}
                });
            if let Some(tti) = settings.tti {
                builder = builder.time_to_idle(tti);
            }
            builder.build()
        });
        let grace = (settings.capacity > 0 && !settings.grace.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(max_weight)
                .weigher(move |_key, cached: &Arc<Cached<V>>| {
                    if floor > 1 {
                        weight(cached.bytes(), floor)
                    } else {
                        1
                    }
                })
                .time_to_live(settings.ttl + settings.grace)
                .build()
        });
        Self {
            inner: Arc::new(Inner {
                kind,
                settings,
                cache,
                grace,
                generations: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
                hasher: std::hash::RandomState::new(),
                counters,
                hot_before_purge: std::sync::Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn kind(&self) -> CacheKind {
        self.inner.kind
    }

    pub fn settings(&self) -> CacheSettings {
        self.inner.settings
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.cache.is_some()
    }

    /// Answers from the cache, or runs `load` once for all concurrent callers of this key and
    /// caches what it returns. Errors are returned to every waiting caller and never cached (a
    /// "not found" is remembered for the negative TTL where one is set); a failure that allows
    /// it is answered from the grace store.
    pub async fn get_or_load<E, F, Fut>(&self, key: &K, load: F) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        self.get_or_load_with(key, CacheMode::Normal, load).await
    }

    /// [`Self::get_or_load`] as the client's `Cache-Control` asks.
    pub async fn get_or_load_with<E, F, Fut>(
        &self,
        key: &K,
        mode: CacheMode,
        load: F,
    ) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let fetch = || async { load().await.map(Fetched::fresh) };
        let result = self.inner.lookup_with(key, mode, &fetch).await;
        self.inner.count(&result);
        result
    }

    /// [`Self::get_or_load`] for a loader that can run on a task of its own: a hit in the last
    /// part of its TTL ([`REFRESH_AT`]) starts one background reload and is served meanwhile, so
    /// that a hot key never waits for its source. The loader says how old its value is and may
    /// answer with a fallback when its source fails.
    pub async fn get_or_fetch<E, F, Fut>(&self, key: &K, fetch: F) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
    {
        self.get_or_fetch_with(key, CacheMode::Normal, fetch).await
    }

    /// [`Self::get_or_fetch`] as the client's `Cache-Control` asks.
    pub async fn get_or_fetch_with<E, F, Fut>(
        &self,
        key: &K,
        mode: CacheMode,
        fetch: F,
    ) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Fetched<V>, E>> + Send + 'static,
    {
        let result = self.inner.lookup_with(key, mode, &fetch).await;
        self.inner.count(&result);
        if let Ok(Lookup {
            entry,
            status: LookupStatus::Hit { age, .. },
        }) = &result
        {
            if self.inner.refresh_due(entry, *age) {
                tokio::spawn(Arc::clone(&self.inner).refresh(key.clone(), fetch));
            }
        }
        result
    }

    /// Drops `key` after a write. Call it after the write has committed and before answering.
    pub async fn invalidate(&self, key: &K) {
        let inner = &self.inner;
        inner.generations[inner.stripe(key)].fetch_add(1, SeqCst);
        if let Some(cache) = &inner.cache {
            cache.invalidate(key).await;
        }
        if let Some(grace) = &inner.grace {
            grace.invalidate(key).await;
        }
        // Counted once done, so that whoever sees the count sees the invalidation in effect.
        Counters::inc(&inner.counters.invalidations);
    }

    /// Drops every entry, for writes that may change any of them (a catalog import changes any
    /// search).
    pub fn invalidate_all(&self) {
        let inner = &self.inner;
        let hot = self.hottest(usize::try_from(inner.settings.capacity).unwrap_or(usize::MAX));
        if let Ok(mut before) = inner.hot_before_purge.lock() {
            *before = hot;
        }
        for generation in inner.generations.iter() {
            generation.fetch_add(1, SeqCst);
        }
        if let Some(cache) = &inner.cache {
            cache.invalidate_all();
        }
        if let Some(grace) = &inner.grace {
            grace.invalidate_all();
        }
        Counters::inc(&inner.counters.invalidations);
    }

    /// Runs moka's pending maintenance: expiry, size eviction and an exact entry count.
    pub async fn run_pending_tasks(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.run_pending_tasks().await;
        }
        if let Some(grace) = &self.inner.grace {
            grace.run_pending_tasks().await;
        }
    }

    pub fn stats(&self) -> CacheStats {
        let entries = self.inner.cache.as_ref().map_or(0, Cache::entry_count);
        let mut stats = self.inner.counters.snapshot(entries);
        stats.bytes = self.bytes();
        stats
    }

    /// What the entries held now cost in memory ([`Cached::bytes`]), the byte budget's measure;
    /// counted by walking them (at most the capacity).
    pub fn bytes(&self) -> u64 {
        let Some(cache) = &self.inner.cache else {
            return 0;
        };
        cache
            .iter()
            .map(|(_, slot)| match slot {
                Slot::Value(cached) => cached.bytes(),
                Slot::Absent(_) => ENTRY_OVERHEAD as u64,
            })
            .sum()
    }

    /// Up to `n` keys, most read first, with their reads: the entries held now, then (if fewer
    /// than `n`) those most read before the cache was last emptied. What a warm-up loads.
    pub fn hottest(&self, n: usize) -> Vec<(K, u64)> {
        let Some(cache) = &self.inner.cache else {
            return Vec::new();
        };
        let mut hot: Vec<(K, u64)> = cache
            .iter()
            .filter_map(|(key, slot)| match slot {
                Slot::Value(cached) if cached.fallback.is_none() => {
                    Some(((*key).clone(), cached.reads.load(Relaxed)))
                }
                _ => None,
            })
            .collect();
        hot.sort_by_key(|(_, reads)| std::cmp::Reverse(*reads));
        hot.truncate(n);
        if hot.len() < n {
            if let Ok(before) = self.inner.hot_before_purge.lock() {
                for (key, reads) in before.iter() {
                    if hot.len() >= n {
                        break;
                    }
                    if !hot.iter().any(|(k, _)| k == key) {
                        hot.push((key.clone(), *reads));
                    }
                }
            }
        }
        hot
    }
}

impl<K, V> Inner<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Serialize + Send + Sync + 'static,
{
    fn count<E>(&self, result: &Result<Lookup<V>, E>) {
        let counters = &self.counters;
        match result {
            Ok(lookup) if lookup.status.is_hit() => Counters::inc(&counters.hits),
            Ok(Lookup {
                status: LookupStatus::Stale { .. } | LookupStatus::Updating { .. },
                ..
            }) => {
                Counters::inc(&counters.misses);
                Counters::inc(&counters.stale_served);
            }
            _ => Counters::inc(&counters.misses),
        }
    }

    async fn lookup_with<E, F, Fut>(
        &self,
        key: &K,
        mode: CacheMode,
        fetch: &F,
    ) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        // The loads are boxed (here and in `lookup`): a future holds room for the largest state
        // it may reach, and a load holds the source's whole request (a Jira call is kilobytes), so
        // inline it would make every hit's future that large, allocated and moved per request.
        match mode {
            CacheMode::Normal => self.lookup(key, fetch).await,
            CacheMode::NoStore => {
                let status = LookupStatus::Forwarded { stored: false };
                Box::pin(self.load_uncached(fetch, status)).await
            }
            CacheMode::Reload => Box::pin(self.reload(key, fetch)).await,
        }
    }

    /// `no-cache`: a load of the request's own, stored (in place of what the cache held) if no
    /// write came while it ran, under the same generation rule as every other load.
    async fn reload<E, F, Fut>(&self, key: &K, fetch: &F) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        if self.cache.is_none() {
            return self.load_uncached(fetch, LookupStatus::Bypass).await;
        }
        let generation = self.generations[self.stripe(key)].load(SeqCst);
        let fetched = self.timed(fetch).await?;
        let entry = Arc::new(Cached::new(fetched, generation, self.settings.ttl)?);
        if let Some(fallback) = entry.fallback {
            let status = fallback_status(fallback, entry.age());
            return Ok(Lookup { entry, status });
        }
        let stored = self.store_if_current(key.clone(), Arc::clone(&entry)).await;
        Ok(Lookup {
            entry,
            status: LookupStatus::Forwarded { stored },
        })
    }

    /// A hit is answered by [`Self::hit`] alone; anything else (a miss, an entry loaded before a
    /// write this request must see, a fallback, a cached "not found") by [`Self::lookup_through`],
    /// boxed so that its loader's future is not part of every hit's.
    async fn lookup<E, F, Fut>(&self, key: &K, fetch: &F) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        let Some(cache) = &self.cache else {
            return Box::pin(self.load_uncached(fetch, LookupStatus::Bypass)).await;
        };
        let request_start = Instant::now();
        let stripe = &self.generations[self.stripe(key)];
        // Every write acknowledged before this request has bumped its stripe before this read.
        let started = stripe.load(SeqCst);
        if let Some(hit) = Self::hit(cache, key, stripe, started, request_start).await {
            return Ok(hit);
        }
        Box::pin(self.lookup_through(cache, key, fetch, stripe, request_start, started)).await
    }

    /// The entry for `key` if it answers this request as a hit: a value (not a fallback) stored
    /// before the request began and loaded after every write acknowledged before it, with no
    /// write since. Exactly the hits of [`Self::lookup_through`], which decides every other case.
    ///
    /// One moka read per request: moka's frequency sketch counts every `get`, and a `get` that
    /// misses followed by the load's `try_get_with` would count missed keys twice and bias
    /// admission towards them (measured: 71.8% instead of 74.4% hits under Zipf(1) at capacity
    /// 1,000). `contains_key` is not counted, so a key not held goes straight to the load.
    async fn hit(
        cache: &Cache<K, Slot<V>>,
        key: &K,
        stripe: &AtomicU64,
        started: u64,
        request_start: Instant,
    ) -> Option<Lookup<V>> {
        if !cache.contains_key(key) {
            return None;
        }
        let Slot::Value(entry) = cache.get(key).await? else {
            return None;
        };
        let hit = entry.fallback.is_none()
            && entry.generation >= started
            && entry.generation == stripe.load(SeqCst)
            && entry.stored_at < request_start;
        if !hit {
            return None;
        }
        // The request's start stands for now: the two are microseconds apart, and each reading
        // of the clock costs as much as the rest of this check.
        Some(Lookup {
            status: entry.hit_at(request_start),
            entry,
        })
    }

    /// A lookup through moka's `try_get_with`: one load for all the requests that miss a key at
    /// once, checked against the writes that came while it ran.
    async fn lookup_through<E, F, Fut>(
        &self,
        cache: &Cache<K, Slot<V>>,
        key: &K,
        fetch: &F,
        stripe: &AtomicU64,
        request_start: Instant,
        started: u64,
    ) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        for _ in 0..MAX_ATTEMPTS {
            let ran_here = AtomicBool::new(false);
            let slot = cache
                .try_get_with_by_ref(key, async {
                    ran_here.store(true, SeqCst);
                    let generation = stripe.load(SeqCst);
                    match self.timed(fetch).await {
                        Ok(fetched) => {
                            let cached =
                                Arc::new(Cached::new(fetched, generation, self.settings.ttl)?);
                            if cached.fallback.is_none() {
                                if let Some(grace) = &self.grace {
                                    grace.insert(key.clone(), Arc::clone(&cached)).await;
                                }
                            }
                            Ok(Slot::Value(cached))
                        }
                        Err(error)
                            if error.is_not_found() && self.settings.negative_ttl.is_some() =>
                        {
                            let error = Box::new(error);
                            Ok(Slot::Absent(Arc::new(Absent { error, generation })))
                        }
                        Err(error) => Err(error),
                    }
                })
                .await;
            let slot = match slot {
                Ok(slot) => slot,
                Err(shared) => {
                    let error = (*shared).clone();
                    return match self.stale_from_grace(key, started, &error).await {
                        Some(lookup) => Ok(lookup),
                        None => Err(error),
                    };
                }
            };
            let loaded_here = ran_here.load(SeqCst);
            if slot.generation() < started {
                // Loaded before a write this request must see (a racing load, or one we waited
                // on): never served, and dropped so the next attempt loads afresh.
                Counters::inc(&self.counters.stale_discards);
                cache.invalidate(key).await;
                continue;
            }
            // From here the value is a valid answer to this request. It stays cached only if no
            // write has come since it was loaded.
            let stored = slot.generation() == stripe.load(SeqCst);
            if !stored {
                Counters::inc(&self.counters.stale_discards);
                cache.invalidate(key).await;
            }
            let entry = match slot {
                Slot::Value(entry) => entry,
                Slot::Absent(absent) => match absent.error.downcast_ref::<E>() {
                    Some(error) => return Err(error.clone()),
                    // Stored by a loader of another error type: forget it and load.
                    None => {
                        cache.invalidate(key).await;
                        continue;
                    }
                },
            };
            let status = if let Some(fallback) = entry.fallback {
                fallback_status(fallback, entry.age())
            } else if !loaded_here && stored && entry.stored_at < request_start {
                entry.hit_at(Instant::now())
            } else {
                // Loaded by this request, or by a concurrent one it waited on.
                LookupStatus::Miss {
                    stored,
                    collapsed: !loaded_here,
                }
            };
            return Ok(Lookup { entry, status });
        }

        // Writes to this key keep outrunning loads: answer from a load of our own, not stored.
        let status = LookupStatus::Miss {
            stored: false,
            collapsed: false,
        };
        self.load_uncached(fetch, status).await
    }

    /// Stale-if-error: the last value loaded for `key`, if the failure allows it and no write
    /// acknowledged before or since this request began has replaced it.
    async fn stale_from_grace<E: LoadError>(
        &self,
        key: &K,
        started: u64,
        error: &E,
    ) -> Option<Lookup<V>> {
        let fwd_status = error.stale_status()?;
        let entry = self.grace.as_ref()?.get(key).await?;
        let current = self.generations[self.stripe(key)].load(SeqCst);
        (entry.generation >= started && entry.generation == current).then(|| Lookup {
            status: LookupStatus::Stale {
                age: entry.age(),
                fwd_status,
            },
            entry,
        })
    }

    /// A load whose value answers this request only and is not stored.
    async fn load_uncached<E, F, Fut>(
        &self,
        fetch: &F,
        status: LookupStatus,
    ) -> Result<Lookup<V>, E>
    where
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        let fetched = self.timed(fetch).await?;
        let status = match fetched.fallback {
            Some(fallback) => fallback_status(fallback, fetched.age),
            None => status,
        };
        Ok(Lookup {
            entry: Arc::new(Cached::new(fetched, 0, self.settings.ttl)?),
            status,
        })
    }

    /// True once for an entry of this `age` read in the last part of its TTL.
    fn refresh_due(&self, entry: &Cached<V>, age: Duration) -> bool {
        let due = age.as_secs_f64() >= self.settings.ttl.as_secs_f64() * REFRESH_AT;
        due && !entry.refreshing.swap(true, SeqCst)
    }

    /// Reloads `key` ahead of its expiry and stores the value if no write came meanwhile. A failed
    /// refresh changes nothing: the entry is served until it expires, then loaded as usual.
    async fn refresh<E, F, Fut>(self: Arc<Self>, key: K, fetch: F)
    where
        E: LoadError,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        if self.cache.is_none() {
            return;
        }
        let generation = self.generations[self.stripe(&key)].load(SeqCst);
        let Ok(fetched) = self.timed(&fetch).await else {
            return;
        };
        if fetched.fallback.is_some() {
            return;
        }
        let Ok(cached) = Cached::new(fetched, generation, self.settings.ttl) else {
            return;
        };
        if self.store_if_current(key, Arc::new(cached)).await {
            Counters::inc(&self.counters.refreshes);
        }
    }

    /// Stores a value a load of this cache's own made (a refresh, a `no-cache` reload), in the
    /// cache and the grace store, if no write has come since its generation was read; whether it
    /// is stored. A value stored anyway would be unservable (its tag behind the counter), so the
    /// insert is skipped when the counter has moved, and undone when it moved during the insert.
    async fn store_if_current(&self, key: K, cached: Arc<Cached<V>>) -> bool {
        let (Some(cache), stripe) = (&self.cache, &self.generations[self.stripe(&key)]) else {
            return false;
        };
        if stripe.load(SeqCst) != cached.generation {
            return false;
        }
        if let Some(grace) = &self.grace {
            grace.insert(key.clone(), Arc::clone(&cached)).await;
        }
        cache
            .insert(key.clone(), Slot::Value(Arc::clone(&cached)))
            .await;
        if stripe.load(SeqCst) != cached.generation {
            cache.invalidate(&key).await;
            return false;
        }
        true
    }

    fn stripe(&self, key: &K) -> usize {
        (self.hasher.hash_one(key) % STRIPES as u64) as usize
    }

    async fn timed<E, F, Fut>(&self, fetch: &F) -> Result<Fetched<V>, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched<V>, E>>,
    {
        let start = Instant::now();
        let result = fetch().await;
        self.counters.record_load(start.elapsed());
        result
    }
}
