//! The admin API and its command line, on both backends: 404 when no token is configured, 401
//! without it or with a wrong one; stats; purges and warm-ups that take effect on every replica;
//! `qa-pms cache` against a server over loopback.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::{TestApp, TestResponse};
use qa_pms_api::cache_cli::{CacheCommand, ClientArgs};
use qa_pms_api::AppConfig;
use qa_pms_core::CacheKind;
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    admin_routes_are_404_without_a_token_and_401_without_the_right_one,
    stats_report_every_cache_with_its_settings_and_bytes,
    a_purge_takes_effect_on_every_replica,
    a_warm_up_takes_effect_on_every_replica,
    bad_admin_requests_are_400s,
    the_command_line_calls_the_admin_api,
);

const TOKEN: &str = "s3cret-admin-token";

fn config() -> AppConfig {
    AppConfig {
        admin_token: Some(TOKEN.into()),
        ..AppConfig::default()
    }
}

async fn admin(
    app: &TestApp,
    method: Method,
    uri: &str,
    body: Option<serde_json::Value>,
) -> TestResponse {
    let authorization = format!("Bearer {TOKEN}");
    let body = body.map_or_else(Vec::new, |b| b.to_string().into_bytes());
    app.send_raw(
        method,
        uri,
        &[
            ("authorization", authorization.as_str()),
            ("content-type", "application/json"),
        ],
        body,
    )
    .await
}

/// A read on `app` once it has applied the writes behind `response`'s consistency token.
async fn read_after(app: &TestApp, uri: &str, response: &TestResponse) -> TestResponse {
    let token = response.header("x-consistency-token");
    app.send_raw(Method::GET, uri, &[("x-consistency-token", token)], vec![])
        .await
}

async fn admin_routes_are_404_without_a_token_and_401_without_the_right_one(backend: Backend) {
    let disabled = TestApp::new(backend).await;
    for (method, uri) in [
        (Method::GET, "/admin/cache"),
        (Method::DELETE, "/admin/cache/tickets"),
        (Method::DELETE, "/admin/cache/tickets/PROJ-1"),
        (Method::POST, "/admin/cache/tickets/warm"),
    ] {
        admin(&disabled, method, uri, Some(json!({"top": 1})))
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }

    let app = TestApp::with_config(backend, config()).await;
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", "Bearer s3cret-admin-toke")],
        vec![("authorization", "Basic czNjcmV0LWFkbWluLXRva2Vu")],
        vec![("authorization", TOKEN)],
    ] {
        let response = app
            .send_raw(Method::DELETE, "/admin/cache/tickets", &headers, vec![])
            .await;
        assert!(response
            .assert_error(StatusCode::UNAUTHORIZED)
            .contains("unauthorized"));
    }
    assert_eq!(
        admin(&app, Method::GET, "/admin/cache", None).await.status,
        StatusCode::OK
    );
}

