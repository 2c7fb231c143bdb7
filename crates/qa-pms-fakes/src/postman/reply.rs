//! Postman-shaped responses: JSON bodies, the `{"error": {"name", "message"}}` envelope, its 429
//! with `X-RateLimit-RetryAfter` / `RetryAfter` (never `Retry-After`), and injected failures.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::harness::Failure;

const JSON_TYPE: &str = "application/json; charset=utf-8";
/// Postman's per-key limit: 300 requests a minute.
const LIMIT_PER_MINUTE: u32 = 300;

pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
    response
}

/// `{"error": {"name": name, "message": message}}`
pub(crate) fn error(status: StatusCode, name: &str, message: &str) -> Response {
    json(
        status,
        &json!({"error": {"name": name, "message": message}}),
    )
}

pub(crate) fn api_key_missing() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "AuthenticationError",
        "API Key missing. Every request requires an API Key to be sent.",
    )
}

pub(crate) fn api_key_invalid() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "AuthenticationError",
        "Invalid API Key. Every request requires a valid API Key to be sent.",
    )
}

pub(crate) fn collection_not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "instanceNotFoundError",
        "We could not find the collection you are looking for",
    )
}

pub(crate) fn route_not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        "Requested resource not found",
    )
}

pub(crate) fn invalid_param(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalidParamsError", message)
}

/// 429 as Postman sends it: `{"error": "rateLimited", "message": ...}`, the window's
/// `X-RateLimit-*` headers, and the wait in each of `retry_headers` when there is one.
pub(crate) fn too_many_requests(retry_after_secs: Option<u64>, retry_headers: &[&str]) -> Response {
    let mut response = json(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({
            "error": "rateLimited",
            "message": "Rate limit exceeded. Please retry after some time."
        }),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(LIMIT_PER_MINUTE));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
    headers.insert(
        "x-ratelimit-reset",
        HeaderValue::from(now + retry_after_secs.unwrap_or(60)),
    );
    headers.insert("ratelimit-policy", HeaderValue::from_static("300;w=60"));
    if let Some(seconds) = retry_after_secs {
        for name in retry_headers {
            if let Ok(name) = HeaderName::try_from(*name) {
                headers.insert(name, HeaderValue::from(seconds));
            }
        }
    }
    response
}

/// The answer for an injected [`Failure::Status`] or [`Failure::Malformed`].
pub(crate) fn failure(failure: &Failure) -> Response {
    match failure {
        Failure::Status(code) => status_failure(*code),
        Failure::Malformed => {
            let mut response = json(StatusCode::OK, &Value::Null);
            *response.body_mut() =
                r#"{"collection":{"info":{"_postman_id":"12ece9e1-2abf-4edc","name":"Shop AP"#
                    .into();
            response
        }
        Failure::TooManyRequests { retry_after_secs } => {
            too_many_requests(*retry_after_secs, &["x-ratelimit-retryafter", "retryafter"])
        }
        Failure::Hang => status_failure(504),
    }
}

fn status_failure(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    if matches!(code, 502..=504) {
        let page = format!(
            "<html>\r\n<head><title>{code} {reason}</title></head>\r\n\
             <body>\r\n<center><h1>{code} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
        );
        let mut response = (status, page).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return response;
    }
    if code == 500 {
        return error(
            status,
            "serverError",
            "Something went wrong while processing your request. Please try again later.",
        );
    }
    error(status, "error", &format!("{code} {reason}"))
}
