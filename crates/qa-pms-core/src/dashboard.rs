//! Dashboard KPIs: the reporting periods and the metrics computed over them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ValidationError;

/// A KPI reporting period, counted back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ToSchema)]
pub enum Period {
    #[schema(rename = "7d")]
    Days7,
    #[schema(rename = "30d")]
    Days30,
    #[schema(rename = "90d")]
    Days90,
    #[schema(rename = "1y")]
    Year1,
}

impl Period {
    pub const ALL: [Period; 4] = [Period::Days7, Period::Days30, Period::Days90, Period::Year1];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Days7 => "7d",
            Period::Days30 => "30d",
            Period::Days90 => "90d",
            Period::Year1 => "1y",
        }
    }

    pub fn duration(self) -> Duration {
        match self {
            Period::Days7 => Duration::days(7),
            Period::Days30 => Duration::days(30),
            Period::Days90 => Duration::days(90),
            Period::Year1 => Duration::days(365),
        }
    }

    /// The start of the period that ends at `now`.
    pub fn since(self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.duration()
    }

    /// The metrics cache key of this period's KPI dashboard, e.g. `kpi-7d`.
    pub fn kpi_cache_key(self) -> String {
        format!("kpi-{}", self.as_str())
    }

    /// The period a [`Self::kpi_cache_key`] names.
    pub fn from_kpi_cache_key(key: &str) -> Option<Self> {
        key.strip_prefix("kpi-")?.parse().ok()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Period {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("period", format!("`{s}` is not one of 7d, 30d, 90d, 1y"))
            })
    }
}

/// The KPI dashboard: computed from workflows and patterns, never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DashboardMetrics {
    #[schema(value_type = Period)]
    pub period: String,
    /// Distinct tickets with a workflow completed in the period.
    pub tickets_completed: u64,
    /// Mean minutes from start to completion of the workflows completed in the period.
    pub average_time: f64,
    /// Patterns detected in the period.
    pub patterns_detected: u64,
    pub generated_at: DateTime<Utc>,
}

/// The raw sums the storage layer returns; [`DashboardMetrics::from_totals`] turns them into the
/// dashboard, so that both backends round the average identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KpiTotals {
    pub tickets_completed: u64,
    pub workflows_completed: u64,
    pub total_duration_seconds: i64,
    pub patterns_detected: u64,
}

impl DashboardMetrics {
    pub fn from_totals(period: Period, totals: KpiTotals, generated_at: DateTime<Utc>) -> Self {
        let average_time = if totals.workflows_completed == 0 {
            0.0
        } else {
            let minutes = totals.total_duration_seconds as f64 / 60.0;
            (minutes / totals.workflows_completed as f64 * 100.0).round() / 100.0
        };
        Self {
            period: period.as_str().to_owned(),
            tickets_completed: totals.tickets_completed,
            average_time,
            patterns_detected: totals.patterns_detected,
            generated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_print_alike() {
        for p in Period::ALL {
            assert_eq!(p.as_str().parse::<Period>().unwrap(), p);
        }
        assert!("14d".parse::<Period>().is_err());
    }

    #[test]
    fn average_time_is_in_minutes_with_two_decimals() {
        let totals = KpiTotals {
            tickets_completed: 2,
            workflows_completed: 3,
            total_duration_seconds: 3_600 + 60,
            patterns_detected: 1,
        };
        let m = DashboardMetrics::from_totals(Period::Days7, totals, Utc::now());
        assert_eq!(m.average_time, 20.33);
    }
}
