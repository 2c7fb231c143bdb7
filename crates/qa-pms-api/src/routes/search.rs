//! `GET /api/v1/search` through the cache. What fills the catalog it searches is in
//! `routes/catalog.rs` (imports, syncs) and `catalog.rs` (Postman, Testmo).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use qa_pms_core::cache::{CacheMode, Lookup};
use qa_pms_core::{SearchQuery, SearchResult, Source};
use qa_pms_storage::StoreError;
use serde::Deserialize;

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::{Query, RequestCache};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/search", get(search))
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
    RequestCache(mode): RequestCache,
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
        Ok(read(&state, &query, mode).await?)
    };
    Cached(lookup.await)
}

/// One search through the search cache: what `GET` answers and what a warm-up loads.
pub async fn read(
    state: &AppState,
    query: &SearchQuery,
    mode: CacheMode,
) -> Result<Lookup<Vec<SearchResult>>, StoreError> {
    let store = &state.store;
    let cache = &state.cache.search;
    cache
        .get_or_load_with(&query.cache_key(), mode, || store.search(query))
        .await
}
