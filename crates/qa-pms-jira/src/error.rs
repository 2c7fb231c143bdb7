//! The one error the Jira client returns, keeping Jira's status and message.

use std::collections::BTreeMap;

use qa_pms_upstream::UpstreamError;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JiraError {
    /// 404: Jira answers it for issues that do not exist and for those we may not see.
    #[error("not found in Jira: {message}")]
    NotFound { message: String },
    /// Any other 4xx, with Jira's `errorMessages` and `errors` joined into one message.
    #[error("Jira rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// No transition of the issue leads to `status`; `available` lists where they do lead.
    #[error("no transition leads to `{status}`; available: {}", available.join(", "))]
    NoTransition {
        status: String,
        available: Vec<String>,
    },
    /// A 2xx body that does not parse or lacks a required field.
    #[error("Jira answered something unexpected: {0}")]
    Malformed(String),
    /// A webhook event other than an issue being created, updated or deleted.
    #[error("unsupported Jira webhook event `{0}`")]
    UnsupportedEvent(String),
    /// 5xx, 429 beyond the budget, timeout, connection, open circuit.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client's settings are unusable (for example the base URL).
    #[error("invalid Jira configuration: {0}")]
    Config(String),
}

/// Jira's error body: `{"errorMessages": [...], "errors": {"field": "message"}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCollection {
    #[serde(default)]
    pub error_messages: Vec<String>,
    #[serde(default)]
    pub errors: BTreeMap<String, String>,
}

impl ErrorCollection {
    /// All messages in one line: the general ones, then `field: message` in field order.
    pub fn message(&self) -> String {
        let fields = self.errors.iter().map(|(f, m)| format!("{f}: {m}"));
        self.error_messages
            .iter()
            .cloned()
            .chain(fields)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The message of a 4xx body: Jira's error collection if it is one, else the start of the body,
/// else the status line.
pub(crate) fn error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let message = match serde_json::from_slice::<ErrorCollection>(body) {
        Ok(errors) => errors.message(),
        Err(_) => crate::bound(String::from_utf8_lossy(body).trim(), 200),
    };
    if message.is_empty() {
        status.to_string()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_messages_and_field_errors_are_joined() {
        let body =
            br#"{"errorMessages":["Nope."],"errors":{"summary":"too long","assignee":"unknown"}}"#;
        let message = error_message(reqwest::StatusCode::BAD_REQUEST, body);
        assert_eq!(message, "Nope.; assignee: unknown; summary: too long");
    }

    #[test]
    fn a_body_that_is_not_an_error_collection_is_quoted_or_replaced_by_the_status() {
        let status = reqwest::StatusCode::FORBIDDEN;
        assert_eq!(error_message(status, b"go away"), "go away");
        assert_eq!(error_message(status, b""), "403 Forbidden");
        assert_eq!(error_message(status, b"{}"), "403 Forbidden");
    }
}
