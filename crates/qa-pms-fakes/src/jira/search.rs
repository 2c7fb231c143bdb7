//! `POST /rest/api/3/search/jql`: a trivial JQL filter and token-based pagination.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::issue::{issue_json, split_key, FakeIssue};
use super::reply;
use super::state::Shared;

const PAGE_MAX: usize = 50;
const TOKEN_PREFIX: &str = "fake-jira-page:";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    #[serde(default)]
    jql: String,
    max_results: Option<i64>,
    next_page_token: Option<String>,
}

pub(crate) async fn search(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<SearchRequest>(&body) else {
        return reply::invalid_payload();
    };
    let page_size = request
        .max_results
        .map_or(PAGE_MAX, |n| usize::try_from(n).unwrap_or(1))
        .clamp(1, PAGE_MAX);
    let project = project_filter(&request.jql);

    let state = shared.lock();
    let mut matching: Vec<&FakeIssue> = state
        .issues
        .values()
        .filter(|issue| {
            project.as_deref().is_none_or(|p| {
                issue
                    .key
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('-'))
            })
        })
        .collect();
    matching.sort_by(|a, b| split_key(&a.key).cmp(&split_key(&b.key)));

    let offset = match request.next_page_token.as_deref() {
        None => 0,
        Some(token) => match decode_token(token).filter(|&offset| offset <= matching.len()) {
            Some(offset) => offset,
            None => {
                return reply::error(
                    StatusCode::BAD_REQUEST,
                    "The provided next page token is invalid or expired.",
                )
            }
        },
    };
    let end = (offset + page_size).min(matching.len());
    let issues: Vec<Value> = matching[offset..end]
        .iter()
        .map(|issue| issue_json(issue, &shared.base_url, &|name| state.account_id(name)))
        .collect();
    let body = if end < matching.len() {
        json!({"issues": issues, "nextPageToken": encode_token(end), "isLast": false})
    } else {
        json!({"issues": issues, "isLast": true})
    };
    reply::json(StatusCode::OK, &body)
}

/// `project = X` (optionally quoted, any case) -> Some("X"); anything else -> None (all issues).
fn project_filter(jql: &str) -> Option<String> {
    let rest = jql.trim();
    let keyword = rest.get(..7)?;
    if !keyword.eq_ignore_ascii_case("project") {
        return None;
    }
    let rest = rest[7..].trim_start().strip_prefix('=')?.trim_start();
    let value = rest.split_whitespace().next()?;
    let value = value.trim_matches(|c| c == '"' || c == '\'');
    (!value.is_empty()).then(|| value.to_owned())
}

fn encode_token(offset: usize) -> String {
    hex::encode(format!("{TOKEN_PREFIX}{offset}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let bytes = hex::decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(TOKEN_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_clause_is_recognised_loosely() {
        assert_eq!(project_filter("project = PROJ").as_deref(), Some("PROJ"));
        assert_eq!(
            project_filter("Project=\"QA\" ORDER BY key").as_deref(),
            Some("QA")
        );
        assert_eq!(project_filter("assignee = currentUser()"), None);
        assert_eq!(project_filter(""), None);
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        assert_eq!(decode_token(&encode_token(150)), Some(150));
        assert_eq!(decode_token("not-a-token"), None);
    }
}
