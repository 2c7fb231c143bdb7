//! HTTP as clients expect it of the cached resources, on both backends: a GET's body can be edited
//! and PUT back; a contradicting key or id is a 400; `ETag` and `If-None-Match` give 304 from the
//! cache, with the same tag on every replica for the same representation; `If-Match` makes a
//! write conditional (412), atomically; `Cache-Control: no-cache`/`no-store` from the client.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use qa_pms_core::template::BUG_FIX_ID;
use qa_pms_core::CacheKind;
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    a_ticket_and_a_template_get_edited_and_put_back_round_trip,
    if_none_match_answers_304_from_the_cache_until_the_representation_changes,
    if_match_writes_only_over_the_version_it_names,
    of_twenty_writers_holding_one_etag_exactly_one_wins,
    cache_control_no_cache_reloads_and_stores_and_no_store_stores_nothing,
);

async fn a_ticket_and_a_template_get_edited_and_put_back_round_trip(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "Before", "Open", Some("ana"))
        .await;

    let mut ticket = app.get("/api/v1/tickets/PROJ-1").await.json();
    ticket["summary"] = json!("After");
    let put = app.put("/api/v1/tickets/PROJ-1", ticket.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(put.json()["summary"], "After");
    assert_eq!(put.json()["assignee"], "ana");
    let contradicting = app.put("/api/v1/tickets/PROJ-2", ticket).await;
    assert!(contradicting
        .assert_error(StatusCode::BAD_REQUEST)
        .contains("bad_request"));
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-2").await.status,
        StatusCode::NOT_FOUND
    );

    let uri = format!("/api/v1/templates/{BUG_FIX_ID}");
    let mut template = app.get(&uri).await.json();
    template["name"] = json!("Bug Fix v2");
    let put = app.put(&uri, template.clone()).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    assert_eq!(app.get(&uri).await.json()["name"], "Bug Fix v2");
    let other = format!(
        "/api/v1/templates/{}",
        qa_pms_core::template::FEATURE_TEST_ID
    );
    app.put(&other, template.clone())
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    // A new template's id is the server's to choose.
    app.post("/api/v1/templates", template)
        .await
        .assert_error(StatusCode::BAD_REQUEST);
}

async fn if_none_match_answers_304_from_the_cache_until_the_representation_changes(
    backend: Backend,
) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "One", "Open", None).await;
    let uri = "/api/v1/tickets/PROJ-1";
    let first = app.get(uri).await;
    let etag = first.header("etag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    let hits = app.state.cache.stats(CacheKind::Tickets).hits;

    let same = conditional(&app, uri, &etag).await;
    let weak_in_a_list = conditional(&app, uri, &format!("\"nope\", W/{etag}")).await;
    let other = conditional(&app, uri, "\"nope\"").await;

    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert!(same.body.is_empty());
    assert_eq!(same.header("etag"), etag);
    assert_eq!(same.cache_status(), "HIT");
    assert_eq!(weak_in_a_list.status, StatusCode::NOT_MODIFIED);
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, first.body);
    assert_eq!(app.state.cache.stats(CacheKind::Tickets).hits, hits + 3);
    // Another replica computes the same tag for the same representation.
    let replica = app.replica().await;
    assert_eq!(replica.get(uri).await.header("etag"), etag);

    app.patch(uri, json!({"summary": "Two"})).await;
    let changed = conditional(&app, uri, &etag).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.json()["summary"], "Two");
    assert_ne!(changed.header("etag"), etag);
}

async fn conditional(app: &TestApp, uri: &str, tags: &str) -> common::TestResponse {
    app.send_raw(Method::GET, uri, &[("if-none-match", tags)], vec![])
        .await
}

async fn with_if_match(
    app: &TestApp,
    method: Method,
    uri: &str,
    etag: &str,
    body: Option<serde_json::Value>,
) -> common::TestResponse {
    let body = body.map_or_else(Vec::new, |b| b.to_string().into_bytes());
    app.send_raw(
        method,
        uri,
        &[("if-match", etag), ("content-type", "application/json")],
        body,
    )
    .await
}

