//! The one error the Postman client returns, keeping Postman's status and message.

use qa_pms_upstream::UpstreamError;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostmanError {
    /// 401 or 403: the API key is missing, wrong, or may not see this.
    #[error("Postman refused the API key ({status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// 404: an unknown collection (or one the key may not see).
    #[error("not found in Postman: {message}")]
    NotFound { message: String },
    /// Any other 4xx.
    #[error("Postman rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// A 2xx body that is not JSON or not of the expected shape; says which call.
    #[error("Postman answered something unexpected: {0}")]
    Malformed(String),
    /// 5xx, 429 beyond the deadline, timeout, connection, open circuit.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client's settings are unusable (base URL, API key).
    #[error("invalid Postman configuration: {0}")]
    Config(String),
}

/// The message of a 4xx body: `{"error": {"name", "message"}}` as `name: message`, the 429
/// shape `{"error": "rateLimited", "message"}`, a problem document's `detail` or `title`, else
/// the start of the body, else the status line.
pub(crate) fn error_message(status: reqwest::StatusCode, body: &[u8]) -> String {
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(json) => {
            let error = &json["error"];
            let name = error["name"].as_str().or_else(|| error.as_str());
            let text = [
                &error["message"],
                &json["message"],
                &json["detail"],
                &json["title"],
            ]
            .into_iter()
            .find_map(Value::as_str);
            match (name, text) {
                (Some(name), Some(text)) => format!("{name}: {text}"),
                (Some(one), None) | (None, Some(one)) => one.to_owned(),
                (None, None) => String::new(),
            }
        }
        Err(_) => bound(String::from_utf8_lossy(body).trim(), 200),
    };
    if message.trim().is_empty() {
        status.to_string()
    } else {
        message
    }
}

/// `text` cut to at most `max` characters, on a character boundary.
fn bound(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn postmans_error_shapes_become_one_line() {
        let body = br#"{"error":{"name":"AuthenticationError","message":"Invalid API Key."}}"#;
        assert_eq!(
            error_message(StatusCode::UNAUTHORIZED, body),
            "AuthenticationError: Invalid API Key."
        );
        let body = br#"{"error":"rateLimited","message":"Rate limit exceeded."}"#;
        assert_eq!(
            error_message(StatusCode::TOO_MANY_REQUESTS, body),
            "rateLimited: Rate limit exceeded."
        );
        let body =
            br#"{"type":"about:blank","title":"Forbidden","detail":"No access","status":403}"#;
        assert_eq!(error_message(StatusCode::FORBIDDEN, body), "No access");
        assert_eq!(error_message(StatusCode::BAD_REQUEST, b"nope"), "nope");
        assert_eq!(
            error_message(StatusCode::BAD_REQUEST, b"{}"),
            "400 Bad Request"
        );
    }
}
