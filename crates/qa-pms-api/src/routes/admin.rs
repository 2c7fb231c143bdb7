//! `/admin/cache`: what operators see and do to the caches (story 14.7), behind a bearer token.
//! Without `QA_PMS_ADMIN_TOKEN` these routes do not exist (404). Purges and warm-ups are recorded
//! in the outbox, so every replica applies them, this one before it answers.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use qa_pms_core::{CacheKind, CacheSettings, CacheStats};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::invalidation::Invalidation;
use crate::openapi::ErrorBody;
use crate::state::AppState;
use crate::warm::{self, Warmed};

/// The most keys one warm-up may name or ask for.
pub const WARM_MAX: usize = 10_000;

/// The admin routes, each requiring `Authorization: Bearer <token>`.
pub fn router(token: &str) -> Router<AppState> {
    let expected: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    Router::new()
        .route("/admin/cache", get(stats))
        .route("/admin/cache/{cache}", delete(purge_all))
        .route("/admin/cache/{cache}/{key}", delete(purge_key))
        .route("/admin/cache/{cache}/warm", post(warm_up))
        .route_layer(middleware::from_fn(move |request: Request, next: Next| {
            authorized(expected, request, next)
        }))
        // Merged after `routes::router()` set its own: without this, a 405 here had no body.
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
}

/// Compares digests of the tokens in constant time: neither the token's bytes nor its length
/// leak through the time a refusal takes.
async fn authorized(expected: [u8; 32], request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let Some(given) = given else {
        return ApiError::Unauthorized(
            "an admin token is required: Authorization: Bearer <token>".into(),
        )
        .into_response();
    };
    let given: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
    if !bool::from(given.ct_eq(&expected)) {
        return ApiError::Unauthorized("the admin token is wrong".into()).into_response();
    }
    next.run(request).await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CacheReport {
    pub cache: CacheKind,
    pub settings: SettingsReport,
    pub entries: u64,
    pub bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: f64,
    pub loads: u64,
    pub evictions: u64,
    pub invalidations: u64,
    pub stale_served: u64,
    pub stale_discards: u64,
    pub refreshes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsReport {
    pub ttl_seconds: f64,
    pub tti_seconds: Option<f64>,
    pub capacity: u64,
    pub max_bytes: Option<u64>,
    pub grace_seconds: f64,
    pub negative_ttl_seconds: Option<f64>,
}

impl CacheReport {
    fn new(cache: CacheKind, settings: CacheSettings, stats: &CacheStats) -> Self {
        Self {
            cache,
            settings: SettingsReport {
                ttl_seconds: settings.ttl.as_secs_f64(),
                tti_seconds: settings.tti.map(|d| d.as_secs_f64()),
                capacity: settings.capacity,
                max_bytes: settings.max_bytes,
                grace_seconds: settings.grace.as_secs_f64(),
                negative_ttl_seconds: settings.negative_ttl.map(|d| d.as_secs_f64()),
            },
            entries: stats.entries,
            bytes: stats.bytes,
            hits: stats.hits,
            misses: stats.misses,
            hit_rate: stats.hit_rate(),
            loads: stats.loads,
            evictions: stats.evicted_size + stats.evicted_expired,
            invalidations: stats.invalidations,
            stale_served: stats.stale_served,
            stale_discards: stats.stale_discards,
            refreshes: stats.refreshes,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsReport {
    caches: Vec<CacheReport>,
}

/// Cache statistics
///
/// Each cache's settings, size and counters on this replica.
#[utoipa::path(
    get,
    path = "/admin/cache",
    tag = "admin",
    operation_id = "admin_cache_stats",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Every cache's report", body = StatsReport),
        (status = 401, description = "The admin token is missing or wrong", body = ErrorBody),
        (status = 404, description = "The admin API is off: QA_PMS_ADMIN_TOKEN is not set", body = ErrorBody),
    ),
)]
pub async fn stats(State(state): State<AppState>) -> Json<StatsReport> {
    state.cache.run_pending_tasks().await;
    let caches = CacheKind::ALL
        .into_iter()
        .map(|kind| CacheReport::new(kind, state.cache.settings(kind), &state.cache.stats(kind)))
        .collect();
    Json(StatsReport { caches })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Purged {
    cache: CacheKind,
    /// The key purged; `null`: every key.
    key: Option<String>,
}

/// Purge a cache
///
/// Drops every entry of the cache, on every replica (through the outbox), this one before it
/// answers.
#[utoipa::path(
    delete,
    path = "/admin/cache/{cache}",
    tag = "admin",
    operation_id = "admin_purge_cache",
    security(("admin_token" = [])),
    params(("cache" = CacheKind, Path, description = "Which cache")),
    responses(
        (status = 200, description = "Purged", body = Purged),
        (status = 400, description = "No such cache", body = ErrorBody),
        (status = 401, description = "The admin token is missing or wrong", body = ErrorBody),
        (status = 404, description = "The admin API is off: QA_PMS_ADMIN_TOKEN is not set", body = ErrorBody),
    ),
)]
pub async fn purge_all(
    State(state): State<AppState>,
    Path(cache): Path<String>,
) -> Result<Json<Purged>, ApiError> {
    purge(state, cache.parse()?, None).await
}

/// Purge one key of a cache
///
/// Drops the entry of one key, on every replica, this one before it answers. A key is written as
/// the cache keeps it: a ticket key (`PROJ-1`), a template id, a search key
/// (`terms|source=all|limit=10`), a KPI key (`kpi-7d`).
#[utoipa::path(
    delete,
    path = "/admin/cache/{cache}/{key}",
    tag = "admin",
    operation_id = "admin_purge_key",
    security(("admin_token" = [])),
    params(("cache" = CacheKind, Path, description = "Which cache"), ("key" = String, Path, description = "The key, as the cache writes it")),
    responses(
        (status = 200, description = "Purged", body = Purged),
        (status = 400, description = "No such cache, or not a key of that cache", body = ErrorBody),
        (status = 401, description = "The admin token is missing or wrong", body = ErrorBody),
        (status = 404, description = "The admin API is off: QA_PMS_ADMIN_TOKEN is not set", body = ErrorBody),
    ),
)]
pub async fn purge_key(
    State(state): State<AppState>,
    Path((cache, key)): Path<(String, String)>,
) -> Result<Json<Purged>, ApiError> {
    purge(state, cache.parse()?, Some(key)).await
}

