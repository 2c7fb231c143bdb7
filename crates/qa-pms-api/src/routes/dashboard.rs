//! `GET /api/v1/dashboard/kpi` through the metrics cache.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use qa_pms_core::cache::{CacheMode, Lookup};
use qa_pms_core::{DashboardMetrics, Period};
use qa_pms_storage::StoreError;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::{Query, RequestCache};
use crate::openapi::ErrorBody;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/dashboard/kpi", get(kpi))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KpiParams {
    /// The period the KPIs cover, up to now (7d).
    #[param(value_type = Option<Period>)]
    period: Option<String>,
}

/// Dashboard KPIs
///
/// Computed from the workflows of the period on a miss, through the metrics cache.
#[utoipa::path(
    get,
    path = "/api/v1/dashboard/kpi",
    tag = "dashboard",
    operation_id = "dashboard_kpi",
    params(KpiParams),
    responses(
        (status = 200, description = "The period's KPIs", body = DashboardMetrics),
        (status = 400, description = "A parameter is unknown, or the period is not one of 7d, 30d, \
            90d, 1y", body = ErrorBody),
    ),
    extensions(("x-cache" = json!("metrics"))),
)]
pub async fn kpi(
    State(state): State<AppState>,
    RequestCache(mode): RequestCache,
    params: Result<Query<KpiParams>, ApiError>,
) -> Cached<DashboardMetrics> {
    let lookup = async {
        let Query(params) = params?;
        let period: Period = params.period.as_deref().unwrap_or("7d").parse()?;
        Ok(read(&state, period, mode).await?)
    };
    Cached(lookup.await)
}

/// One period's KPIs through the metrics cache: what `GET` answers and what a warm-up loads.
pub async fn read(
    state: &AppState,
    period: Period,
    mode: CacheMode,
) -> Result<Lookup<DashboardMetrics>, StoreError> {
    let store = &state.store;
    let load = || async move {
        let now = Utc::now();
        let totals = store.kpi_totals(period.since(now)).await?;
        Ok::<_, StoreError>(DashboardMetrics::from_totals(period, totals, now))
    };
    let cache = &state.cache.metrics;
    cache
        .get_or_load_with(&period.kpi_cache_key(), mode, load)
        .await
}
