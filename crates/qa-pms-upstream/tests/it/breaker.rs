//! The circuit breaker: it opens after failed sends, refuses without calls, and lets one probe
//! through after the cooldown.

use std::time::Duration;

use qa_pms_upstream::{Outcome, Upstream, UpstreamError};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{config, get};

const COOLDOWN: Duration = Duration::from_millis(300);

/// An upstream whose breaker opens after 2 failed sends of one attempt each, and a server that
/// answers 500 until reset.
async fn failing_upstream() -> (Upstream, MockServer) {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let mut config = config(Duration::from_secs(5));
    config.max_attempts = 1;
    config.breaker_threshold = 2;
    config.breaker_cooldown = COOLDOWN;
    (Upstream::new(config), server)
}

async fn calls(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn the_breaker_opens_after_n_failed_sends_and_then_refuses_without_calls() {
    let (upstream, server) = failing_upstream().await;
    for _ in 0..2 {
        let error = get(&upstream, &server.uri()).await.unwrap_err();
        assert!(matches!(error, UpstreamError::Status { status: 500, .. }));
    }
    assert!(upstream.circuit_open());

    for _ in 0..3 {
        let error = get(&upstream, &server.uri()).await.unwrap_err();
        assert_eq!(error, UpstreamError::CircuitOpen);
    }

    assert_eq!(calls(&server).await, 2);
    let stats = upstream.stats();
    assert_eq!(stats.count(Outcome::CircuitOpen), 3);
    assert!(stats.circuit_open);
}

#[tokio::test]
async fn after_the_cooldown_one_probe_goes_through_and_its_success_closes_the_breaker() {
    let (upstream, server) = failing_upstream().await;
    for _ in 0..2 {
        get(&upstream, &server.uri()).await.unwrap_err();
    }
    tokio::time::sleep(COOLDOWN + Duration::from_millis(100)).await;
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;

    let probe = tokio::spawn({
        let (upstream, uri) = (upstream.clone(), server.uri());
        async move { get(&upstream, &uri).await.map(|r| r.status()) }
    });
    while calls(&server).await == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let while_probing = get(&upstream, &server.uri()).await.unwrap_err();

    assert_eq!(while_probing, UpstreamError::CircuitOpen);
    assert_eq!(probe.await.unwrap().unwrap(), 200);
    assert!(!upstream.circuit_open());
    assert_eq!(get(&upstream, &server.uri()).await.unwrap().status(), 200);
    assert_eq!(calls(&server).await, 2);
}

#[tokio::test]
async fn a_failed_probe_opens_the_breaker_for_another_cooldown() {
    let (upstream, server) = failing_upstream().await;
    for _ in 0..2 {
        get(&upstream, &server.uri()).await.unwrap_err();
    }
    tokio::time::sleep(COOLDOWN + Duration::from_millis(100)).await;

    let probe = get(&upstream, &server.uri()).await.unwrap_err();
    let refused = get(&upstream, &server.uri()).await.unwrap_err();

    assert!(matches!(probe, UpstreamError::Status { status: 500, .. }));
    assert_eq!(refused, UpstreamError::CircuitOpen);
    assert_eq!(calls(&server).await, 3);
}
