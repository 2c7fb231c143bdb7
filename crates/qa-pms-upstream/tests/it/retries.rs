//! Retries of 5xx, timeouts and connection errors, and what is not retried.

use std::time::{Duration, Instant};

use qa_pms_upstream::{Outcome, Upstream, UpstreamError};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{config, get};

async fn calls(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn a_5xx_then_a_200_is_retried_and_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/thing"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    let upstream = Upstream::new(config(Duration::from_secs(5)));

    let response = get(&upstream, &server.uri()).await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(calls(&server).await, 2);
    let stats = upstream.stats();
    assert_eq!(stats.count(Outcome::ServerError), 1);
    assert_eq!(stats.count(Outcome::Success), 1);
    assert_eq!(stats.duration_count, 2);
}

#[tokio::test]
async fn a_persistent_5xx_gives_status_after_max_attempts_calls() {
    let server = MockServer::start().await;
    let body = "x".repeat(5000);
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500).set_body_string(body))
        .mount(&server)
        .await;
    let upstream = Upstream::new(config(Duration::from_secs(5)));

    let error = get(&upstream, &server.uri()).await.unwrap_err();

    let UpstreamError::Status { status, body } = error else {
        panic!("expected Status, got {error:?}");
    };
    assert_eq!(status, 500);
    assert!(
        body.len() <= 1024 && body.starts_with("xxx"),
        "{}",
        body.len()
    );
    assert_eq!(calls(&server).await, 3);
}

#[tokio::test]
async fn retries_stop_at_the_deadline_even_with_attempts_left() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let mut config = config(Duration::from_millis(300));
    config.max_attempts = 1000;
    let upstream = Upstream::new(config);
    let started = Instant::now();

    let error = get(&upstream, &server.uri()).await.unwrap_err();

    assert!(matches!(
        error,
        UpstreamError::Status { status: 502, .. } | UpstreamError::Timeout
    ));
    assert!(started.elapsed() < Duration::from_secs(5), "did not hang");
    assert!(calls(&server).await < 1000);
}

#[tokio::test]
async fn a_404_is_returned_as_a_response_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let upstream = Upstream::new(config(Duration::from_secs(5)));

    let response = get(&upstream, &server.uri()).await.unwrap();

    assert_eq!(response.status(), 404);
    assert_eq!(calls(&server).await, 1);
    assert_eq!(upstream.stats().count(Outcome::ClientError), 1);
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_gives_timeout_without_hanging() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    let upstream = Upstream::new(config(Duration::from_millis(300)));
    let started = Instant::now();

    let error = get(&upstream, &server.uri()).await.unwrap_err();

    assert_eq!(error, UpstreamError::Timeout);
    assert_eq!(error.http_status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5), "did not hang");
    assert_eq!(upstream.stats().count(Outcome::Timeout), 1);
}

#[tokio::test]
async fn a_refused_connection_gives_connect_after_the_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let upstream = Upstream::new(config(Duration::from_secs(5)));

    let error = get(&upstream, &format!("http://127.0.0.1:{port}"))
        .await
        .unwrap_err();

    assert!(matches!(error, UpstreamError::Connect(_)), "{error:?}");
    assert_eq!(upstream.stats().count(Outcome::ConnectError), 3);
}