async fn if_match_writes_only_over_the_version_it_names(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "One", "Open", None).await;
    let uri = "/api/v1/tickets/PROJ-1";
    let etag = app.get(uri).await.header("etag").to_owned();

    let wrong = with_if_match(
        &app,
        Method::PATCH,
        uri,
        "\"nope\"",
        Some(json!({"summary": "X"})),
    )
    .await;
    assert!(wrong
        .assert_error(StatusCode::PRECONDITION_FAILED)
        .contains("precondition_failed"));
    let weak = with_if_match(
        &app,
        Method::PATCH,
        uri,
        &format!("W/{etag}"),
        Some(json!({"summary": "X"})),
    )
    .await;
    weak.assert_error(StatusCode::PRECONDITION_FAILED);
    with_if_match(
        &app,
        Method::PATCH,
        uri,
        "not-a-tag",
        Some(json!({"summary": "X"})),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(app.get(uri).await.json()["summary"], "One");

    let right = with_if_match(
        &app,
        Method::PATCH,
        uri,
        &format!("\"nope\", {etag}"),
        Some(json!({"summary": "Two"})),
    )
    .await;
    assert_eq!(right.status, StatusCode::OK, "{right:?}");
    // The tag the write made current is the one a GET now answers.
    let current = app.get(uri).await;
    assert_eq!(current.json()["summary"], "Two");
    let new_etag = current.header("etag").to_owned();
    assert_ne!(new_etag, etag);
    // The old tag no longer names a current version, for PUT either.
    let mut body = current.json();
    body["summary"] = json!("Three");
    with_if_match(&app, Method::PUT, uri, &etag, Some(body.clone()))
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED);
    let put = with_if_match(&app, Method::PUT, uri, &new_etag, Some(body.clone())).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    // `*`: any current version; none exists for a new key, so nothing is created.
    with_if_match(
        &app,
        Method::PUT,
        "/api/v1/tickets/PROJ-9",
        "*",
        Some(json!({"summary": "New", "status": "Open"})),
    )
    .await
    .assert_error(StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-9").await.status,
        StatusCode::NOT_FOUND
    );
    let star = with_if_match(
        &app,
        Method::PATCH,
        uri,
        "*",
        Some(json!({"summary": "Four"})),
    )
    .await;
    assert_eq!(star.status, StatusCode::OK, "{star:?}");

    let uri = format!("/api/v1/templates/{BUG_FIX_ID}");
    let template = app.get(&uri).await;
    let etag = template.header("etag").to_owned();
    let mut body = template.json();
    body["name"] = json!("Bug Fix v2");
    with_if_match(&app, Method::PUT, &uri, "\"nope\"", Some(body.clone()))
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED);
    with_if_match(&app, Method::DELETE, &uri, "\"nope\"", None)
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED);
    let put = with_if_match(&app, Method::PUT, &uri, &etag, Some(body)).await;
    assert_eq!(put.status, StatusCode::OK, "{put:?}");
    with_if_match(&app, Method::DELETE, &uri, &etag, None)
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED);
    let new_etag = app.get(&uri).await.header("etag").to_owned();
    let deleted = with_if_match(&app, Method::DELETE, &uri, &new_etag, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert_eq!(app.get(&uri).await.status, StatusCode::NOT_FOUND);
}

