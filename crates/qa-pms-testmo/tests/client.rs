//! The Testmo client against `FakeTestmo` over real HTTP: pages followed until `next_page` is
//! null, cases as entries, `Retry-After` (and 60 s without it) honoured, the rate budget kept,
//! and failures mid-pagination surfacing as errors rather than partial lists.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use qa_pms_core::Source;
use qa_pms_fakes::testmo::{demo_cases, Failure, FakeCase, FakeTestmo};
use qa_pms_testmo::{SkipCounts, TestmoClient, TestmoConfig, TestmoError, DEFAULT_RETRY_AFTER};
use qa_pms_upstream::{Outcome, UpstreamError};

/// Timers never fire early, but leave room for clocks read on two sides of a socket.
const ONE_SECOND_LESS_SLACK: Duration = Duration::from_millis(990);
/// Project 1 holds the 3 demo cases and generated cases 101..=330: 233 cases, 3 pages.
const PROJECT_1_CASES: usize = 233;

fn config(testmo: &FakeTestmo, projects: Vec<u64>) -> TestmoConfig {
    let mut config = TestmoConfig::new(format!("{}/", testmo.url()), testmo.token(), projects);
    config.max_rps = 100;
    config.timeout = Duration::from_secs(5);
    config
}

fn client(testmo: &FakeTestmo) -> TestmoClient {
    TestmoClient::new(config(testmo, vec![1, 2])).unwrap()
}

async fn demo_testmo() -> FakeTestmo {
    let testmo = FakeTestmo::start().await;
    testmo.put_cases(1, demo_cases());
    testmo.put_cases(1, (101..=330).map(FakeCase::generated));
    testmo.put_cases(
        2,
        [FakeCase::new(900, "Refund to a gift card").in_folder(90)],
    );
    testmo
}

fn paths(testmo: &FakeTestmo) -> Vec<String> {
    testmo.requests().into_iter().map(|r| r.path).collect()
}

#[tokio::test]
async fn pages_are_followed_until_next_page_is_null() {
    let testmo = demo_testmo().await;

    let cases = client(&testmo).cases(1).await.unwrap();

    assert_eq!(cases.len(), PROJECT_1_CASES);
    let ids: Vec<u64> = cases.iter().map(|c| c.id).collect();
    let expected: Vec<u64> = [1, 2, 3].into_iter().chain(101..=330).collect();
    assert_eq!(ids, expected);
    assert_eq!(
        paths(&testmo),
        [
            "/api/v1/projects/1/cases?page=1&per_page=100",
            "/api/v1/projects/1/cases?page=2&per_page=100",
            "/api/v1/projects/1/cases?page=3&per_page=100",
        ]
    );
}

#[tokio::test]
async fn an_empty_project_has_no_cases_after_one_call() {
    let testmo = FakeTestmo::start().await;
    testmo.add_project(5);

    let cases = client(&testmo).cases(5).await.unwrap();

    assert!(cases.is_empty());
    assert_eq!(testmo.requests().len(), 1);
}

#[tokio::test]
async fn cases_become_entries_with_their_web_url_and_plain_text() {
    let testmo = demo_testmo().await;

    let catalog = client(&testmo).catalog_entries().await.unwrap();

    assert_eq!(catalog.entries.len(), PROJECT_1_CASES + 1);
    assert_eq!(catalog.skipped, SkipCounts::default());
    let login = &catalog.entries[0];
    assert_eq!(login.source, Source::Testmo);
    assert_eq!(login.name, "Login with a valid password");
    assert_eq!(
        login.url,
        format!("{}/repositories/1?group_id=10&case_id=1", testmo.url())
    );
    assert_eq!(
        login.text,
        "A registered customer signs in with e-mail & password.\n\
         Account ana.souza@example.test exists\nNot locked\n\
         Open /login\nThe form shows\nSubmit valid credentials\nThe dashboard greets \"Ana\""
    );
    let expired = &catalog.entries[1];
    assert_eq!(
        expired.text,
        "The password is older than 90 days.\nThe customer must choose a new one.\nSign in"
    );
    let checkout = &catalog.entries[2];
    assert_eq!(
        checkout.url,
        format!("{}/repositories/1?case_id=3", testmo.url())
    );
    assert_eq!(
        checkout.text,
        "Uses the Stripe test card 4242 4242 4242 4242."
    );
    let last = catalog.entries.last().unwrap();
    assert_eq!(
        last.url,
        format!("{}/repositories/2?group_id=90&case_id=900", testmo.url())
    );
    for entry in &catalog.entries {
        assert_eq!(entry.clone().validate().unwrap(), *entry, "{}", entry.name);
    }
}

#[tokio::test]
async fn a_5xx_mid_pagination_fails_the_call_instead_of_returning_a_partial_list() {
    let testmo = demo_testmo().await;
    testmo.fail_next_matching("page=2&", 10, Failure::Status(500));
    let client = client(&testmo);

    let error = client.cases(1).await.unwrap_err();

    assert_eq!(
        error,
        TestmoError::Upstream(UpstreamError::Status {
            status: 500,
            body: r#"{"message":"Server Error"}"#.into()
        })
    );
    let paths = paths(&testmo);
    assert_eq!(paths.iter().filter(|p| p.contains("page=1&")).count(), 1);
    assert_eq!(paths.iter().filter(|p| p.contains("page=2&")).count(), 4);
    assert_eq!(paths.iter().filter(|p| p.contains("page=3&")).count(), 0);
    assert!(
        client.catalog_entries().await.is_err(),
        "the catalog fails too"
    );
}

