//! The fake Postman on the wire: auth bodies, paging with `meta`, and a 429 whose wait is in
//! Postman's own headers only.

use serde_json::Value;

use super::*;

async fn get(postman: &FakePostman, path: &str, key: Option<&str>) -> reqwest::Response {
    let request = reqwest::Client::new().get(format!("{}{path}", postman.url()));
    let request = match key {
        Some(key) => request.header("x-api-key", key),
        None => request,
    };
    request.send().await.expect("the fake answers")
}

#[tokio::test]
async fn a_missing_or_wrong_key_gets_postmans_401() {
    let postman = FakePostman::start().await;

    let missing = get(&postman, "/collections", None).await;
    assert_eq!(missing.status(), 401);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["name"], "AuthenticationError");

    let wrong = get(&postman, "/collections", Some("PMAK-nope")).await;
    let body: Value = wrong.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Invalid API Key"));
}

#[tokio::test]
async fn collections_page_with_meta_and_unknown_workspaces_are_empty() {
    let postman = FakePostman::start().await;
    for collection in demo_collections() {
        postman.put_collection(collection);
    }
    let key = Some(postman.api_key().to_owned());

    let page: Value = get(&postman, "/collections?limit=1&offset=1", key.as_deref())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["collections"][0]["name"], "Catalog GraphQL");
    assert_eq!(page["meta"]["total"], 2);

    let all: Value = get(&postman, "/collections", key.as_deref())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["collections"].as_array().unwrap().len(), 2);
    assert!(all.get("meta").is_none());

    let none: Value = get(&postman, "/collections?workspace=unknown", key.as_deref())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["collections"], Value::Array(vec![]));
}

#[tokio::test]
async fn a_429_states_its_wait_in_postmans_headers_and_never_in_retry_after() {
    let postman = FakePostman::start().await;
    postman.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: Some(7),
        },
    );

    let response = get(&postman, "/collections", Some(postman.api_key())).await;

    assert_eq!(response.status(), 429);
    let headers = response.headers();
    assert_eq!(headers["x-ratelimit-retryafter"], "7");
    assert_eq!(headers["retryafter"], "7");
    assert!(headers.get("retry-after").is_none());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "rateLimited");
    assert_eq!(postman.requests()[0].status, Some(429));
}

#[tokio::test]
async fn a_collection_holds_its_nested_items_with_ids() {
    let postman = FakePostman::start().await;
    let shop = demo_collections().remove(0);
    let uid = shop.uid();
    postman.put_collection(shop);

    let body: Value = get(
        &postman,
        &format!("/collections/{uid}"),
        Some(postman.api_key()),
    )
    .await
    .json()
    .await
    .unwrap();

    let collection = &body["collection"];
    assert_eq!(collection["info"]["uid"], uid.as_str());
    let deep = &collection["item"][0]["item"][2]["item"][2]["item"][0];
    assert_eq!(deep["name"], "Refund more than paid");
    assert!(deep["id"].is_string());
    let missing = get(&postman, "/collections/1-none", Some(postman.api_key())).await;
    assert_eq!(missing.status(), 404);
}
