//! Edits and transitions against a fake Jira (wiremock over real HTTP).
#![allow(clippy::unwrap_used)]

use qa_pms_core::TicketPatch;
use qa_pms_jira::{JiraClient, JiraConfig, JiraError};
use serde_json::{json, Value};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> JiraClient {
    JiraClient::new(JiraConfig::new(
        server.uri(),
        "qa@acme.test",
        "secret-token",
    ))
    .unwrap()
}

fn patch(json: Value) -> TicketPatch {
    serde_json::from_value(json).unwrap()
}

async fn users(server: &MockServer, query: &str, found: Value) {
    Mock::given(method("GET"))
        .and(path("/rest/api/3/user/search"))
        .and(query_param("query", query))
        .respond_with(ResponseTemplate::new(200).set_body_json(found))
        .mount(server)
        .await;
}

#[tokio::test]
async fn edit_sends_an_adf_description_and_the_assignee_resolved_by_display_name() {
    let server = MockServer::start().await;
    let found = json!([
        {"accountId": "a-1", "displayName": "Jane Doe", "active": true},
        {"accountId": "a-2", "displayName": "Jane Doerr", "active": true}
    ]);
    users(&server, "Jane Doe", found).await;
    let expected = json!({"fields": {
        "summary": "New title",
        "description": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "line one"}]},
            {"type": "paragraph", "content": [{"type": "text", "text": "line two"}]}
        ]},
        "priority": null,
        "assignee": {"accountId": "a-1"}
    }});
    Mock::given(method("PUT"))
        .and(path("/rest/api/3/issue/PROJ-1"))
        .and(body_json(expected))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let patch = patch(json!({
        "summary": "New title",
        "description": "line one\nline two",
        "priority": null,
        "assignee": "Jane Doe",
        "status": "Done"
    }));

    client(&server).edit("PROJ-1", &patch).await.unwrap();
}

#[tokio::test]
async fn an_edit_of_the_status_alone_makes_no_call() {
    let server = MockServer::start().await;

    client(&server)
        .edit("PROJ-1", &patch(json!({"status": "Done"})))
        .await
        .unwrap();

    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unknown_or_ambiguous_assignee_is_rejected_without_an_edit() {
    let server = MockServer::start().await;
    users(
        &server,
        "Nobody",
        json!([{"accountId": "a-9", "displayName": "Nobody Else"}]),
    )
    .await;
    let twins = json!([{"accountId": "a-1", "displayName": "Sam"}, {"accountId": "a-2", "displayName": "Sam"}]);
    users(&server, "Sam", twins).await;
    let client = client(&server);

    for name in ["Nobody", "Sam"] {
        let error = client
            .edit("PROJ-1", &patch(json!({"assignee": name})))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, JiraError::Rejected { status: 400, message } if message.contains(name)),
            "{error:?}"
        );
    }
    let requests = server.received_requests().await.unwrap();
    assert!(requests.iter().all(|r| r.method.as_str() == "GET"));
}

#[tokio::test]
async fn a_rejected_edit_carries_jiras_message() {
    let server = MockServer::start().await;
    let body = json!({"errorMessages": [], "errors": {"summary": "Field 'summary' cannot be set. It is not on the appropriate screen, or unknown."}});
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(400).set_body_json(body))
        .mount(&server)
        .await;

    let error = client(&server)
        .edit("PROJ-1", &patch(json!({"summary": "x"})))
        .await
        .unwrap_err();

    assert_eq!(
        error,
        JiraError::Rejected {
            status: 400,
            message: "summary: Field 'summary' cannot be set. It is not on the appropriate screen, or unknown.".into()
        }
    );
}

async fn offer_transitions(server: &MockServer) {
    let offered = json!({"expand": "transitions", "transitions": [
        {"id": "11", "name": "Start work", "to": {"name": "In Progress", "id": "3"}, "hasScreen": false},
        {"id": "31", "name": "Resolve", "to": {"name": "Done", "id": "10001"}, "hasScreen": false}
    ]});
    Mock::given(method("GET"))
        .and(path("/rest/api/3/issue/PROJ-1/transitions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(offered))
        .mount(server)
        .await;
}

#[tokio::test]
async fn transition_picks_the_id_by_target_status_ignoring_case() {
    let server = MockServer::start().await;
    offer_transitions(&server).await;
    Mock::given(method("POST"))
        .and(path("/rest/api/3/issue/PROJ-1/transitions"))
        .and(body_json(json!({"transition": {"id": "31"}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    client(&server).transition("PROJ-1", "done").await.unwrap();
}

#[tokio::test]
async fn an_unknown_status_lists_the_statuses_reachable() {
    let server = MockServer::start().await;
    offer_transitions(&server).await;

    let error = client(&server)
        .transition("PROJ-1", "Shipped")
        .await
        .unwrap_err();

    assert_eq!(
        error,
        JiraError::NoTransition {
            status: "Shipped".into(),
            available: vec!["In Progress".into(), "Done".into()]
        }
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn update_edits_the_fields_then_transitions_the_status() {
    let server = MockServer::start().await;
    offer_transitions(&server).await;
    Mock::given(method("PUT"))
        .and(body_json(json!({"fields": {"summary": "x"}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_json(json!({"transition": {"id": "11"}})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    let patch = patch(json!({"summary": "x", "status": "In Progress"}));
    client(&server).update("PROJ-1", &patch).await.unwrap();
}
