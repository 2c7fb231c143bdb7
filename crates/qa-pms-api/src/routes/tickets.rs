//! `/api/v1/tickets`: read a ticket through the cache (from the database or Jira, see
//! `crate::tickets`); list; PATCH and PUT, which write (to Jira first, when configured) and
//! invalidate it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use qa_pms_core::cache::{CacheMode, Lookup};
use qa_pms_core::{JiraTicket, TicketKey, TicketPatch, TicketUpsert, ValidationError};
use qa_pms_storage::TicketFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::{IfMatch, Json, Path, Query, RequestCache};
use crate::invalidation::Invalidation;
use crate::openapi::{ErrorBody, IfMatchHeader};
use crate::state::AppState;
use crate::tickets::{TicketError, TicketSource};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", get(list))
        .route("/api/v1/tickets/{key}", get(fetch).patch(patch).put(put))
}

/// One ticket
///
/// Through the tickets cache: from the database, or with Jira configured from its mirror or Jira.
#[utoipa::path(
    get,
    path = "/api/v1/tickets/{key}",
    tag = "tickets",
    operation_id = "get_ticket",
    params(("key" = TicketKey, Path, description = "A Jira key like PROJ-123")),
    responses(
        (status = 200, description = "The ticket", body = JiraTicket,
            links(
                ("patch" = (operation_id = "patch_ticket", parameters(("key" = "$response.body#/key"), ("header.If-Match" = "$response.header.ETag")))),
                ("put" = (operation_id = "put_ticket", parameters(("key" = "$response.body#/key"), ("header.If-Match" = "$response.header.ETag")))),
            )),
        (status = 400, description = "The key is not like PROJ-123", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 502, description = "With Jira: Jira answered something unusable or refused \
            the service's credentials", body = ErrorBody),
        (status = 503, description = "The database, or with Jira Jira, is unavailable", body = ErrorBody),
        (status = 504, description = "With Jira: Jira did not answer in time", body = ErrorBody),
    ),
    extensions(("x-cache" = json!("tickets"))),
)]
pub async fn fetch(
    State(state): State<AppState>,
    RequestCache(mode): RequestCache,
    key: Result<Path<TicketKey>, ApiError>,
) -> Cached<JiraTicket> {
    let lookup = async {
        let Path(key) = key?;
        Ok(read(&state, &key, mode).await?)
    };
    Cached(lookup.await)
}

/// One ticket through the tickets cache: what `GET` answers, and how a workflow's ticket is
/// checked (with Jira, that also mirrors it).
pub async fn read(
    state: &AppState,
    key: &TicketKey,
    mode: CacheMode,
) -> Result<Lookup<JiraTicket>, TicketError> {
    let (shared, owned_key) = (state.clone(), key.clone());
    let load = move || {
        let (state, key) = (shared.clone(), owned_key.clone());
        async move { state.tickets.fetch(&state.store, &key, mode).await }
    };
    state.cache.tickets.get_or_fetch_with(key, mode, load).await
}

/// Change some fields of a ticket
///
/// An absent field is left as it is; `null` clears a nullable one. With Jira, the change is made
/// in Jira first (a new `status` through a transition).
#[utoipa::path(
    patch,
    path = "/api/v1/tickets/{key}",
    tag = "tickets",
    operation_id = "patch_ticket",
    params(("key" = TicketKey, Path, description = "A Jira key like PROJ-123"), IfMatchHeader),
    request_body = TicketPatch,
    responses(
        (status = 200, description = "The ticket as changed", body = JiraTicket,
            links(
                ("get" = (operation_id = "get_ticket", parameters(("key" = "$response.body#/key")))),
            )),
        (status = 400, description = "The key is not like PROJ-123, the JSON is malformed, a field \
            is invalid (blank, too long, NUL) or none is set, If-Match is malformed, or Jira \
            rejected the change", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "With Jira: no transition leads to the status", body = ErrorBody),
        (status = 412, description = "If-Match names no current version of the ticket (or it does \
            not exist)", body = ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "The JSON is not of the body's shape (an unknown, missing or \
            mistyped field)", body = ErrorBody),
        (status = 502, description = "With Jira: Jira answered something unusable or refused \
            the service's credentials", body = ErrorBody),
        (status = 503, description = "The database, or with Jira Jira, is unavailable", body = ErrorBody),
        (status = 504, description = "With Jira: Jira did not answer in time", body = ErrorBody),
    ),
)]
pub async fn patch(
    State(state): State<AppState>,
    if_match: IfMatch,
    Path(key): Path<String>,
    Json(patch): Json<TicketPatch>,
) -> Result<Json<JiraTicket>, ApiError> {
    let key = TicketKey::parse(&key)?;
    let patch = patch.validate()?;
    patch_ticket(state, key, patch, if_match).await.map(Json)
}

async fn patch_ticket(
    state: AppState,
    key: TicketKey,
    patch: TicketPatch,
    if_match: IfMatch,
) -> Result<JiraTicket, ApiError> {
    state
        .write(|state| async move {
            let written = match &state.tickets {
                TicketSource::Database => {
                    let expected = if_match.check(state.store.ticket(&key)).await?;
                    state
                        .store
                        .patch_ticket(
                            &key,
                            &patch,
                            write_time(expected.as_ref()),
                            expected.as_ref(),
                        )
                        .await
                        .map_err(TicketError::from)
                }
                TicketSource::Jira(jira) => {
                    // Jira has no conditional update: the check reads Jira's current issue just
                    // before the write, which a change made in Jira meanwhile can still pass.
                    let current = async {
                        jira.client
                            .issue(key.as_str())
                            .await
                            .map_err(TicketError::from)
                    };
                    if_match.check(current).await?;
                    jira.patch(state.store.as_ref(), &key, &patch).await
                }
            };
            // Even a failed write may have committed: drop the entry either way.
            state
                .invalidate_after(&written, Invalidation::Ticket(key))
                .await;
            Ok(written?)
        })
        .await
}

