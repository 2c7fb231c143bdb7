//! The one error type of the HTTP edge and its stable JSON envelope:
//! `{"error": {"code": "...", "message": "..."}}`. A 500 never shows its cause to the client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use qa_pms_core::workflow::TransitionError;
use qa_pms_core::ValidationError;
use qa_pms_storage::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A request that is malformed: 400.
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed JSON that is not a valid value: 422.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the database is unavailable")]
    Unavailable,
    /// An upstream (Jira) answered something unusable or refused our credentials: 502.
    #[error("{0}")]
    BadGateway(String),
    /// An upstream is down, rate-limited beyond our budget, or its circuit is open: 503.
    #[error("{0}")]
    UpstreamUnavailable(String),
    /// An upstream did not answer within its timeout: 504.
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    Unauthorized(String),
    /// `If-Match` names no current version of the resource: 412.
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("the request took too long")]
    Timeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable | ApiError::Timeout | ApiError::UpstreamUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unprocessable(_) => "invalid_body",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Unavailable => "unavailable",
            ApiError::BadGateway(_) => "bad_gateway",
            ApiError::UpstreamUnavailable(_) => "upstream_unavailable",
            ApiError::GatewayTimeout(_) => "upstream_timeout",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::PreconditionFailed(_) => "precondition_failed",
            ApiError::Timeout => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    /// What the client sees: everything but the cause of a 500 or 503.
    fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let body = json!({"error": {"code": self.code(), "message": self.public_message()}});
        (self.status(), Json(body)).into_response()
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::InvalidTransition { .. } => ApiError::Conflict(e.to_string()),
            TransitionError::NoSuchStep { .. } => ApiError::NotFound(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what.to_owned()),
            StoreError::Conflict(message) => ApiError::Conflict(message),
            e @ StoreError::Changed(_) => ApiError::PreconditionFailed(format!(
                "{e}: If-Match names a version that is no longer current"
            )),
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::Unavailable
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let message = rejection.body_text();
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(message),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Unprocessable(message),
            _ => ApiError::BadRequest(message),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: ApiError) -> (StatusCode, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_error_has_the_json_envelope() {
        let (status, body) = body_of(ApiError::NotFound("ticket".into())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["message"], "ticket not found");
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak_their_cause() {
        let (status, body) = body_of(ApiError::Internal("password=hunter2".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["message"], "internal server error");
    }

    #[test]
    fn store_errors_map_to_their_status() {
        let cases = [
            (StoreError::NotFound("ticket"), StatusCode::NOT_FOUND),
            (StoreError::Conflict("x".into()), StatusCode::CONFLICT),
            (
                StoreError::Corrupt("x".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status(), status);
        }
    }

    #[test]
    fn upstream_errors_are_gateway_statuses() {
        let cases = [
            (ApiError::BadGateway("x".into()), StatusCode::BAD_GATEWAY),
            (
                ApiError::UpstreamUnavailable("x".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                ApiError::GatewayTimeout("x".into()),
                StatusCode::GATEWAY_TIMEOUT,
            ),
            (ApiError::Unauthorized("x".into()), StatusCode::UNAUTHORIZED),
        ];
        for (e, status) in cases {
            assert_eq!(e.status(), status);
        }
    }

    #[test]
    fn validation_errors_are_bad_requests_and_bad_transitions_conflicts() {
        let v = ValidationError::new("key", "bad");
        assert_eq!(ApiError::from(v).status(), StatusCode::BAD_REQUEST);
        let t = TransitionError::InvalidTransition {
            action: "pause",
            from: qa_pms_core::WorkflowState::Completed,
        };
        assert_eq!(ApiError::from(t).status(), StatusCode::CONFLICT);
    }
}
