//! `CacheLayer` in front of a failing or slow source: refresh ahead, stale-if-error from the grace
//! store, fallbacks from the loader, aged values, negative caching, and the rule that a value a
//! write replaced is never served, stale or not.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use qa_pms_core::cache::{CacheLayer, Fetched, LoadError, LookupStatus};
use qa_pms_core::{CacheKind, CacheSettings};

#[derive(Debug, Clone, PartialEq)]
enum SourceError {
    NotFound,
    Down,
    Broken,
}

impl LoadError for SourceError {
    fn is_not_found(&self) -> bool {
        *self == SourceError::NotFound
    }

    fn stale_status(&self) -> Option<u16> {
        (*self == SourceError::Down).then_some(503)
    }
}

impl From<serde_json::Error> for SourceError {
    fn from(_: serde_json::Error) -> Self {
        SourceError::Broken
    }
}

type SourceFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Fetched<u64>, SourceError>> + Send>>;

/// A source whose current answer the test sets, counting its loads.
#[derive(Clone, Default)]
struct Source {
    value: Arc<AtomicU64>,
    /// 0: answers `value`; 1: down; 2: not found.
    mode: Arc<AtomicU64>,
    loads: Arc<AtomicU64>,
}

impl Source {
    fn fetch(&self) -> impl Fn() -> SourceFuture + Send + Sync + 'static {
        let source = self.clone();
        move || {
            let source = source.clone();
            Box::pin(async move {
                source.loads.fetch_add(1, SeqCst);
                match source.mode.load(SeqCst) {
                    0 => Ok(Fetched::fresh(source.value.load(SeqCst))),
                    1 => Err(SourceError::Down),
                    _ => Err(SourceError::NotFound),
                }
            })
        }
    }
}

fn layer(ttl: Duration) -> CacheLayer<String, u64> {
    let settings = CacheSettings {
        tti: None,
        ..CacheSettings::new(0, None, 100)
    }
    .with_ttl(ttl)
    .with_negative_ttl(Duration::from_millis(300));
    CacheLayer::new(CacheKind::Tickets, settings)
}

async fn read(
    cache: &CacheLayer<String, u64>,
    source: &Source,
) -> Result<(u64, LookupStatus), SourceError> {
    let lookup = cache
        .get_or_fetch(&"K-1".to_owned(), source.fetch())
        .await?;
    Ok((lookup.entry.decode().unwrap(), lookup.status))
}

