//! No stale data after writes, under concurrency (story 14.4): many readers and one writer per
//! key, through the HTTP router, over a store whose ticket reads are slowed so that loads often
//! hold a row that a write is replacing. Every read must show at least the version of the last
//! write acknowledged before the read began.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::delayed::DelayedTicketReads;
use common::TestApp;
use qa_pms_api::AppConfig;
use qa_pms_core::CacheKind;
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    no_read_returns_data_older_than_the_last_acknowledged_write,
    a_write_whose_request_times_out_after_commit_still_invalidates,
);

const KEYS: usize = 4;
const WRITES_PER_KEY: u64 = 120;
const READERS: usize = 24;
const READS_PER_READER: usize = 250;

fn version_of(summary: &str) -> u64 {
    summary
        .strip_prefix('v')
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("summary `{summary}` is not a version"))
}

async fn no_read_returns_data_older_than_the_last_acknowledged_write(backend: Backend) {
    let app = Arc::new(
        TestApp::with_store(backend, AppConfig::default(), |inner| {
            Arc::new(DelayedTicketReads::reads(
                inner,
                Duration::ZERO,
                Duration::from_millis(3),
            ))
        })
        .await,
    );
    for k in 0..KEYS {
        app.put_ticket(&format!("RACE-{}", k + 1), "v0", "Open", None)
            .await;
    }
    let acknowledged: Arc<Vec<AtomicU64>> =
        Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());

    let writers: Vec<_> = (0..KEYS)
        .map(|k| {
            let (app, acknowledged) = (Arc::clone(&app), Arc::clone(&acknowledged));
            tokio::spawn(async move {
                for version in 1..=WRITES_PER_KEY {
                    let response = app
                        .patch(
                            &format!("/api/v1/tickets/RACE-{}", k + 1),
                            json!({"summary": format!("v{version}")}),
                        )
                        .await;
                    assert_eq!(response.status, StatusCode::OK);
                    acknowledged[k].store(version, SeqCst);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (app, acknowledged) = (Arc::clone(&app), Arc::clone(&acknowledged));
            tokio::spawn(async move {
                let mut stale = Vec::new();
                for i in 0..READS_PER_READER {
                    let k = (r + i) % KEYS;
                    let floor = acknowledged[k].load(SeqCst);
                    let response = app.get(&format!("/api/v1/tickets/RACE-{}", k + 1)).await;
                    assert_eq!(response.status, StatusCode::OK);
                    let seen = version_of(response.json()["summary"].as_str().expect("summary"));
                    if seen < floor {
                        stale.push((k, floor, seen, response.header("cache-status").to_owned()));
                    }
                }
                stale
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let mut stale = Vec::new();
    for reader in readers {
        stale.extend(reader.await.expect("reader"));
    }

    let stats = app.state.cache.stats(CacheKind::Tickets);
    eprintln!(
        "{backend:?}: {} reads, {} hits, {} loads, {} lookups dropped a value a write had overtaken",
        stats.hits + stats.misses,
        stats.hits,
        stats.loads,
        stats.stale_discards
    );
    assert!(
        stale.is_empty(),
        "{} stale reads (key, last acknowledged, seen, cache-status): {:?}",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
    assert!(
        stats.hits > 0,
        "the cache served reads: the test exercised it"
    );
    assert!(
        stats.stale_discards > 0,
        "loads raced writes: the test exercised the race"
    );
    for k in 0..KEYS {
        let last = app
            .get(&format!("/api/v1/tickets/RACE-{}", k + 1))
            .await
            .json();
        assert_eq!(last["summary"], format!("v{WRITES_PER_KEY}"));
    }
}

/// A PATCH that commits and then runs past the request timeout is answered 503, but its
/// invalidation must still run: otherwise the entry cached before it is served until its TTL.
async fn a_write_whose_request_times_out_after_commit_still_invalidates(backend: Backend) {
    let mut config = AppConfig::default();
    config.limits.request_timeout = Duration::from_millis(100);
    let app = TestApp::with_store(backend, config, |inner| {
        Arc::new(DelayedTicketReads {
            inner,
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            after_write: Duration::from_millis(300),
            die_after_write: false,
        })
    })
    .await;
    app.put_ticket("SLOW-1", "v0", "Open", None).await;
    assert_eq!(
        app.get("/api/v1/tickets/SLOW-1").await.json()["summary"],
        "v0"
    );

    let patched = app
        .patch("/api/v1/tickets/SLOW-1", json!({"summary": "v1"}))
        .await;
    assert_eq!(
        patched.assert_error(StatusCode::SERVICE_UNAVAILABLE),
        "timeout"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let read = app.get("/api/v1/tickets/SLOW-1").await;

    assert_eq!(
        read.json()["summary"],
        "v1",
        "the committed write is visible"
    );
    assert_eq!(read.cache_status(), "MISS");
}
