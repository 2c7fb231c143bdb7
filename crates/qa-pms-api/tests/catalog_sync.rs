//! The catalog synced from Postman and Testmo, against fake servers speaking their APIs over real
//! HTTP, on both backends: every request and case imported and searchable, a sync that fails
//! halfway changing nothing, a sync that changes nothing dropping no cached search, each service's
//! 429 header honoured and counted, one sync of a source at a time across replicas, searches during
//! a sync seeing the old catalog or the new one and never older data once it finished.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chrono::Utc;
use common::TestApp;
use qa_pms_api::{AppConfig, CatalogSettings};
use qa_pms_core::{CatalogEntry, Source};
use qa_pms_fakes::postman::{demo_collections, request, Failure, FakeCollection, FakePostman};
use qa_pms_fakes::testmo::{demo_cases, FakeCase, FakeTestmo};
use qa_pms_postman::PostmanConfig;
use qa_pms_storage::{Backend, CatalogChange};
use qa_pms_testmo::TestmoConfig;
use serde_json::{json, Value};

on_both_backends!(
    a_sync_imports_every_request_and_case_and_search_finds_them,
    a_sync_that_fails_halfway_leaves_the_previous_catalog_searchable_and_unchanged,
    a_sync_that_changes_nothing_keeps_every_cached_search,
    a_source_that_is_down_keeps_its_entries_and_the_status_says_why,
    each_services_429_header_is_honoured_and_counted,
    two_replicas_never_sync_a_source_at_the_same_time,
    searches_during_a_sync_see_the_old_catalog_or_the_new_one_never_a_mix,
    a_run_that_lost_its_claim_writes_nothing,
    a_scheduled_run_leaves_a_source_synced_within_the_interval,
    qa_pms_sync_catalog_imports_every_request_and_case_and_fails_loudly,
);

/// Requests in the demo collections, and cases in the demo project.
const DEMO_REQUESTS: u64 = 10;
const DEMO_CASES: u64 = 3;
/// Timers never fire early, but leave room for clocks read on two sides of a socket.
const ONE_SECOND_LESS_SLACK: Duration = Duration::from_millis(990);

struct Upstreams {
    postman: FakePostman,
    testmo: FakeTestmo,
}

impl Upstreams {
    async fn demo() -> Self {
        let postman = FakePostman::start().await;
        for collection in demo_collections() {
            postman.put_collection(collection);
        }
        let testmo = FakeTestmo::start().await;
        testmo.put_cases(1, demo_cases());
        Self { postman, testmo }
    }

    fn config(&self) -> AppConfig {
        let mut postman = PostmanConfig::new(self.postman.api_key());
        postman.base_url = self.postman.url();
        postman.max_rps = 100;
        postman.timeout = Duration::from_secs(5);
        let mut testmo = TestmoConfig::new(self.testmo.url(), self.testmo.token(), vec![1]);
        testmo.max_rps = 100;
        testmo.timeout = Duration::from_secs(5);
        AppConfig {
            catalog: CatalogSettings {
                postman: Some(postman),
                testmo: Some(testmo),
                interval: Duration::from_secs(600),
            },
            ..AppConfig::default()
        }
    }
}

async fn app_with(backend: Backend, upstreams: &Upstreams) -> TestApp {
    TestApp::with_config(backend, upstreams.config()).await
}

