//! `/api/v1/tickets`: read a ticket through the cache (from the database or Jira, see
//! `crate::tickets`); list; PATCH and PUT, which write (to Jira first, when configured) and
//! invalidate it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use qa_pms_core::{JiraTicket, TicketKey, TicketPatch, TicketUpsert, ValidationError};
use qa_pms_storage::TicketFilter;
use serde::{Deserialize, Serialize};

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
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
    key: Result<Path<TicketKey>, ApiError>,
) -> Cached<JiraTicket> {
    let lookup = async {
        let Path(key) = key?;
        Ok(read(&state, &key).await?)
    };
    Cached(lookup.await)
}

/// One ticket through the tickets cache: what `GET` answers, and how a workflow's ticket is
/// checked (with Jira, that also mirrors it).
pub async fn read(
    state: &AppState,
    key: &TicketKey,
) -> Result<qa_pms_core::cache::Lookup<JiraTicket>, TicketError> {
    let (source, store, owned_key) = (state.tickets.clone(), state.store.clone(), key.clone());
    let load = move || {
        let (source, store, key) = (source.clone(), store.clone(), owned_key.clone());
        async move { source.fetch(&store, &key).await }
    };
    state.cache.tickets.get_or_fetch(key, load).await
}

async fn patch(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Json(patch): Json<TicketPatch>,
) -> Result<Json<JiraTicket>, ApiError> {
    let key = TicketKey::parse(&key)?;
    let patch = patch.validate()?;
    let ticket = state
        .write(|state| async move {
            let written = match &state.tickets {
                TicketSource::Database => state
                    .store
                    .patch_ticket(&key, &patch, Utc::now())
                    .await
                    .map_err(TicketError::from),
                TicketSource::Jira(jira) => jira.patch(state.store.as_ref(), &key, &patch).await,
            };
            // Even a failed write may have committed: drop the entry either way.
            state
                .invalidate_after(&written, Invalidation::Ticket(key))
                .await;
            Ok(written?)
        })
        .await?;
    Ok(Json(ticket))
}

async fn put(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Json(body): Json<TicketUpsert>,
) -> Result<(StatusCode, Json<JiraTicket>), ApiError> {
    let key = TicketKey::parse(&key)?;
    body.check_key(&key)?;
    let body = body.validate()?;
    if let TicketSource::Jira(_) = state.tickets {
        // Jira owns its tickets: a PUT replaces every field of an existing one there.
        return patch(State(state), Path(key.to_string()), Json(body.into_patch()))
            .await
            .map(|ticket| (StatusCode::OK, ticket));
    }
    let (ticket, created) = state
        .write(|state| async move {
            let written = state.store.put_ticket(&key, &body, Utc::now()).await;
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
