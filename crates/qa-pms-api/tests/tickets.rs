//! Tickets over HTTP: read-through caching, partial and full writes, listing, bad input.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use common::TestApp;
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    a_repeated_fetch_is_a_hit_with_the_same_bytes,
    a_patch_that_sets_only_status_leaves_the_assignee_alone,
    null_clears_a_nullable_field,
    a_patched_ticket_is_a_miss_with_the_new_data,
    put_creates_then_replaces_and_invalidates,
    listing_filters_by_status_and_assignee_and_pages,
    malformed_keys_are_400_on_every_method,
    unknown_tickets_are_404_and_not_cached,
    bad_bodies_get_4xx_json_errors,
    oversize_bodies_are_413,
);

async fn a_repeated_fetch_is_a_hit_with_the_same_bytes(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "Login fails", "Open", Some("ana"))
        .await;

    let first = app.get("/api/v1/tickets/PROJ-1").await;
    let second = app.get("/api/v1/tickets/PROJ-1").await;

    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.cache_status(), "MISS");
    assert_eq!(first.header("cache-status"), "qa-pms; fwd=miss; stored");
    assert_eq!(second.cache_status(), "HIT");
    assert!(second
        .header("cache-status")
        .starts_with("qa-pms; hit; ttl="));
    assert_eq!(first.body, second.body);
    assert_eq!(second.json()["summary"], "Login fails");
    assert_eq!(second.json()["assignee"], "ana");
}

async fn a_patch_that_sets_only_status_leaves_the_assignee_alone(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-2", "Checkout", "Open", Some("bruno"))
        .await;

    let patched = app
        .patch("/api/v1/tickets/PROJ-2", json!({"status": "Done"}))
        .await;

    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.json()["status"], "Done");
    assert_eq!(patched.json()["assignee"], "bruno");
    assert_eq!(patched.json()["summary"], "Checkout");
    let read = app.get("/api/v1/tickets/PROJ-2").await.json();
    assert_eq!(read["assignee"], "bruno");
}

async fn null_clears_a_nullable_field(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-3", "Search", "Open", Some("carla"))
        .await;

    let patched = app
        .patch("/api/v1/tickets/PROJ-3", json!({"assignee": null}))
        .await;

    assert_eq!(patched.status, StatusCode::OK);
    assert!(patched.json()["assignee"].is_null());
    assert_eq!(patched.json()["status"], "Open");
    let status_null = app
        .patch("/api/v1/tickets/PROJ-3", json!({"status": null}))
        .await;
    status_null.assert_error(StatusCode::BAD_REQUEST);
}

async fn a_patched_ticket_is_a_miss_with_the_new_data(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-4", "Cart", "Open", None).await;
    app.get("/api/v1/tickets/PROJ-4").await;
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-4").await.cache_status(),
        "HIT"
    );

    app.patch("/api/v1/tickets/PROJ-4", json!({"status": "Closed"}))
        .await;
    let after = app.get("/api/v1/tickets/PROJ-4").await;

    assert_eq!(after.cache_status(), "MISS");
    assert_eq!(after.json()["status"], "Closed");
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-4").await.cache_status(),
        "HIT"
    );
}

async fn put_creates_then_replaces_and_invalidates(backend: Backend) {
    let app = TestApp::new(backend).await;
    let body = json!({"summary": "Sync", "status": "Open", "priority": "High"});

    let created = app.put("/api/v1/tickets/SYNC-1", body).await;
    app.get("/api/v1/tickets/SYNC-1").await;
    let replaced = app
        .put(
            "/api/v1/tickets/SYNC-1",
            json!({"summary": "Sync again", "status": "Done"}),
        )
        .await;
    let read = app.get("/api/v1/tickets/SYNC-1").await;

    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(replaced.status, StatusCode::OK);
    assert_eq!(read.cache_status(), "MISS");
    assert_eq!(read.json()["summary"], "Sync again");
    assert!(
        read.json()["priority"].is_null(),
        "PUT replaces the whole ticket"
    );
}

