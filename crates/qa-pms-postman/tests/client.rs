//! The Postman client against `FakePostman` over real HTTP: nested folders flattened, collection
//! pages followed, Postman's own 429 headers honoured, the rate budget kept, and failures (5xx,
//! malformed JSON, a wrong key) surfacing as errors rather than partial catalogs.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use qa_pms_core::Source;
use qa_pms_fakes::postman::{
    demo_collections, request, Failure, FakeCollection, FakePostman, CATALOG_WORKSPACE,
};
use qa_pms_postman::{PostmanClient, PostmanConfig, PostmanError, SkipCounts};
use qa_pms_upstream::{Outcome, UpstreamError};
use serde_json::json;

/// Timers never fire early, but leave room for clocks read on two sides of a socket.
const ONE_SECOND_LESS_SLACK: Duration = Duration::from_millis(990);

fn config(postman: &FakePostman) -> PostmanConfig {
    let mut config = PostmanConfig::new(postman.api_key());
    config.base_url = format!("{}/", postman.url());
    config.max_rps = 100;
    config.timeout = Duration::from_secs(5);
    config
}

fn client(postman: &FakePostman) -> PostmanClient {
    PostmanClient::new(config(postman)).unwrap()
}

async fn demo_postman() -> FakePostman {
    let postman = FakePostman::start().await;
    for collection in demo_collections() {
        postman.put_collection(collection);
    }
    postman
}

/// `n` small collections named `Extra 1..=n`, one request each.
fn extra_collections(n: usize) -> Vec<FakeCollection> {
    (1..=n)
        .map(|i| {
            FakeCollection::new(format!("Extra {i}")).with_items(vec![request(
                "Ping",
                json!(format!("https://extra{i}.test/ping")),
            )])
        })
        .collect()
}

fn uid_of(name: &str) -> String {
    let collection = demo_collections().into_iter().find(|c| c.name == name);
    collection.unwrap().uid()
}

fn item_id(postman: &FakePostman, collection: &str, pointer: &str) -> String {
    let stored = postman.collection(&uid_of(collection)).unwrap();
    let items = serde_json::Value::Array(stored.items);
    items.pointer(pointer).unwrap().as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_request_in_nested_folders_becomes_an_entry_named_by_its_path() {
    let postman = demo_postman().await;

    let catalog = client(&postman).catalog_entries().await.unwrap();

    let names: Vec<&str> = catalog.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Shop API / Orders / List orders",
            "Shop API / Orders / Create order",
            "Shop API / Orders / Refunds / Create refund",
            "Shop API / Orders / Refunds / List refunds",
            "Shop API / Orders / Refunds / Edge cases / Refund more than paid",
            "Shop API / Auth / Login",
            "Shop API / Auth / Upload avatar",
            "Shop API / Health check",
            "Catalog GraphQL / Search products",
            "Catalog GraphQL / Get product",
        ]
    );
    assert_eq!(catalog.skipped, SkipCounts::default());
    for entry in &catalog.entries {
        assert_eq!(entry.source, Source::Postman);
        assert_eq!(entry.clone().validate().unwrap(), *entry, "{}", entry.name);
    }
    assert_eq!(postman.calls_to("GET", "/collections?"), 1);
    assert_eq!(postman.calls_to("GET", "/collections/"), 2);
}

#[tokio::test]
async fn urls_are_raw_or_rebuilt_and_shared_ones_carry_the_item_id() {
    let postman = demo_postman().await;

    let catalog = client(&postman).catalog_entries().await.unwrap();

    let url_of = |suffix: &str| {
        catalog
            .entries
            .iter()
            .find(|e| e.name.ends_with(suffix))
            .map(|e| e.url.clone())
            .unwrap()
    };
    assert_eq!(url_of("Health check"), "https://shop.example.test/health");
    assert_eq!(url_of("Create order"), "{{baseUrl}}/orders");
    assert_eq!(
        url_of("Get product"),
        "https://catalog.example.test/products/42?expand=variants"
    );
    // Three requests share `{{baseUrl}}/orders/:orderId/refunds`.
    let create = item_id(&postman, "Shop API", "/0/item/2/item/0/id");
    let list = item_id(&postman, "Shop API", "/0/item/2/item/1/id");
    let edge = item_id(&postman, "Shop API", "/0/item/2/item/2/item/0/id");
    let refunds = "{{baseUrl}}/orders/:orderId/refunds";
    assert_eq!(url_of("Create refund"), format!("{refunds}#{create}"));
    assert_eq!(url_of("List refunds"), format!("{refunds}#{list}"));
    assert_eq!(url_of("Refund more than paid"), format!("{refunds}#{edge}"));
}

