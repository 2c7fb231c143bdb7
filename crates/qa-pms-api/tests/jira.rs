//! Tickets from Jira behind the ticket cache, against a fake Jira Cloud over loopback HTTP, on
//! both backends: mapping, one Jira call per key (within a replica and across two), negative
//! caching, malformed answers, retries, webhooks and writes.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::jira::{config, config_with, issue, issue_reads, send_webhook, WEBHOOK_PATH};
use common::TestApp;
use qa_pms_fakes::jira::{webhook_body, Failure, FakeJira};
use qa_pms_storage::Backend;
use serde_json::json;

on_both_backends!(
    a_jira_issue_is_mapped_and_then_served_from_the_cache,
    concurrent_misses_of_one_key_make_one_jira_call,
    two_replicas_make_one_jira_call_per_key_between_them,
    a_key_jira_does_not_know_is_a_404_remembered_until_a_webhook_creates_it,
    malformed_jira_json_is_a_502_and_nothing_is_cached,
    jira_5xx_is_retried,
    a_webhook_updates_the_mirror_and_the_next_read_sees_it_without_a_jira_call,
    a_webhook_with_a_bad_or_missing_signature_is_401_and_changes_nothing,
    a_signed_but_malformed_or_unsupported_webhook_is_400,
    a_deleted_issue_webhook_makes_the_ticket_404,
    a_patch_goes_to_jira_then_to_the_mirror,
    a_patch_to_a_status_no_transition_reaches_is_409_and_changes_nothing,
    a_patch_jira_rejects_is_400_with_jiras_message_and_changes_nothing,
    a_put_replaces_every_field_in_jira,
    if_match_is_checked_against_the_issue_jira_holds,
);

async fn jira_app(backend: Backend) -> (FakeJira, TestApp) {
    let jira = FakeJira::start().await;
    let app = TestApp::with_config(backend, config(&jira)).await;
    (jira, app)
}

async fn a_jira_issue_is_mapped_and_then_served_from_the_cache(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(
        issue("PROJ-1", "Login fails with SSO")
            .with_description("Steps:\nOpen the login page\nClick SSO"),
    );

    let first = app.get("/api/v1/tickets/PROJ-1").await;
    let second = app.get("/api/v1/tickets/PROJ-1").await;

    assert_eq!(first.status, StatusCode::OK);
    let body = first.json();
    assert_eq!(body["key"], "PROJ-1");
    assert_eq!(body["summary"], "Login fails with SSO");
    assert_eq!(body["status"], "To Do");
    assert_eq!(
        body["description"],
        "Steps:\nOpen the login page\nClick SSO"
    );
    assert_eq!(body["assignee"], serde_json::Value::Null);
    assert_eq!(body["priority"], serde_json::Value::Null);
    assert_eq!(first.cache_status(), "MISS");
    assert_eq!(second.cache_status(), "HIT");
    assert_eq!(second.body, first.body);
    assert_eq!(issue_reads(&jira, "PROJ-1"), 1);
    let mirrored = app
        .store
        .mirrored_ticket(&qa_pms_core::TicketKey::parse("PROJ-1").unwrap())
        .await
        .unwrap()
        .expect("mirrored");
    assert_eq!(mirrored.ticket.summary, "Login fails with SSO");
    assert!(mirrored.fetched_at.is_some());
}

async fn concurrent_misses_of_one_key_make_one_jira_call(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-2", "Hot"));
    jira.set_latency(Duration::from_millis(150));
    let app = Arc::new(app);

    let reads: Vec<_> = (0..40)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { app.get("/api/v1/tickets/PROJ-2").await.status })
        })
        .collect();
    for read in reads {
        assert_eq!(read.await.unwrap(), StatusCode::OK);
    }

    assert_eq!(issue_reads(&jira, "PROJ-2"), 1);
}