/// Asks for a sync, waits until this replica's run ended, and returns the status.
async fn sync(app: &TestApp) -> Value {
    let accepted = app.post("/api/v1/catalog/sync", json!({})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{accepted:?}");
    assert_eq!(accepted.header("location"), "/api/v1/catalog/sync");
    wait_for_the_run(app).await
}

async fn wait_for_the_run(app: &TestApp) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.state.catalog.is_running() {
        assert!(Instant::now() < deadline, "the sync never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = app.get("/api/v1/catalog/sync").await;
    assert_eq!(status.status, StatusCode::OK);
    status.json()
}

fn source<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == name)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

fn names(results: &Value) -> Vec<&str> {
    results
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect()
}

async fn search(app: &TestApp, query: &str) -> common::TestResponse {
    let response = app.get(&format!("/api/v1/search?{query}")).await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    response
}

async fn a_sync_imports_every_request_and_case_and_search_finds_them(backend: Backend) {
    let upstreams = Upstreams::demo().await;
    let app = app_with(backend, &upstreams).await;
    let before = app.get("/api/v1/catalog/sync").await.json();
    assert_eq!(source(&before, "postman")["state"], "never");

    let status = sync(&app).await;

    for (name, count) in [("postman", DEMO_REQUESTS), ("testmo", DEMO_CASES)] {
        let s = source(&status, name);
        assert_eq!(s["state"], "finished", "{s}");
        assert_eq!(s["added"], count, "{s}");
        assert_eq!(s["changed"], 0, "{s}");
        assert_eq!(s["removed"], 0, "{s}");
        assert_eq!(s["entries"], count, "{s}");
        assert!(s["error"].is_null(), "{s}");
        assert!(s["last_success_at"].is_string(), "{s}");
    }
    // A request three folders deep, by a word of its name; a case by a word of its steps.
    let refund = search(&app, "query=more+than+paid&source=postman")
        .await
        .json();
    assert_eq!(
        names(&refund)[0],
        "Shop API / Orders / Refunds / Edge cases / Refund more than paid"
    );
    let login = search(&app, "query=dashboard+greets&source=testmo")
        .await
        .json();
    assert_eq!(names(&login), ["Login with a valid password"]);
    assert_eq!(
        login[0]["url"],
        format!(
            "{}/repositories/1?group_id=10&case_id=1",
            upstreams.testmo.url()
        )
    );
}

async fn a_sync_that_fails_halfway_leaves_the_previous_catalog_searchable_and_unchanged(
    backend: Backend,
) {
    let upstreams = Upstreams::demo().await;
    // Three pages of Testmo cases.
    upstreams
        .testmo
        .put_cases(1, (100..350).map(FakeCase::generated));
    let app = app_with(backend, &upstreams).await;
    let first = sync(&app).await;
    assert_eq!(source(&first, "testmo")["entries"], 253);
    let queries = [
        "query=scenario&limit=100",
        "query=refund&source=postman",
        "query=login&limit=50",
    ];
    let mut before = Vec::new();
    for q in queries {
        before.push(search(&app, q).await.body);
    }

    // Upstream changes: new and renamed cases, a new collection. Then Testmo fails on the second
    // page (past its retries) and Postman answers one collection with truncated JSON.
    let mut renamed = FakeCase::generated(100);
    renamed.name = "Renamed scenario".into();
    upstreams.testmo.put_case(1, renamed);
    upstreams
        .testmo
        .put_case(1, FakeCase::new(999, "Quokka scenario"));
    upstreams
        .postman
        .put_collection(FakeCollection::new("Late arrival").with_items(vec![request(
            "Scenario ping",
            json!("https://late.test/ping"),
        )]));
    // Four: every attempt the client makes at one call.
    upstreams
        .testmo
        .fail_next_matching("page=2", 4, Failure::Status(503));
    let shop_uid = demo_collections()[0].uid();
    upstreams
        .postman
        .fail_next_matching(&shop_uid, 1, Failure::Malformed);

    let second = sync(&app).await;

    assert_eq!(upstreams.testmo.pending_failures(), 0);
    let testmo = source(&second, "testmo");
    assert_eq!(testmo["state"], "failed", "{testmo}");
    assert!(
        testmo["error"].as_str().unwrap().contains("503"),
        "{testmo}"
    );
    assert_eq!(testmo["entries"], 253, "{testmo}");
    assert!(testmo["added"].is_null(), "{testmo}");
    let postman = source(&second, "postman");
    assert_eq!(postman["state"], "failed", "{postman}");
    assert!(
        postman["error"].as_str().unwrap().contains("unexpected"),
        "{postman}"
    );
    assert_eq!(postman["entries"], DEMO_REQUESTS, "{postman}");
    assert_eq!(
        postman["last_success_at"],
        source(&first, "postman")["last_success_at"]
    );
    // Every search answers exactly as before, straight from the cache (nothing changed) and from
    // the database.
    for (q, body) in queries.iter().zip(&before) {
        let cached = search(&app, q).await;
        assert_eq!(cached.cache_status(), "HIT", "{q}");
        assert_eq!(&cached.body, body, "{q}");
    }
    app.state.cache.invalidate_all();
    for (q, body) in queries.iter().zip(&before) {
        let fresh = search(&app, q).await;
        assert_eq!(fresh.cache_status(), "MISS", "{q}");
        assert_eq!(&fresh.body, body, "{q}");
    }
    assert_eq!(
        search(&app, "query=quokka").await.json(),
        json!([]),
        "nothing of the failed sync was written"
    );

    // Once the upstreams answer again, the next sync brings every change in.
    let third = sync(&app).await;
    let testmo = source(&third, "testmo");
    assert_eq!(testmo["state"], "finished", "{testmo}");
    assert_eq!(
        (&testmo["added"], &testmo["changed"], &testmo["removed"]),
        (&json!(1), &json!(1), &json!(0)),
        "{testmo}"
    );
    assert_eq!(source(&third, "postman")["added"], 1);
    assert_eq!(
        names(&search(&app, "query=quokka").await.json()),
        ["Quokka scenario"]
    );
}

async fn a_sync_that_changes_nothing_keeps_every_cached_search(backend: Backend) {
    let upstreams = Upstreams::demo().await;
    let app = app_with(backend, &upstreams).await;
    sync(&app).await;
    let queries = [
        "query=refund",
        "query=login&source=testmo",
        "query=order+cart",
    ];
    for q in queries {
        assert_eq!(search(&app, q).await.cache_status(), "MISS", "{q}");
    }

    let again = sync(&app).await;

    for name in ["postman", "testmo"] {
        let s = source(&again, name);
        assert_eq!(s["state"], "finished", "{s}");
        assert_eq!(
            (&s["added"], &s["changed"], &s["removed"]),
            (&json!(0), &json!(0), &json!(0))
        );
    }
    for q in queries {
        assert_eq!(search(&app, q).await.cache_status(), "HIT", "{q}");
    }

    // A renamed case and a removed collection: counted, and the searches read the catalog again.
    let mut renamed = demo_cases().remove(0);
    renamed.name = "Login with a valid passphrase".into();
    upstreams.testmo.put_case(1, renamed);
    upstreams
        .postman
        .remove_collection(&demo_collections()[1].uid());
    let changed = sync(&app).await;

    let testmo = source(&changed, "testmo");
    assert_eq!(
        (&testmo["added"], &testmo["changed"], &testmo["removed"]),
        (&json!(0), &json!(1), &json!(0))
    );
    let postman = source(&changed, "postman");
    assert_eq!(
        (&postman["added"], &postman["changed"], &postman["removed"]),
        (&json!(0), &json!(0), &json!(2))
    );
    assert_eq!(postman["entries"], DEMO_REQUESTS - 2);
    let login = search(&app, "query=login&source=testmo").await;
    assert_eq!(login.cache_status(), "MISS");
    assert!(names(&login.json()).contains(&"Login with a valid passphrase"));
    assert_eq!(
        app.state
            .metrics
            .catalog_syncs
            .with_label_values(&["testmo", "unchanged"])
            .get(),
        1
    );
}

async fn a_source_that_is_down_keeps_its_entries_and_the_status_says_why(backend: Backend) {
    let upstreams = Upstreams::demo().await;
    let app = app_with(backend, &upstreams).await;
    sync(&app).await;
    let refund = search(&app, "query=refund&source=postman").await.body;

    upstreams.postman.set_down(Some(Failure::Status(503)));
    upstreams
        .testmo
        .put_case(1, FakeCase::new(50, "Logout everywhere"));
    let status = sync(&app).await;

    let postman = source(&status, "postman");
    assert_eq!(postman["state"], "failed", "{postman}");
    assert!(
        postman["error"].as_str().unwrap().contains("503"),
        "{postman}"
    );
    assert_eq!(postman["entries"], DEMO_REQUESTS);
    let testmo = source(&status, "testmo");
    assert_eq!(
        testmo["state"], "finished",
        "the other source syncs on: {testmo}"
    );
    assert_eq!(testmo["added"], 1);
    app.state.cache.invalidate_all();
    assert_eq!(
        search(&app, "query=refund&source=postman").await.body,
        refund
    );
    let metrics = app.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(r#"qa_pms_catalog_syncs_total{outcome="failed",source="postman"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"qa_pms_upstream_requests_total{upstream="postman",outcome="server_error"}"#
        ),
        "{text}"
    );
}