/// The check and the write are one statement: of concurrent writers that all read the same
/// version, exactly one replaces it, on every path (PATCH and PUT of tickets, PUT of templates).
async fn of_twenty_writers_holding_one_etag_exactly_one_wins(backend: Backend) {
    const WRITERS: usize = 20;
    let app = std::sync::Arc::new(TestApp::new(backend).await);
    app.put_ticket("PROJ-1", "Start", "Open", None).await;
    let template_uri = format!("/api/v1/templates/{BUG_FIX_ID}");
    let cases = [
        (Method::PATCH, "/api/v1/tickets/PROJ-1".to_owned()),
        (Method::PUT, "/api/v1/tickets/PROJ-1".to_owned()),
        (Method::PUT, template_uri),
    ];
    for (method, uri) in cases {
        let current = app.get(&uri).await;
        let etag = current.header("etag").to_owned();
        let field = if uri.contains("tickets") {
            "summary"
        } else {
            "name"
        };
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
        let writers = (0..WRITERS).map(|i| {
            let (app, barrier, method, uri, etag) = (
                app.clone(),
                barrier.clone(),
                method.clone(),
                uri.clone(),
                etag.clone(),
            );
            let mut body = current.json();
            if method == Method::PATCH {
                body = json!({});
            }
            body[field] = json!(format!("writer {i}"));
            tokio::spawn(async move {
                barrier.wait().await;
                let response = with_if_match(&app, method, &uri, &etag, Some(body)).await;
                (i, response.status)
            })
        });
        let mut winners = Vec::new();
        for writer in writers.collect::<Vec<_>>() {
            let (i, status) = writer.await.unwrap();
            match status {
                StatusCode::OK => winners.push(i),
                StatusCode::PRECONDITION_FAILED => {}
                other => panic!("{method} {uri}: writer {i} answered {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "{method} {uri}: winners {winners:?}");
        let now = app.get(&uri).await.json();
        assert_eq!(
            now[field],
            format!("writer {}", winners[0]),
            "{method} {uri}"
        );
    }
}

async fn with_cache_control(app: &TestApp, uri: &str, cache_control: &str) -> common::TestResponse {
    app.send_raw(
        Method::GET,
        uri,
        &[("cache-control", cache_control)],
        vec![],
    )
    .await
}

async fn cache_control_no_cache_reloads_and_stores_and_no_store_stores_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "One", "Open", None).await;
    app.put_ticket("PROJ-2", "Two", "Open", None).await;
    let loads = || app.state.cache.stats(CacheKind::Tickets).loads;
    // no-store on a cold key: answered from the source, nothing kept.
    let before = loads();
    let no_store = with_cache_control(&app, "/api/v1/tickets/PROJ-1", "no-store").await;
    assert_eq!(no_store.status, StatusCode::OK);
    assert_eq!(no_store.cache_status(), "BYPASS");
    assert_eq!(no_store.header("cache-status"), "qa-pms; fwd=request");
    assert_eq!(no_store.json()["summary"], "One");
    assert_eq!(loads(), before + 1);
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-1").await.cache_status(),
        "MISS"
    );
    // no-store on a warm key: the source answers, the cached entry stays.
    let before = loads();
    let warm = with_cache_control(&app, "/api/v1/tickets/PROJ-1", "no-cache, no-store").await;
    assert_eq!(warm.cache_status(), "BYPASS");
    assert_eq!(loads(), before + 1);
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-1").await.cache_status(),
        "HIT"
    );

    // no-cache on a cold key: loaded and stored, so the next read is a hit.
    let before = loads();
    let no_cache = with_cache_control(&app, "/api/v1/tickets/PROJ-2", "no-cache").await;
    assert_eq!(no_cache.cache_status(), "BYPASS");
    assert_eq!(
        no_cache.header("cache-status"),
        "qa-pms; fwd=request; stored"
    );
    assert_eq!(loads(), before + 1);
    let hit = app.get("/api/v1/tickets/PROJ-2").await;
    assert_eq!(hit.cache_status(), "HIT");
    assert_eq!(hit.body, no_cache.body);
    // no-cache on a warm key reloads it every time; max-age=0 is the same request.
    let before = loads();
    with_cache_control(&app, "/api/v1/tickets/PROJ-2", "no-cache").await;
    with_cache_control(&app, "/api/v1/tickets/PROJ-2", "max-age=0").await;
    assert_eq!(loads(), before + 2);
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-2").await.cache_status(),
        "HIT"
    );

    // The other cached GETs read the header too.
    for uri in [
        "/api/v1/search?query=login",
        "/api/v1/dashboard/kpi?period=7d",
    ] {
        let response = app
            .send_raw(Method::GET, uri, &[("cache-control", "no-cache")], vec![])
            .await;
        assert_eq!(response.status, StatusCode::OK, "{uri}");
        assert_eq!(response.cache_status(), "BYPASS", "{uri}");
        assert_eq!(app.get(uri).await.cache_status(), "HIT", "{uri}");
    }
    let template = format!("/api/v1/templates/{BUG_FIX_ID}");
    let response = app
        .send_raw(
            Method::GET,
            &template,
            &[("cache-control", "no-store")],
            vec![],
        )
        .await;
    assert_eq!(response.cache_status(), "BYPASS");
    assert_eq!(app.get(&template).await.cache_status(), "MISS");
}
