//! The fake's router and its read-only routes: get issue, list transitions, search users.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::issue::{issue_json, status_json, user_json, WORKFLOW};
use super::state::Shared;
use super::{edit, gate, reply, search};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/rest/api/3/issue/{key}",
            get(get_issue).put(edit::edit_issue),
        )
        .route(
            "/rest/api/3/issue/{key}/transitions",
            get(list_transitions).post(edit::do_transition),
        )
        .route("/rest/api/3/search/jql", post(search::search))
        .route("/rest/api/3/user/search", get(search_users))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), gate::gate))
        .with_state(shared)
}

/// `fields=` is accepted and ignored: every field the fake knows is always returned.
async fn get_issue(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    let state = shared.lock();
    match state.issues.get(&key) {
        Some(issue) => {
            let body = issue_json(issue, &shared.base_url, &|name| state.account_id(name));
            reply::json(StatusCode::OK, &body)
        }
        None => reply::issue_not_found(),
    }
}

/// Every workflow status except the current one, as Jira's transitions list.
async fn list_transitions(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    let state = shared.lock();
    let Some(issue) = state.issues.get(&key) else {
        return reply::issue_not_found();
    };
    let base = &shared.base_url;
    let transitions: Vec<Value> = WORKFLOW
        .iter()
        .filter(|status| !status.name.eq_ignore_ascii_case(&issue.status))
        .map(|status| {
            json!({
                "id": status.transition_id,
                "name": status.name,
                "to": status_json(base, status.name),
                "hasScreen": false,
                "isGlobal": true,
                "isInitial": false,
                "isAvailable": true,
                "isConditional": false,
                "isLooped": false
            })
        })
        .collect();
    reply::json(
        StatusCode::OK,
        &json!({"expand": "transitions", "transitions": transitions}),
    )
}

/// Users whose display name contains `query`, case-insensitively (all users for an empty query).
async fn search_users(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let query = params
        .get("query")
        .map(|q| q.to_lowercase())
        .unwrap_or_default();
    let state = shared.lock();
    let users: Vec<Value> = state
        .users
        .iter()
        .filter(|(_, name)| name.to_lowercase().contains(&query))
        .map(|(id, name)| user_json(&shared.base_url, id, name))
        .collect();
    reply::json(StatusCode::OK, &Value::Array(users))
}

async fn not_found() -> Response {
    reply::error(
        StatusCode::NOT_FOUND,
        "null for uri: the requested resource does not exist",
    )
}
