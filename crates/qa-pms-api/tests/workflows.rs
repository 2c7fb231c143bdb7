//! Workflows and the KPI dashboard over HTTP: the state machine, step completion, patterns,
//! KPI computation and its invalidation by every workflow change.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use common::TestApp;
use qa_pms_core::template::{default_templates, BUG_FIX_ID};
use qa_pms_core::Workflow;
use qa_pms_storage::Backend;
use serde_json::{json, Value};

on_both_backends!(
    a_workflow_moves_through_its_states,
    invalid_transitions_are_409_and_change_nothing,
    steps_complete_once_and_unknown_steps_are_404,
    a_run_far_over_its_estimate_records_a_time_excess_pattern,
    the_dashboard_counts_completed_runs_in_the_period,
    every_workflow_change_invalidates_the_dashboard,
    bad_workflow_and_dashboard_requests_are_4xx,
);

async fn start(app: &TestApp, key: &str) -> String {
    app.put_ticket(key, "x", "Open", None).await;
    let response = app
        .post(
            "/api/v1/workflows",
            json!({"template_id": BUG_FIX_ID, "ticket_key": key}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    response.json()["id"].as_str().expect("id").to_owned()
}

async fn act(app: &TestApp, id: &str, action: &str) -> (StatusCode, Value) {
    let response = app
        .request(
            axum::http::Method::POST,
            &format!("/api/v1/workflows/{id}/{action}"),
            None,
        )
        .await;
    (response.status, response.json())
}

async fn a_workflow_moves_through_its_states(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = start(&app, "PROJ-1").await;

    assert_eq!(act(&app, &id, "pause").await.1["state"], "paused");
    assert_eq!(act(&app, &id, "resume").await.1["state"], "active");
    let (status, done) = act(&app, &id, "complete").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(done["state"], "completed");
    assert!(done["completed_at"].is_string());
    let read = app.get(&format!("/api/v1/workflows/{id}")).await.json();
    assert_eq!(read["state"], "completed");
    assert_eq!(read["steps"].as_array().unwrap().len(), 4);
    assert_eq!(read["version"], 4);
}

async fn invalid_transitions_are_409_and_change_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = start(&app, "PROJ-1").await;

    assert_eq!(act(&app, &id, "resume").await.0, StatusCode::CONFLICT);
    act(&app, &id, "pause").await;
    assert_eq!(act(&app, &id, "complete").await.0, StatusCode::CONFLICT);
    act(&app, &id, "cancel").await;
    for action in ["pause", "resume", "complete", "cancel"] {
        let (status, body) = act(&app, &id, action).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}");
        assert_eq!(body["error"]["code"], "conflict");
    }
    let read = app.get(&format!("/api/v1/workflows/{id}")).await.json();
    assert_eq!(read["state"], "cancelled");
}

async fn steps_complete_once_and_unknown_steps_are_404(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = start(&app, "PROJ-1").await;
    let step = |i: &str| format!("/api/v1/workflows/{id}/steps/{i}/complete");

    let first = app
        .request(axum::http::Method::POST, &step("1"), None)
        .await;
    let again = app
        .request(axum::http::Method::POST, &step("1"), None)
        .await;

    assert_eq!(first.status, StatusCode::OK);
    assert!(first.json()["steps"][1]["completed_at"].is_string());
    assert!(first.json()["steps"][0]["completed_at"].is_null());
    assert_eq!(again.json()["version"], first.json()["version"]);
    app.request(axum::http::Method::POST, &step("4"), None)
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.request(axum::http::Method::POST, &step("-1"), None)
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    act(&app, &id, "pause").await;
    app.request(axum::http::Method::POST, &step("0"), None)
        .await
        .assert_error(StatusCode::CONFLICT);
}

/// A workflow started `minutes` ago, written straight to the store.
async fn started_minutes_ago(app: &TestApp, key: &str, minutes: i64) -> String {
    app.put_ticket(key, "x", "Open", None).await;
    let template = app.store.template(BUG_FIX_ID).await.expect("template");
    let wf = Workflow::start(
        &template,
        key.to_owned(),
        Utc::now() - Duration::minutes(minutes),
        uuid::Uuid::new_v4(),
    );
    app.store
        .insert_workflows(std::slice::from_ref(&wf))
        .await
        .expect("insert");
    wf.id.to_string()
}

async fn a_run_far_over_its_estimate_records_a_time_excess_pattern(backend: Backend) {
    let app = TestApp::new(backend).await;
    // The bug-fix template estimates 60 minutes: 91 is over 1.5x, 89 is not.
    let slow = started_minutes_ago(&app, "PROJ-1", 91).await;
    let quick = started_minutes_ago(&app, "PROJ-2", 89).await;

    act(&app, &slow, "complete").await;
    act(&app, &quick, "complete").await;
    let kpi = app.get("/api/v1/dashboard/kpi?period=7d").await.json();

    assert_eq!(kpi["patterns_detected"], 1);
    assert_eq!(kpi["tickets_completed"], 2);
    assert_eq!(kpi["average_time"], 90.0);
}