#[tokio::test]
async fn text_holds_the_method_url_descriptions_and_body_of_every_mode() {
    let postman = demo_postman().await;

    let catalog = client(&postman).catalog_entries().await.unwrap();

    let text_of = |suffix: &str| {
        catalog
            .entries
            .iter()
            .find(|e| e.name.ends_with(suffix))
            .map(|e| e.text.clone())
            .unwrap()
    };
    assert_eq!(
        text_of("Refund more than paid"),
        "POST {{baseUrl}}/orders/:orderId/refunds\nExpect **422** `refund_exceeds_payment`.\n{\"amount\": 999999}"
    );
    assert_eq!(
        text_of("Create order"),
        "POST {{baseUrl}}/orders\nCreates an order and reserves stock. Coupons are applied at checkout.\n\
         {\n  \"items\": [{\"sku\": \"TSHIRT-M\", \"qty\": 2}],\n  \"coupon\": \"SPRING10\"\n}"
    );
    assert_eq!(
        text_of("Login"),
        "POST {{baseUrl}}/oauth/token\ngrant_type=password\nusername=ana.souza@example.test\npassword={{password}}"
    );
    assert_eq!(
        text_of("Upload avatar"),
        "PUT {{baseUrl}}/me/avatar\ncaption=Profile picture\nfile=/home/ana/avatar.png"
    );
    assert!(text_of("Search products").contains("products(search: $term)"));
    assert!(text_of("Search products").ends_with("{\"term\": \"sneakers\"}"));
    assert_eq!(
        text_of("Health check"),
        "GET https://shop.example.test/health"
    );
}

#[tokio::test]
async fn a_workspace_limits_the_catalog_to_its_collections() {
    let postman = demo_postman().await;
    let mut config = config(&postman);
    config.workspace = Some(CATALOG_WORKSPACE.to_owned());

    let catalog = PostmanClient::new(config)
        .unwrap()
        .catalog_entries()
        .await
        .unwrap();

    assert_eq!(catalog.entries.len(), 2);
    let listed = &postman.requests()[0].path;
    assert!(
        listed.contains(&format!("workspace={CATALOG_WORKSPACE}")),
        "{listed}"
    );
}

#[tokio::test]
async fn collection_pages_are_followed_to_the_end() {
    let postman = demo_postman().await;
    for collection in extra_collections(5) {
        postman.put_collection(collection);
    }
    postman.set_max_page_size(Some(2));

    let listed = client(&postman).list_collections().await.unwrap();

    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Shop API",
            "Catalog GraphQL",
            "Extra 1",
            "Extra 2",
            "Extra 3",
            "Extra 4",
            "Extra 5"
        ]
    );
    let offsets: Vec<String> = postman.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        offsets,
        [
            "/collections?limit=100&offset=0",
            "/collections?limit=100&offset=2",
            "/collections?limit=100&offset=4",
            "/collections?limit=100&offset=6",
        ]
    );
}

#[tokio::test]
async fn a_429_waits_for_postmans_x_ratelimit_retryafter() {
    let postman = demo_postman().await;
    postman.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: Some(1),
        },
    );
    let client = client(&postman);

    let listed = client.list_collections().await.unwrap();

    assert_eq!(listed.len(), 2);
    let requests = postman.requests();
    let statuses: Vec<Option<u16>> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(429), Some(200)]);
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= ONE_SECOND_LESS_SLACK, "retried after {gap:?}");
    assert_eq!(client.upstream().stats().count(Outcome::RateLimited), 1);
}

#[tokio::test]
async fn a_429_with_only_retryafter_is_honoured_too() {
    let postman = demo_postman().await;
    postman.set_retry_after_headers(&["RetryAfter"]);
    postman.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: Some(1),
        },
    );

    let listed = client(&postman).list_collections().await.unwrap();

    assert_eq!(listed.len(), 2);
    let requests = postman.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= ONE_SECOND_LESS_SLACK, "retried after {gap:?}");
}

#[tokio::test]
async fn postmans_own_rate_limit_is_waited_out_and_the_sync_completes() {
    let postman = demo_postman().await;
    postman.set_rate_limit(Some(2));

    let catalog = client(&postman).catalog_entries().await.unwrap();

    assert_eq!(catalog.entries.len(), 10);
    let requests = postman.requests();
    let limited: Vec<usize> = (0..requests.len())
        .filter(|&i| requests[i].status == Some(429))
        .collect();
    assert_eq!(limited.len(), 1, "the third request of the first second");
    let retried = &requests[limited[0] + 1];
    assert!(retried.received_at - requests[limited[0]].received_at >= ONE_SECOND_LESS_SLACK);
    assert_eq!(requests.len(), 4);
}

