//! Invalidations recorded by the database itself (the outbox and its triggers), on both backends:
//! a write to any cached table made outside the service (`psql`, the sqlite3 shell, another
//! process that wrote and died before it could tell anyone) reaches the cache, and a change that
//! leaves the served fields alone drops nothing.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use qa_pms_api::invalidation::listen;
use qa_pms_core::template::BUG_FIX_ID;
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    an_out_of_band_write_to_each_cached_table_reaches_the_cache,
    a_write_that_leaves_the_served_fields_alone_drops_nothing,
    writes_hand_out_a_consistency_token_that_reads_accept,
);

/// Polls `read` until it returns true, for at most five seconds. Not a speed assertion: the
/// alternative to a delivered invalidation is a stale entry for the full TTL.
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

/// Runs SQL on the app's database through a connection of its own, as another process would.
async fn out_of_band(app: &TestApp, sql: &str) {
    match app.store.backend() {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

async fn cached(app: &TestApp, uri: &str) {
    app.get(uri).await;
    assert_eq!(app.get(uri).await.cache_status(), "HIT", "{uri}");
}

async fn an_out_of_band_write_to_each_cached_table_reaches_the_cache(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "Before", "Open", None).await;
    app.post(
        "/api/v1/catalog/import",
        json!({"entries": [{"source": "postman", "name": "Login API", "url": "https://p/1", "text": ""}]}),
    )
    .await;
    listen(app.state.clone()).await.unwrap();
    let ticket = "/api/v1/tickets/PROJ-1";
    let template = format!("/api/v1/templates/{BUG_FIX_ID}");
    let kpi = "/api/v1/dashboard/kpi?period=7d";
    let search = "/api/v1/search?query=login";
    for uri in [ticket, template.as_str(), kpi, search] {
        cached(&app, uri).await;
    }

    out_of_band(
        &app,
        "UPDATE jira_tickets SET summary = 'Fixed in psql' WHERE key = 'PROJ-1'",
    )
    .await;
    assert!(
        eventually(async || app.get(ticket).await.json()["summary"] == "Fixed in psql").await,
        "ticket"
    );
    out_of_band(
        &app,
        &format!("UPDATE workflow_templates SET name = 'Renamed' WHERE id = '{BUG_FIX_ID}'"),
    )
    .await;
    assert!(
        eventually(async || app.get(&template).await.json()["name"] == "Renamed").await,
        "template"
    );
    out_of_band(&app, "UPDATE catalog_entries SET name = 'Login API v2'").await;
    assert!(
        eventually(async || app.get(search).await.json()[0]["name"] == "Login API v2").await,
        "search"
    );
    // Workflows and patterns feed the dashboards; a workflow comes from the API here, a pattern and
    // a change to the workflow from outside.
    let started = app
        .post(
            "/api/v1/workflows",
            json!({"template_id": BUG_FIX_ID, "ticket_key": "PROJ-1"}),
        )
        .await;
    assert_eq!(started.status, 201, "{started:?}");
    cached(&app, kpi).await;
    // A pattern alone (the table feeds the dashboards too), then the workflows.
    let workflow = started.json()["id"].as_str().unwrap().to_owned();
    let detected_at = match backend {
        Backend::Sqlite => "1767225600000",
        Backend::Postgres => "'2026-01-01T00:00:00Z'",
    };
    out_of_band(
        &app,
        &format!(
            "INSERT INTO patterns (id, workflow_id, ticket_key, kind, detail, detected_at) \
             VALUES ('7d4c1c55-2f7e-4e8e-9a59-3f6f0c1a0b01', '{workflow}', 'PROJ-1', \
                     'time_excess', 'from psql', {detected_at})"
        ),
    )
    .await;
    assert!(
        eventually(async || app.get(kpi).await.cache_status() == "MISS").await,
        "patterns"
    );
    cached(&app, kpi).await;
    out_of_band(
        &app,
        "UPDATE workflows SET estimated_minutes = estimated_minutes + 1",
    )
    .await;
    assert!(
        eventually(async || app.get(kpi).await.cache_status() == "MISS").await,
        "workflows"
    );
    cached(&app, kpi).await;
    // SQLite keeps times as Unix milliseconds.
    let updated_at = match backend {
        Backend::Sqlite => "1767225600000",
        Backend::Postgres => "'2026-01-01T00:00:00Z'",
    };
    out_of_band(
        &app,
        &format!(
            "INSERT INTO jira_tickets (key, summary, status, updated_at) \
             VALUES ('PROJ-2', 'New', 'Open', {updated_at})"
        ),
    )
    .await;
    assert!(eventually(async || app.get("/api/v1/tickets/PROJ-2").await.status == 200).await);
    assert_eq!(
        app.get(kpi).await.cache_status(),
        "HIT",
        "a ticket is not a workflow"
    );
}

async fn a_write_that_leaves_the_served_fields_alone_drops_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "Same", "Open", None).await;
    listen(app.state.clone()).await.unwrap();
    let ticket = "/api/v1/tickets/PROJ-1";
    cached(&app, ticket).await;
    let before = app
        .state
        .cache
        .stats(qa_pms_core::CacheKind::Tickets)
        .invalidations;

    // A mirror refresh moves only `fetched_at`; an import of what the catalog holds writes nothing.
    out_of_band(
        &app,
        "UPDATE jira_tickets SET fetched_at = updated_at WHERE key = 'PROJ-1'",
    )
    .await;
    out_of_band(
        &app,
        "UPDATE jira_tickets SET summary = 'Changed' WHERE key = 'PROJ-1'",
    )
    .await;

    // The second write arrives; the first dropped nothing on its own.
    assert!(eventually(async || app.get(ticket).await.json()["summary"] == "Changed").await);
    let after = app
        .state
        .cache
        .stats(qa_pms_core::CacheKind::Tickets)
        .invalidations;
    assert_eq!(after - before, 1, "one invalidation: the summary's");
}

async fn writes_hand_out_a_consistency_token_that_reads_accept(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.put_ticket("PROJ-1", "One", "Open", None).await;
    let uri = "/api/v1/tickets/PROJ-1";
    cached(&app, uri).await;

    let written = app.patch(uri, json!({"summary": "Two"})).await;
    let token = written.header("x-consistency-token").to_owned();
    let read = app
        .send_raw(
            axum::http::Method::GET,
            uri,
            &[("x-consistency-token", &token)],
            vec![],
        )
        .await;
    let bogus = app
        .send_raw(
            axum::http::Method::GET,
            uri,
            &[("x-consistency-token", "soon")],
            vec![],
        )
        .await;
    let plain = app.get(uri).await;

    assert!(token.parse::<u64>().is_ok(), "{token}");
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["summary"], "Two");
    bogus.assert_error(axum::http::StatusCode::BAD_REQUEST);
    assert!(
        plain.headers.get("x-consistency-token").is_none(),
        "reads hand out none"
    );
}
