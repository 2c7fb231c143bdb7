//! `GET /api/v1/search` through the cache, and `POST /api/v1/catalog/import`, which invalidates
//! every search.

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::Router;
use qa_pms_core::{CatalogEntry, SearchQuery, SearchResult, Source, ValidationError};
use serde::{Deserialize, Serialize};

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::invalidation::Invalidation;
use crate::state::AppState;

/// Catalog imports come in bulk: a larger body limit than the rest of the API.
pub const IMPORT_BODY_LIMIT: usize = 16 * 1024 * 1024;
pub const IMPORT_MAX_ENTRIES: usize = 10_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/search", get(search)).route(
        "/api/v1/catalog/import",
        post(import).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    query: String,
    limit: Option<u32>,
    source: Option<String>,
}

async fn search(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, ApiError>,
) -> Cached<Vec<SearchResult>> {
    let lookup = async {
        let Query(params) = params?;
        let source = params
            .source
            .as_deref()
            .map(str::parse::<Source>)
            .transpose()?;
        let query = SearchQuery::new(&params.query, source, params.limit)?;
        let store = &state.store;
        let key = query.cache_key();
        let lookup = state
            .cache
            .search
            .get_or_load(&key, || store.search(&query));
        Ok(lookup.await?)
    };
    Cached(lookup.await)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportRequest {
    entries: Vec<CatalogEntry>,
}

#[derive(Debug, Serialize)]
struct ImportResponse {
    inserted: u64,
    updated: u64,
}

async fn import(
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
    let summary = state
        .write(|state| async move {
            let written = state.store.import_catalog(&entries).await;
            state.invalidate(Invalidation::AllSearches).await;
            Ok(written?)
        })
        .await?;
    Ok(Json(ImportResponse {
        inserted: summary.inserted,
        updated: summary.updated,
    }))
}