async fn each_services_429_header_is_honoured_and_counted(backend: Backend) {
    let upstreams = Upstreams::demo().await;
    // Postman sends only its own header, Testmo only the standard one.
    upstreams
        .postman
        .set_retry_after_headers(&["X-RateLimit-RetryAfter"]);
    upstreams.postman.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: Some(1),
        },
    );
    upstreams.testmo.fail_next(
        2,
        Failure::TooManyRequests {
            retry_after_secs: Some(1),
        },
    );
    let app = app_with(backend, &upstreams).await;

    let status = sync(&app).await;

    assert_eq!(source(&status, "postman")["added"], DEMO_REQUESTS);
    assert_eq!(source(&status, "testmo")["added"], DEMO_CASES);
    let postman = upstreams.postman.requests();
    assert_eq!(postman[0].status, Some(429));
    assert_eq!(postman[1].status, Some(200));
    assert_eq!(postman[0].path, postman[1].path, "the same call, retried");
    let waited = postman[1].received_at - postman[0].received_at;
    assert!(
        waited >= ONE_SECOND_LESS_SLACK,
        "Postman retried after {waited:?}"
    );
    let testmo = upstreams.testmo.requests();
    let statuses: Vec<_> = testmo.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(200)]);
    for pair in testmo.windows(2) {
        let waited = pair[1].received_at - pair[0].received_at;
        assert!(
            waited >= ONE_SECOND_LESS_SLACK,
            "Testmo retried after {waited:?}"
        );
    }
    let metrics = app.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    for (upstream, count) in [("postman", 1), ("testmo", 2)] {
        let line = format!(
            r#"qa_pms_upstream_requests_total{{upstream="{upstream}",outcome="rate_limited"}} {count}"#
        );
        assert!(text.contains(&line), "{line} in {text}");
    }
}

