//! Jira webhooks: checking the `X-Hub-Signature` of a delivery and reading the issue event in it.

use hmac::{Hmac, Mac};
use qa_pms_core::JiraTicket;
use serde::Deserialize;
use sha2::Sha256;

use crate::model::Issue;
use crate::JiraError;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "sha256=";

/// The `X-Hub-Signature` value Jira sends for `body`: `sha256=<hex HMAC-SHA256>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("{PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (the `X-Hub-Signature` value) signs the raw `body` with `secret`, compared in
/// constant time. A missing or malformed header, or an empty secret, is never valid.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(digest) = header.and_then(|h| h.trim().strip_prefix(PREFIX)) else {
        return false;
    };
    let Ok(expected) = hex::decode(digest) else {
        return false;
    };
    if secret.is_empty() {
        return false;
    }
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    IssueCreated,
    IssueUpdated,
    IssueDeleted,
}

/// An issue event from a webhook. `ticket` is `None` when the issue was deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub kind: WebhookKind,
    pub key: String,
    pub ticket: Option<JiraTicket>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    webhook_event: String,
    issue: Option<Issue>,
}

/// Reads a delivery such as `{"webhookEvent": "jira:issue_updated", "issue": {...}}`. Events
/// other than an issue being created, updated or deleted give [`JiraError::UnsupportedEvent`];
/// a body that is not such a payload gives [`JiraError::Malformed`].
pub fn parse_event(body: &[u8]) -> Result<WebhookEvent, JiraError> {
    let payload: Payload = serde_json::from_slice(body)
        .map_err(|e| JiraError::Malformed(format!("webhook body: {e}")))?;
    let kind = match payload.webhook_event.as_str() {
        "jira:issue_created" => WebhookKind::IssueCreated,
        "jira:issue_updated" => WebhookKind::IssueUpdated,
        "jira:issue_deleted" => WebhookKind::IssueDeleted,
        _ => return Err(JiraError::UnsupportedEvent(payload.webhook_event)),
    };
    let issue = payload.issue.ok_or_else(|| {
        JiraError::Malformed(format!("{} without an issue", payload.webhook_event))
    })?;
    let key = issue.key.clone();
    let ticket = match kind {
        WebhookKind::IssueDeleted => None,
        WebhookKind::IssueCreated | WebhookKind::IssueUpdated => Some(issue.into_ticket()?),
    };
    Ok(WebhookEvent { kind, key, ticket })
}
