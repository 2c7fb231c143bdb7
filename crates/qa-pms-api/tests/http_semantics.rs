//! HTTP as clients expect it of the cached resources, on both backends: a GET's body can be edited
//! and PUT back; a contradicting key or id is a 400; `ETag` and `If-None-Match` give 304 from the
//! cache, with the same tag on every replica for the same representation.

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
