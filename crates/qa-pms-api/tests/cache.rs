//! The cache layer of story 14.4 seen through HTTP and `/metrics`: coalesced loads, capacity,
//! expiry, the off switch, and every cache metric after a scripted sequence of requests.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::delayed::DelayedTicketReads;
use common::{find_sample, TestApp};
use qa_pms_api::AppConfig;
use qa_pms_core::template::BUG_FIX_ID;
use qa_pms_core::{CacheKind, JiraTicket};
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    two_hundred_concurrent_requests_for_a_cold_key_run_one_load,
    ten_times_capacity_distinct_keys_leave_at_most_capacity_entries,
    an_entry_expires_after_its_ttl_and_its_tti,
    capacity_zero_turns_a_cache_off,
    metrics_count_a_scripted_sequence_exactly_and_pass_promtool,
);

fn config(edit: impl FnOnce(&mut AppConfig)) -> AppConfig {
    let mut config = AppConfig::default();
    edit(&mut config);
    config
}

async fn two_hundred_concurrent_requests_for_a_cold_key_run_one_load(backend: Backend) {
    // A 50 ms load: every request arrives while it runs.
    let app = Arc::new(
        TestApp::with_store(backend, AppConfig::default(), |inner| {
            Arc::new(DelayedTicketReads::reads(
                inner,
                Duration::from_millis(50),
                Duration::from_millis(50),
            ))
        })
        .await,
    );
    app.put_ticket("PROJ-7", "Hot", "Open", None).await;
    let labels = [("cache_type", "tickets")];
    let loads_before = app.metric("qa_pms_cache_loads_total", &labels).await;

    let requests: Vec<_> = (0..200)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.get("/api/v1/tickets/PROJ-7").await })
        })
        .collect();
    let mut responses = Vec::new();
    for request in requests {
        responses.push(request.await.expect("request task"));
    }

    let loads_after = app.metric("qa_pms_cache_loads_total", &labels).await;
    assert_eq!(loads_after - loads_before, 1.0);
    assert!(responses.iter().all(|r| r.status == StatusCode::OK));
    assert!(responses.iter().all(|r| r.body == responses[0].body));
    let statuses: Vec<&str> = responses.iter().map(|r| r.header("cache-status")).collect();
    let loaded_here = statuses
        .iter()
        .filter(|s| **s == "qa-pms; fwd=miss; stored")
        .count();
    let collapsed = statuses.iter().filter(|s| s.ends_with("collapsed")).count();
    let hits = statuses.iter().filter(|s| s.contains("; hit;")).count();
    assert_eq!(loaded_here, 1, "{statuses:?}");
    assert_eq!(loaded_here + collapsed + hits, 200, "{statuses:?}");
    assert!(collapsed > 0, "requests waited on the one load");
}

async fn ten_times_capacity_distinct_keys_leave_at_most_capacity_entries(backend: Backend) {
    let app = TestApp::with_config(backend, config(|c| c.cache.tickets.capacity = 50)).await;
    let now = chrono::Utc::now();
    let tickets: Vec<_> = (1..=500)
        .map(|n| JiraTicket {
            key: format!("CAP-{n}"),
            summary: "x".repeat(200),
            status: "Open".into(),
            description: None,
            assignee: None,
            priority: None,
            updated_at: now,
        })
        .collect();
    app.store.insert_tickets(&tickets).await.expect("insert");

    for n in 1..=500 {
        let response = app.get(&format!("/api/v1/tickets/CAP-{n}")).await;
        assert_eq!(response.status, StatusCode::OK);
    }
    app.state.cache.run_pending_tasks().await;

    let stats = app.state.cache.stats(CacheKind::Tickets);
    assert!(stats.entries <= 50, "{} entries", stats.entries);
    assert!(stats.entries > 0);
    assert_eq!(stats.loads, 500);
    assert_eq!(
        stats.entries + stats.evicted_size,
        500,
        "every loaded entry is either held or was evicted for size"
    );
    let labels = [("cache_type", "tickets")];
    assert!(app.metric("qa_pms_cache_entries", &labels).await <= 50.0);
    assert_eq!(app.metric("qa_pms_cache_capacity", &labels).await, 50.0);
    assert_eq!(
        app.metric("qa_pms_cache_bytes", &labels).await,
        app.state.cache.stats(CacheKind::Tickets).bytes as f64
    );
    assert!(app.metric("qa_pms_cache_bytes", &labels).await > 0.0);
    assert_eq!(
        app.metric("qa_pms_cache_max_bytes", &labels).await,
        (32 * 1024 * 1024) as f64
    );
}

async fn an_entry_expires_after_its_ttl_and_its_tti(backend: Backend) {
    let app = TestApp::with_config(
        backend,
        config(|c| {
            c.cache.tickets.ttl = Duration::from_millis(300);
            c.cache.tickets.tti = None;
            c.cache.templates.ttl = Duration::from_secs(60);
            c.cache.templates.tti = Some(Duration::from_millis(300));
        }),
    )
    .await;
    app.put_ticket("PROJ-8", "x", "Open", None).await;
    let ticket = "/api/v1/tickets/PROJ-8";
    let template = format!("/api/v1/templates/{BUG_FIX_ID}");

    assert_eq!(app.get(ticket).await.cache_status(), "MISS");
    assert_eq!(app.get(ticket).await.cache_status(), "HIT");
    assert_eq!(app.get(&template).await.cache_status(), "MISS");
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.state.cache.run_pending_tasks().await;

    let tickets = app.state.cache.stats(CacheKind::Tickets);
    assert_eq!(tickets.entries, 0);
    assert_eq!(tickets.evicted_expired, 1);
    assert_eq!(app.get(ticket).await.cache_status(), "MISS");
    assert_eq!(
        app.get(&template).await.cache_status(),
        "MISS",
        "idle past its TTI"
    );
}

