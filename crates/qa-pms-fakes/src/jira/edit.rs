//! The writing routes: `PUT /issue/{key}` (edit fields) and `POST /issue/{key}/transitions`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::adf;
use super::issue::{known_priority, truncate_to_millis, FakeIssue, WORKFLOW};
use super::reply;
use super::state::{Shared, State as FakeState};

/// The changes one edit request asks for, all validated before any is applied.
#[derive(Default)]
struct Changes {
    summary: Option<String>,
    description: Option<Option<String>>,
    priority: Option<Option<String>>,
    assignee: Option<Option<String>>,
}

pub(crate) async fn edit_issue(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return reply::invalid_payload();
    };
    let mut state = shared.lock();
    if !state.issues.contains_key(&key) {
        return reply::issue_not_found();
    }
    let fields = match request.get("fields") {
        Some(Value::Object(fields)) => fields.clone(),
        None => Map::new(),
        Some(_) => return reply::invalid_payload(),
    };
    let changes = match validate(&fields, &state) {
        Ok(changes) => changes,
        Err(errors) => return reply::field_errors(errors),
    };
    let issue = state
        .issues
        .get_mut(&key)
        .expect("presence checked above under the same lock");
    if let Some(summary) = changes.summary {
        issue.summary = summary;
    }
    if let Some(description) = changes.description {
        issue.description = description;
    }
    if let Some(priority) = changes.priority {
        issue.priority = priority;
    }
    if let Some(assignee) = changes.assignee {
        issue.assignee = assignee;
    }
    touch(issue);
    reply::no_content()
}

fn validate(fields: &Map<String, Value>, state: &FakeState) -> Result<Changes, Map<String, Value>> {
    let mut changes = Changes::default();
    let mut errors = Map::new();
    let mut reject = |field: &str, message: &str| {
        errors.insert(field.to_owned(), Value::String(message.to_owned()));
    };
    for (field, value) in fields {
        match field.as_str() {
            "summary" => match value.as_str().map(str::trim) {
                Some("") | None => reject("summary", "You must specify a summary of the issue."),
                Some(summary) => changes.summary = Some(summary.to_owned()),
            },
            "description" if value.is_null() => changes.description = Some(None),
            "description" => match adf::to_text(value) {
                Some(text) => changes.description = Some(Some(text)),
                None => reject(
                    "description",
                    "Operation value must be an Atlassian Document (see the Atlassian Document Format)",
                ),
            },
            "priority" if value.is_null() => changes.priority = Some(None),
            "priority" => {
                let wanted = value
                    .get("name")
                    .or_else(|| value.get("id"))
                    .and_then(Value::as_str);
                match wanted.and_then(known_priority) {
                    Some(name) => changes.priority = Some(Some(name.to_owned())),
                    None => reject("priority", "Specify the Priority (id or name) in the correct format"),
                }
            }
            "assignee" if value.is_null() => changes.assignee = Some(None),
            "assignee" => {
                let wanted = value.get("accountId").and_then(Value::as_str);
                let user = state
                    .users
                    .iter()
                    .find(|(id, _)| Some(id.as_str()) == wanted);
                match user {
                    Some((_, name)) => changes.assignee = Some(Some(name.clone())),
                    None => reject(
                        "assignee",
                        "Specified user does not exist or you do not have required permissions",
                    ),
                }
            }
            other => reject(
                other,
                &format!(
                    "Field '{other}' cannot be set. It is not on the appropriate screen, or unknown."
                ),
            ),
        }
    }
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}

pub(crate) async fn do_transition(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return reply::invalid_payload();
    };
    let mut state = shared.lock();
    let Some(issue) = state.issues.get_mut(&key) else {
        return reply::issue_not_found();
    };
    let Some(id) = request
        .get("transition")
        .and_then(|t| t.get("id"))
        .and_then(|id| {
            id.as_str()
                .map(str::to_owned)
                .or_else(|| id.as_u64().map(|n| n.to_string()))
        })
    else {
        return reply::error(StatusCode::BAD_REQUEST, "Missing 'transition' identifier");
    };
    let target = WORKFLOW
        .iter()
        .find(|s| s.transition_id == id && !s.name.eq_ignore_ascii_case(&issue.status));
    let Some(target) = target else {
        return reply::error(
            StatusCode::BAD_REQUEST,
            &format!("Transition id '{id}' is not valid for this issue."),
        );
    };
    issue.status = target.name.to_owned();
    touch(issue);
    reply::no_content()
}

/// Sets `updated` to now, and always strictly later than before (at Jira's millisecond precision).
fn touch(issue: &mut FakeIssue) {
    issue.updated = next_updated(issue.updated, Utc::now());
}

fn next_updated(previous: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let previous = truncate_to_millis(previous);
    let now = truncate_to_millis(now);
    if now > previous {
        now
    } else {
        previous + chrono::Duration::milliseconds(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updated_moves_forward_even_within_the_same_millisecond() {
        let now = truncate_to_millis(Utc::now());
        assert_eq!(
            next_updated(now, now),
            now + chrono::Duration::milliseconds(1)
        );
        let future = now + chrono::Duration::seconds(5);
        assert!(next_updated(future, now) > future);
        let later = now + chrono::Duration::seconds(1);
        assert_eq!(next_updated(now, later), later);
    }
}
