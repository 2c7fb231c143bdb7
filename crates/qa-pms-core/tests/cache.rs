//! `CacheLayer` on its own: hit, miss, invalidation, expiry, capacity, coalescing, errors, and
//! the invalidate-during-load race from the story notes, replayed step by step.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use qa_pms_core::cache::{CacheLayer, LoadError, LookupStatus};
use qa_pms_core::{CacheKind, CacheSettings};
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq)]
struct LoadFailed;

impl LoadError for LoadFailed {}

impl From<serde_json::Error> for LoadFailed {
    fn from(_: serde_json::Error) -> Self {
        LoadFailed
    }
}

fn layer(ttl: Duration, capacity: u64) -> CacheLayer<String, u64> {
    CacheLayer::new(
        CacheKind::Tickets,
        CacheSettings {
            tti: None,
            ..CacheSettings::new(0, None, capacity)
        }
        .with_ttl(ttl),
    )
}

async fn read(cache: &CacheLayer<String, u64>, key: &str, value: u64) -> (u64, LookupStatus) {
    let lookup = cache
        .get_or_load(
            &key.to_owned(),
            || async move { Ok::<_, LoadFailed>(value) },
        )
        .await
        .expect("load");
    (lookup.entry.decode().unwrap(), lookup.status)
}

#[tokio::test]
async fn a_second_read_is_a_hit_and_serves_the_first_value() {
    let cache = layer(Duration::from_secs(60), 10);

    let (first, first_status) = read(&cache, "PROJ-1", 1).await;
    let (second, second_status) = read(&cache, "PROJ-1", 2).await;

    assert_eq!((first, second), (1, 1));
    assert_eq!(
        first_status,
        LookupStatus::Miss {
            stored: true,
            collapsed: false
        }
    );
    assert!(second_status.is_hit());
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.loads), (1, 1, 1));
}

#[tokio::test]
async fn an_invalidated_key_is_loaded_again() {
    let cache = layer(Duration::from_secs(60), 10);
    read(&cache, "PROJ-1", 1).await;

    cache.invalidate(&"PROJ-1".to_owned()).await;
    let (value, status) = read(&cache, "PROJ-1", 2).await;

    assert_eq!(value, 2);
    assert!(!status.is_hit());
    assert_eq!(cache.stats().invalidations, 1);
}

#[tokio::test]
async fn invalidate_all_drops_every_key() {
    let cache = layer(Duration::from_secs(60), 10);
    read(&cache, "a", 1).await;
    read(&cache, "b", 1).await;

    cache.invalidate_all();

    assert_eq!(read(&cache, "a", 2).await.0, 2);
    assert_eq!(read(&cache, "b", 2).await.0, 2);
}

#[tokio::test]
async fn an_entry_is_gone_after_its_ttl() {
    let cache = layer(Duration::from_millis(100), 10);
    read(&cache, "PROJ-1", 1).await;

    tokio::time::sleep(Duration::from_millis(250)).await;
    let (value, status) = read(&cache, "PROJ-1", 2).await;

    assert_eq!(value, 2);
    assert!(!status.is_hit());
}

#[tokio::test]
async fn ten_times_capacity_keys_leave_at_most_capacity_entries() {
    let cache = layer(Duration::from_secs(60), 100);

    for n in 0..1_000 {
        read(&cache, &format!("K-{n}"), n).await;
    }
    cache.run_pending_tasks().await;

    let stats = cache.stats();
    assert!(stats.entries <= 100, "{} entries", stats.entries);
    assert_eq!(stats.entries + stats.evicted_size, 1_000);
}

#[tokio::test]
async fn errors_reach_every_waiter_and_are_not_cached() {
    let cache = Arc::new(layer(Duration::from_secs(60), 10));
    let key = "PROJ-1".to_owned();
    let failing = || async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        Err::<u64, _>(LoadFailed)
    };

    let (a, b) = tokio::join!(
        cache.get_or_load(&key, failing),
        cache.get_or_load(&key, failing)
    );
    let after = cache
        .get_or_load(&key, || async { Ok::<_, LoadFailed>(7) })
        .await
        .expect("load");

    assert_eq!(a.unwrap_err(), LoadFailed);
    assert_eq!(b.unwrap_err(), LoadFailed);
    assert_eq!(after.entry.decode().unwrap(), 7);
    assert_eq!(
        cache.stats().loads,
        2,
        "one failed load shared by both, then one more"
    );
}