async fn two_replicas_never_sync_a_source_at_the_same_time(backend: Backend) {
    let upstreams = Upstreams::demo().await;
    upstreams.postman.set_latency(Duration::from_millis(150));
    upstreams.testmo.set_latency(Duration::from_millis(150));
    let first = app_with(backend, &upstreams).await;
    let second = first.replica_with(upstreams.config()).await;

    let (a, b) = tokio::join!(
        first.post("/api/v1/catalog/sync", json!({})),
        second.post("/api/v1/catalog/sync", json!({}))
    );
    assert_eq!(
        (a.status, b.status),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    wait_for_the_run(&first).await;
    let status = wait_for_the_run(&second).await;

    // One list of collections and one page of cases between the two replicas.
    assert_eq!(upstreams.postman.calls_to("GET", "/collections?"), 1);
    assert_eq!(
        upstreams.testmo.calls_to("GET", "/api/v1/projects/1/cases"),
        1
    );
    for name in ["postman", "testmo"] {
        let synced: u64 = [&first, &second]
            .iter()
            .map(|app| {
                app.state
                    .metrics
                    .catalog_syncs
                    .with_label_values(&[name, "changed"])
                    .get()
            })
            .sum();
        let skipped: u64 = [&first, &second]
            .iter()
            .map(|app| {
                app.state
                    .metrics
                    .catalog_syncs
                    .with_label_values(&[name, "skipped"])
                    .get()
            })
            .sum();
        assert_eq!((synced, skipped), (1, 1), "{name}");
        assert_eq!(source(&status, name)["state"], "finished");
    }
}

async fn searches_during_a_sync_see_the_old_catalog_or_the_new_one_never_a_mix(backend: Backend) {
    let upstreams = Upstreams::demo().await;
    let version =
        |v: u32| (1..=300).map(move |id| FakeCase::new(id, format!("Zeta case {id} v{v}")));
    upstreams.testmo.put_cases(1, version(1));
    let app = app_with(backend, &upstreams).await;
    sync(&app).await;
    upstreams.testmo.put_cases(1, version(2));
    upstreams.testmo.set_latency(Duration::from_millis(30));

    let finished = Arc::new(AtomicBool::new(false));
    let app = Arc::new(app);
    let searchers: Vec<_> = (0..4)
        .map(|i| {
            let (app, finished) = (Arc::clone(&app), Arc::clone(&finished));
            tokio::spawn(async move {
                let (mut old, mut new) = (0, 0);
                let query = format!("/api/v1/search?query=zeta+case&limit={}", 50 + i);
                loop {
                    let after_finish = finished.load(SeqCst);
                    let response = app.get(&query).await;
                    assert_eq!(response.status, StatusCode::OK);
                    let results = response.json();
                    let versions: Vec<bool> =
                        names(&results).iter().map(|n| n.ends_with(" v2")).collect();
                    assert_eq!(versions.len(), 50 + i);
                    let all_new = versions.iter().all(|v| *v);
                    let all_old = versions.iter().all(|v| !*v);
                    assert!(
                        all_new || all_old,
                        "a search saw a half-replaced catalog: {results}"
                    );
                    assert!(
                        all_new || !after_finish,
                        "a search after the sync finished returned the old catalog"
                    );
                    if all_new {
                        new += 1
                    } else {
                        old += 1
                    }
                    if after_finish {
                        return (old, new);
                    }
                    // A cache hit never waits: leave the sync its turn on the runtime's threads.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // The acknowledgement a client sees: the status saying the run finished.
    let started = Utc::now() - chrono::Duration::milliseconds(1);
    let accepted = app.post("/api/v1/catalog/sync", json!({})).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED);
    loop {
        let status = app.get("/api/v1/catalog/sync").await.json();
        let testmo = source(&status, "testmo");
        let this_run = testmo["started_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t >= started);
        if this_run && testmo["state"] == "finished" {
            finished.store(true, SeqCst);
            break;
        }
        tokio::task::yield_now().await;
    }
    let status = wait_for_the_run(&app).await;
    assert_eq!(source(&status, "testmo")["changed"], 300);
    let mut seen_old = 0;
    for searcher in searchers {
        let (old, new) = searcher.await.unwrap();
        assert!(new >= 1);
        seen_old += old;
    }
    assert!(seen_old >= 4, "the searches overlapped the sync");
}

async fn a_run_that_lost_its_claim_writes_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &app.store;
    let now = Utc::now();
    let entry = |name: &str| {
        CatalogEntry {
            source: Source::Testmo,
            name: name.into(),
            url: format!("https://t.test/{name}"),
            text: String::new(),
        }
        .validate()
        .unwrap()
    };
    // A's lease ran out (its process stalled); B took the source over.
    let soon = now + chrono::Duration::milliseconds(1);
    assert!(store
        .claim_catalog_sync(Source::Testmo, "a", now, soon, None)
        .await
        .unwrap());
    assert!(!store
        .claim_catalog_sync(Source::Testmo, "b", now, soon, None)
        .await
        .unwrap());
    let later = now + chrono::Duration::seconds(1);
    let lease = later + chrono::Duration::minutes(30);
    assert!(store
        .claim_catalog_sync(Source::Testmo, "b", later, lease, None)
        .await
        .unwrap());

    // A's renewal fails; B's extends its own claim only.
    let renewed = |holder: &'static str| {
        store.renew_catalog_sync(Source::Testmo, holder, lease + chrono::Duration::minutes(1))
    };
    assert!(!renewed("a").await.unwrap());
    assert!(renewed("b").await.unwrap());
    let stale = store
        .replace_catalog(Source::Testmo, "a", &[entry("from-a")])
        .await
        .unwrap();
    let current = store
        .replace_catalog(Source::Testmo, "b", &[entry("from-b")])
        .await
        .unwrap();
    store
        .finish_catalog_sync(Source::Testmo, "a", later, Err("too late".into()))
        .await
        .unwrap();

    assert_eq!(stale, None);
    assert_eq!(
        current,
        Some(CatalogChange {
            added: 1,
            ..CatalogChange::default()
        })
    );
    let records = store.catalog_syncs().await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].holder.as_deref(),
        Some("b"),
        "A's finish changed nothing"
    );
    assert_eq!(records[0].error, None);
    assert_eq!(records[0].entries, 1);
    // A sync replaces only its own source's entries.
    store
        .import_catalog(&[CatalogEntry {
            source: Source::Postman,
            ..entry("imported")
        }])
        .await
        .unwrap();
    let emptied = store
        .replace_catalog(Source::Testmo, "b", &[])
        .await
        .unwrap();
    assert_eq!(emptied.map(|c| c.removed), Some(1));
    assert_eq!(app.get("/api/v1/search?query=from").await.json(), json!([]));
    let left = app.get("/api/v1/search?query=imported").await.json();
    assert_eq!(names(&left), ["imported"]);
}

async fn a_scheduled_run_leaves_a_source_synced_within_the_interval(backend: Backend) {
    let upstreams = Upstreams::demo().await;
    let app = app_with(backend, &upstreams).await;
    sync(&app).await;
    let calls = upstreams.testmo.requests().len();

    // A scheduled run (another replica's start, say) right after: nothing to do.
    assert!(qa_pms_api::catalog::start(&app.state, false));
    let status = wait_for_the_run(&app).await;

    assert_eq!(upstreams.testmo.requests().len(), calls);
    assert_eq!(source(&status, "testmo")["state"], "finished");
    let skipped = app
        .state
        .metrics
        .catalog_syncs
        .with_label_values(&["testmo", "skipped"])
        .get();
    assert_eq!(skipped, 1);
}

#[tokio::test]
async fn without_a_source_a_sync_is_409_and_the_status_lists_none() {
    let app = TestApp::new(Backend::Sqlite).await;

    let refused = app.post("/api/v1/catalog/sync", json!({})).await;
    let status = app.get("/api/v1/catalog/sync").await;

    assert_eq!(refused.assert_error(StatusCode::CONFLICT), "conflict");
    assert!(String::from_utf8_lossy(&refused.body).contains("QA_PMS_POSTMAN_API_KEY"));
    assert_eq!(status.json()["sources"], json!([]));
}

/// Runs the `qa-pms` binary with the fakes' settings and `extra` arguments.
async fn qa_pms(app: &TestApp, upstreams: &Upstreams, args: &[&str]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_qa-pms"));
    command
        .args(args)
        .env("DATABASE_URL", &app.url)
        .env("QA_PMS_POSTMAN_API_KEY", upstreams.postman.api_key())
        .env("QA_PMS_POSTMAN_URL", upstreams.postman.url())
        .env("QA_PMS_POSTMAN_TIMEOUT", "5s")
        .env("QA_PMS_TESTMO_URL", upstreams.testmo.url())
        .env("QA_PMS_TESTMO_TOKEN", upstreams.testmo.token())
        .env("QA_PMS_TESTMO_PROJECTS", "1,2")
        .env("QA_PMS_TESTMO_TIMEOUT", "5s")
        .env("RUST_LOG", "warn");
    tokio::task::spawn_blocking(move || command.output().expect("run qa-pms"))
        .await
        .unwrap()
}

async fn qa_pms_sync_catalog_imports_every_request_and_case_and_fails_loudly(backend: Backend) {
    let upstreams = Upstreams::demo().await;
    upstreams
        .testmo
        .put_cases(2, (500..620).map(FakeCase::generated));
    let app = TestApp::new(backend).await;

    let synced = qa_pms(&app, &upstreams, &["sync", "catalog"]).await;

    let stdout = String::from_utf8_lossy(&synced.stdout);
    assert!(
        synced.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&synced.stderr)
    );
    assert!(
        stdout.contains("postman: 10 added, 0 changed, 0 removed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("testmo: 123 added, 0 changed, 0 removed"),
        "{stdout}"
    );
    let refund = search(&app, "query=refund+more+than&source=postman")
        .await
        .json();
    assert_eq!(
        names(&refund)[0],
        "Shop API / Orders / Refunds / Edge cases / Refund more than paid"
    );
    let generated = search(&app, "query=scenario+619").await.json();
    assert_eq!(names(&generated)[0], "Profile: scenario 619");
    let status = app.get("/api/v1/catalog/sync").await.json();
    assert_eq!(source(&status, "testmo")["entries"], 123);

    // Postman refuses the key: the command says so and fails; Testmo's run still counts.
    upstreams.postman.set_down(Some(Failure::Status(401)));
    let failed = qa_pms(&app, &upstreams, &["sync", "catalog"]).await;

    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(!failed.status.success(), "{stdout}");
    assert!(
        stdout.contains("postman: failed, the previous entries stay"),
        "{stdout}"
    );
    assert!(
        stdout.contains("testmo: 0 added, 0 changed, 0 removed, 123 unchanged"),
        "{stdout}"
    );
    let status = app.get("/api/v1/catalog/sync").await.json();
    assert_eq!(source(&status, "postman")["state"], "failed");
    assert_eq!(source(&status, "postman")["entries"], DEMO_REQUESTS);
}
