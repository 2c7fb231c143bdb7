//! `GET /health` and `GET /metrics`.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    status: Status,
    /// The version of the running binary.
    version: &'static str,
    /// The database backend: `sqlite` or `postgres`.
    #[schema(value_type = String, pattern = "^(sqlite|postgres)$")]
    backend: &'static str,
    database: Database,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Degraded,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Database {
    Reachable,
    Unreachable,
}

/// A 503 of `/health`: the database does not answer (a health report), or the middleware's own.
#[allow(dead_code, reason = "the document's schema of the 503, never built")]
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum HealthUnavailable {
    Health(Health),
    Error(crate::openapi::ErrorBody),
}

/// Health
///
/// Whether the database answers: 200 `ok`, or 503 `degraded`.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    operation_id = "health",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer (`degraded`), or this replica \
            could not catch up with X-Consistency-Token", body = HealthUnavailable),
    ),
)]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let reachable = state.store.ping().await.is_ok();
    let status = if reachable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if reachable {
            Status::Ok
        } else {
            Status::Degraded
        },
        version: env!("CARGO_PKG_VERSION"),
        backend: state.store.backend().as_str(),
        database: if reachable {
            Database::Reachable
        } else {
            Database::Unreachable
        },
    };
    (status, Json(body))
}

/// Prometheus metrics
///
/// The text exposition format. Cache maintenance runs first, so entry counts are current.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
    ),
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state.cache.run_pending_tasks().await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}
