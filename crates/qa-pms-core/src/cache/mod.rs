//! `AppCache`: the four typed read-through caches of story 14.4, with their defaults.

mod layer;
mod stats;

use std::fmt;
use std::time::Duration;

use uuid::Uuid;

pub use layer::{
    etag_of, CacheLayer, CacheMode, Cached, Fallback, Fetched, LoadError, Lookup, LookupStatus,
    ENTRY_OVERHEAD, FALLBACK_RETRY, REFRESH_AT, STRIPES, UPDATING_RETRY,
};
pub use stats::{CacheStats, LOAD_BUCKETS};

use crate::catalog::SearchResult;
use crate::dashboard::{DashboardMetrics, Period};
use crate::template::WorkflowTemplate;
use crate::ticket::{JiraTicket, TicketKey};

/// The four caches; `as_str` is the `cache_type` label on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    Tickets,
    Search,
    Metrics,
    Templates,
}

impl CacheKind {
    pub const ALL: [CacheKind; 4] = [
        CacheKind::Tickets,
        CacheKind::Search,
        CacheKind::Metrics,
        CacheKind::Templates,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CacheKind::Tickets => "tickets",
            CacheKind::Search => "search",
            CacheKind::Metrics => "metrics",
            CacheKind::Templates => "templates",
        }
    }
}

impl std::str::FromStr for CacheKind {
    type Err = crate::ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CacheKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| {
                crate::ValidationError::new(
                    "cache",
                    format!("`{s}` is not one of tickets, search, metrics, templates"),
                )
            })
    }
}

impl fmt::Display for CacheKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long a value is kept past its TTL to answer when its source fails (stale-if-error).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Time to live, time to idle and capacity (in entries) of one cache, how long values are kept
/// for stale-if-error past their TTL (`grace`, zero: not kept) and how long a "not found" from the
/// source is remembered (`negative_ttl`, `None`: never). Capacity 0 turns the cache off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    pub ttl: Duration,
    pub tti: Option<Duration>,
    pub capacity: u64,
    pub grace: Duration,
    pub negative_ttl: Option<Duration>,
    /// The byte budget: what the entries may cost in memory together ([`Cached::bytes`]), beside
    /// the entry capacity; the grace store has the same budget. `None`: entries alone bound it.
    pub max_bytes: Option<u64>,
}

impl CacheSettings {
    pub const fn new(ttl_secs: u64, tti_secs: Option<u64>, capacity: u64) -> Self {
        Self {
            ttl: Duration::from_secs(ttl_secs),
            tti: match tti_secs {
                Some(s) => Some(Duration::from_secs(s)),
                None => None,
            },
            capacity,
            grace: DEFAULT_GRACE,
            negative_ttl: None,
            max_bytes: None,
        }
    }

    pub const fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    pub const fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub const fn with_negative_ttl(mut self, negative_ttl: Duration) -> Self {
        self.negative_ttl = Some(negative_ttl);
        self
    }
}

const MIB: u64 = 1024 * 1024;

/// Settings for all four caches. `Default` is the story's table, with a byte budget per cache
/// that the largest values the API allows would exceed (typical ones fill the entry capacity
/// long before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    pub tickets: CacheSettings,
    pub search: CacheSettings,
    pub metrics: CacheSettings,
    pub templates: CacheSettings,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            tickets: CacheSettings::new(300, Some(60), 1_000)
                .with_negative_ttl(Duration::from_secs(30))
                .with_max_bytes(32 * MIB),
            search: CacheSettings::new(120, None, 500).with_max_bytes(64 * MIB),
            metrics: CacheSettings::new(30, None, 50).with_max_bytes(MIB),
            templates: CacheSettings::new(600, None, 100).with_max_bytes(8 * MIB),
        }
    }
}

impl CacheConfig {
    pub fn get_mut(&mut self, kind: CacheKind) -> &mut CacheSettings {
        match kind {
            CacheKind::Tickets => &mut self.tickets,
            CacheKind::Search => &mut self.search,
            CacheKind::Metrics => &mut self.metrics,
            CacheKind::Templates => &mut self.templates,
        }
    }

    /// Every cache off: each read goes to the database.
    pub fn disabled() -> Self {
        let mut config = Self::default();
        for kind in CacheKind::ALL {
            config.get_mut(kind).capacity = 0;
        }
        config
    }
}

