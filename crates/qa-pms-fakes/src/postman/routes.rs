//! The fake Postman's routes: `GET /collections` (workspace filter, `limit`/`offset` paging with
//! `meta`) and `GET /collections/{uid}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::reply;
use super::state::Shared;
use crate::harness::gate;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/collections", get(list_collections))
        .route("/collections/{uid}", get(get_collection))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            shared.clone(),
            gate::<Shared>,
        ))
        .with_state(shared)
}

/// Every collection (of `workspace` if given: an unknown workspace gives an empty list, as
/// Postman does). With `limit` or `offset`, one page and `meta: {total, offset, limit}`.
async fn list_collections(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let number = |name: &str| -> Result<Option<usize>, String> {
        params
            .get(name)
            .map(|value| {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("The {name} parameter must be a number."))
            })
            .transpose()
    };
    let (limit, offset) = match (number("limit"), number("offset")) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (Err(problem), _) | (_, Err(problem)) => return reply::invalid_param(&problem),
    };
    let data = shared.data();
    let listed: Vec<Value> = data
        .collections
        .iter()
        .filter(|c| params.get("workspace").is_none_or(|w| *w == c.workspace))
        .filter(|c| params.get("name").is_none_or(|n| *n == c.name))
        .map(|c| c.summary_json())
        .collect();
    if limit.is_none() && offset.is_none() {
        return reply::json(StatusCode::OK, &json!({ "collections": listed }));
    }
    let total = listed.len();
    let offset = offset.unwrap_or(0);
    let limit = match (limit, data.max_page_size) {
        (Some(limit), Some(max)) => limit.min(max),
        (Some(limit), None) => limit,
        (None, max) => max.unwrap_or(total),
    };
    let page: Vec<Value> = listed.into_iter().skip(offset).take(limit).collect();
    reply::json(
        StatusCode::OK,
        &json!({
            "collections": page,
            "meta": {"total": total, "offset": offset, "limit": limit}
        }),
    )
}

/// One collection by uid (`{owner}-{id}`) or bare id.
async fn get_collection(State(shared): State<Arc<Shared>>, Path(uid): Path<String>) -> Response {
    let data = shared.data();
    match data
        .collections
        .iter()
        .find(|c| c.uid() == uid || c.id == uid)
    {
        Some(collection) => reply::json(StatusCode::OK, &collection.full_json()),
        None => reply::collection_not_found(),
    }
}

async fn not_found() -> Response {
    reply::route_not_found()
}
