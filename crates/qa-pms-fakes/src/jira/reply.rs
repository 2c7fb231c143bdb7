//! Jira-shaped responses: JSON bodies, the `errorMessages`/`errors` envelope, and injected failures.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Map, Value};

use super::state::Failure;

const JSON_TYPE: &str = "application/json;charset=UTF-8";

pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_TYPE));
    response
}

pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// `{"errorMessages":[message],"errors":{}}`
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    json(status, &json!({"errorMessages": [message], "errors": {}}))
}

/// 400 `{"errorMessages":[],"errors":{field: message, ..}}`
pub(crate) fn field_errors(errors: Map<String, Value>) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &json!({"errorMessages": [], "errors": errors}),
    )
}

pub(crate) fn invalid_payload() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "Invalid request payload. Refer to the REST API documentation and try again.",
    )
}

pub(crate) fn issue_not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Issue does not exist or you do not have permission to see it.",
    )
}

pub(crate) fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "Client must be authenticated to access this resource.",
    )
}

/// 429 with the headers Jira Cloud sends alongside `Retry-After` (seconds).
pub(crate) fn too_many_requests(retry_after_secs: u64, limit: Option<u32>) -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded.");
    let reset =
        Utc::now() + chrono::Duration::seconds(i64::try_from(retry_after_secs).unwrap_or(0));
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(0u32));
    headers.insert(
        "ratelimit-reason",
        HeaderValue::from_static("jira-burst-based"),
    );
    if let Ok(value) = HeaderValue::from_str(&reset.format("%Y-%m-%dT%H:%MZ").to_string()) {
        headers.insert("x-ratelimit-reset", value);
    }
    if let Some(limit) = limit {
        headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    }
    response
}

/// The answer for an injected failure other than [`Failure::Hang`].
pub(crate) fn failure(failure: &Failure) -> Response {
    match failure {
        Failure::Status(code) => status_failure(*code),
        Failure::TooManyRequests { retry_after_secs } => too_many_requests(*retry_after_secs, None),
        Failure::Hang => error(StatusCode::GATEWAY_TIMEOUT, "The request timed out."),
        Failure::Malformed => {
            let mut response = json(StatusCode::OK, &Value::Null);
            *response.body_mut() =
                r#"{"expand":"renderedFields,names,schema","id":"10042","key":"PR"#.into();
            response
        }
    }
}

fn status_failure(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    if matches!(code, 502..=504) {
        let page = format!(
            "<html><head><title>{code} {reason}</title></head>\
             <body><center><h1>{code} {reason}</h1></center><hr><center>AtlassianEdge</center></body></html>"
        );
        let mut response = (status, page).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return response;
    }
    let message = if code == 500 {
        "Internal server error".to_owned()
    } else {
        format!("{code} {reason}")
    };
    error(status, &message)
}
