//! `GET /api/v1/search` through the cache. What fills the catalog it searches is in
//! `routes/catalog.rs` (imports, syncs) and `catalog.rs` (Postman, Testmo).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use qa_pms_core::cache::{CacheMode, Lookup};
use qa_pms_core::{SearchQuery, SearchResult, Source};
use qa_pms_storage::StoreError;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::{Query, RequestCache};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/search", get(search))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find in entries' names (3 points each) and texts (1 point each), case-insensitive:
    /// at most 200 characters and 8 distinct words.
    #[param(min_length = 1, max_length = 200)]
    query: String,
    /// Results: 1 to 100 (10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Only entries from this source.
    #[param(value_type = Option<Source>)]
    source: Option<String>,
}

/// Search the catalog
///
/// Postman requests and Testmo cases whose names or texts hold the query's words, best first,
/// through the search cache.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "search",
    operation_id = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "The best matches, best first", body = Vec<SearchResult>),
        (status = 400, description = "A parameter is missing, unknown or invalid (a blank query, \
            more than 200 characters or 8 words, limit outside 1..=100, an unknown source)",
            body = ErrorBody),
    ),
    extensions(("x-cache" = json!("search"))),
)]
pub async fn search(
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