#[tokio::test]
async fn concurrent_misses_share_one_load() {
    let cache = Arc::new(layer(Duration::from_secs(60), 10));
    let loads = Arc::new(AtomicU64::new(0));

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
            tokio::spawn(async move {
                cache
                    .get_or_load(&"hot".to_owned(), || {
                        let loads = Arc::clone(&loads);
                        async move {
                            loads.fetch_add(1, SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, LoadFailed>(42)
                        }
                    })
                    .await
                    .expect("load")
                    .status
            })
        })
        .collect();
    let mut collapsed = 0;
    for task in tasks {
        if let LookupStatus::Miss {
            collapsed: true, ..
        } = task.await.expect("task")
        {
            collapsed += 1;
        }
    }

    assert_eq!(loads.load(SeqCst), 1);
    assert_eq!(cache.stats().loads, 1);
    assert!(collapsed > 0);
}

/// The race in the story notes: a load reads the old row, a write commits and invalidates, the
/// load then finishes. moka alone would store the old value; the next read must not see it.
#[tokio::test]
async fn a_load_overtaken_by_a_write_is_never_served_afterwards() {
    let cache = Arc::new(layer(Duration::from_secs(60), 10));
    let database = Arc::new(AtomicU64::new(1));
    let row_read = Arc::new(Notify::new());
    let finish_load = Arc::new(Notify::new());
    let key = "PROJ-1".to_owned();

    let slow_reader = {
        let (cache, database, row_read, finish_load, key) = (
            Arc::clone(&cache),
            Arc::clone(&database),
            Arc::clone(&row_read),
            Arc::clone(&finish_load),
            key.clone(),
        );
        tokio::spawn(async move {
            let lookup = cache
                .get_or_load(&key, || {
                    let (database, row_read, finish_load) = (
                        Arc::clone(&database),
                        Arc::clone(&row_read),
                        Arc::clone(&finish_load),
                    );
                    async move {
                        let value = database.load(SeqCst);
                        row_read.notify_one();
                        finish_load.notified().await;
                        Ok::<_, LoadFailed>(value)
                    }
                })
                .await
                .expect("load");
            (lookup.entry.decode().unwrap(), lookup.status)
        })
    };
    row_read.notified().await;
    // The write: commit, then invalidate, then (in the service) answer.
    database.store(2, SeqCst);
    cache.invalidate(&key).await;
    finish_load.notify_one();
    let (old, old_status) = slow_reader.await.expect("reader");

    let after = cache
        .get_or_load(&key, || {
            let database = Arc::clone(&database);
            async move { Ok::<_, LoadFailed>(database.load(SeqCst)) }
        })
        .await
        .expect("load");

    assert_eq!(
        old, 1,
        "the read that began before the write may see the old row"
    );
    assert_eq!(
        old_status,
        LookupStatus::Miss {
            stored: false,
            collapsed: false
        },
        "but does not keep it"
    );
    assert_eq!(
        after.entry.decode().unwrap(),
        2,
        "a read after the write sees the write"
    );
    assert!(!after.status.is_hit());
    assert_eq!(cache.stats().stale_discards, 1);
}

#[tokio::test]
async fn a_cache_with_capacity_zero_always_loads() {
    let cache = layer(Duration::from_secs(60), 0);

    let (_, first) = read(&cache, "PROJ-1", 1).await;
    let (value, second) = read(&cache, "PROJ-1", 2).await;

    assert_eq!(value, 2);
    assert_eq!(
        (first, second),
        (LookupStatus::Bypass, LookupStatus::Bypass)
    );
    assert!(!cache.is_enabled());
}

