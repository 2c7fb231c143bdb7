//! The rate budget and 429 handling: `Retry-After` pauses every caller of the upstream.

use std::time::{Duration, Instant};

use qa_pms_upstream::{Outcome, Upstream, UpstreamError};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{config, get, Scripted};

/// Timers never fire early, but leave room for clocks read on two sides of a socket.
const ONE_SECOND_LESS_SLACK: Duration = Duration::from_millis(990);

async fn serve(responder: &Scripted) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(responder.clone())
        .mount(&server)
        .await;
    server
}

fn too_many(header: &str, value: &str) -> ResponseTemplate {
    ResponseTemplate::new(429).insert_header(header, value)
}

#[tokio::test]
async fn a_429_with_retry_after_makes_the_next_request_wait_for_it() {
    let responder = Scripted::new(vec![
        too_many("Retry-After", "1"),
        ResponseTemplate::new(200),
    ]);
    let server = serve(&responder).await;
    let upstream = Upstream::new(config(Duration::from_secs(5)));

    let response = get(&upstream, &server.uri()).await.unwrap();

    assert_eq!(response.status(), 200);
    let times = responder.times();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= ONE_SECOND_LESS_SLACK,
        "{:?}",
        times[1] - times[0]
    );
    assert_eq!(upstream.stats().count(Outcome::RateLimited), 1);
}

#[tokio::test]
async fn alternative_retry_header_names_are_honoured() {
    let responder = Scripted::new(vec![
        too_many("X-RateLimit-RetryAfter", "1"),
        ResponseTemplate::new(200),
    ]);
    let server = serve(&responder).await;
    let mut config = config(Duration::from_secs(5));
    config.retry_after_headers = &["x-ratelimit-retryafter", "retryafter"];
    let upstream = Upstream::new(config);

    let response = get(&upstream, &server.uri()).await.unwrap();

    assert_eq!(response.status(), 200);
    let times = responder.times();
    assert!(
        times[1] - times[0] >= ONE_SECOND_LESS_SLACK,
        "{:?}",
        times[1] - times[0]
    );
}

#[tokio::test]
async fn a_429_pauses_every_other_caller_of_the_upstream_too() {
    let responder = Scripted::new(vec![
        too_many("Retry-After", "1"),
        ResponseTemplate::new(200),
    ]);
    let server = serve(&responder).await;
    let upstream = Upstream::new(config(Duration::from_secs(5)));
    let first = tokio::spawn({
        let (upstream, uri) = (upstream.clone(), server.uri());
        async move { get(&upstream, &uri).await.map(|r| r.status()) }
    });
    while responder.times().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    let second = get(&upstream, &server.uri()).await.unwrap();

    assert_eq!(second.status(), 200);
    assert_eq!(first.await.unwrap().unwrap(), 200);
    let times = responder.times();
    assert_eq!(times.len(), 3);
    for later in &times[1..] {
        assert!(*later - times[0] >= ONE_SECOND_LESS_SLACK);
    }
}

#[tokio::test]
async fn a_429_whose_wait_passes_the_deadline_gives_rate_limited() {
    let responder = Scripted::new(vec![too_many("Retry-After", "30")]);
    let server = serve(&responder).await;
    let upstream = Upstream::new(config(Duration::from_millis(500)));
    let started = Instant::now();

    let error = get(&upstream, &server.uri()).await.unwrap_err();

    assert_eq!(
        error,
        UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    assert!(started.elapsed() < Duration::from_secs(5), "did not hang");
    assert_eq!(responder.times().len(), 1);
    assert!(!upstream.circuit_open(), "a 429 is not a breaker failure");
}

#[tokio::test]
async fn a_429_without_a_header_uses_the_configured_default_wait() {
    let responder = Scripted::new(vec![ResponseTemplate::new(429), ResponseTemplate::new(200)]);
    let server = serve(&responder).await;
    let mut config = config(Duration::from_secs(5));
    config.default_retry_after = Some(Duration::from_secs(1));
    let upstream = Upstream::new(config);

    get(&upstream, &server.uri()).await.unwrap();

    let times = responder.times();
    assert!(
        times[1] - times[0] >= ONE_SECOND_LESS_SLACK,
        "{:?}",
        times[1] - times[0]
    );
}

#[tokio::test]
async fn no_window_of_a_second_sees_more_than_max_rps_requests() {
    let responder = Scripted::new(vec![ResponseTemplate::new(200)]);
    let server = serve(&responder).await;
    let mut config = config(Duration::from_secs(20));
    config.max_rps = 5;
    let upstream = Upstream::new(config);

    let calls = (0..20).map(|_| {
        let (upstream, uri) = (upstream.clone(), server.uri());
        tokio::spawn(async move { get(&upstream, &uri).await.map(|r| r.status()) })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap().unwrap(), 200);
    }

    let mut times = responder.times();
    times.sort();
    assert_eq!(times.len(), 20);
    // One every 200 ms, no burst: a window of 900 ms holds 5 (100 ms of slack for scheduling
    // noise), while a bucket that let a burst through would put more in the first one.
    let window = Duration::from_millis(900);
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..].iter().filter(|t| **t - *start <= window).count();
        assert!(in_window <= 5, "{in_window} requests within {window:?}");
    }
    assert!(times[19] - times[0] >= Duration::from_millis(3_500));
}
