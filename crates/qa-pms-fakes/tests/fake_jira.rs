//! FakeJira over a real socket: payload shapes, auth and 404 envelopes, pagination, edits, transitions.

mod common;

use chrono::DateTime;
use common::{jira_with_issue, json_of, send, ANA};
use qa_pms_fakes::jira::{FakeIssue, FakeJira};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn an_issue_is_served_with_jira_v3_shape() {
    let jira = jira_with_issue().await;

    let response = send(
        &jira,
        Method::GET,
        "/rest/api/3/issue/PROJ-1?fields=summary",
        None,
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    let issue = json_of(response).await;
    let id = issue["id"].as_str().expect("id is a string");
    assert!(id.parse::<u64>().is_ok());
    assert_eq!(issue["key"], "PROJ-1");
    assert_eq!(
        issue["self"],
        format!("{}/rest/api/3/issue/{id}", jira.url())
    );
    let fields = &issue["fields"];
    assert_eq!(fields["summary"], "Login fails on Safari");
    assert_eq!(fields["status"]["name"], "In Progress");
    assert_eq!(fields["status"]["statusCategory"]["key"], "indeterminate");
    assert_eq!(fields["description"]["type"], "doc");
    assert_eq!(
        fields["description"]["content"][1]["content"][0]["text"],
        "open the page"
    );
    assert_eq!(fields["assignee"]["accountId"], ANA);
    assert_eq!(fields["assignee"]["displayName"], "Ana Souza");
    assert_eq!(fields["priority"]["name"], "High");
    let updated = fields["updated"].as_str().expect("updated is a string");
    assert!(DateTime::parse_from_str(updated, "%Y-%m-%dT%H:%M:%S%.3f%z").is_ok());
    assert!(updated.ends_with("+0000"));
}

#[tokio::test]
async fn requests_without_the_right_credentials_get_401_json() {
    let jira = jira_with_issue().await;
    let url = format!("{}/rest/api/3/issue/PROJ-1", jira.url());

    let anonymous = reqwest::get(&url).await.expect("the fake answers");
    let wrong = reqwest::Client::new()
        .get(&url)
        .basic_auth(jira.email(), Some("wrong"))
        .send()
        .await
        .expect("the fake answers");

    for response in [anonymous, wrong] {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body = json_of(response).await;
        assert_eq!(
            body["errorMessages"][0],
            "Client must be authenticated to access this resource."
        );
    }
}

#[tokio::test]
async fn an_unknown_issue_gets_jiras_404_envelope() {
    let jira = jira_with_issue().await;

    let response = send(&jira, Method::GET, "/rest/api/3/issue/PROJ-999", None).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        json_of(response).await,
        json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}})
    );
}

#[tokio::test]
async fn search_pages_cover_every_issue_of_the_project_exactly_once() {
    let jira = FakeJira::start().await;
    for n in (1..=120).rev() {
        jira.put_issue(FakeIssue::new(format!("PROJ-{n}"), "s", "To Do"));
    }
    jira.put_issue(FakeIssue::new("OTHER-1", "s", "To Do"));

    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"jql": "project = PROJ", "fields": ["summary"], "maxResults": 100});
        if let Some(token) = &token {
            body["nextPageToken"] = json!(token);
        }
        let page =
            json_of(send(&jira, Method::POST, "/rest/api/3/search/jql", Some(body)).await).await;
        pages += 1;
        let issues = page["issues"].as_array().expect("issues array");
        assert!(issues.len() <= 50);
        keys.extend(
            issues
                .iter()
                .map(|i| i["key"].as_str().unwrap_or_default().to_owned()),
        );
        if page["isLast"] == json!(true) {
            assert!(page.get("nextPageToken").is_none());
            break;
        }
        token = Some(page["nextPageToken"].as_str().expect("a token").to_owned());
    }

    let expected: Vec<String> = (1..=120).map(|n| format!("PROJ-{n}")).collect();
    assert_eq!(keys, expected);
    assert_eq!(pages, 3);
    let bad = send(
        &jira,
        Method::POST,
        "/rest/api/3/search/jql",
        Some(json!({"jql": "", "nextPageToken": "garbage"})),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(bad).await["errorMessages"][0].is_string());
}

