//! The fake Testmo's route: `GET /api/v1/projects/{id}/cases` with Testmo's pagination
//! (`page`, `per_page` of 15, 25, 50 or 100; `page`, `prev_page`, `next_page`, `last_page`,
//! `per_page`, `total`, `result`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::reply;
use super::state::Shared;
use crate::harness::gate;

const PER_PAGE: [u64; 4] = [15, 25, 50, 100];

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/projects/{project_id}/cases", get(list_cases))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            gate::<Shared>,
        ))
        .with_state(shared)
}

async fn list_cases(
    State(shared): State<Arc<Shared>>,
    Path(project_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let Ok(project_id) = project_id.parse::<u64>() else {
        return reply::not_found();
    };
    let page = match params.get("page").map(|p| p.parse::<u64>()) {
        None => 1,
        Some(Ok(page)) if page >= 1 => page,
        Some(_) => return reply::invalid("page", "The page field must be at least 1."),
    };
    let per_page = match params.get("per_page").map(|p| p.parse::<u64>()) {
        None => 100,
        Some(Ok(n)) if PER_PAGE.contains(&n) => n,
        Some(_) => {
            return reply::invalid(
                "per_page",
                "The selected per page is invalid (supported: 15, 25, 50, 100).",
            )
        }
    };
    let projects = shared.projects();
    let Some(cases) = projects.get(&project_id) else {
        return reply::not_found();
    };
    let total = cases.len() as u64;
    let last_page = total.div_ceil(per_page);
    let skip = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let take = usize::try_from(per_page).unwrap_or(usize::MAX);
    let result: Vec<Value> = cases
        .values()
        .skip(skip)
        .take(take)
        .map(|case| case.to_json(project_id))
        .collect();
    let body = if total == 0 {
        json!({"page": null, "prev_page": null, "next_page": null, "last_page": null,
               "per_page": per_page, "total": 0, "result": []})
    } else {
        json!({
            "page": page,
            "prev_page": (page > 1).then(|| page - 1),
            "next_page": (page < last_page).then(|| page + 1),
            "last_page": last_page,
            "per_page": per_page,
            "total": total,
            "result": result
        })
    };
    reply::json(StatusCode::OK, &body)
}

async fn not_found(uri: Uri) -> Response {
    reply::route_not_found(uri.path())
}
