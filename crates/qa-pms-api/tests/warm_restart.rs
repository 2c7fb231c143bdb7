//! The warm restart, on both backends: a process shutting down saves its most-read keys, the next
//! one over the same database loads them before they are asked for.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use common::TestApp;
use qa_pms_core::template::BUG_FIX_ID;
use qa_pms_core::CacheKind;
use qa_pms_storage::Backend;

on_both_backends!(the_next_process_starts_with_the_most_read_keys_cached);

async fn the_next_process_starts_with_the_most_read_keys_cached(backend: Backend) {
    let first = TestApp::new(backend).await;
    for key in ["PROJ-1", "PROJ-2", "PROJ-3"] {
        first.put_ticket(key, "x", "Open", None).await;
    }
    let read = |uri: String, times: usize| {
        let first = &first;
        async move {
            for _ in 0..times {
                first.get(&uri).await;
            }
        }
    };
    read("/api/v1/tickets/PROJ-1".into(), 5).await;
    read("/api/v1/tickets/PROJ-2".into(), 2).await;
    read(format!("/api/v1/templates/{BUG_FIX_ID}"), 2).await;
    read("/api/v1/search?query=login".into(), 2).await;
    read("/api/v1/dashboard/kpi?period=30d".into(), 2).await;
    let saved = qa_pms_api::warm::save(&first.state).await.unwrap();
    assert_eq!(saved, 5);

    let next = first.replica().await;
    let warmed = qa_pms_api::warm::restore(&next.state).await.unwrap();
    assert_eq!((warmed.loaded, warmed.failed), (5, 0));
    for uri in [
        "/api/v1/tickets/PROJ-1".to_owned(),
        "/api/v1/tickets/PROJ-2".to_owned(),
        format!("/api/v1/templates/{BUG_FIX_ID}"),
        "/api/v1/search?query=login".to_owned(),
        "/api/v1/dashboard/kpi?period=30d".to_owned(),
    ] {
        assert_eq!(next.get(&uri).await.cache_status(), "HIT", "{uri}");
    }
    // Never read: not saved, not loaded.
    assert_eq!(
        next.get("/api/v1/tickets/PROJ-3").await.cache_status(),
        "MISS"
    );
    // The order is the read count's: most read first.
    let saved = next
        .store
        .warm_keys(CacheKind::Tickets.as_str())
        .await
        .unwrap();
    assert_eq!(saved, ["PROJ-1", "PROJ-2"]);
}