async fn listing_filters_by_status_and_assignee_and_pages(backend: Backend) {
    let app = TestApp::new(backend).await;
    for (key, status, assignee) in [
        ("PROJ-10", "Open", Some("ana")),
        ("PROJ-11", "Open", Some("bruno")),
        ("PROJ-12", "Done", Some("ana")),
        ("PROJ-13", "Open", None),
    ] {
        app.put_ticket(key, "x", status, assignee).await;
    }

    let open = app.get("/api/v1/tickets?status=Open&limit=2").await.json();
    let ana = app.get("/api/v1/tickets?assignee=ana").await.json();
    let page2 = app
        .get("/api/v1/tickets?status=Open&limit=2&offset=2")
        .await
        .json();

    assert_eq!(open["total"], 3);
    assert_eq!(open["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(open["tickets"][0]["key"], "PROJ-10");
    assert_eq!(page2["tickets"][0]["key"], "PROJ-13");
    assert_eq!(ana["total"], 2);
    app.get("/api/v1/tickets?limit=0")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    app.get("/api/v1/tickets?limit=abc")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
}

async fn malformed_keys_are_400_on_every_method(backend: Backend) {
    let app = TestApp::new(backend).await;
    for key in ["proj-1", "PROJ-0", "PROJ", "PROJ-1x", "%20"] {
        let uri = format!("/api/v1/tickets/{key}");
        let get = app.get(&uri).await;
        assert_eq!(get.assert_error(StatusCode::BAD_REQUEST), "bad_request");
        assert_eq!(get.cache_status(), "MISS");
        app.patch(&uri, json!({"status": "x"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        app.put(&uri, json!({"summary": "x", "status": "x"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }
}

async fn unknown_tickets_are_404_and_not_cached(backend: Backend) {
    let app = TestApp::new(backend).await;

    let missing = app.get("/api/v1/tickets/NOPE-1").await;
    app.put_ticket("NOPE-1", "Now here", "Open", None).await;
    let found = app.get("/api/v1/tickets/NOPE-1").await;

    assert_eq!(missing.assert_error(StatusCode::NOT_FOUND), "not_found");
    assert_eq!(missing.cache_status(), "MISS");
    assert_eq!(found.status, StatusCode::OK);
    app.patch("/api/v1/tickets/NOPE-2", json!({"status": "x"}))
        .await
        .assert_error(StatusCode::NOT_FOUND);
}

async fn bad_bodies_get_4xx_json_errors(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-5", "x", "Open", None).await;
    let uri = "/api/v1/tickets/PROJ-5";

    let invalid_json = app
        .send(
            Request::builder()
                .method(Method::PATCH)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"status\": "))
                .unwrap(),
        )
        .await;
    let no_content_type = app
        .send(
            Request::builder()
                .method(Method::PATCH)
                .uri(uri)
                .body(Body::from("{\"status\": \"x\"}"))
                .unwrap(),
        )
        .await;

    invalid_json.assert_error(StatusCode::BAD_REQUEST);
    no_content_type.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    app.patch(uri, json!({"stauts": "typo"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    app.patch(uri, json!({"status": 5}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    app.patch(uri, json!({}))
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    app.patch(uri, json!({"summary": "x".repeat(1_001)}))
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    app.put(uri, json!({"summary": "   ", "status": "Open"}))
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    app.request(Method::DELETE, uri, None)
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED);
    app.get("/api/v1/nothing-here")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    // Nothing above changed the ticket.
    assert_eq!(app.get(uri).await.json()["status"], "Open");
}

async fn oversize_bodies_are_413(backend: Backend) {
    let app = TestApp::new(backend).await;
    let huge = json!({"summary": "x".repeat(2 * 1024 * 1024), "status": "Open"});

    let response = app.put("/api/v1/tickets/PROJ-6", huge).await;

    assert_eq!(
        response.assert_error(StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );
    app.get("/api/v1/tickets/PROJ-6")
        .await
        .assert_error(StatusCode::NOT_FOUND);
}