#[tokio::test]
async fn requests_never_leave_faster_than_the_rate_budget() {
    let postman = demo_postman().await;
    for collection in extra_collections(6) {
        postman.put_collection(collection);
    }
    let mut config = config(&postman);
    config.max_rps = 10;

    let catalog = PostmanClient::new(config)
        .unwrap()
        .catalog_entries()
        .await
        .unwrap();

    assert_eq!(catalog.entries.len(), 16);
    let times: Vec<Instant> = postman.requests().iter().map(|r| r.received_at).collect();
    assert_eq!(times.len(), 9, "one list and eight collections");
    // One request every 100 ms: the ninth at least 800 ms after the first (less one interval for
    // a first request delayed in transit), and never more than 5 within 450 ms.
    let span = times[8] - times[0];
    assert!(span >= Duration::from_millis(700), "9 requests in {span:?}");
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .take_while(|t| **t - *start < Duration::from_millis(450))
            .count();
        assert!(in_window <= 5, "{in_window} requests within 450 ms");
    }
}

#[tokio::test]
async fn a_collection_that_keeps_failing_fails_the_whole_catalog() {
    let postman = demo_postman().await;
    let uid = uid_of("Catalog GraphQL");
    postman.fail_next_matching(&uid, 10, Failure::Status(500));

    let error = client(&postman).catalog_entries().await.unwrap_err();

    assert!(
        matches!(&error, PostmanError::Upstream(UpstreamError::Status { status: 500, body }) if body.contains("serverError")),
        "{error:?}"
    );
    assert_eq!(postman.calls_to("GET", &format!("/collections/{uid}")), 4);
}

#[tokio::test]
async fn a_5xx_on_a_later_page_of_collections_fails_the_list() {
    let postman = demo_postman().await;
    for collection in extra_collections(3) {
        postman.put_collection(collection);
    }
    postman.set_max_page_size(Some(2));
    postman.fail_next_matching("offset=2", 10, Failure::Status(502));

    let error = client(&postman).list_collections().await.unwrap_err();

    assert!(
        matches!(
            error,
            PostmanError::Upstream(UpstreamError::Status { status: 502, .. })
        ),
        "{error:?}"
    );
    assert_eq!(
        postman.calls_to("GET", "/collections?limit=100&offset=4"),
        0
    );
}

#[tokio::test]
async fn a_transient_5xx_is_retried_and_the_catalog_completes() {
    let postman = demo_postman().await;
    postman.fail_next_matching(&uid_of("Shop API"), 2, Failure::Status(503));

    let catalog = client(&postman).catalog_entries().await.unwrap();

    assert_eq!(catalog.entries.len(), 10);
    assert_eq!(postman.pending_failures(), 0);
}

#[tokio::test]
async fn malformed_json_is_an_error_naming_the_call() {
    let postman = demo_postman().await;
    let uid = uid_of("Shop API");
    postman.fail_next_matching(&uid, 1, Failure::Malformed);

    let error = client(&postman).catalog_entries().await.unwrap_err();

    assert!(
        matches!(&error, PostmanError::Malformed(m) if m.contains(&format!("GET /collections/{uid}"))),
        "{error:?}"
    );
    assert_eq!(postman.calls_to("GET", &format!("/collections/{uid}")), 1);
}

#[tokio::test]
async fn a_wrong_api_key_is_an_auth_error_sent_once() {
    let postman = demo_postman().await;
    let mut config = config(&postman);
    config.api_key = "PMAK-not-the-right-key".into();

    let error = PostmanClient::new(config)
        .unwrap()
        .catalog_entries()
        .await
        .unwrap_err();

    assert_eq!(
        error,
        PostmanError::Unauthorized {
            status: 401,
            message:
                "AuthenticationError: Invalid API Key. Every request requires a valid API Key to be sent."
                    .into()
        }
    );
    assert_eq!(postman.requests().len(), 1);
}

#[tokio::test]
async fn an_unknown_collection_is_not_found_and_one_gone_since_the_list_is_left_out() {
    let postman = demo_postman().await;
    let client = client(&postman);

    let error = client.collection("12345678-unknown").await.unwrap_err();
    assert_eq!(
        error,
        PostmanError::NotFound {
            message: "instanceNotFoundError: We could not find the collection you are looking for"
                .into()
        }
    );

    postman.fail_next_matching(&uid_of("Catalog GraphQL"), 1, Failure::Status(404));
    let catalog = client.catalog_entries().await.unwrap();
    assert_eq!(catalog.entries.len(), 8);
}

#[test]
fn the_config_debug_output_hides_the_api_key() {
    let config = PostmanConfig::new("PMAK-secret-value");
    let shown = format!("{config:?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("api.getpostman.com"));
}

#[test]
fn a_base_url_that_is_not_http_is_refused() {
    for base in ["not a url", "mailto:api@example.test", "ftp://example.test"] {
        let mut config = PostmanConfig::new("k");
        config.base_url = base.into();
        assert!(
            matches!(PostmanClient::new(config), Err(PostmanError::Config(_))),
            "{base}"
        );
    }
}