async fn capacity_zero_turns_a_cache_off(backend: Backend) {
    let app = TestApp::with_config(backend, config(|c| c.cache.tickets.capacity = 0)).await;
    app.put_ticket("PROJ-9", "x", "Open", None).await;

    let first = app.get("/api/v1/tickets/PROJ-9").await;
    let second = app.get("/api/v1/tickets/PROJ-9").await;

    for response in [&first, &second] {
        assert_eq!(response.cache_status(), "MISS");
        assert_eq!(response.header("cache-status"), "qa-pms; fwd=bypass");
    }
    assert_eq!(first.body, second.body);
    assert_eq!(app.state.cache.stats(CacheKind::Tickets).loads, 2);
}

async fn metrics_count_a_scripted_sequence_exactly_and_pass_promtool(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "x", "Open", None).await; // tickets invalidation 1
    app.post(
        "/api/v1/catalog/import",
        json!({"entries": [{"source": "postman", "name": "Login", "url": "https://p/1", "text": ""}]}),
    )
    .await;
    let template = format!("/api/v1/templates/{BUG_FIX_ID}");

    app.get("/api/v1/tickets/PROJ-1").await; // miss, load 1
    app.get("/api/v1/tickets/PROJ-1").await; // hit
    app.get("/api/v1/tickets/PROJ-1").await; // hit
    app.patch("/api/v1/tickets/PROJ-1", json!({"status": "Done"}))
        .await; // invalidation 2
    app.get("/api/v1/tickets/PROJ-1").await; // miss, load 2
    app.get("/api/v1/tickets/NOPE-1").await; // miss, load 3 (404, remembered 30 s)
    app.get("/api/v1/tickets/NOPE-1").await; // miss without a load: the remembered 404
    app.get("/api/v1/tickets/bad").await; // 400: no lookup at all
    app.get("/api/v1/search?query=login").await; // miss
    app.get("/api/v1/search?query=login").await; // hit
    app.post(
        "/api/v1/catalog/import",
        json!({"entries": [{"source": "testmo", "name": "Login 2", "url": "https://t/1", "text": ""}]}),
    )
    .await; // search invalidation 2 (the import above was 1)
    app.get("/api/v1/dashboard/kpi?period=90d").await; // miss
    app.get(&template).await; // miss
    app.get(&template).await; // hit

    let response = app.get("/metrics").await;
    assert_eq!(response.status, StatusCode::OK);
    let text = String::from_utf8(response.body.to_vec()).expect("utf-8");
    let value = |name: &str, labels: &[(&str, &str)]| {
        find_sample(&text, name, labels).unwrap_or_else(|| panic!("no {name}{labels:?} in\n{text}"))
    };
    let expected = [
        // cache, hits, misses, loads, invalidations, entries
        ("tickets", 2.0, 4.0, 3.0, 2.0, 2.0),
        ("search", 1.0, 1.0, 1.0, 2.0, 0.0),
        ("metrics", 0.0, 1.0, 1.0, 0.0, 1.0),
        ("templates", 1.0, 1.0, 1.0, 0.0, 1.0),
    ];
    for (cache, hits, misses, loads, invalidations, entries) in expected {
        let l = [("cache_type", cache)];
        assert_eq!(value("qa_pms_cache_hits_total", &l), hits, "{cache} hits");
        assert_eq!(
            value("qa_pms_cache_misses_total", &l),
            misses,
            "{cache} misses"
        );
        assert_eq!(
            value("qa_pms_cache_loads_total", &l),
            loads,
            "{cache} loads"
        );
        assert_eq!(value("qa_pms_cache_load_duration_seconds_count", &l), loads);
        assert_eq!(
            value(
                "qa_pms_cache_load_duration_seconds_bucket",
                &[("cache_type", cache), ("le", "+Inf")]
            ),
            loads
        );
        assert_eq!(
            value("qa_pms_cache_invalidations_total", &l),
            invalidations,
            "{cache} invalidations"
        );
        assert_eq!(
            value("qa_pms_cache_entries", &l),
            entries,
            "{cache} entries"
        );
        for cause in ["size", "expired"] {
            assert_eq!(
                value(
                    "qa_pms_cache_evictions_total",
                    &[("cache_type", cache), ("cause", cause)]
                ),
                0.0
            );
        }
    }
    let route = |status: &str| {
        value(
            "qa_pms_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/api/v1/tickets/{key}"),
                ("status", status),
            ],
        )
    };
    assert_eq!(route("200"), 4.0);
    assert_eq!(route("404"), 2.0);
    assert_eq!(route("400"), 1.0);
    assert!(text.contains("qa_pms_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/tickets/{key}\""));
    assert!(!text.contains("PROJ-1"), "no raw paths or keys in labels");
    assert!(
        !text.contains("cache_entries_total"),
        "a gauge has no _total suffix"
    );

    promtool_accepts(&text);
}

/// Runs `promtool check metrics` (Debian package `prometheus`) on an exposition.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (apt-get install prometheus; .ci/run does it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool ran");
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
