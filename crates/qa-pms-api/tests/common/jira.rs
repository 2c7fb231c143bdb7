//! An app whose tickets come from a fake Jira Cloud over loopback HTTP
//! (`qa_pms_fakes::jira::FakeJira`), and helpers to send it signed webhooks.

use std::time::Duration;

use axum::http::Method;
use qa_pms_api::{AppConfig, JiraSettings};
use qa_pms_fakes::jira::{webhook_body, webhook_signature, FakeIssue, FakeJira};
use qa_pms_jira::JiraConfig;

use super::{TestApp, TestResponse};

pub const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";
pub const WEBHOOK_PATH: &str = "/api/v1/webhooks/jira";

/// Settings that point at `jira`, with a short timeout so failures show quickly.
pub fn config(jira: &FakeJira) -> AppConfig {
    let mut client = JiraConfig::new(jira.url(), jira.email(), jira.token());
    client.timeout = Duration::from_millis(1_500);
    client.max_rps = 50;
    AppConfig {
        jira: Some(JiraSettings {
            client,
            webhook_secret: Some(WEBHOOK_SECRET.to_owned()),
        }),
        ..AppConfig::default()
    }
}

/// `config` with `edit` applied.
pub fn config_with(jira: &FakeJira, edit: impl FnOnce(&mut AppConfig)) -> AppConfig {
    let mut config = config(jira);
    edit(&mut config);
    config
}

/// A ticket in the fake Jira.
pub fn issue(key: &str, summary: &str) -> FakeIssue {
    FakeIssue::new(key, summary, "To Do")
}

/// Sends `event` (`jira:issue_updated`, ...) for `issue`, signed with the app's secret.
pub async fn send_webhook(app: &TestApp, event: &str, issue: &FakeIssue) -> TestResponse {
    let body = webhook_body(event, issue);
    let signature = webhook_signature(WEBHOOK_SECRET.as_bytes(), &body);
    app.send_raw(
        Method::POST,
        WEBHOOK_PATH,
        &[
            ("content-type", "application/json"),
            ("x-hub-signature", &signature),
        ],
        body,
    )
    .await
}

/// GETs of one ticket that reached the fake Jira.
pub fn issue_reads(jira: &FakeJira, key: &str) -> usize {
    jira.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with(&format!("/rest/api/3/issue/{key}?")))
        .count()
}