/// When a write happens: now, and after the version a conditional write replaces, so that the
/// version it writes never equals that one (a second writer holding the same ETag then fails).
fn write_time(expected: Option<&JiraTicket>) -> DateTime<Utc> {
    let now = Utc::now();
    match expected {
        Some(t) => now.max(t.updated_at + chrono::Duration::milliseconds(1)),
        None => now,
    }
}

/// Create or replace a ticket
///
/// What `GET` returns may be sent back as it is: `updated_at` is ignored, and a `key` must be the
/// path's. With Jira, Jira owns its tickets: the ticket must exist there, and every field is set.
#[utoipa::path(
    put,
    path = "/api/v1/tickets/{key}",
    tag = "tickets",
    operation_id = "put_ticket",
    params(("key" = TicketKey, Path, description = "A Jira key like PROJ-123"), IfMatchHeader),
    request_body = TicketUpsert,
    responses(
        (status = 200, description = "The ticket, replaced", body = JiraTicket,
            links(
                ("get" = (operation_id = "get_ticket", parameters(("key" = "$response.body#/key")))),
                ("patch" = (operation_id = "patch_ticket", parameters(("key" = "$response.body#/key")))),
            )),
        (status = 201, description = "The ticket, created", body = JiraTicket,
            links(
                ("get" = (operation_id = "get_ticket", parameters(("key" = "$response.body#/key")))),
                ("patch" = (operation_id = "patch_ticket", parameters(("key" = "$response.body#/key")))),
            )),
        (status = 400, description = "The key is not like PROJ-123 or contradicts the body's, the \
            JSON is malformed, a field is invalid (blank, too long, NUL), If-Match is malformed, \
            or Jira rejected the change", body = ErrorBody),
        (status = 404, description = "With Jira: no such ticket in Jira", body = ErrorBody),
        (status = 409, description = "With Jira: no transition leads to the status", body = ErrorBody),
        (status = 412, description = "If-Match names no current version of the ticket (or it does \
            not exist)", body = ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "The JSON is not of the body's shape (an unknown, missing or \
            mistyped field)", body = ErrorBody),
        (status = 502, description = "With Jira: Jira answered something unusable or refused \
            the service's credentials", body = ErrorBody),
        (status = 503, description = "The database, or with Jira Jira, is unavailable", body = ErrorBody),
        (status = 504, description = "With Jira: Jira did not answer in time", body = ErrorBody),
    ),
)]
pub async fn put(
    State(state): State<AppState>,
    if_match: IfMatch,
    Path(key): Path<String>,
    Json(body): Json<TicketUpsert>,
) -> Result<(StatusCode, Json<JiraTicket>), ApiError> {
    let key = TicketKey::parse(&key)?;
    body.check_key(&key)?;
    let body = body.validate()?;
    if let TicketSource::Jira(_) = state.tickets {
        // Jira owns its tickets: a PUT replaces every field of an existing one there.
        return patch_ticket(state, key, body.into_patch(), if_match)
            .await
            .map(|ticket| (StatusCode::OK, Json(ticket)));
    }
    let (ticket, created) = state
        .write(|state| async move {
            let expected = if_match.check(state.store.ticket(&key)).await?;
            let now = write_time(expected.as_ref());
            let written = state
                .store
                .put_ticket(&key, &body, now, expected.as_ref())
                .await;
            state
                .invalidate_after(&written, Invalidation::Ticket(key))
                .await;
            Ok(written?)
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ticket)))
}

const PAGE_DEFAULT: u32 = 50;
const PAGE_MAX: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only tickets in this status (exact match).
    status: Option<String>,
    /// Only tickets assigned to this user (exact match).
    assignee: Option<String>,
    /// Tickets per page: 1 to 500 (50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Tickets to skip (0).
    #[param(maximum = 9223372036854775807i64)]
    offset: Option<u64>,
}

/// A page of tickets, by key.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketList {
    tickets: Vec<JiraTicket>,
    total: u64,
    limit: u32,
    offset: u64,
}

/// List tickets
///
/// A page of the tickets in the database (with Jira: its mirror), filtered by status and assignee.
#[utoipa::path(
    get,
    path = "/api/v1/tickets",
    tag = "tickets",
    operation_id = "list_tickets",
    params(ListParams),
    responses(
        (status = 200, description = "A page of tickets", body = TicketList,
            links(
                ("first" = (operation_id = "get_ticket", parameters(("key" = "$response.body#/tickets/0/key")))),
            )),
        (status = 400, description = "A parameter is unknown or invalid (limit outside 1..=500, \
            offset beyond 2^63 - 1)",
            body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<TicketList>, ApiError> {
    let limit = params.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(
            ValidationError::new("limit", format!("must be between 1 and {PAGE_MAX}")).into(),
        );
    }
    let offset = params.offset.unwrap_or(0);
    // The databases count rows in signed 64 bits: a larger offset is no page of anything.
    if i64::try_from(offset).is_err() {
        return Err(ValidationError::new("offset", format!("must be at most {}", i64::MAX)).into());
    }
    let filter = TicketFilter {
        status: params.status,
        assignee: params.assignee,
        limit,
        offset,
    };
    let page = state.store.list_tickets(&filter).await?;
    Ok(Json(TicketList {
        tickets: page.tickets,
        total: page.total,
        limit,
        offset: filter.offset,
    }))
}
