//! `POST /api/v1/webhooks/jira`: Jira's issue events, the fast path to freshness. A signed event
//! updates the mirror from its issue and invalidates the key here and on every replica. Answers
//! 404 unless Jira and a webhook secret are configured; 401 for a missing or wrong signature.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use qa_pms_core::TicketKey;
use qa_pms_jira::webhook::{self, WebhookKind};
use qa_pms_jira::JiraError;

use crate::error::ApiError;
use crate::invalidation::Invalidation;
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub const SIGNATURE_HEADER: &str = "x-hub-signature";

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/webhooks/jira", post(jira))
}

/// A Jira webhook delivery
///
/// An issue event (`jira:issue_created`, `jira:issue_updated`, `jira:issue_deleted`), signed with
/// the webhook secret: updates the mirror and invalidates the ticket on every replica. Only with
/// Jira and QA_PMS_JIRA_WEBHOOK_SECRET configured (else 404).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/jira",
    tag = "webhooks",
    operation_id = "jira_webhook",
    params(("X-Hub-Signature" = Option<String>, Header,
        description = "`sha256=` and the hex HMAC-SHA256 of the body under the webhook secret")),
    request_body(content = Object, content_type = "application/json",
        description = "Jira's webhook payload: `webhookEvent` and the `issue`"),
    responses(
        (status = 204, description = "Applied"),
        (status = 400, description = "Not an issue event this service handles, or not a Jira \
            payload", body = ErrorBody),
        (status = 401, description = "The signature is missing or wrong", body = ErrorBody),
        (status = 404, description = "Jira or its webhook secret is not configured", body = ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = ErrorBody),
    ),
)]
pub async fn jira(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    // In the error envelope, like every other body: axum's own rejection is plain text.
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest(rejection.body_text()),
    })?;
    let Some(secret) = state.jira_webhook_secret.clone() else {
        return Err(ApiError::NotFound("route /api/v1/webhooks/jira".to_owned()));
    };
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    if !webhook::verify_signature(&secret, &body, signature) {
        return Err(ApiError::Unauthorized(
            "missing or wrong X-Hub-Signature".to_owned(),
        ));
    }
    let event = webhook::parse_event(&body).map_err(|e| match e {
        JiraError::UnsupportedEvent(event) => {
            ApiError::BadRequest(format!("unsupported webhook event `{event}`"))
        }
        other => ApiError::BadRequest(other.to_string()),
    })?;
    let key = TicketKey::parse(&event.key)?;
    state
        .write(|state| async move {
            let now = Utc::now();
            let written = match (event.kind, &event.ticket) {
                (WebhookKind::IssueDeleted, _) => {
                    state.store.mirror_ticket_deleted(&key, now).await
                }
                (_, Some(ticket)) => state.store.mirror_ticket(ticket, now).await.map(drop),
                (_, None) => Ok(()),
            };
            state
                .invalidate_after(&written, Invalidation::Ticket(key))
                .await;
            Ok(written?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
