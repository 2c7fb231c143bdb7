//! What fills the catalog that search searches: `POST /api/v1/catalog/import` (entries sent by a
//! client) and `POST`/`GET /api/v1/catalog/sync` (Postman and Testmo, see `catalog.rs`). Cached
//! searches are dropped only when entries were added, changed or removed.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use qa_pms_core::{CatalogEntry, Source, ValidationError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog;
use crate::error::ApiError;
use crate::extract::Json;
use crate::invalidation::Invalidation;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// Catalog imports come in bulk: a larger body limit than the rest of the API.
pub const IMPORT_BODY_LIMIT: usize = 16 * 1024 * 1024;
pub const IMPORT_MAX_ENTRIES: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/catalog/import",
            post(import).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
        )
        .route("/api/v1/catalog/sync", post(start_sync).get(sync_status))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// 1 to 10,000 entries; one with the source and url of an entry already in the catalog
    /// replaces it.
    #[schema(min_items = 1, max_items = 10000)]
    entries: Vec<CatalogEntry>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResponse {
    /// Entries new to the catalog.
    inserted: u64,
    /// Entries whose name or text changed.
    updated: u64,
    /// Entries sent as the catalog already held them.
    unchanged: u64,
}

/// Import catalog entries
///
/// Adds entries sent by a client, replacing those with the same source and url. The body limit is
/// 16 MiB here.
#[utoipa::path(
    post,
    path = "/api/v1/catalog/import",
    tag = "catalog",
    operation_id = "import_catalog",
    request_body = ImportRequest,
    responses(
        (status = 200, description = "What the import changed", body = ImportResponse),
        (status = 400, description = "The JSON is malformed, or an entry or the number of entries \
            is invalid", body = ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "The JSON is not of the body's shape (an unknown, missing or \
            mistyped field)", body = ErrorBody),
    ),
)]
pub async fn import(
    State(state): State<AppState>,
    Json(request): Json<ImportRequest>,
) -> Result<Json<ImportResponse>, ApiError> {
    if request.entries.is_empty() || request.entries.len() > IMPORT_MAX_ENTRIES {
        return Err(ValidationError::new(
            "entries",
            format!("must hold between 1 and {IMPORT_MAX_ENTRIES} entries"),
        )
        .into());
    }
    let entries = request
        .entries
        .into_iter()
        .map(CatalogEntry::validate)
        .collect::<Result<Vec<_>, _>>()?;
    let change = state
        .write(|state| async move {
            let written = state.store.import_catalog(&entries).await;
            // A failed import may have committed before the connection failed; one that changed
            // nothing recorded nothing to apply.
            if !matches!(&written, Ok(change) if change.is_empty()) {
                state
                    .invalidate_after(&written, Invalidation::AllSearches)
                    .await;
            }
            Ok(written?)
        })
        .await?;
    Ok(Json(ImportResponse {
        inserted: change.added,
        updated: change.changed,
        unchanged: change.unchanged,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStatus {
    /// Seconds between scheduled syncs (0: only at start and on request).
    interval_seconds: u64,
    sources: Vec<SourceStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceStatus {
    source: Source,
    /// `never`, `running`, `finished`, `failed`, or `abandoned` (its process stopped mid-run;
    /// another run may take the source over once its lease ends).
    #[schema(value_type = String, pattern = "^(never|running|finished|failed|abandoned)$")]
    state: &'static str,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    /// What the last run changed, once it finished.
    added: Option<u64>,
    changed: Option<u64>,
    removed: Option<u64>,
    /// Why the last run failed; the source's previous entries stay searchable.
    error: Option<String>,
    last_success_at: Option<DateTime<Utc>>,
    /// The source's entries in the catalog now.
    entries: Option<u64>,
}

/// Catalog sync status
///
/// The last sync of each source, and of each configured source that never ran.
#[utoipa::path(
    get,
    path = "/api/v1/catalog/sync",
    tag = "catalog",
    operation_id = "catalog_sync_status",
    responses((status = 200, description = "Each source's last sync", body = SyncStatus)),
)]
pub async fn sync_status(State(state): State<AppState>) -> Result<Json<SyncStatus>, ApiError> {
    Ok(Json(status(&state).await?))
}

/// Sync the catalog now
///
/// Starts a sync of every configured source (or, if this replica is running one, another right
/// after it) and answers 202 with the status at once; `GET` tells when it ends.
#[utoipa::path(
    post,
    path = "/api/v1/catalog/sync",
    tag = "catalog",
    operation_id = "start_catalog_sync",
    responses(
        (status = 202, description = "A sync started (or was queued behind the running one); the \
            status as it is now", body = SyncStatus,
            headers(("Location" = String, description = "/api/v1/catalog/sync, which tells when it ends"))),
        (status = 409, description = "No catalog source is configured", body = ErrorBody),
    ),
)]
pub async fn start_sync(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    if state.catalog.sources().is_empty() {
        return Err(ApiError::Conflict(
            "no catalog source is configured: set QA_PMS_POSTMAN_API_KEY or QA_PMS_TESTMO_URL"
                .into(),
        ));
    }
    catalog::start(&state, true);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, "/api/v1/catalog/sync")],
        Json(status(&state).await?),
    ))
}

async fn status(state: &AppState) -> Result<SyncStatus, ApiError> {
    let records = state.store.catalog_syncs().await?;
    let mut sources: Vec<SourceStatus> = records
        .into_iter()
        .map(|r| SourceStatus {
            source: r.source,
            state: catalog::state_of(r.holder.as_deref(), r.lease_until, r.error.is_some()),
            started_at: Some(r.started_at),
            finished_at: r.finished_at,
            added: r.change.map(|c| c.added),
            changed: r.change.map(|c| c.changed),
            removed: r.change.map(|c| c.removed),
            error: r.error,
            last_success_at: r.last_success_at,
            entries: Some(r.entries),
        })
        .collect();
    for configured in state.catalog.sources() {
        if !sources.iter().any(|s| s.source == configured.source()) {
            sources.push(SourceStatus {
                source: configured.source(),
                state: "never",
                started_at: None,
                finished_at: None,
                added: None,
                changed: None,
                removed: None,
                error: None,
                last_success_at: None,
                entries: None,
            });
        }
    }
    sources.sort_by_key(|s| s.source.as_str());
    Ok(SyncStatus {
        interval_seconds: state.catalog.interval().as_secs(),
        sources,
    })
}
