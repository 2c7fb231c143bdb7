//! PostgreSQL cut off for 15 s behind a TCP proxy: every key cached before the cut answers 200,
//! marked STALE (its freshness can no longer be confirmed); a write is a 503 and changes nothing;
//! once the database is back the cache is trusted again, nothing was flushed, and writes land.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::proxy::Proxy;
use common::TestApp;
use qa_pms_api::invalidation::listen;
use qa_pms_api::AppConfig;
use qa_pms_storage::Backend;
use serde_json::json;

const KEYS: usize = 32;
const CUT: Duration = Duration::from_secs(15);

async fn eventually(mut check: impl FnMut() -> bool, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_postgres_cut_off_warm_keys_answer_stale_and_writes_are_503() {
    if common::postgres_switched_off() {
        eprintln!("QA_PMS_TEST_POSTGRES=off: not run");
        return;
    }
    let admin = std::env::var("QA_PMS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let proxy = Proxy::to_server_of(&admin).await;
    let app = TestApp::reached_through(Backend::Postgres, AppConfig::default(), |url| {
        proxy.url(url)
    })
    .await;
    let keys: Vec<String> = (1..=KEYS).map(|i| format!("PROJ-{i}")).collect();
    // Every write first, then the reads that cache: a write drops the entries of its stripe of
    // generations (qa_pms_core::cache), which may hold an earlier key.
    for key in &keys {
        app.put_ticket(key, "before", "Open", None).await;
    }
    for key in &keys {
        app.get(&format!("/api/v1/tickets/{key}")).await;
    }
    assert!(listen(app.state.clone()).await.unwrap());
    assert!(app.state.outbox.is_confirmed());

    proxy.cut();
    let cut_at = Instant::now();
    // The follower's LISTEN connection was dropped: from then on nothing cached is confirmed.
    let noticed = eventually(|| !app.state.outbox.is_confirmed(), Duration::from_secs(10)).await;
    assert!(noticed, "the cut went unnoticed");
    let write = {
        let router = app.router.clone();
        tokio::spawn(async move {
            let request = axum::http::Request::patch("/api/v1/tickets/PROJ-1")
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    json!({"summary": "during"}).to_string(),
                ))
                .unwrap();
            tower::ServiceExt::oneshot(router, request)
                .await
                .unwrap()
                .status()
        })
    };
    let mut reads = 0;
    while cut_at.elapsed() < CUT {
        for key in &keys[1..] {
            let response = app.get(&format!("/api/v1/tickets/{key}")).await;
            assert_eq!(response.status, StatusCode::OK, "{key}: {response:?}");
            assert_eq!(response.cache_status(), "STALE", "{key}");
            assert_eq!(response.json()["summary"], "before");
            reads += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let first = app.get("/api/v1/tickets/PROJ-1").await;
    assert_eq!(first.status, StatusCode::OK, "{first:?}");
    assert_eq!(first.json()["summary"], "before");
    proxy.restore();

    assert_eq!(write.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(reads >= KEYS * 10, "{reads} reads");
    let trusted = eventually(|| app.state.outbox.is_confirmed(), Duration::from_secs(15)).await;
    assert!(trusted, "the follower never read the outbox again");
    // Nothing was flushed, and the write made during the cut changed nothing.
    for key in &keys[1..] {
        let response = app.get(&format!("/api/v1/tickets/{key}")).await;
        assert_eq!(response.cache_status(), "HIT", "{key}");
    }
    let first = app.get("/api/v1/tickets/PROJ-1").await;
    assert_eq!(first.json()["summary"], "before");
    let after = app
        .patch("/api/v1/tickets/PROJ-1", json!({"summary": "after"}))
        .await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-1").await.json()["summary"],
        "after"
    );
}