async fn two_replicas_make_one_jira_call_per_key_between_them(backend: Backend) {
    // On SQLite the two replicas are two app states over one file: the lease works the same.
    let (jira, a) = jira_app(backend).await;
    let b = a.replica_with(config(&jira)).await;
    for n in 1..=5 {
        jira.put_issue(issue(&format!("PROJ-{n}"), "Shared"));
    }
    jira.set_latency(Duration::from_millis(200));

    // Both replicas miss the same cold keys at the same moment.
    for n in 1..=5 {
        let uri = format!("/api/v1/tickets/PROJ-{n}");
        let (on_a, on_b) = tokio::join!(a.get(&uri), b.get(&uri));
        assert_eq!((on_a.status, on_b.status), (StatusCode::OK, StatusCode::OK));
        assert_eq!(on_a.body, on_b.body);
    }
    // And one replica reads what the other fetched a moment ago.
    jira.put_issue(issue("PROJ-6", "Later"));
    a.get("/api/v1/tickets/PROJ-6").await;
    let on_b = b.get("/api/v1/tickets/PROJ-6").await;

    for n in 1..=6 {
        assert_eq!(issue_reads(&jira, &format!("PROJ-{n}")), 1, "PROJ-{n}");
    }
    assert_eq!(on_b.json()["summary"], "Later");
}

async fn a_key_jira_does_not_know_is_a_404_remembered_until_a_webhook_creates_it(backend: Backend) {
    let (jira, app) = jira_app(backend).await;

    let first = app.get("/api/v1/tickets/GONE-1").await;
    let again = app.get("/api/v1/tickets/GONE-1").await;
    assert_eq!(first.assert_error(StatusCode::NOT_FOUND), "not_found");
    assert_eq!(again.assert_error(StatusCode::NOT_FOUND), "not_found");
    assert_eq!(
        issue_reads(&jira, "GONE-1"),
        1,
        "the 404 was remembered, not asked again"
    );

    let created = issue("GONE-1", "Now it exists");
    jira.put_issue(created.clone());
    let hook = send_webhook(&app, "jira:issue_created", &created).await;
    assert_eq!(hook.status, StatusCode::NO_CONTENT);
    let after = app.get("/api/v1/tickets/GONE-1").await;

    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.json()["summary"], "Now it exists");
}

async fn malformed_jira_json_is_a_502_and_nothing_is_cached(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-3", "Fine"));
    jira.fail_next(1, Failure::Malformed);

    let broken = app.get("/api/v1/tickets/PROJ-3").await;
    let next = app.get("/api/v1/tickets/PROJ-3").await;

    assert_eq!(broken.assert_error(StatusCode::BAD_GATEWAY), "bad_gateway");
    assert_eq!(broken.cache_status(), "MISS");
    assert_eq!(next.status, StatusCode::OK);
    assert_eq!(next.cache_status(), "MISS", "the 502 was not cached");
    assert_eq!(issue_reads(&jira, "PROJ-3"), 2);
}

async fn jira_5xx_is_retried(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-4", "Flaky"));
    jira.fail_next(2, Failure::Status(503));

    let read = app.get("/api/v1/tickets/PROJ-4").await;

    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        issue_reads(&jira, "PROJ-4"),
        3,
        "two failures, then the answer"
    );
}

async fn a_webhook_updates_the_mirror_and_the_next_read_sees_it_without_a_jira_call(
    backend: Backend,
) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-5", "Before"));
    app.get("/api/v1/tickets/PROJ-5").await;
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-5").await.cache_status(),
        "HIT"
    );

    let mut changed = issue("PROJ-5", "After");
    changed.status = "In Progress".to_owned();
    changed.updated += chrono::Duration::seconds(1);
    jira.put_issue(changed.clone());
    let hook = send_webhook(&app, "jira:issue_updated", &changed).await;
    let read = app.get("/api/v1/tickets/PROJ-5").await;

    assert_eq!(hook.status, StatusCode::NO_CONTENT);
    assert_eq!(read.json()["summary"], "After");
    assert_eq!(read.json()["status"], "In Progress");
    assert_eq!(read.cache_status(), "MISS");
    assert_eq!(issue_reads(&jira, "PROJ-5"), 1, "the mirror answered");
}

