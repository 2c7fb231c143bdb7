//! Helpers shared by the FakeJira integration tests: a seeded fake and an authenticated client.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use qa_pms_fakes::jira::{FakeIssue, FakeJira};
use reqwest::{Method, Response};
use serde_json::Value;

pub const ANA: &str = "5b10ac8d82e05b22cc7d4ef5";

pub async fn jira_with_issue() -> FakeJira {
    let jira = FakeJira::start().await;
    jira.set_users(vec![
        (ANA.to_owned(), "Ana Souza".to_owned()),
        (
            "5b10ffff0000111122223333".to_owned(),
            "Bruno Lima".to_owned(),
        ),
    ]);
    jira.put_issue(
        FakeIssue::new("PROJ-1", "Login fails on Safari", "In Progress")
            .with_description("Steps:\nopen the page")
            .with_assignee("Ana Souza")
            .with_priority("High"),
    );
    jira
}

pub async fn send(jira: &FakeJira, method: Method, path: &str, body: Option<Value>) -> Response {
    let request = reqwest::Client::new()
        .request(method, format!("{}{path}", jira.url()))
        .basic_auth(jira.email(), Some(jira.token()));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("the fake answers")
}

pub async fn json_of(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}
