//! `GET /api/v1/dashboard/kpi` through the metrics cache.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use qa_pms_core::{DashboardMetrics, Period};
use qa_pms_storage::StoreError;
use serde::Deserialize;

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/dashboard/kpi", get(kpi))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KpiParams {
    period: Option<String>,
}

async fn kpi(
    State(state): State<AppState>,
    params: Result<Query<KpiParams>, ApiError>,
) -> Cached<DashboardMetrics> {
    let lookup = async {
        let Query(params) = params?;
        let period: Period = params.period.as_deref().unwrap_or("7d").parse()?;
        let store = &state.store;
        let key = period.kpi_cache_key();
        let lookup = state.cache.metrics.get_or_load(&key, || async move {
            let now = Utc::now();
            let totals = store.kpi_totals(period.since(now)).await?;
            Ok::<_, StoreError>(DashboardMetrics::from_totals(period, totals, now))
        });
        Ok(lookup.await?)
    };
    Cached(lookup.await)
}
