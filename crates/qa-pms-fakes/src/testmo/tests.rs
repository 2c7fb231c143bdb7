//! The fake Testmo on the wire: Bearer auth, the pagination envelope, `per_page` validation and
//! a 429 with or without `Retry-After`.

use serde_json::Value;

use super::*;

async fn get(testmo: &FakeTestmo, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", testmo.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("the fake answers")
}

#[tokio::test]
async fn a_wrong_token_gets_testmos_401() {
    let testmo = FakeTestmo::start().await;

    let response = get(&testmo, "/api/v1/projects/1/cases", "nope").await;

    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "Unauthenticated.");
}

#[tokio::test]
async fn pages_carry_testmos_envelope() {
    let testmo = FakeTestmo::start().await;
    testmo.put_cases(1, (1..=40).map(FakeCase::generated));
    let token = testmo.token().to_owned();

    let body: Value = get(
        &testmo,
        "/api/v1/projects/1/cases?page=2&per_page=15",
        &token,
    )
    .await
    .json()
    .await
    .unwrap();

    assert_eq!(body["page"], 2);
    assert_eq!(body["prev_page"], 1);
    assert_eq!(body["next_page"], 3);
    assert_eq!(body["last_page"], 3);
    assert_eq!(body["total"], 40);
    assert_eq!(body["result"][0]["id"], 16);
    assert_eq!(body["result"][0]["project_id"], 1);

    let last: Value = get(
        &testmo,
        "/api/v1/projects/1/cases?page=3&per_page=15",
        &token,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(last["next_page"], Value::Null);
    assert_eq!(last["result"].as_array().unwrap().len(), 10);

    let invalid = get(&testmo, "/api/v1/projects/1/cases?per_page=10", &token).await;
    assert_eq!(invalid.status(), 422);
    let unknown = get(&testmo, "/api/v1/projects/9/cases", &token).await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_429_has_retry_after_only_when_asked() {
    let testmo = FakeTestmo::start().await;
    testmo.add_project(1);
    testmo.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: Some(3),
        },
    );
    testmo.fail_next(
        1,
        Failure::TooManyRequests {
            retry_after_secs: None,
        },
    );
    let token = testmo.token().to_owned();

    let with = get(&testmo, "/api/v1/projects/1/cases", &token).await;
    assert_eq!(with.status(), 429);
    assert_eq!(with.headers()["retry-after"], "3");
    let without = get(&testmo, "/api/v1/projects/1/cases", &token).await;
    assert_eq!(without.status(), 429);
    assert!(without.headers().get("retry-after").is_none());
    let then = get(&testmo, "/api/v1/projects/1/cases", &token).await;
    assert_eq!(then.status(), 200);
}