#[tokio::test]
async fn put_edits_fields_and_moves_updated_forward() {
    let jira = jira_with_issue().await;
    let in_the_future = chrono::Utc::now() + chrono::Duration::hours(1);
    let before = jira
        .issue("PROJ-1")
        .expect("seeded")
        .with_updated(in_the_future);
    jira.put_issue(before.clone());

    let body = json!({"fields": {
        "summary": "Login fails on Safari 17",
        "description": {"type": "doc", "version": 1, "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": "new text"}]}]},
        "priority": {"name": "Low"},
        "assignee": {"accountId": "5b10ffff0000111122223333"}
    }});
    let response = send(&jira, Method::PUT, "/rest/api/3/issue/PROJ-1", Some(body)).await;

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let after = jira.issue("PROJ-1").expect("still there");
    assert_eq!(after.summary, "Login fails on Safari 17");
    assert_eq!(after.description.as_deref(), Some("new text"));
    assert_eq!(after.priority.as_deref(), Some("Low"));
    assert_eq!(after.assignee.as_deref(), Some("Bruno Lima"));
    assert!(after.updated > before.updated);
}

#[tokio::test]
async fn invalid_edits_get_field_errors_and_change_nothing() {
    let jira = jira_with_issue().await;
    let before = jira.issue("PROJ-1");
    let path = "/rest/api/3/issue/PROJ-1";

    let empty = send(
        &jira,
        Method::PUT,
        path,
        Some(json!({"fields": {"summary": " "}})),
    )
    .await;
    let stranger = json!({"fields": {"summary": "ok", "assignee": {"accountId": "nobody"}}});
    let stranger = send(&jira, Method::PUT, path, Some(stranger)).await;
    let unknown = send(
        &jira,
        Method::PUT,
        path,
        Some(json!({"fields": {"labelz": []}})),
    )
    .await;

    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_of(empty).await["errors"]["summary"],
        "You must specify a summary of the issue."
    );
    assert_eq!(stranger.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(stranger).await["errors"]["assignee"].is_string());
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(unknown).await["errors"]["labelz"].is_string());
    assert_eq!(jira.issue("PROJ-1"), before);
}

#[tokio::test]
async fn transitions_list_the_other_statuses_and_apply() {
    let jira = jira_with_issue().await;
    let path = "/rest/api/3/issue/PROJ-1/transitions";

    let listed = json_of(send(&jira, Method::GET, path, None).await).await;
    let to_qa = json!({"transition": {"id": "31"}});
    let applied = send(&jira, Method::POST, path, Some(to_qa.clone())).await;
    let again = send(&jira, Method::POST, path, Some(to_qa)).await;

    assert_eq!(listed["expand"], "transitions");
    let names: Vec<&str> = listed["transitions"]
        .as_array()
        .expect("transitions array")
        .iter()
        .map(|t| t["to"]["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, ["To Do", "QA", "Done"]);
    assert_eq!(applied.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        jira.issue("PROJ-1").map(|i| i.status).as_deref(),
        Some("QA")
    );
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(json_of(again).await["errorMessages"][0].is_string());
}

#[tokio::test]
async fn users_are_found_by_part_of_their_display_name() {
    let jira = jira_with_issue().await;

    let users = json_of(
        send(
            &jira,
            Method::GET,
            "/rest/api/3/user/search?query=sou",
            None,
        )
        .await,
    )
    .await;

    assert_eq!(users.as_array().map(Vec::len), Some(1));
    assert_eq!(users[0]["accountId"], ANA);
    assert_eq!(users[0]["accountType"], "atlassian");
}
