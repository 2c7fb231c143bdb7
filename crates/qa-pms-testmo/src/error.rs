//! The one error the Testmo client returns, keeping Testmo's status and message.

use qa_pms_upstream::UpstreamError;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestmoError {
    /// 401 or 403: the API token is missing, wrong, or lacks the permission.
    #[error("Testmo refused the API token ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// 404: an unknown or deleted project.
    #[error("not found in Testmo: {message}")]
    NotFound { message: String },
    /// Any other 4xx (422 for invalid parameters).
    #[error("Testmo rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// A 2xx body that is not JSON or not of the expected shape (or pages that do not advance);
    /// says which call.
    #[error("Testmo answered something unexpected: {0}")]
    Malformed(String),
    /// 5xx, 429 beyond the deadline, timeout, connection, open circuit.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client's settings are unusable (base URL, token).
    #[error("invalid Testmo configuration: {0}")]
    Config(String),
}

/// The message of a 4xx body: Testmo's `{"message", "errors": {field: [...]}}` as
/// `message (field: a; b)`, else the start of the body, else the status line.
pub(crate) fn error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(json) => {
            let message = json["message"].as_str().unwrap_or("").trim().to_owned();
            let fields: Vec<String> = json["errors"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(field, problems)| {
                    let problems: Vec<&str> = match problems {
                        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
                        other => other.as_str().into_iter().collect(),
                    };
                    format!("{field}: {}", problems.join("; "))
                })
                .collect();
            match (message.is_empty(), fields.is_empty()) {
                (_, true) => message,
                (true, false) => fields.join(", "),
                (false, false) => format!("{message} ({})", fields.join(", ")),
            }
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            text.trim().chars().take(200).collect()
        }
    };
    if message.is_empty() {
        status.to_string()
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn testmos_messages_and_field_errors_are_joined() {
        assert_eq!(
            error_message(
                StatusCode::UNAUTHORIZED,
                br#"{"message":"Unauthenticated."}"#
            ),
            "Unauthenticated."
        );
        let body = br#"{"message":"The given data was invalid.","errors":{"per_page":["Must be 15, 25, 50 or 100."]}}"#;
        assert_eq!(
            error_message(StatusCode::UNPROCESSABLE_ENTITY, body),
            "The given data was invalid. (per_page: Must be 15, 25, 50 or 100.)"
        );
        assert_eq!(error_message(StatusCode::FORBIDDEN, b""), "403 Forbidden");
        assert_eq!(
            error_message(StatusCode::FORBIDDEN, b"<html>no</html>"),
            "<html>no</html>"
        );
    }
}