async fn stats_report_every_cache_with_its_settings_and_bytes(backend: Backend) {
    let app = TestApp::with_config(backend, config()).await;
    app.put_ticket("PROJ-1", "One", "Open", None).await;
    let ticket = app.get("/api/v1/tickets/PROJ-1").await;
    app.get("/api/v1/tickets/PROJ-1").await;

    let stats = admin(&app, Method::GET, "/admin/cache", None).await.json();
    let caches = stats["caches"].as_array().unwrap();
    let names: Vec<&str> = caches
        .iter()
        .map(|c| c["cache"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tickets", "search", "metrics", "templates"]);
    let tickets = &caches[0];
    assert_eq!(tickets["entries"], 1);
    assert_eq!(tickets["hits"], 1);
    assert_eq!(tickets["misses"], 1);
    assert_eq!(tickets["hit_rate"], 0.5);
    assert_eq!(tickets["loads"], 1);
    assert_eq!(tickets["settings"]["capacity"], 1000);
    assert_eq!(tickets["settings"]["max_bytes"], 32 * 1024 * 1024);
    // The entry's JSON and tag, and the fixed overhead.
    let bytes = tickets["bytes"].as_u64().unwrap();
    let expected =
        ticket.body.len() + ticket.header("etag").len() + qa_pms_core::cache::ENTRY_OVERHEAD;
    assert_eq!(bytes, expected as u64);
}

async fn a_purge_takes_effect_on_every_replica(backend: Backend) {
    let a = TestApp::with_config(backend, config()).await;
    let b = a.replica_with(config()).await;
    // A transaction open in the cluster (another test's, another database's) holds PostgreSQL's
    // horizon behind the writes below: B's first position is then older than they are.
    let mut open = None;
    if backend == Backend::Postgres {
        let mut tx = sqlx::PgPool::connect(&a.url)
            .await
            .unwrap()
            .begin()
            .await
            .unwrap();
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut *tx)
            .await
            .unwrap();
        open = Some(tx);
    }
    for key in ["PROJ-1", "PROJ-2"] {
        a.put_ticket(key, "x", "Open", None).await;
    }
    // As `serve` does at start: what was written before is not news to B (else its first read of
    // the outbox drops what it cached since those writes, which is safe but not what is tested).
    let state = &b.state;
    state
        .outbox
        .start_at_end(state.store.as_ref(), &state.cache)
        .await
        .unwrap();
    let warm_both = || async {
        for app in [&a, &b] {
            for key in ["PROJ-1", "PROJ-2"] {
                let uri = format!("/api/v1/tickets/{key}");
                app.get(&uri).await;
                assert_eq!(app.get(&uri).await.cache_status(), "HIT");
            }
        }
    };
    warm_both().await;

    // One key, purged through replica A.
    let purged = admin(&a, Method::DELETE, "/admin/cache/tickets/PROJ-1", None).await;
    assert_eq!(purged.status, StatusCode::OK, "{purged:?}");
    assert_eq!(purged.json(), json!({"cache": "tickets", "key": "PROJ-1"}));
    assert_eq!(a.get("/api/v1/tickets/PROJ-1").await.cache_status(), "MISS");
    assert_eq!(a.get("/api/v1/tickets/PROJ-2").await.cache_status(), "HIT");
    let on_b = read_after(&b, "/api/v1/tickets/PROJ-1", &purged).await;
    assert_eq!(on_b.cache_status(), "MISS", "replica B applied the purge");
    assert_eq!(b.get("/api/v1/tickets/PROJ-2").await.cache_status(), "HIT");

    // The whole cache, purged through replica B.
    warm_both().await;
    let purged = admin(&b, Method::DELETE, "/admin/cache/tickets", None).await;
    assert_eq!(purged.status, StatusCode::OK, "{purged:?}");
    for key in ["PROJ-1", "PROJ-2"] {
        let uri = format!("/api/v1/tickets/{key}");
        assert_eq!(b.get(&uri).await.cache_status(), "MISS");
        assert_eq!(read_after(&a, &uri, &purged).await.cache_status(), "MISS");
    }
    drop(open);
}

async fn a_warm_up_takes_effect_on_every_replica(backend: Backend) {
    let a = TestApp::with_config(backend, config()).await;
    let b = a.replica_with(config()).await;
    // B follows the outbox as `serve` does: warm-ups reach it there.
    qa_pms_api::invalidation::listen(b.state.clone())
        .await
        .unwrap();
    for key in ["PROJ-1", "PROJ-2", "PROJ-3"] {
        a.put_ticket(key, "x", "Open", None).await;
    }

    let warmed = admin(
        &a,
        Method::POST,
        "/admin/cache/tickets/warm",
        Some(json!({"keys": ["PROJ-1", "PROJ-2", "NOPE-9"]})),
    )
    .await;
    assert_eq!(warmed.status, StatusCode::OK, "{warmed:?}");
    assert_eq!(
        warmed.json(),
        json!({"cache": "tickets", "requested": 3, "loaded": 2, "failed": 1})
    );
    assert_eq!(a.get("/api/v1/tickets/PROJ-1").await.cache_status(), "HIT");
    assert_eq!(a.get("/api/v1/tickets/PROJ-3").await.cache_status(), "MISS");

    // B loads the keys by itself, without a request for them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.state.cache.stats(CacheKind::Tickets).loads < 3 {
        assert!(Instant::now() < deadline, "replica B did not warm");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for key in ["PROJ-1", "PROJ-2"] {
        let uri = format!("/api/v1/tickets/{key}");
        assert_eq!(b.get(&uri).await.cache_status(), "HIT", "{key} on B");
    }

    // `top`: the most-read keys here, even after a purge emptied the cache.
    for _ in 0..3 {
        a.get("/api/v1/tickets/PROJ-3").await;
    }
    admin(&a, Method::DELETE, "/admin/cache/tickets", None).await;
    let top = admin(
        &a,
        Method::POST,
        "/admin/cache/tickets/warm",
        Some(json!({"top": 1})),
    )
    .await;
    assert_eq!(top.json()["requested"], 1);
    assert_eq!(top.json()["loaded"], 1);
    assert_eq!(a.get("/api/v1/tickets/PROJ-3").await.cache_status(), "HIT");
    assert_eq!(a.get("/api/v1/tickets/PROJ-1").await.cache_status(), "MISS");
}

async fn bad_admin_requests_are_400s(backend: Backend) {
    let app = TestApp::with_config(backend, config()).await;
    for (method, uri, body) in [
        (Method::DELETE, "/admin/cache/nope", None),
        (Method::DELETE, "/admin/cache/tickets/not-a-key", None),
        (Method::DELETE, "/admin/cache/templates/not-a-uuid", None),
        (Method::DELETE, "/admin/cache/search/login", None),
        (
            Method::POST,
            "/admin/cache/nope/warm",
            Some(json!({"top": 1})),
        ),
        (Method::POST, "/admin/cache/tickets/warm", Some(json!({}))),
        (
            Method::POST,
            "/admin/cache/tickets/warm",
            Some(json!({"top": 1, "keys": []})),
        ),
        (
            Method::POST,
            "/admin/cache/tickets/warm",
            Some(json!({"top": 1_000_000})),
        ),
        (
            Method::POST,
            "/admin/cache/tickets/warm",
            Some(json!({"keys": ["bad key"]})),
        ),
    ] {
        let response = admin(&app, method.clone(), uri, body).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{method} {uri}: {response:?}"
        );
    }
    // A search key and a KPI key, as the caches name them, are purged by their text.
    for uri in [
        "/admin/cache/search/login%20api%7Csource=all%7Climit=20",
        "/admin/cache/metrics/kpi-7d",
    ] {
        let response = admin(&app, Method::DELETE, uri, None).await;
        assert_eq!(response.status, StatusCode::OK, "{uri}: {response:?}");
    }
}

