//! Webhook signatures and payloads as Jira delivers them.
#![allow(clippy::unwrap_used)]

use qa_pms_jira::webhook::{parse_event, signature, verify_signature, WebhookKind};
use qa_pms_jira::JiraError;
use serde_json::json;

const SECRET: &[u8] = b"It's a Secret to Everybody";
const BODY: &[u8] = b"Hello, World!";

#[test]
fn a_signature_made_with_the_secret_is_accepted() {
    let header = signature(SECRET, BODY);
    assert!(header.starts_with("sha256="));
    assert!(verify_signature(SECRET, BODY, Some(&header)));
}

#[test]
fn the_signature_matches_a_known_hmac_sha256() {
    // The example from GitHub's webhook documentation, which uses the same scheme.
    assert_eq!(
        signature(SECRET, BODY),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

#[test]
fn wrong_secret_missing_header_bad_hex_and_wrong_prefix_are_rejected() {
    let good = signature(SECRET, BODY);
    let digest = good.trim_start_matches("sha256=");
    assert!(!verify_signature(b"another secret", BODY, Some(&good)));
    assert!(!verify_signature(SECRET, b"Hello, World?", Some(&good)));
    assert!(!verify_signature(SECRET, BODY, None));
    assert!(!verify_signature(SECRET, BODY, Some("sha256=not-hex")));
    assert!(!verify_signature(
        SECRET,
        BODY,
        Some(&format!("sha1={digest}"))
    ));
    assert!(!verify_signature(SECRET, BODY, Some(digest)));
    assert!(!verify_signature(SECRET, BODY, Some("sha256=")));
    assert!(!verify_signature(b"", BODY, Some(&signature(b"", BODY))));
}

fn delivery(event: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "timestamp": 1_709_647_632_345_u64,
        "webhookEvent": event,
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Jane Doe"},
        "issue": {
            "id": "10001",
            "self": "https://acme.atlassian.net/rest/api/2/10001",
            "key": "PROJ-1",
            "fields": {
                "summary": "Checkout fails",
                "status": {"name": "In Progress", "id": "3"},
                "description": "Steps to reproduce",
                "assignee": {"displayName": "Jane Doe", "accountId": "5b10a2844c20165700ede21g"},
                "priority": {"name": "High", "id": "2"},
                "updated": "2024-03-05T14:07:12.345+0000"
            }
        },
        "changelog": {"id": "10400", "items": []}
    }))
    .unwrap()
}

#[test]
fn created_and_updated_events_carry_the_ticket() {
    for (event, kind) in [
        ("jira:issue_created", WebhookKind::IssueCreated),
        ("jira:issue_updated", WebhookKind::IssueUpdated),
    ] {
        let parsed = parse_event(&delivery(event)).unwrap();
        assert_eq!(parsed.kind, kind);
        assert_eq!(parsed.key, "PROJ-1");
        let ticket = parsed.ticket.unwrap();
        assert_eq!(ticket.status, "In Progress");
        assert_eq!(ticket.description.as_deref(), Some("Steps to reproduce"));
        assert_eq!(ticket.assignee.as_deref(), Some("Jane Doe"));
    }
}

#[test]
fn a_deleted_event_carries_only_the_key() {
    let parsed = parse_event(&delivery("jira:issue_deleted")).unwrap();
    assert_eq!(parsed.kind, WebhookKind::IssueDeleted);
    assert_eq!(parsed.key, "PROJ-1");
    assert_eq!(parsed.ticket, None);
}

#[test]
fn a_non_issue_event_is_unsupported_and_garbage_is_malformed() {
    let body = br#"{"timestamp":1,"webhookEvent":"comment_created","comment":{"id":"1"}}"#;
    assert_eq!(
        parse_event(body),
        Err(JiraError::UnsupportedEvent("comment_created".into()))
    );
    assert!(matches!(
        parse_event(b"not json"),
        Err(JiraError::Malformed(_))
    ));
    let no_issue = br#"{"webhookEvent":"jira:issue_updated"}"#;
    assert!(matches!(
        parse_event(no_issue),
        Err(JiraError::Malformed(_))
    ));
}