async fn purge(
    state: AppState,
    cache: CacheKind,
    key: Option<String>,
) -> Result<Json<Purged>, ApiError> {
    if let Some(key) = &key {
        check_key(cache, key)?;
    }
    let command = Invalidation::Purge(cache, key.clone());
    record(&state, std::slice::from_ref(&command), command.clone()).await?;
    Ok(Json(Purged { cache, key }))
}

/// A key is purged by its text: one that no key of the cache has would purge nothing, silently.
fn check_key(cache: CacheKind, key: &str) -> Result<(), ApiError> {
    let valid = match cache {
        CacheKind::Tickets => qa_pms_core::TicketKey::parse(key).is_ok(),
        CacheKind::Templates => uuid::Uuid::parse_str(key).is_ok(),
        CacheKind::Search => qa_pms_core::SearchQuery::from_cache_key(key).is_some(),
        CacheKind::Metrics => qa_pms_core::Period::from_kpi_cache_key(key).is_some(),
    };
    if valid {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "`{key}` is not a key of the {cache} cache"
        )))
    }
}

/// Records operators' commands in the outbox, for every replica, and applies them here at once
/// (`fallback` directly, if the outbox cannot be read back).
async fn record(
    state: &AppState,
    commands: &[Invalidation],
    fallback: Invalidation,
) -> Result<(), ApiError> {
    let messages: Vec<String> = commands.iter().filter_map(Invalidation::encode).collect();
    state
        .write(|state| async move {
            state.store.record_invalidations(&messages).await?;
            state.invalidate(fallback).await;
            Ok(())
        })
        .await
}

/// Which keys to warm: these, or the `top` most read here.
///
/// Exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WarmRequest {
    /// At most 10,000 keys, as the cache writes them.
    #[schema(max_items = 10000, nullable = false)]
    keys: Option<Vec<String>>,
    /// The most-read keys of this replica: at most 10,000.
    #[schema(maximum = 10000, nullable = false)]
    top: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WarmReport {
    cache: CacheKind,
    /// Keys asked for.
    requested: usize,
    /// Keys now cached (loaded, or already there).
    loaded: u64,
    /// Keys the source could not load (gone since, or failing).
    failed: u64,
}

/// Warm a cache
///
/// Loads keys into the cache on every replica (through the outbox), this one before it answers.
#[utoipa::path(
    post,
    path = "/admin/cache/{cache}/warm",
    tag = "admin",
    operation_id = "admin_warm_cache",
    security(("admin_token" = [])),
    params(("cache" = CacheKind, Path, description = "Which cache")),
    request_body = WarmRequest,
    responses(
        (status = 200, description = "What the warm-up loaded here", body = WarmReport),
        (status = 400, description = "No such cache, the JSON is malformed, neither or both of keys \
            and top are given, too many keys, or a key is not one of that cache", body = ErrorBody),
        (status = 401, description = "The admin token is missing or wrong", body = ErrorBody),
        (status = 404, description = "The admin API is off: QA_PMS_ADMIN_TOKEN is not set", body = ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "The JSON is not of the body's shape (an unknown, missing or \
            mistyped field)", body = ErrorBody),
    ),
)]
pub async fn warm_up(
    State(state): State<AppState>,
    Path(cache): Path<String>,
    Json(request): Json<WarmRequest>,
) -> Result<Json<WarmReport>, ApiError> {
    let cache: CacheKind = cache.parse()?;
    let keys = match (request.keys, request.top) {
        (Some(keys), None) => keys,
        (None, Some(top)) if top <= WARM_MAX => state
            .cache
            .hottest(cache, top)
            .into_iter()
            .map(|(key, _)| key)
            .collect(),
        _ => {
            return Err(ApiError::BadRequest(format!(
                "send either {{\"keys\": [...]}} or {{\"top\": N}} with N at most {WARM_MAX}"
            )))
        }
    };
    if keys.len() > WARM_MAX {
        return Err(ApiError::BadRequest(format!(
            "at most {WARM_MAX} keys per warm-up"
        )));
    }
    for key in &keys {
        check_key(cache, key)?;
    }
    let commands: Vec<Invalidation> = keys
        .iter()
        .map(|key| Invalidation::Warm(cache, key.clone()))
        .collect();
    // This process loads the keys itself, below; a failed read-back has nothing to undo.
    let nothing = Invalidation::Warm(cache, String::new());
    record(&state, &commands, nothing).await?;
    let requested = keys.len();
    let Warmed { loaded, failed } = warm::warm(&state, cache, keys).await;
    Ok(Json(WarmReport {
        cache,
        requested,
        loaded,
        failed,
    }))
}
