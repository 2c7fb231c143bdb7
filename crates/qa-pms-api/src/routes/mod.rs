//! Every endpoint, one module per resource. Each module's `router()` lists its routes; they are
//! merged here.

pub(crate) mod admin;
pub(crate) mod catalog;
pub(crate) mod dashboard;
pub(crate) mod health;
pub(crate) mod index;
pub(crate) mod search;
pub(crate) mod templates;
pub(crate) mod tickets;
pub(crate) mod webhooks;
pub(crate) mod workflows;

use axum::http::Uri;
use axum::Router;

use crate::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(index::router())
        .merge(health::router())
        .merge(tickets::router())
        .merge(search::router())
        .merge(catalog::router())
        .merge(dashboard::router())
        .merge(templates::router())
        .merge(workflows::router())
        .merge(webhooks::router())
        .fallback(|uri: Uri| async move { ApiError::NotFound(format!("route {}", uri.path())) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}
