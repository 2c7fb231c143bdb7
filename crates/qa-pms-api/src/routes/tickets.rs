//! `/api/v1/tickets`: read a ticket through the cache; list; PATCH and PUT, which invalidate it.

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
        let store = &state.store;
        let lookup = state.cache.tickets.get_or_load(&key, || store.ticket(&key));
        Ok(lookup.await?)
    };
    Cached(lookup.await)
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
            let written = state.store.patch_ticket(&key, &patch, Utc::now()).await;
            // Even a failed write may have committed: drop the entry either way.
            state.invalidate(Invalidation::Ticket(key)).await;
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
    let body = body.validate()?;
    let (ticket, created) = state
        .write(|state| async move {
            let written = state.store.put_ticket(&key, &body, Utc::now()).await;
            state.invalidate(Invalidation::Ticket(key)).await;
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