#[tokio::test]
async fn a_hit_late_in_its_ttl_is_refreshed_in_the_background_and_served_meanwhile() {
    let cache = layer(Duration::from_millis(2_000));
    let source = Source::default();
    source.value.store(1, SeqCst);
    read(&cache, &source).await.unwrap();
    source.value.store(2, SeqCst);

    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let (during, status) = read(&cache, &source).await.unwrap();
    // The refresh runs on its own task; give it time to land, well within the TTL's remainder.
    for _ in 0..50 {
        if cache.stats().refreshes == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (after, after_status) = read(&cache, &source).await.unwrap();

    assert_eq!(during, 1, "the old value is served while the refresh runs");
    assert!(status.is_hit());
    assert_eq!(cache.stats().refreshes, 1);
    assert_eq!(after, 2, "the refreshed value replaced it");
    assert!(
        after_status.is_hit(),
        "past the first TTL, still a hit: {after_status:?}"
    );
    assert_eq!(source.loads.load(SeqCst), 2, "one load, one refresh");
}

#[tokio::test]
async fn a_failing_source_is_answered_from_the_grace_store_as_stale() {
    let cache = layer(Duration::from_millis(100));
    let source = Source::default();
    source.value.store(7, SeqCst);
    read(&cache, &source).await.unwrap();
    source.mode.store(1, SeqCst);

    tokio::time::sleep(Duration::from_millis(200)).await;
    let (value, status) = read(&cache, &source).await.unwrap();

    assert_eq!(value, 7);
    assert!(
        matches!(status, LookupStatus::Stale { fwd_status: 503, age } if age >= Duration::from_millis(200)),
        "{status:?}"
    );
    assert_eq!(cache.stats().stale_served, 1);
}

#[tokio::test]
async fn a_value_a_write_replaced_is_never_served_stale() {
    let cache = layer(Duration::from_millis(100));
    let source = Source::default();
    source.value.store(7, SeqCst);
    read(&cache, &source).await.unwrap();
    source.mode.store(1, SeqCst);

    cache.invalidate(&"K-1".to_owned()).await;
    let after_write = read(&cache, &source).await;

    assert_eq!(after_write.unwrap_err(), SourceError::Down);
    assert_eq!(cache.stats().stale_served, 0);
}

#[tokio::test]
async fn an_error_that_does_not_allow_stale_is_returned() {
    let cache = layer(Duration::from_millis(50));
    let source = Source::default();
    read(&cache, &source).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    source.mode.store(2, SeqCst);

    assert_eq!(
        read(&cache, &source).await.unwrap_err(),
        SourceError::NotFound
    );
}

#[tokio::test]
async fn not_found_is_remembered_for_the_negative_ttl_and_dropped_by_a_write() {
    let cache = layer(Duration::from_secs(60));
    let source = Source::default();
    source.mode.store(2, SeqCst);

    for _ in 0..5 {
        assert_eq!(
            read(&cache, &source).await.unwrap_err(),
            SourceError::NotFound
        );
    }
    assert_eq!(source.loads.load(SeqCst), 1, "one load for five reads");

    source.mode.store(0, SeqCst);
    source.value.store(3, SeqCst);
    cache.invalidate(&"K-1".to_owned()).await;
    assert_eq!(
        read(&cache, &source).await.unwrap().0,
        3,
        "a write drops it"
    );

    cache.invalidate(&"K-1".to_owned()).await;
    source.mode.store(2, SeqCst);
    read(&cache, &source).await.unwrap_err();
    tokio::time::sleep(Duration::from_millis(400)).await;
    source.mode.store(0, SeqCst);
    assert_eq!(
        read(&cache, &source).await.unwrap().0,
        3,
        "and it expires after the negative TTL"
    );
}

#[tokio::test]
async fn a_loader_fallback_is_served_stale_and_retried_soon() {
    let cache = layer(Duration::from_secs(60));
    let loads = Arc::new(AtomicU64::new(0));
    let fetch = {
        let loads = Arc::clone(&loads);
        move || {
            let loads = Arc::clone(&loads);
            async move {
                loads.fetch_add(1, SeqCst);
                Ok::<_, SourceError>(Fetched::fallback(9, Duration::from_secs(40), 504))
            }
        }
    };
    let key = "K-1".to_owned();

    let first = cache.get_or_fetch(&key, fetch.clone()).await.unwrap();
    let second = cache.get_or_fetch(&key, fetch.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    cache.get_or_fetch(&key, fetch).await.unwrap();

    assert!(
        matches!(first.status, LookupStatus::Stale { fwd_status: 504, age } if age >= Duration::from_secs(40))
    );
    assert!(
        matches!(second.status, LookupStatus::Stale { .. }),
        "never a hit"
    );
    assert_eq!(
        loads.load(SeqCst),
        2,
        "the source is asked again after a second"
    );
}

#[tokio::test]
async fn an_aged_value_expires_when_its_source_copy_would() {
    let cache = layer(Duration::from_millis(300));
    let key = "K-1".to_owned();
    let aged = || async { Ok::<_, SourceError>(Fetched::aged(1, Duration::from_millis(250))) };

    let first = cache.get_or_fetch(&key, aged).await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    let later = cache.get_or_fetch(&key, aged).await.unwrap();

    assert!(matches!(
        first.status,
        LookupStatus::Miss { stored: true, .. }
    ));
    assert!(
        !later.status.is_hit(),
        "50 ms of TTL were left: {:?}",
        later.status
    );
}