/// The application's caches. Keys are the domain's own types, values are what the read endpoints
/// answer, kept with their serialized JSON.
pub struct AppCache {
    pub tickets: CacheLayer<TicketKey, JiraTicket>,
    /// Keyed by [`crate::SearchQuery::cache_key`].
    pub search: CacheLayer<String, Vec<SearchResult>>,
    /// Keyed by [`Period::kpi_cache_key`].
    pub metrics: CacheLayer<String, DashboardMetrics>,
    pub templates: CacheLayer<Uuid, WorkflowTemplate>,
}

impl AppCache {
    pub fn new(config: CacheConfig) -> Self {
        Self {
            tickets: CacheLayer::new(CacheKind::Tickets, config.tickets),
            search: CacheLayer::new(CacheKind::Search, config.search),
            metrics: CacheLayer::new(CacheKind::Metrics, config.metrics),
            templates: CacheLayer::new(CacheKind::Templates, config.templates),
        }
    }

    /// After a workflow changed state or a pattern was recorded: every KPI period may have moved.
    pub async fn invalidate_dashboards(&self) {
        for period in Period::ALL {
            self.metrics.invalidate(&period.kpi_cache_key()).await;
        }
    }

    /// Drops every entry of every cache (a replica that may have missed invalidations).
    pub fn invalidate_all(&self) {
        self.tickets.invalidate_all();
        self.search.invalidate_all();
        self.metrics.invalidate_all();
        self.templates.invalidate_all();
    }

    /// Runs moka's maintenance on every cache, so that entry counts are exact.
    pub async fn run_pending_tasks(&self) {
        self.tickets.run_pending_tasks().await;
        self.search.run_pending_tasks().await;
        self.metrics.run_pending_tasks().await;
        self.templates.run_pending_tasks().await;
    }

    /// Drops the entry of `kind` whose key reads `key` (as [`Self::hottest`] writes keys), or
    /// every entry of `kind`; `false` if `key` is no key of that cache.
    pub async fn purge(&self, kind: CacheKind, key: Option<&str>) -> bool {
        let Some(key) = key else {
            match kind {
                CacheKind::Tickets => self.tickets.invalidate_all(),
                CacheKind::Search => self.search.invalidate_all(),
                CacheKind::Metrics => self.metrics.invalidate_all(),
                CacheKind::Templates => self.templates.invalidate_all(),
            }
            return true;
        };
        match kind {
            CacheKind::Tickets => match TicketKey::parse(key) {
                Ok(key) => self.tickets.invalidate(&key).await,
                Err(_) => return false,
            },
            CacheKind::Templates => match Uuid::parse_str(key) {
                Ok(id) => self.templates.invalidate(&id).await,
                Err(_) => return false,
            },
            CacheKind::Search => self.search.invalidate(&key.to_owned()).await,
            CacheKind::Metrics => self.metrics.invalidate(&key.to_owned()).await,
        }
        true
    }

    /// Up to `n` keys of `kind`, most read first, as text, with their reads
    /// ([`CacheLayer::hottest`]).
    pub fn hottest(&self, kind: CacheKind, n: usize) -> Vec<(String, u64)> {
        fn text<K: ToString>(keys: Vec<(K, u64)>) -> Vec<(String, u64)> {
            keys.into_iter()
                .map(|(k, reads)| (k.to_string(), reads))
                .collect()
        }
        match kind {
            CacheKind::Tickets => text(self.tickets.hottest(n)),
            CacheKind::Search => self.search.hottest(n),
            CacheKind::Metrics => self.metrics.hottest(n),
            CacheKind::Templates => text(self.templates.hottest(n)),
        }
    }

    pub fn settings(&self, kind: CacheKind) -> CacheSettings {
        match kind {
            CacheKind::Tickets => self.tickets.settings(),
            CacheKind::Search => self.search.settings(),
            CacheKind::Metrics => self.metrics.settings(),
            CacheKind::Templates => self.templates.settings(),
        }
    }

    pub fn stats(&self, kind: CacheKind) -> CacheStats {
        match kind {
            CacheKind::Tickets => self.tickets.stats(),
            CacheKind::Search => self.search.stats(),
            CacheKind::Metrics => self.metrics.stats(),
            CacheKind::Templates => self.templates.stats(),
        }
    }
}

impl fmt::Debug for AppCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppCache").finish_non_exhaustive()
    }
}

impl Default for AppCache {
    fn default() -> Self {
        Self::new(CacheConfig::default())
    }
}