async fn the_command_line_calls_the_admin_api(backend: Backend) {
    let app = TestApp::with_config(backend, config()).await;
    app.put_ticket("PROJ-1", "x", "Open", None).await;
    app.get("/api/v1/tickets/PROJ-1").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(qa_pms_api::serve(listener, app.router.clone(), async {
        let _ = stopped.await;
    }));
    let client = |token: &str, json: bool| ClientArgs {
        url: url.clone(),
        token: token.to_owned(),
        json,
    };

    qa_pms_api::cache_cli::run(CacheCommand::Stats(client(TOKEN, false)))
        .await
        .unwrap();
    qa_pms_api::cache_cli::run(CacheCommand::Stats(client(TOKEN, true)))
        .await
        .unwrap();
    let refused = qa_pms_api::cache_cli::run(CacheCommand::Stats(client("wrong", false))).await;
    assert!(refused.unwrap_err().to_string().contains("401"));

    qa_pms_api::cache_cli::run(CacheCommand::Purge {
        client: client(TOKEN, false),
        cache: "tickets".into(),
        key: Some("PROJ-1".into()),
    })
    .await
    .unwrap();
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-1").await.cache_status(),
        "MISS"
    );
    let bad = qa_pms_api::cache_cli::run(CacheCommand::Purge {
        client: client(TOKEN, false),
        cache: "nope".into(),
        key: None,
    })
    .await;
    assert!(bad.unwrap_err().to_string().contains("400"));

    app.put_ticket("PROJ-2", "x", "Open", None).await;
    qa_pms_api::cache_cli::run(CacheCommand::Warm {
        client: client(TOKEN, false),
        cache: "tickets".into(),
        keys: vec!["PROJ-2".into()],
        top: None,
    })
    .await
    .unwrap();
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-2").await.cache_status(),
        "HIT"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
