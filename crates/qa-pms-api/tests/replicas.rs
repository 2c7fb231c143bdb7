//! Several replicas on one PostgreSQL database: a write on one invalidates the others' caches
//! through the outbox and `LISTEN`/`NOTIFY`, and a replica whose feed drops reads what it missed
//! instead of flushing. (SQLite serves from one process; `tests/outbox.rs` covers both backends.)

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use qa_pms_api::invalidation::listen;
use qa_pms_core::CacheKind;
use qa_pms_storage::Backend;
use serde_json::json;

/// Polls `read` until it returns true, for at most five seconds. Not a speed assertion: the
/// alternative to a delivered invalidation is a stale entry for the full TTL (300 s).
async fn eventually(mut read: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if read().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Waits until `replica` has applied `count` ticket invalidations from the other one, so that a
/// late-arriving message cannot drop what the test caches next.
async fn applied(replica: &TestApp, count: u64) {
    let arrived =
        eventually(async || replica.state.cache.stats(CacheKind::Tickets).invalidations >= count)
            .await;
    assert!(arrived, "the other replica's invalidation never arrived");
}

/// Replica A writes PROJ-1 with `summary`; replica B, once A's invalidation has reached it,
/// caches the ticket.
async fn cached_on_b(a: &TestApp, b: &TestApp, summary: &str) {
    a.put_ticket("PROJ-1", summary, "Open", None).await;
    applied(b, 1).await;
    b.get("/api/v1/tickets/PROJ-1").await;
    assert_eq!(b.get("/api/v1/tickets/PROJ-1").await.cache_status(), "HIT");
}

async fn two_replicas() -> Option<(TestApp, TestApp)> {
    if common::postgres_switched_off() {
        eprintln!("QA_PMS_TEST_POSTGRES=off: not run");
        return None;
    }
    let a = TestApp::new(Backend::Postgres).await;
    let b = a.replica().await;
    assert!(
        listen(a.state.clone()).await.unwrap(),
        "PostgreSQL has a feed"
    );
    assert!(listen(b.state.clone()).await.unwrap());
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_on_one_replica_invalidates_the_others() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    cached_on_b(&a, &b, "v0").await;

    a.patch("/api/v1/tickets/PROJ-1", json!({"summary": "v1"}))
        .await;

    let fresh =
        eventually(async || b.get("/api/v1/tickets/PROJ-1").await.json()["summary"] == "v1").await;
    assert!(
        fresh,
        "replica B still serves the entry replica A's write replaced"
    );
    // The count follows the invalidation itself: wait for it, then check nothing came twice.
    applied(&b, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        b.state.cache.stats(CacheKind::Tickets).invalidations,
        2,
        "PUT and PATCH"
    );
    // A applied its own two writes once each, not again when its own messages came back.
    assert_eq!(a.state.cache.stats(CacheKind::Tickets).invalidations, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_of_write_reaches_the_other_replica() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    a.put_ticket("PROJ-1", "x", "Open", None).await;
    let template = format!("/api/v1/templates/{}", qa_pms_core::template::BUG_FIX_ID);
    let kpi = "/api/v1/dashboard/kpi?period=7d";
    let search = "/api/v1/search?query=login";
    for uri in [template.as_str(), kpi, search] {
        b.get(uri).await;
        assert_eq!(b.get(uri).await.cache_status(), "HIT", "{uri}");
    }

    a.put(
        &template,
        json!({"name": "Bug Fix v2", "steps": ["one"], "workflow_type": "bug", "estimated_minutes": 30}),
    )
    .await;
    a.post(
        "/api/v1/workflows",
        json!({"template_id": qa_pms_core::template::BUG_FIX_ID, "ticket_key": "PROJ-1"}),
    )
    .await;
    a.post(
        "/api/v1/catalog/import",
        json!({"entries": [{"source": "postman", "name": "Login", "url": "https://p/1", "text": ""}]}),
    )
    .await;

    assert!(eventually(async || b.get(&template).await.json()["name"] == "Bug Fix v2").await);
    assert!(eventually(async || b.get(kpi).await.cache_status() == "MISS").await);
    assert!(eventually(async || b.get(search).await.json().as_array().unwrap().len() == 1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_whose_feed_drops_replays_what_it_missed_and_flushes_nothing() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    cached_on_b(&a, &b, "x").await;
    let template = format!("/api/v1/templates/{}", qa_pms_core::template::BUG_FIX_ID);
    b.get(&template).await;
    assert_eq!(b.get(&template).await.cache_status(), "HIT");

    // Cut every LISTEN connection on this database, as a network blip or a failover would, and
    // write while B may not be listening.
    let database = a.url.rsplit('/').next().unwrap().to_owned();
    let admin = sqlx::PgPool::connect(&a.url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&database)
    .execute(&admin)
    .await
    .unwrap();
    a.patch("/api/v1/tickets/PROJ-1", json!({"summary": "while cut"}))
        .await;

    // B reads what it missed: the written ticket is fresh, the rest of its cache is still there.
    assert!(
        eventually(async || b.get("/api/v1/tickets/PROJ-1").await.json()["summary"] == "while cut")
            .await,
        "B never learned of the write made while its feed was down"
    );
    assert_eq!(
        b.get(&template).await.cache_status(),
        "HIT",
        "nothing flushed"
    );
    // And it listens again: a later write arrives the usual way.
    let reconnected = eventually(async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'",
        )
        .bind(&database)
        .fetch_one(&admin)
        .await
        .unwrap()
            >= 2
    })
    .await;
    assert!(reconnected, "the feeds never reconnected");
    a.patch("/api/v1/tickets/PROJ-1", json!({"summary": "after"}))
        .await;
    assert!(
        eventually(async || b.get("/api/v1/tickets/PROJ-1").await.json()["summary"] == "after")
            .await
    );
    assert_eq!(
        b.get(&template).await.cache_status(),
        "HIT",
        "nothing flushed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_whose_process_died_right_after_its_commit_reaches_every_replica() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    cached_on_b(&a, &b, "x").await;
    a.get("/api/v1/tickets/PROJ-1").await;
    assert_eq!(a.get("/api/v1/tickets/PROJ-1").await.cache_status(), "HIT");

    // A writer that commits and is gone before it could tell anyone: its connection closes with
    // the commit. Only what its transaction recorded can reach the replicas.
    let writer = sqlx::PgPool::connect(&a.url).await.unwrap();
    sqlx::query("UPDATE jira_tickets SET summary = 'from the dead' WHERE key = 'PROJ-1'")
        .execute(&writer)
        .await
        .unwrap();
    writer.close().await;

    for replica in [&a, &b] {
        assert!(
            eventually(async || {
                replica.get("/api/v1/tickets/PROJ-1").await.json()["summary"] == "from the dead"
            })
            .await
        );
    }
}

/// One writer per replica, each on its own key, reading its write back on the two other replicas
/// at once: with the write's `X-Consistency-Token` no read may return an older version; without
/// it, reads can (counted, not asserted: that is the race the token closes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_the_consistency_token_no_replica_reads_an_older_version() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let c = a.replica().await;
    listen(c.state.clone()).await.unwrap();
    let replicas = std::sync::Arc::new([a, b, c]);
    const WRITES: usize = 40;
    let mut writers = Vec::new();
    for writer in 0..3 {
        let replicas = std::sync::Arc::clone(&replicas);
        writers.push(tokio::spawn(async move {
            let key = format!("PROJ-{}", writer + 1);
            let uri = format!("/api/v1/tickets/{key}");
            replicas[writer].put_ticket(&key, "0", "Open", None).await;
            let mut stale_without_token = 0;
            for version in 1..=WRITES {
                // Every replica has the key cached before the write.
                for replica in replicas.iter() {
                    replica.get(&uri).await;
                }
                let written = replicas[writer]
                    .patch(&uri, json!({"summary": version.to_string()}))
                    .await;
                assert_eq!(written.status, 200);
                let token = written.header("x-consistency-token").to_owned();
                for (i, replica) in replicas.iter().enumerate() {
                    if i == writer {
                        continue;
                    }
                    let without = replica.get(&uri).await.json()["summary"].clone();
                    if without != json!(version.to_string()) {
                        stale_without_token += 1;
                    }
                    let with = replica
                        .send_raw(
                            axum::http::Method::GET,
                            &uri,
                            &[("x-consistency-token", &token)],
                            vec![],
                        )
                        .await;
                    assert_eq!(with.status, 200, "{with:?}");
                    assert_eq!(
                        with.json()["summary"],
                        json!(version.to_string()),
                        "replica {i} read an older version with the token of write {version}"
                    );
                }
            }
            stale_without_token
        }));
    }
    let mut stale = 0;
    for writer in writers {
        stale += writer.await.unwrap();
    }
    eprintln!(
        "reads without the token that returned an older version: {stale} of {}",
        3 * 2 * WRITES
    );
}

/// Replica A's store commits a PATCH and then its writing task dies (a panic where a crash would
/// be): A never invalidates nor answers; B still learns of the write from what its transaction
/// recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_that_dies_between_commit_and_response_still_invalidates_the_others() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    cached_on_b(&a, &b, "before").await;
    let store = qa_pms_storage::connect(&a.url).await.unwrap();
    let dying: std::sync::Arc<dyn qa_pms_storage::Store> =
        std::sync::Arc::new(common::delayed::DelayedTicketReads {
            inner: store,
            min_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            after_write: Duration::ZERO,
            die_after_write: true,
        });
    let (router, _state) = qa_pms_api::build(dying, qa_pms_api::AppConfig::default());
    let request = axum::http::Request::patch("/api/v1/tickets/PROJ-1")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            json!({"summary": "committed"}).to_string(),
        ))
        .unwrap();

    let answered = tower::ServiceExt::oneshot(router, request).await.unwrap();

    assert_eq!(answered.status(), 500, "the writer died before answering");
    assert!(
        eventually(async || b.get("/api/v1/tickets/PROJ-1").await.json()["summary"] == "committed")
            .await,
        "B still serves what the dead writer's commit replaced"
    );
}
