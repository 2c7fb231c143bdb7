//! Testmo-shaped responses (Testmo runs on Laravel): `{"message": ...}` errors, 422 with
//! `errors`, its 429 with `Retry-After`, and injected failures.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::harness::Failure;

const JSON_TYPE: &str = "application/json";

pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
    response
}

/// `{"message": message}`
pub(crate) fn message(status: StatusCode, message: &str) -> Response {
    json(status, &json!({ "message": message }))
}

pub(crate) fn unauthenticated() -> Response {
    message(StatusCode::UNAUTHORIZED, "Unauthenticated.")
}

pub(crate) fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not found.")
}

pub(crate) fn route_not_found(path: &str) -> Response {
    let path = path.trim_start_matches('/');
    message(
        StatusCode::NOT_FOUND,
        &format!("The route {path} could not be found."),
    )
}

/// 422 `{"message": text, "errors": {field: [text]}}`
pub(crate) fn invalid(field: &str, text: &str) -> Response {
    json(
        StatusCode::UNPROCESSABLE_ENTITY,
        &json!({"message": text, "errors": {field: [text]}}),
    )
}

/// 429 with `Retry-After` when `retry_after_secs` is set (without it, Testmo asks for 60 s).
pub(crate) fn too_many_requests(retry_after_secs: Option<u64>) -> Response {
    let mut response = message(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.");
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(60u32));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
    if let Some(seconds) = retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The answer for an injected [`Failure::Status`] or [`Failure::Malformed`].
pub(crate) fn failure(failure: &Failure) -> Response {
    match failure {
        Failure::Status(code) => status_failure(*code),
        Failure::Malformed => {
            let mut response = json(StatusCode::OK, &Value::Null);
            *response.body_mut() = r#"{"page":2,"prev_page":1,"next_page":3,"last_page":3,"per_page":100,"total":230,"result":[{"id":101,"project_id":1,"name":"Lo"#.into();
            response
        }
        Failure::TooManyRequests { retry_after_secs } => too_many_requests(*retry_after_secs),
        Failure::Hang => status_failure(504),
    }
}

fn status_failure(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    if matches!(code, 502..=504) {
        let page = format!(
            "<html>\r\n<head><title>{code} {reason}</title></head>\r\n\
             <body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        );
        let mut response = (status, page).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return response;
    }
    if code == 500 {
        return message(status, "Server Error");
    }
    message(status, reason)
}
