//! Jira Cloud webhook deliveries: the JSON body for an issue event and its `X-Hub-Signature`.

use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::issue::{account_id_for, user_json, FakeIssue, DEFAULT_SITE};

/// The display name of the user the fake's webhooks say made the change.
pub const WEBHOOK_USER: &str = "Jira Automation";

/// A Jira Cloud webhook body for this issue.
///
/// `event` is `jira:issue_created`, `jira:issue_updated` or `jira:issue_deleted`; the body is
/// `{"timestamp", "webhookEvent", "issue_event_type_name", "user", "issue"}` with `issue` as
/// [`FakeIssue::to_json`] renders it.
pub fn webhook_body(event: &str, issue: &FakeIssue) -> Vec<u8> {
    let type_name = match event {
        "jira:issue_created" => "issue_created",
        "jira:issue_deleted" => "issue_deleted",
        _ => "issue_generic",
    };
    let body = json!({
        "timestamp": Utc::now().timestamp_millis(),
        "webhookEvent": event,
        "issue_event_type_name": type_name,
        "user": user_json(DEFAULT_SITE, &account_id_for(WEBHOOK_USER), WEBHOOK_USER),
        "issue": issue.to_json(),
    });
    body.to_string().into_bytes()
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`: the `X-Hub-Signature` header Jira sends with a secret.
pub fn webhook_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_hmac_vector() {
        // RFC 4231 test case 2.
        let signature = webhook_signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            signature,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn body_carries_the_event_and_the_issue() {
        let issue = FakeIssue::new("PROJ-7", "Login fails", "QA");
        let body: serde_json::Value =
            serde_json::from_slice(&webhook_body("jira:issue_created", &issue))
                .expect("webhook body is JSON");
        assert_eq!(body["webhookEvent"], "jira:issue_created");
        assert_eq!(body["issue_event_type_name"], "issue_created");
        assert_eq!(body["issue"]["key"], "PROJ-7");
        assert!(body["timestamp"].is_i64());
    }
}
