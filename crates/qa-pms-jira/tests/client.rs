//! The Jira client against a fake Jira (wiremock over real HTTP): reads, search, edits,
//! transitions and how Jira's errors come back.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{TimeZone, Utc};
use qa_pms_core::JiraTicket;
use qa_pms_jira::{JiraClient, JiraConfig, JiraError};
use qa_pms_upstream::UpstreamError;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BASIC_AUTH: &str = "Basic cWFAYWNtZS50ZXN0OnNlY3JldC10b2tlbg==";

fn client(server: &MockServer) -> JiraClient {
    let mut config = JiraConfig::new(format!("{}/", server.uri()), "qa@acme.test", "secret-token");
    config.timeout = Duration::from_secs(5);
    JiraClient::new(config).unwrap()
}

fn issue_json(key: &str, summary: &str) -> Value {
    json!({
        "expand": "renderedFields,names,schema",
        "id": "10001",
        "self": "https://acme.atlassian.net/rest/api/3/issue/10001",
        "key": key,
        "fields": {
            "summary": summary,
            "status": {
                "self": "https://acme.atlassian.net/rest/api/3/status/3",
                "name": "In Progress",
                "id": "3",
                "statusCategory": {"id": 4, "key": "indeterminate", "name": "In Progress"}
            },
            "description": {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "paragraph", "content": [
                        {"type": "text", "text": "Open the cart"},
                        {"type": "hardBreak"},
                        {"type": "text", "text": "then pay", "marks": [{"type": "em"}]}
                    ]},
                    {"type": "paragraph", "content": [
                        {"type": "text", "text": "Ask "},
                        {"type": "mention", "attrs": {"id": "5b10ac8d82e05b22cc7d4ef5", "text": "@Jane Doe", "accessLevel": ""}},
                        {"type": "text", "text": " for access."}
                    ]}
                ]
            },
            "assignee": null,
            "priority": null,
            "updated": "2024-03-05T14:07:12.345+0000"
        }
    })
}

async fn mount(server: &MockServer, mock: Mock) {
    mock.mount(server).await;
}

