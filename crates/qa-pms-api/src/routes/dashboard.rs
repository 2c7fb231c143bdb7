//! `GET /api/v1/dashboard/kpi` through the metrics cache.

use axum::extract::State;
use axum::middleware::from_fn;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use qa_pms_core::{DashboardMetrics, Period};
use serde::Deserialize;

use crate::cached::{ensure_cache_status, CachedJson};
use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/dashboard/kpi",
        get(kpi).route_layer(from_fn(ensure_cache_status)),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KpiParams {
    period: Option<String>,
}

async fn kpi(
    State(state): State<AppState>,
    Query(params): Query<KpiParams>,
) -> Result<CachedJson<DashboardMetrics>, ApiError> {
    let period: Period = params.period.as_deref().unwrap_or("7d").parse()?;
    let store = &state.store;
    let lookup = state
        .cache
        .metrics
        .get_or_load(&period.kpi_cache_key(), || async move {
            let now = Utc::now();
            let totals = store.kpi_totals(period.since(now)).await?;
            Ok::<_, qa_pms_storage::StoreError>(DashboardMetrics::from_totals(period, totals, now))
        })
        .await?;
    Ok(CachedJson(lookup))
}