#[tokio::test]
async fn a_hit_serves_the_json_serialized_at_load() {
    let cache = layer(Duration::from_secs(60), 10);
    let key = "k".to_owned();

    let miss = cache
        .get_or_load(&key, || async { Ok::<_, LoadFailed>(5) })
        .await
        .expect("load");
    let hit = cache
        .get_or_load(&key, || async { Ok::<_, LoadFailed>(6) })
        .await
        .expect("load");

    assert_eq!(miss.entry.json().as_ref(), b"5");
    assert_eq!(hit.entry.json(), miss.entry.json());
}

fn text_layer(capacity: u64, max_bytes: u64) -> CacheLayer<String, String> {
    CacheLayer::new(
        CacheKind::Search,
        CacheSettings::new(300, None, capacity).with_max_bytes(max_bytes),
    )
}

async fn load_text(cache: &CacheLayer<String, String>, key: &str, len: usize) {
    cache
        .get_or_load(&key.to_owned(), || async {
            Ok::<_, LoadFailed>("x".repeat(len))
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_byte_budget_bounds_what_the_entries_cost() {
    // Entries of ~10 KiB each under a 100 KiB budget: about ten fit, whatever the capacity.
    let budget = 100 * 1024;
    let cache = text_layer(1_000, budget);
    for i in 0..50 {
        load_text(&cache, &format!("k{i}"), 10 * 1024).await;
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(
        stats.bytes <= budget,
        "{} bytes over a {budget} budget",
        stats.bytes
    );
    assert!(
        (5..=10).contains(&stats.entries),
        "{} entries",
        stats.entries
    );
    assert!(stats.evicted_size >= 40, "{stats:?}");
}

#[tokio::test]
async fn under_a_large_budget_the_entry_capacity_still_holds() {
    let cache = text_layer(10, 64 * 1024 * 1024);
    for i in 0..100 {
        load_text(&cache, &format!("k{i}"), 10).await;
    }
    cache.run_pending_tasks().await;
    let stats = cache.stats();
    assert!(stats.entries <= 10, "{} entries", stats.entries);
    assert!(stats.entries >= 5, "{} entries", stats.entries);
}

#[tokio::test]
async fn the_most_read_keys_come_first_and_survive_a_purge() {
    let cache = layer(Duration::from_secs(60), 100);
    for (key, reads) in [("a", 1), ("b", 4), ("c", 2)] {
        for _ in 0..=reads {
            read(&cache, key, 1).await;
        }
    }
    let keys = |hot: Vec<(String, u64)>| hot.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(keys(cache.hottest(2)), ["b", "c"]);
    assert_eq!(cache.hottest(3)[0], ("b".to_owned(), 4));
    cache.invalidate_all();
    cache.run_pending_tasks().await;
    read(&cache, "d", 1).await;
    read(&cache, "d", 1).await;
    // Cached now first, then the most read before the purge.
    assert_eq!(keys(cache.hottest(3)), ["d", "b", "c"]);
}

#[tokio::test]
async fn no_cache_reloads_and_stores_and_no_store_leaves_the_cache_alone() {
    use qa_pms_core::cache::CacheMode;
    let cache = layer(Duration::from_secs(60), 100);
    let key = "k".to_owned();
    let with = |mode, value: u64| {
        let cache = &cache;
        let key = &key;
        async move {
            let lookup = cache
                .get_or_load_with(key, mode, || async move { Ok::<_, LoadFailed>(value) })
                .await
                .unwrap();
            (lookup.entry.decode().unwrap(), lookup.status)
        }
    };
    assert_eq!(
        with(CacheMode::NoStore, 1).await,
        (1, LookupStatus::Forwarded { stored: false })
    );
    assert!(matches!(
        read(&cache, "k", 2).await,
        (2, LookupStatus::Miss { .. })
    ));
    assert_eq!(
        with(CacheMode::NoStore, 3).await,
        (3, LookupStatus::Forwarded { stored: false })
    );
    assert!(matches!(
        read(&cache, "k", 9).await,
        (2, LookupStatus::Hit { .. })
    ));
    assert_eq!(
        with(CacheMode::Reload, 4).await,
        (4, LookupStatus::Forwarded { stored: true })
    );
    assert!(matches!(
        read(&cache, "k", 9).await,
        (4, LookupStatus::Hit { .. })
    ));
}