#[tokio::test]
async fn a_transient_5xx_mid_pagination_is_retried_and_the_list_completes() {
    let testmo = demo_testmo().await;
    testmo.fail_next_matching("page=2&", 2, Failure::Status(502));

    let cases = client(&testmo).cases(1).await.unwrap();

    assert_eq!(cases.len(), PROJECT_1_CASES);
    assert_eq!(testmo.pending_failures(), 0);
}

#[tokio::test]
async fn malformed_json_mid_pagination_is_an_error_naming_the_page() {
    let testmo = demo_testmo().await;
    testmo.fail_next_matching("page=2&", 1, Failure::Malformed);

    let error = client(&testmo).cases(1).await.unwrap_err();

    assert!(
        matches!(&error, TestmoError::Malformed(m) if m.contains("project 1, page 2")),
        "{error:?}"
    );
    assert_eq!(
        testmo.requests().len(),
        2,
        "a malformed body is not retried"
    );
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let testmo = demo_testmo().await;
    testmo.fail_next_matching(
        "page=2&",
        1,
        Failure::TooManyRequests {
            retry_after_secs: Some(1),
        },
    );
    let client = client(&testmo);

    let cases = client.cases(1).await.unwrap();

    assert_eq!(cases.len(), PROJECT_1_CASES);
    let requests = testmo.requests();
    let statuses: Vec<Option<u16>> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(200), Some(429), Some(200), Some(200)]);
    let gap = requests[2].received_at - requests[1].received_at;
    assert!(gap >= ONE_SECOND_LESS_SLACK, "retried after {gap:?}");
    assert_eq!(client.upstream().stats().count(Outcome::RateLimited), 1);
}

#[tokio::test]
async fn a_429_without_retry_after_pauses_every_call_for_sixty_seconds() {
    let testmo = demo_testmo().await;
    testmo.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: None,
        },
    );
    // A 2 s deadline cannot hold the 60 s wait: the call fails saying so, without retrying.
    let mut config = config(&testmo, vec![1]);
    config.timeout = Duration::from_secs(2);
    let client = TestmoClient::new(config).unwrap();
    let rate_limited = TestmoError::Upstream(UpstreamError::RateLimited {
        retry_after: Some(DEFAULT_RETRY_AFTER),
    });

    assert_eq!(client.cases(1).await.unwrap_err(), rate_limited);
    assert_eq!(testmo.requests().len(), 1);

    let again = client.cases(1).await.unwrap_err();
    assert!(
        matches!(again, TestmoError::Upstream(UpstreamError::RateLimited { retry_after: Some(left) }) if left > Duration::from_secs(55)),
        "{again:?}"
    );
    assert_eq!(
        testmo.requests().len(),
        1,
        "nothing is sent during the pause"
    );
}

#[tokio::test]
async fn testmos_own_rate_limit_is_waited_out_and_the_sync_completes() {
    let testmo = demo_testmo().await;
    testmo.set_rate_limit(Some(2));

    let catalog = client(&testmo).catalog_entries().await.unwrap();

    assert_eq!(catalog.entries.len(), PROJECT_1_CASES + 1);
    let requests = testmo.requests();
    let limited = requests.iter().filter(|r| r.status == Some(429)).count();
    assert!(limited >= 1, "4 requests against 2 a second");
    assert_eq!(requests.len(), 4 + limited);
}

#[tokio::test]
async fn requests_never_leave_faster_than_the_rate_budget() {
    let testmo = demo_testmo().await;
    let mut config = config(&testmo, vec![1, 2]);
    config.max_rps = 10;
    let client = TestmoClient::new(config).unwrap();

    for _ in 0..2 {
        client.catalog_entries().await.unwrap();
    }

    let times: Vec<Instant> = testmo.requests().iter().map(|r| r.received_at).collect();
    assert_eq!(times.len(), 8, "4 pages, twice");
    // One request every 100 ms: the eighth at least 700 ms after the first (less one interval
    // for a first request delayed in transit), and never more than 5 within 450 ms.
    let span = times[7] - times[0];
    assert!(span >= Duration::from_millis(600), "8 requests in {span:?}");
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|t| **t - *start < Duration::from_millis(450))
            .count();
        assert!(in_window <= 5, "{in_window} requests within 450 ms");
    }
}

#[tokio::test]
async fn a_wrong_token_is_an_auth_error_sent_once() {
    let testmo = demo_testmo().await;
    let mut config = config(&testmo, vec![1]);
    config.token = "testmo_api_wrong".into();

    let error = TestmoClient::new(config)
        .unwrap()
        .catalog_entries()
        .await
        .unwrap_err();

    assert_eq!(
        error,
        TestmoError::Unauthorized {
            status: 401,
            message: "Unauthenticated.".into()
        }
    );
    assert_eq!(testmo.requests().len(), 1);
}

#[tokio::test]
async fn an_unknown_project_is_not_found() {
    let testmo = demo_testmo().await;

    let error = client(&testmo).cases(77).await.unwrap_err();

    assert_eq!(
        error,
        TestmoError::NotFound {
            message: "Not found.".into()
        }
    );
}

#[tokio::test]
async fn a_base_url_given_with_its_api_path_still_reaches_the_api_and_links_the_site() {
    let testmo = demo_testmo().await;
    let mut config = config(&testmo, vec![2]);
    config.base_url = format!("{}/api/v1/", testmo.url());

    let catalog = TestmoClient::new(config)
        .unwrap()
        .catalog_entries()
        .await
        .unwrap();

    assert_eq!(
        catalog.entries[0].url,
        format!("{}/repositories/2?group_id=90&case_id=900", testmo.url())
    );
}

#[test]
fn the_config_debug_output_hides_the_token() {
    let config = TestmoConfig::new("https://acme.testmo.net", "testmo_api_secret", vec![1]);
    let shown = format!("{config:?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("acme.testmo.net"));
}
