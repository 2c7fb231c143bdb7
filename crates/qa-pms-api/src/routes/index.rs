//! `GET /`: what this service is and where to go next; `GET /openapi.json`: its OpenAPI 3.1
//! document (see `openapi.rs`).

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use crate::openapi;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/openapi.json", get(openapi_json))
}

/// The service's name and version, and links to its other top-level resources.
#[derive(Debug, Serialize, ToSchema)]
pub struct Index {
    #[schema(example = "qa-pms")]
    name: &'static str,
    /// The version of the running binary.
    #[schema(example = "0.1.0")]
    version: &'static str,
    links: Links,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Links {
    /// Liveness and database reachability (`GET /health`).
    #[schema(example = "/health")]
    health: &'static str,
    /// Prometheus metrics (`GET /metrics`).
    #[schema(example = "/metrics")]
    metrics: &'static str,
    /// This API's OpenAPI document (`GET /openapi.json`).
    #[schema(example = "/openapi.json")]
    openapi: &'static str,
}

/// The service's index
///
/// Name, version and links to `/health`, `/metrics` and `/openapi.json`.
#[utoipa::path(
    get,
    path = "/",
    tag = "service",
    operation_id = "index",
    responses((status = 200, description = "The index", body = Index)),
)]
pub async fn index() -> Json<Index> {
    Json(Index {
        name: "qa-pms",
        version: env!("CARGO_PKG_VERSION"),
        links: Links {
            health: "/health",
            metrics: "/metrics",
            openapi: "/openapi.json",
        },
    })
}

/// This OpenAPI document
///
/// Generated from the code at build time: every route, parameter, body, header and status.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        openapi::json().clone(),
    )
}
