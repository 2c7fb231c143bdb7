//! FakeJira's behaviour knobs (rate limit, failures, latency, refused connections) and its counters.

mod common;

use std::time::Duration;

use common::{jira_with_issue, json_of, send};
use qa_pms_fakes::jira::Failure;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn requests_beyond_the_rate_limit_get_429_with_retry_after() {
    let jira = jira_with_issue().await;
    jira.set_rate_limit(Some(3));

    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..6 {
        let response = send(&jira, Method::GET, "/rest/api/3/issue/PROJ-1", None).await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            limited = Some(response);
        }
    }

    assert!(statuses[..3].iter().all(|s| *s == StatusCode::OK));
    let limited = limited.expect("at least one request over the limit");
    assert_eq!(limited.headers()["retry-after"], "1");
    assert!(json_of(limited).await["errorMessages"][0].is_string());
    jira.set_rate_limit(None);
    let after = send(&jira, Method::GET, "/rest/api/3/issue/PROJ-1", None).await;
    assert_eq!(after.status(), StatusCode::OK);
}

#[tokio::test]
async fn injected_failures_run_out_then_answers_are_normal() {
    let jira = jira_with_issue().await;
    let path = "/rest/api/3/issue/PROJ-1";
    jira.fail_next(2, Failure::Status(503));
    jira.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: 7,
        },
    );
    jira.fail_next(1, Failure::Malformed);

    let first = send(&jira, Method::GET, path, None).await;
    let second = send(&jira, Method::GET, path, None).await;
    let throttled = send(&jira, Method::GET, path, None).await;
    let malformed = send(&jira, Method::GET, path, None).await;
    let normal = send(&jira, Method::GET, path, None).await;

    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.headers()["retry-after"], "7");
    assert_eq!(malformed.status(), StatusCode::OK);
    assert!(malformed.json::<Value>().await.is_err());
    assert_eq!(normal.status(), StatusCode::OK);
}

#[tokio::test]
async fn down_mode_fails_everything_until_lifted_and_hang_never_answers() {
    let jira = jira_with_issue().await;
    let path = "/rest/api/3/issue/PROJ-1";
    jira.set_down(Some(Failure::Status(500)));
    let down = send(&jira, Method::GET, path, None).await;
    let still_down = send(&jira, Method::GET, "/rest/api/3/user/search?query=a", None).await;
    jira.set_down(None);
    jira.fail_next(1, Failure::Hang);

    let hung = reqwest::Client::new()
        .get(format!("{}{path}", jira.url()))
        .basic_auth(jira.email(), Some(jira.token()))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    let normal = send(&jira, Method::GET, path, None).await;

    assert_eq!(down.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        json_of(down).await["errorMessages"][0],
        "Internal server error"
    );
    assert_eq!(still_down.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(hung.is_err_and(|e| e.is_timeout()));
    assert_eq!(normal.status(), StatusCode::OK);
}

#[tokio::test]
async fn latency_delays_answers() {
    let jira = jira_with_issue().await;
    jira.set_latency(Duration::from_millis(200));

    let started = std::time::Instant::now();
    let response = send(&jira, Method::GET, "/rest/api/3/issue/PROJ-1", None).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn refused_connections_come_back_on_the_same_port() {
    let mut jira = jira_with_issue().await;
    let url = format!("{}/rest/api/3/issue/PROJ-1", jira.url());
    let (email, token) = (jira.email().to_owned(), jira.token().to_owned());
    let pooled = reqwest::Client::new();
    let get = |client: &reqwest::Client| client.get(&url).basic_auth(&email, Some(&token)).send();
    let before = get(&pooled).await.expect("listening");

    jira.refuse_connections().await;
    let refused = get(&reqwest::Client::new()).await;
    let reused = get(&pooled).await;
    let raw = std::net::TcpStream::connect(jira.addr());
    jira.accept_connections().await;
    let back = get(&pooled).await.expect("listening again");

    assert_eq!(before.status(), StatusCode::OK);
    assert!(refused.is_err_and(|e| e.is_connect()));
    assert!(reused.is_err());
    assert_eq!(
        raw.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    assert!(url.starts_with(&jira.url()));
    assert_eq!(back.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_request_is_counted_and_recorded() {
    let jira = jira_with_issue().await;
    jira.fail_next(1, Failure::Status(502));

    send(&jira, Method::GET, "/rest/api/3/issue/PROJ-1", None).await;
    send(&jira, Method::GET, "/rest/api/3/issue/PROJ-1", None).await;
    reqwest::get(format!("{}/rest/api/3/issue/PROJ-2", jira.url()))
        .await
        .expect("answered");
    let search = json!({"jql": "project = PROJ"});
    send(
        &jira,
        Method::POST,
        "/rest/api/3/search/jql",
        Some(search.clone()),
    )
    .await;

    assert_eq!(jira.calls(), 4);
    assert_eq!(jira.calls_to("GET", "/rest/api/3/issue/"), 3);
    assert_eq!(jira.calls_to("post", "/rest/api/3/search"), 1);
    let recorded = jira.requests();
    assert_eq!(recorded[3].path, "/rest/api/3/search/jql");
    assert_eq!(
        serde_json::from_slice::<Value>(&recorded[3].body).ok(),
        Some(search)
    );
    assert!(recorded[0].received_at <= recorded[3].received_at);
    jira.reset_counts();
    assert_eq!(jira.calls(), 0);
}
