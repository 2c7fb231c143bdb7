//! `POST /api/v1/webhooks/jira`: Jira's issue events, the fast path to freshness. A signed event
//! updates the mirror from its issue and invalidates the key here and on every replica. Answers
//! 404 unless Jira and a webhook secret are configured; 401 for a missing or wrong signature.

use axum::body::Bytes;
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
use crate::state::AppState;

pub const SIGNATURE_HEADER: &str = "x-hub-signature";

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/webhooks/jira", post(jira))
}

async fn jira(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
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