async fn the_dashboard_counts_completed_runs_in_the_period(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, bug) = default_templates().remove(0);
    let template = app.store.template(BUG_FIX_ID).await.expect("template");
    app.put_ticket("PROJ-1", "x", "Open", None).await;
    app.put_ticket("PROJ-2", "x", "Open", None).await;
    let now = Utc::now();
    let finished = |key: &str, days_ago: i64, minutes: i64| {
        let start = now - Duration::days(days_ago) - Duration::minutes(minutes);
        let mut wf = Workflow::start(&template, key.to_owned(), start, uuid::Uuid::new_v4());
        wf.apply(
            qa_pms_core::WorkflowAction::Complete,
            start + Duration::minutes(minutes),
        )
        .expect("complete");
        wf
    };
    let open = Workflow::start(&template, "PROJ-2".into(), now, uuid::Uuid::new_v4());
    app.store
        .insert_workflows(&[
            finished("PROJ-1", 1, 30),
            finished("PROJ-1", 2, 50),
            finished("PROJ-2", 20, 40),
            finished("PROJ-2", 200, 40),
            finished("PROJ-2", 400, 40),
            open,
        ])
        .await
        .expect("insert");
    assert_eq!(bug.estimated_minutes, 60);

    let week = app.get("/api/v1/dashboard/kpi?period=7d").await.json();
    let month = app.get("/api/v1/dashboard/kpi?period=30d").await.json();
    let year = app.get("/api/v1/dashboard/kpi?period=1y").await.json();
    let default = app.get("/api/v1/dashboard/kpi").await.json();

    assert_eq!(
        (
            week["tickets_completed"].clone(),
            week["average_time"].clone()
        ),
        (json!(1), json!(40.0))
    );
    assert_eq!(
        (
            month["tickets_completed"].clone(),
            month["average_time"].clone()
        ),
        (json!(2), json!(40.0))
    );
    assert_eq!(year["tickets_completed"], 2);
    assert_eq!(year["period"], "1y");
    assert_eq!(default["period"], "7d");
    assert_eq!(week["patterns_detected"], 0);
}

async fn every_workflow_change_invalidates_the_dashboard(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = start(&app, "PROJ-1").await;
    let kpi = "/api/v1/dashboard/kpi?period=30d";
    let changes = [
        format!("/api/v1/workflows/{id}/steps/0/complete"),
        format!("/api/v1/workflows/{id}/pause"),
        format!("/api/v1/workflows/{id}/resume"),
        format!("/api/v1/workflows/{id}/complete"),
    ];

    for change in &changes {
        app.get(kpi).await;
        assert_eq!(app.get(kpi).await.cache_status(), "HIT");
        let response = app.request(axum::http::Method::POST, change, None).await;
        assert_eq!(response.status, StatusCode::OK, "{change}");
        assert_eq!(app.get(kpi).await.cache_status(), "MISS", "after {change}");
    }
    assert_eq!(app.get(kpi).await.json()["tickets_completed"], 1);
    app.get(kpi).await;
    start(&app, "PROJ-2").await;
    assert_eq!(app.get(kpi).await.cache_status(), "MISS", "after a start");
}

async fn bad_workflow_and_dashboard_requests_are_4xx(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "x", "Open", None).await;
    let unknown = "00000000-0000-4000-8000-0000000000ff";

    for period in ["14d", "", "7D", "week"] {
        let response = app
            .get(&format!("/api/v1/dashboard/kpi?period={period}"))
            .await;
        response.assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(response.cache_status(), "MISS");
    }
    app.post(
        "/api/v1/workflows",
        json!({"template_id": unknown, "ticket_key": "PROJ-1"}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    app.post(
        "/api/v1/workflows",
        json!({"template_id": BUG_FIX_ID, "ticket_key": "PROJ-404"}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND);
    app.post(
        "/api/v1/workflows",
        json!({"template_id": BUG_FIX_ID, "ticket_key": "bad"}),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);
    app.post(
        "/api/v1/workflows",
        json!({"template_id": "nope", "ticket_key": "PROJ-1"}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    app.get(&format!("/api/v1/workflows/{unknown}"))
        .await
        .assert_error(StatusCode::NOT_FOUND);
    app.get("/api/v1/workflows/123")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
    let (status, _) = act(&app, unknown, "pause").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let id = start(&app, "PROJ-2").await;
    let (status, body) = act(&app, &id, "explode").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}