async fn a_webhook_with_a_bad_or_missing_signature_is_401_and_changes_nothing(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-6", "Original"));
    app.get("/api/v1/tickets/PROJ-6").await;
    let forged = issue("PROJ-6", "Forged");
    let body = webhook_body("jira:issue_updated", &forged);
    let wrong = qa_pms_fakes::jira::webhook_signature(b"not-the-secret", &body);

    let cases: [&[(&str, &str)]; 3] = [
        &[],
        &[("x-hub-signature", wrong.as_str())],
        &[("x-hub-signature", "sha256=zz")],
    ];
    for headers in cases {
        let response = app
            .send_raw(Method::POST, WEBHOOK_PATH, headers, body.clone())
            .await;
        assert_eq!(
            response.assert_error(StatusCode::UNAUTHORIZED),
            "unauthorized"
        );
    }

    let read = app.get("/api/v1/tickets/PROJ-6").await;
    assert_eq!(read.json()["summary"], "Original");
    assert_eq!(read.cache_status(), "HIT", "the cache was not touched");
    let key = qa_pms_core::TicketKey::parse("PROJ-6").unwrap();
    let mirrored = app.store.mirrored_ticket(&key).await.unwrap().unwrap();
    assert_eq!(mirrored.ticket.summary, "Original");
}

async fn a_signed_but_malformed_or_unsupported_webhook_is_400(backend: Backend) {
    let (_jira, app) = jira_app(backend).await;
    let secret = common::jira::WEBHOOK_SECRET.as_bytes();
    let bodies = [
        b"{not json".to_vec(),
        json!({"webhookEvent": "jira:issue_updated"})
            .to_string()
            .into_bytes(),
        json!({"webhookEvent": "comment_created", "comment": {"id": "1"}})
            .to_string()
            .into_bytes(),
        json!({"webhookEvent": "jira:issue_updated", "issue": {"key": "bad key", "fields": {}}})
            .to_string()
            .into_bytes(),
    ];
    for body in bodies {
        let signature = qa_pms_fakes::jira::webhook_signature(secret, &body);
        let response = app
            .send_raw(
                Method::POST,
                WEBHOOK_PATH,
                &[("x-hub-signature", &signature)],
                body.clone(),
            )
            .await;
        assert_eq!(
            response.assert_error(StatusCode::BAD_REQUEST),
            "bad_request",
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
}

async fn a_deleted_issue_webhook_makes_the_ticket_404(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    let doomed = issue("PROJ-7", "Doomed");
    jira.put_issue(doomed.clone());
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-7").await.status,
        StatusCode::OK
    );

    jira.remove_issue("PROJ-7");
    let hook = send_webhook(&app, "jira:issue_deleted", &doomed).await;
    let read = app.get("/api/v1/tickets/PROJ-7").await;

    assert_eq!(hook.status, StatusCode::NO_CONTENT);
    assert_eq!(read.assert_error(StatusCode::NOT_FOUND), "not_found");
    assert_eq!(issue_reads(&jira, "PROJ-7"), 1, "the tombstone answered");
}

async fn a_patch_goes_to_jira_then_to_the_mirror(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-8", "Old summary"));
    jira.set_users(vec![(
        "5b10ac8d82e05b22cc7d4ef5".into(),
        "Ana Souza".into(),
    )]);
    app.get("/api/v1/tickets/PROJ-8").await;

    let patched = app
        .patch(
            "/api/v1/tickets/PROJ-8",
            json!({"summary": "New summary", "status": "QA", "assignee": "Ana Souza"}),
        )
        .await;
    let read = app.get("/api/v1/tickets/PROJ-8").await;

    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.json());
    let in_jira = jira.issue("PROJ-8").unwrap();
    assert_eq!(in_jira.summary, "New summary");
    assert_eq!(in_jira.status, "QA");
    assert_eq!(in_jira.assignee.as_deref(), Some("Ana Souza"));
    assert_eq!(patched.json()["summary"], "New summary");
    assert_eq!(read.json()["status"], "QA");
    assert_eq!(read.json()["assignee"], "Ana Souza");
}

