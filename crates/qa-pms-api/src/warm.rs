//! Loading keys before they are asked for: an operator's warm-up (`POST /admin/cache/{cache}/warm`,
//! on every replica through the outbox), and the warm restart, where a process shutting down saves
//! its most-read keys in the database and the next one to start loads them back.
//!
//! A key is loaded exactly as a GET of it would load it (the route modules' `read`), so a warm-up
//! follows the same rules: a cached key is a hit and costs nothing, a write racing a warm-up wins.

use futures::StreamExt;
use qa_pms_core::cache::CacheMode;
use qa_pms_core::{CacheKind, Period, SearchQuery, TicketKey};
use serde::Serialize;
use uuid::Uuid;

use crate::error::ApiError;
use crate::routes::{dashboard, search, templates, tickets};
use crate::state::AppState;

/// Keys loaded at once by a warm-up: enough to hide a database round trip, few enough to leave the
/// pool to the requests being served meanwhile.
const CONCURRENCY: usize = 8;

/// What a warm-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Warmed {
    /// Keys now cached (loaded, or already there).
    pub loaded: u64,
    /// Keys the source could not load (gone since, or failing); they are left to the next read.
    pub failed: u64,
}

/// Loads `key` (as [`qa_pms_core::AppCache::hottest`] writes it) into the cache of `kind`. A text
/// that is no key of that cache is a 400.
pub async fn load(state: &AppState, kind: CacheKind, key: &str) -> Result<(), ApiError> {
    let invalid = || ApiError::BadRequest(format!("`{key}` is not a key of the {kind} cache"));
    let mode = CacheMode::Normal;
    match kind {
        CacheKind::Tickets => {
            let key = TicketKey::parse(key).map_err(|_| invalid())?;
            tickets::read(state, &key, mode).await?;
        }
        CacheKind::Templates => {
            let id = Uuid::parse_str(key).map_err(|_| invalid())?;
            templates::read(state, id, mode).await?;
        }
        CacheKind::Search => {
            let query = SearchQuery::from_cache_key(key).ok_or_else(invalid)?;
            search::read(state, &query, mode).await?;
        }
        CacheKind::Metrics => {
            let period = Period::from_kpi_cache_key(key).ok_or_else(invalid)?;
            dashboard::read(state, period, mode).await?;
        }
    }
    Ok(())
}

/// Loads every key of `keys` into the cache of `kind`, a few at a time.
pub async fn warm(state: &AppState, kind: CacheKind, keys: Vec<String>) -> Warmed {
    let results = futures::stream::iter(keys)
        .map(|key| async move {
            let loaded = load(state, kind, &key).await;
            if let Err(error) = &loaded {
                tracing::debug!(%error, %kind, %key, "could not warm a key");
            }
            loaded.is_ok()
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<bool>>()
        .await;
    let loaded = results.iter().filter(|ok| **ok).count() as u64;
    Warmed {
        loaded,
        failed: results.len() as u64 - loaded,
    }
}

/// Loads, in the background, the keys other processes asked every replica to warm (read from the
/// outbox since the last call).
pub fn requested(state: &AppState) {
    let requests = state.outbox.take_to_warm();
    if requests.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        for kind in CacheKind::ALL {
            let keys: Vec<String> = requests
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, key)| key.clone())
                .collect();
            if !keys.is_empty() {
                warm(&state, kind, keys).await;
            }
        }
    });
}

/// How many keys of a cache a shutdown saves: its capacity, the most it could hold.
fn saved_per_cache(state: &AppState, kind: CacheKind) -> usize {
    usize::try_from(state.cache.settings(kind).capacity).unwrap_or(usize::MAX)
}

/// At shutdown: saves the most-read keys of every cache, for the next process to load.
pub async fn save(state: &AppState) -> Result<usize, ApiError> {
    let now = chrono::Utc::now();
    let mut saved = 0;
    for kind in CacheKind::ALL {
        let keys = state.cache.hottest(kind, saved_per_cache(state, kind));
        if keys.is_empty() {
            continue;
        }
        state
            .store
            .save_warm_keys(kind.as_str(), &keys, now)
            .await?;
        saved += keys.len();
    }
    Ok(saved)
}

/// At start: loads the keys the last shutdown saved, most read first, every cache at once.
pub async fn restore(state: &AppState) -> Result<Warmed, ApiError> {
    let mut total = Warmed::default();
    let mut saved = Vec::new();
    for kind in CacheKind::ALL {
        let mut keys = state.store.warm_keys(kind.as_str()).await?;
        keys.truncate(saved_per_cache(state, kind));
        saved.push((kind, keys));
    }
    let warmed = futures::future::join_all(
        saved
            .into_iter()
            .map(|(kind, keys)| async move { warm(state, kind, keys).await }),
    )
    .await;
    for warmed in warmed {
        total.loaded += warmed.loaded;
        total.failed += warmed.failed;
    }
    Ok(total)
}
