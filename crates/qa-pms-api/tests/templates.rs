//! Workflow templates over HTTP: the defaults, CRUD, caching and invalidation, bad input.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use axum::http::StatusCode;
use common::TestApp;
use qa_pms_core::template::default_templates;
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    a_new_database_has_the_three_default_templates,
    a_template_is_created_read_through_the_cache_updated_and_deleted,
    a_template_in_use_cannot_be_deleted,
    bad_template_requests_are_4xx,
);

async fn a_new_database_has_the_three_default_templates(backend: Backend) {
    let app = TestApp::new(backend).await;

    let listed = app.get("/api/v1/templates").await.json();

    let listed = listed.as_array().expect("a list");
    assert_eq!(listed.len(), 3);
    for (id, draft) in default_templates() {
        let stored = app.get(&format!("/api/v1/templates/{id}")).await.json();
        assert_eq!(stored["name"], draft.name);
        assert_eq!(stored["workflow_type"], draft.workflow_type);
        assert_eq!(stored["estimated_minutes"], draft.estimated_minutes);
        assert_eq!(stored["steps"], json!(draft.steps));
    }
}

async fn a_template_is_created_read_through_the_cache_updated_and_deleted(backend: Backend) {
    let app = TestApp::new(backend).await;
    let draft = json!({"name": "Smoke", "steps": ["boot", "click"], "workflow_type": "smoke", "estimated_minutes": 15});

    let created = app.post("/api/v1/templates", draft).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.json()["id"].as_str().expect("id").to_owned();
    let uri = format!("/api/v1/templates/{id}");
    assert_eq!(created.header("location"), uri);

    assert_eq!(app.get(&uri).await.cache_status(), "MISS");
    assert_eq!(app.get(&uri).await.cache_status(), "HIT");
    let updated = app
        .put(&uri, json!({"name": "Smoke v2", "steps": ["boot"], "workflow_type": "smoke", "estimated_minutes": 10}))
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    let read = app.get(&uri).await;
    assert_eq!(read.cache_status(), "MISS");
    assert_eq!(read.json()["name"], "Smoke v2");
    assert_eq!(read.json()["steps"], json!(["boot"]));

    assert_eq!(app.delete(&uri).await.status, StatusCode::NO_CONTENT);
    let gone = app.get(&uri).await;
    gone.assert_error(StatusCode::NOT_FOUND);
    assert_eq!(gone.cache_status(), "MISS");
    app.delete(&uri).await.assert_error(StatusCode::NOT_FOUND);
}

async fn a_template_in_use_cannot_be_deleted(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "x", "Open", None).await;
    let (id, _) = default_templates().remove(0);
    let started = app
        .post(
            "/api/v1/workflows",
            json!({"template_id": id, "ticket_key": "PROJ-1"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED);

    let response = app.delete(&format!("/api/v1/templates/{id}")).await;

    assert_eq!(response.assert_error(StatusCode::CONFLICT), "conflict");
    assert_eq!(
        app.get(&format!("/api/v1/templates/{id}")).await.status,
        StatusCode::OK
    );
}

async fn bad_template_requests_are_4xx(backend: Backend) {
    let app = TestApp::new(backend).await;
    let valid = json!({"name": "n", "steps": ["s"], "workflow_type": "t", "estimated_minutes": 5});

    app.get("/api/v1/templates/not-a-uuid")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    app.get("/api/v1/templates/00000000-0000-4000-8000-0000000000ff")
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.put(
        "/api/v1/templates/00000000-0000-4000-8000-0000000000ff",
        valid,
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    for body in [
        json!({"name": "n", "steps": [], "workflow_type": "t", "estimated_minutes": 5}),
        json!({"name": "n", "steps": ["s"], "workflow_type": "t", "estimated_minutes": 0}),
        json!({"name": "", "steps": ["s"], "workflow_type": "t", "estimated_minutes": 5}),
        json!({"name": "n", "steps": [" "], "workflow_type": "t", "estimated_minutes": 5}),
    ] {
        app.post("/api/v1/templates", body)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
    }
    app.post("/api/v1/templates", json!({"name": "n"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    app.post(
        "/api/v1/templates",
        json!({"name": "n", "steps": ["s"], "workflow_type": "t", "estimated_minutes": -5}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/api/v1/templates")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
}