async fn a_patch_to_a_status_no_transition_reaches_is_409_and_changes_nothing(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-9", "Stays"));
    app.get("/api/v1/tickets/PROJ-9").await;

    let response = app
        .patch(
            "/api/v1/tickets/PROJ-9",
            json!({"summary": "Changed", "status": "Shipped"}),
        )
        .await;

    assert_eq!(response.assert_error(StatusCode::CONFLICT), "conflict");
    let message = response.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("In Progress") && message.contains("Done"),
        "{message}"
    );
    assert_eq!(jira.issue("PROJ-9").unwrap().summary, "Stays");
    assert_eq!(
        app.get("/api/v1/tickets/PROJ-9").await.json()["summary"],
        "Stays"
    );
}

async fn a_patch_jira_rejects_is_400_with_jiras_message_and_changes_nothing(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-10", "Stays"));
    app.get("/api/v1/tickets/PROJ-10").await;

    let response = app
        .patch(
            "/api/v1/tickets/PROJ-10",
            json!({"priority": "Apocalyptic"}),
        )
        .await;

    assert_eq!(
        response.assert_error(StatusCode::BAD_REQUEST),
        "bad_request"
    );
    let message = response.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("Jira"), "{message}");
    assert_eq!(jira.issue("PROJ-10").unwrap().priority, None);
    let read = app.get("/api/v1/tickets/PROJ-10").await;
    assert_eq!(read.json()["priority"], serde_json::Value::Null);
}

async fn a_put_replaces_every_field_in_jira(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-11", "Old").with_priority("High"));

    let response = app
        .put(
            "/api/v1/tickets/PROJ-11",
            json!({"summary": "Replaced", "status": "Done", "description": "One line"}),
        )
        .await;

    assert_eq!(response.status, StatusCode::OK, "{:?}", response.json());
    let in_jira = jira.issue("PROJ-11").unwrap();
    assert_eq!(
        (
            in_jira.summary.as_str(),
            in_jira.status.as_str(),
            in_jira.priority
        ),
        ("Replaced", "Done", None)
    );
    assert_eq!(in_jira.description.as_deref(), Some("One line"));
}

#[tokio::test]
async fn without_a_webhook_secret_the_webhook_route_is_404() {
    let jira = FakeJira::start().await;
    let app = TestApp::with_config(
        Backend::Sqlite,
        config_with(&jira, |c| {
            if let Some(settings) = &mut c.jira {
                settings.webhook_secret = None;
            }
        }),
    )
    .await;
    let body = webhook_body("jira:issue_updated", &issue("PROJ-1", "x"));

    let response = app.send_raw(Method::POST, WEBHOOK_PATH, &[], body).await;

    assert_eq!(response.assert_error(StatusCode::NOT_FOUND), "not_found");
}

async fn if_match_is_checked_against_the_issue_jira_holds(backend: Backend) {
    let (jira, app) = jira_app(backend).await;
    jira.put_issue(issue("PROJ-12", "First"));
    let etag = app
        .get("/api/v1/tickets/PROJ-12")
        .await
        .header("etag")
        .to_owned();
    let if_match = |tag: &str| {
        let tag = tag.to_owned();
        let app = &app;
        async move {
            app.send_raw(
                Method::PATCH,
                "/api/v1/tickets/PROJ-12",
                &[
                    ("if-match", tag.as_str()),
                    ("content-type", "application/json"),
                ],
                json!({"summary": "Mine"}).to_string().into_bytes(),
            )
            .await
        }
    };

    // Changed in Jira since it was read here: the tag no longer names Jira's version.
    jira.put_issue(issue("PROJ-12", "Changed in Jira"));
    jira.reset_counts();
    if_match(&etag)
        .await
        .assert_error(StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        jira.calls_to("PUT", "/rest/api/3/issue"),
        0,
        "nothing was written"
    );
    assert_eq!(jira.issue("PROJ-12").unwrap().summary, "Changed in Jira");

    // The tag of Jira's current version lets the write through.
    let current = app
        .send_raw(
            Method::GET,
            "/api/v1/tickets/PROJ-12",
            &[("cache-control", "no-cache")],
            vec![],
        )
        .await;
    assert_eq!(current.json()["summary"], "Changed in Jira");
    let written = if_match(current.header("etag")).await;
    assert_eq!(written.status, StatusCode::OK, "{:?}", written.json());
    assert_eq!(jira.issue("PROJ-12").unwrap().summary, "Mine");
}
