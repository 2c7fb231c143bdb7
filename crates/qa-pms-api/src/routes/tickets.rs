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

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::{IfMatch, Json, Path, Query, RequestCache};
use crate::invalidation::Invalidation;
use crate::state::AppState;
use crate::tickets::{TicketError, TicketSource};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", get(list))
        .route("/api/v1/tickets/{key}", get(fetch).patch(patch).put(put))
}

async fn fetch(
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
    let (source, store, owned_key) = (state.tickets.clone(), state.store.clone(), key.clone());
    let load = move || {
        let (source, store, key) = (source.clone(), store.clone(), owned_key.clone());
        async move { source.fetch(&store, &key, mode).await }
    };
    state.cache.tickets.get_or_fetch_with(key, mode, load).await
}

async fn patch(
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

async fn put(
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    assignee: Option<String>,
    limit: Option<u32>,
    offset: Option<u64>,
}

#[derive(Debug, Serialize)]
struct TicketList {
    tickets: Vec<JiraTicket>,
    total: u64,
    limit: u32,
    offset: u64,
}

async fn list(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<TicketList>, ApiError> {
    let limit = params.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(
            ValidationError::new("limit", format!("must be between 1 and {PAGE_MAX}")).into(),
        );
    }
    let filter = TicketFilter {
        status: params.status,
        assignee: params.assignee,
        limit,
        offset: params.offset.unwrap_or(0),
    };
    let page = state.store.list_tickets(&filter).await?;
    Ok(Json(TicketList {
        tickets: page.tickets,
        total: page.total,
        limit,
        offset: filter.offset,
    }))
}