#[tokio::test]
async fn an_issue_maps_exactly_to_a_ticket_and_is_fetched_with_basic_auth() {
    let server = MockServer::start().await;
    mount(
        &server,
        Mock::given(method("GET"))
            .and(path("/rest/api/3/issue/PROJ-1"))
            .and(query_param(
                "fields",
                "summary,status,description,assignee,priority,updated",
            ))
            .and(header("authorization", BASIC_AUTH))
            .and(header("accept", "application/json"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(issue_json("PROJ-1", "Checkout fails")),
            )
            .expect(1),
    )
    .await;

    let ticket = client(&server).issue("PROJ-1").await.unwrap();

    let updated_at =
        Utc.with_ymd_and_hms(2024, 3, 5, 14, 7, 12).unwrap() + chrono::Duration::milliseconds(345);
    assert_eq!(
        ticket,
        JiraTicket {
            key: "PROJ-1".into(),
            summary: "Checkout fails".into(),
            status: "In Progress".into(),
            description: Some("Open the cart\nthen pay\nAsk @Jane Doe for access.".into()),
            assignee: None,
            priority: None,
            updated_at,
        }
    );
}

#[tokio::test]
async fn a_missing_issue_is_not_found_with_jiras_message() {
    let server = MockServer::start().await;
    let body = json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}});
    mount(
        &server,
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(404).set_body_json(body)),
    )
    .await;

    let error = client(&server).issue("PROJ-404").await.unwrap_err();

    assert_eq!(
        error,
        JiraError::NotFound {
            message: "Issue does not exist or you do not have permission to see it.".into()
        }
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_an_issue_is_malformed() {
    let server = MockServer::start().await;
    mount(
        &server,
        Mock::given(path("/rest/api/3/issue/PROJ-1"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{\"key\": ")),
    )
    .await;
    let no_summary = json!({"key": "PROJ-2", "fields": {"status": {"name": "Done"}, "updated": "2024-03-05T14:07:12.345+0000"}});
    mount(
        &server,
        Mock::given(path("/rest/api/3/issue/PROJ-2"))
            .respond_with(ResponseTemplate::new(200).set_body_json(no_summary)),
    )
    .await;
    let client = client(&server);

    assert!(matches!(
        client.issue("PROJ-1").await,
        Err(JiraError::Malformed(_))
    ));
    let error = client.issue("PROJ-2").await.unwrap_err();
    assert!(
        matches!(&error, JiraError::Malformed(m) if m.contains("summary")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_persistent_5xx_is_an_upstream_error() {
    let server = MockServer::start().await;
    mount(
        &server,
        Mock::given(method("GET")).respond_with(ResponseTemplate::new(503).set_body_string("down")),
    )
    .await;

    let error = client(&server).issue("PROJ-1").await.unwrap_err();

    assert_eq!(
        error,
        JiraError::Upstream(UpstreamError::Status {
            status: 503,
            body: "down".into()
        })
    );
}

#[tokio::test]
async fn search_follows_next_page_token_across_three_pages() {
    let server = MockServer::start().await;
    let page = |keys: &[&str], token: Option<&str>| {
        let issues: Vec<Value> = keys.iter().map(|k| issue_json(k, "s")).collect();
        match token {
            Some(token) => json!({"issues": issues, "nextPageToken": token, "isLast": false}),
            None => json!({"issues": issues, "isLast": true}),
        }
    };
    let jql = "project = PROJ ORDER BY updated";
    for (token, body) in [
        ("t2", page(&["PROJ-3"], Some("t3"))),
        ("t3", page(&["PROJ-4", "PROJ-5"], None)),
    ] {
        mount(
            &server,
            Mock::given(method("POST"))
                .and(body_partial_json(json!({"nextPageToken": token})))
                .respond_with(ResponseTemplate::new(200).set_body_json(body))
                .with_priority(1)
                .expect(1),
        )
        .await;
    }
    mount(
        &server,
        Mock::given(method("POST"))
            .and(path("/rest/api/3/search/jql"))
            .and(body_json(json!({
                "jql": jql,
                "fields": ["summary", "status", "description", "assignee", "priority", "updated"],
                "maxResults": 100
            })))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(page(&["PROJ-1", "PROJ-2"], Some("t2"))),
            )
            .expect(1),
    )
    .await;

    let tickets = client(&server).search_all(jql).await.unwrap();

    let keys: Vec<&str> = tickets.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["PROJ-1", "PROJ-2", "PROJ-3", "PROJ-4", "PROJ-5"]);
}

#[tokio::test]
async fn the_last_page_has_no_next_token_even_when_jira_sends_one() {
    let server = MockServer::start().await;
    let body = json!({"issues": [], "nextPageToken": "stale", "isLast": true});
    mount(
        &server,
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_json(body)),
    )
    .await;

    let page = client(&server)
        .search_page("project = PROJ", None)
        .await
        .unwrap();

    assert!(page.tickets.is_empty());
    assert_eq!(page.next_page_token, None);
}

#[tokio::test]
async fn a_config_with_a_base_url_that_is_not_http_is_refused() {
    for base in ["not a url", "mailto:jira@acme.test", "ftp://acme.test"] {
        let config = JiraConfig::new(base, "e", "t");
        assert!(
            matches!(JiraClient::new(config), Err(JiraError::Config(_))),
            "{base}"
        );
    }
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_keeps_it() {
    let server = MockServer::start().await;
    mount(
        &server,
        Mock::given(path("/jira/rest/api/3/issue/PROJ-1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(issue_json("PROJ-1", "s"))),
    )
    .await;
    let config = JiraConfig::new(format!("{}/jira", server.uri()), "e", "t");

    let ticket = JiraClient::new(config)
        .unwrap()
        .issue("PROJ-1")
        .await
        .unwrap();

    assert_eq!(ticket.key, "PROJ-1");
}
