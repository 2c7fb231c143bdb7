//! Prometheus metrics (story 14.3 and 14.4), in one registry owned by the app state.
//!
//! HTTP metrics are labelled by the matched route template, never the raw path. Cache metrics are
//! read from each cache's own atomic counters when `/metrics` is scraped, so the numbers on
//! `/metrics` and those of `AppCache::stats` are one and the same.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::StatusCode;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricType};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
    Registry, TextEncoder,
};
use qa_pms_core::cache::LOAD_BUCKETS;
use qa_pms_core::{AppCache, CacheKind};
use qa_pms_upstream::{Upstream, DURATION_BUCKETS};

use crate::invalidation::Outbox;
use crate::layers::UNMATCHED_ROUTE;

const HTTP_BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    /// Catalog syncs run by this process, by source and outcome (`changed`, `unchanged`,
    /// `failed`, `skipped`).
    pub catalog_syncs: IntCounterVec,
    invalidation_replayed: IntCounter,
    invalidation_lag: Gauge,
    outbox: Arc<Outbox>,
}

impl Metrics {
    pub fn new(cache: Arc<AppCache>, upstreams: Vec<Upstream>, outbox: Arc<Outbox>) -> Self {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("qa_pms_http_requests_total", "HTTP requests answered."),
            &["method", "route", "status"],
        )
        .expect("static metric definition");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "qa_pms_http_request_duration_seconds",
                "Time from receiving an HTTP request to its response.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "route"],
        )
        .expect("static metric definition");
        let catalog_syncs = IntCounterVec::new(
            Opts::new(
                "qa_pms_catalog_syncs_total",
                "Catalog syncs of a source by this process, by outcome.",
            ),
            &["source", "outcome"],
        )
        .expect("static metric definition");
        let invalidation_replayed = IntCounter::new(
            "qa_pms_invalidation_replayed_total",
            "Invalidations read again from the outbox after the feed lost its connection.",
        )
        .expect("static metric definition");
        let invalidation_lag = Gauge::new(
            "qa_pms_invalidation_lag_seconds",
            "Seconds since this process last read the invalidation outbox.",
        )
        .expect("static metric definition");
        registry
            .register(Box::new(invalidation_replayed.clone()))
            .expect("registered once");
        registry
            .register(Box::new(invalidation_lag.clone()))
            .expect("registered once");
        registry
            .register(Box::new(http_requests.clone()))
            .expect("registered once");
        registry
            .register(Box::new(catalog_syncs.clone()))
            .expect("registered once");
        registry
            .register(Box::new(http_duration.clone()))
            .expect("registered once");
        registry
            .register(Box::new(CacheCollector::new(cache)))
            .expect("registered once");
        registry
            .register(Box::new(UpstreamCollector::new(upstreams)))
            .expect("registered once");
        Self {
            registry,
            http_requests,
            http_duration,
            catalog_syncs,
            invalidation_replayed,
            invalidation_lag,
            outbox,
        }
    }

    pub fn observe_request(&self, method: &str, route: &str, status: &str, elapsed: Duration) {
        self.http_requests
            .with_label_values(&[method, route, status])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    fn route_metrics(&self, method: &'static str, route: &str) -> RouteMetrics {
        RouteMetrics {
            method,
            route: route.into(),
            duration: self.http_duration.with_label_values(&[method, route]),
            statuses: Default::default(),
        }
    }

    /// Counts the invalidations a read of the outbox applied, if it followed a lost feed.
    pub fn invalidations_replayed(&self, replaying: bool, applied: usize) {
        if replaying {
            self.invalidation_replayed.inc_by(applied as u64);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.invalidation_lag
            .set(self.outbox.unread_for().as_secs_f64());
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// (method, route) pairs one [`EndpointMetrics`] keeps handles for. An endpoint of the router
/// serves one route (or none: `unmatched`), with one method or, for a fallback, a few.
const ROUTE_SLOTS: usize = 8;
/// Statuses one route keeps counters for (200, 304, 400, 404, ...).
const STATUS_SLOTS: usize = 8;

/// The HTTP metrics of one endpoint of the router, with their handles resolved on a route's first
/// request and kept: later requests find their counter and histogram by comparing a few keys,
/// without hashing the label values, taking the vectors' lock or cloning handles, as
/// `with_label_values` does. Hand-written rather than a concurrent map crate: the keys of an
/// endpoint are few and fixed once seen, so an array of `OnceLock`s, read without any write, is
/// all it takes. Beyond its slots an endpoint counts through `with_label_values`, as before.
#[derive(Default)]
pub struct EndpointMetrics {
    routes: [OnceLock<RouteMetrics>; ROUTE_SLOTS],
}

/// Which series a request is counted in, as found when it arrives.
pub enum HttpSeries {
    /// The slot of its method and route.
    Known(usize),
    /// Its method and route were not seen yet: resolved when it is counted.
    New {
        method: &'static str,
        route: Option<MatchedPath>,
    },
}

struct RouteMetrics {
    method: &'static str,
    route: Box<str>,
    duration: Histogram,
    statuses: [OnceLock<(StatusCode, IntCounter)>; STATUS_SLOTS],
}

impl EndpointMetrics {
    /// The series of a request with this method (a label from a fixed set) and matched route.
    pub fn series(&self, method: &'static str, route: Option<&MatchedPath>) -> HttpSeries {
        let label = route.map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        for (i, slot) in self.routes.iter().enumerate() {
            match slot.get() {
                Some(known) if known.method == method && *known.route == *label => {
                    return HttpSeries::Known(i)
                }
                Some(_) => {}
                None => break,
            }
        }
        HttpSeries::New {
            method,
            route: route.cloned(),
        }
    }

    /// Counts a request of `series` answered with `status` after `elapsed`.
    pub fn observe(
        &self,
        metrics: &Metrics,
        series: &HttpSeries,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let route = match series {
            HttpSeries::Known(i) => self.routes[*i].get(),
            HttpSeries::New { method, route } => {
                let label = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
                let found = self
                    .routes
                    .iter()
                    .map(|slot| slot.get_or_init(|| metrics.route_metrics(method, label)))
                    .find(|known| known.method == *method && *known.route == *label);
                if found.is_none() {
                    metrics.observe_request(method, label, status.as_str(), elapsed);
                }
                found
            }
        };
        if let Some(route) = route {
            route.observe(metrics, status, elapsed);
        }
    }
}

impl RouteMetrics {
    fn observe(&self, metrics: &Metrics, status: StatusCode, elapsed: Duration) {
        let counter = self
            .statuses
            .iter()
            .map(|slot| {
                slot.get_or_init(|| {
                    let labels = [self.method, &self.route, status.as_str()];
                    (status, metrics.http_requests.with_label_values(&labels))
                })
            })
            .find(|(known, _)| *known == status);
        match counter {
            Some((_, counter)) => counter.inc(),
            None => metrics
                .http_requests
                .with_label_values(&[self.method, &self.route, status.as_str()])
                .inc(),
        }
        self.duration.observe(elapsed.as_secs_f64());
    }
}

/// Reads `AppCache` counters into metric families at scrape time.
struct CacheCollector {
    cache: Arc<AppCache>,
    descs: Vec<Desc>,
}

const FAMILIES: [(&str, &str); 13] = [
    (
        "qa_pms_cache_hits_total",
        "Requests answered from an entry already cached.",
    ),
    (
        "qa_pms_cache_misses_total",
        "Requests not answered from an entry already cached.",
    ),
    (
        "qa_pms_cache_loads_total",
        "Loads run against the database to fill a cache.",
    ),
    (
        "qa_pms_cache_load_duration_seconds",
        "Duration of the loads that fill a cache.",
    ),
    (
        "qa_pms_cache_evictions_total",
        "Entries moka removed for size or expiry.",
    ),
    (
        "qa_pms_cache_invalidations_total",
        "Invalidations asked for by writes.",
    ),
    (
        "qa_pms_cache_stale_discards_total",
        "Loaded values not kept because a write overtook them.",
    ),
    ("qa_pms_cache_entries", "Entries held by a cache now."),
    ("qa_pms_cache_capacity", "Most entries a cache may hold."),
    (
        "qa_pms_cache_stale_served_total",
        "Requests answered with a last known value: the source failed (stale-if-error) or \
         another fetch of the key was under way (stale-while-revalidate).",
    ),
    (
        "qa_pms_cache_refreshes_total",
        "Background reloads ahead of expiry that stored a value (refresh ahead).",
    ),
    (
        "qa_pms_cache_bytes",
        "What the entries of a cache cost in memory now: JSON, ETag and a fixed overhead each.",
    ),
    (
        "qa_pms_cache_max_bytes",
        "The byte budget of a cache (absent: the entry capacity alone bounds it).",
    ),
];

impl CacheCollector {
    fn new(cache: Arc<AppCache>) -> Self {
        let descs = FAMILIES
            .iter()
            .map(|(name, help)| {
                let mut labels = vec!["cache_type".to_owned()];
                if *name == "qa_pms_cache_evictions_total" {
                    labels.push("cause".to_owned());
                }
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    labels,
                    Default::default(),
                )
                .expect("static metric definition")
            })
            .collect();
        Self { cache, descs }
    }
}

fn family(index: usize, kind: MetricType, metrics: Vec<proto::Metric>) -> proto::MetricFamily {
    let (name, help) = FAMILIES[index];
    named_family(name, help, kind, metrics)
}

fn named_family(
    name: &str,
    help: &str,
    kind: MetricType,
    metrics: Vec<proto::Metric>,
) -> proto::MetricFamily {
    let mut family = proto::MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn labelled(labels: &[(&str, &str)]) -> proto::Metric {
    let pairs = labels
        .iter()
        .map(|(name, value)| {
            let mut pair = proto::LabelPair::default();
            pair.set_name((*name).to_owned());
            pair.set_value((*value).to_owned());
            pair
        })
        .collect();
    proto::Metric::from_label(pairs)
}

fn counter(labels: &[(&str, &str)], value: u64) -> proto::Metric {
    let mut metric = labelled(labels);
    let mut c = proto::Counter::default();
    c.set_value(value as f64);
    metric.set_counter(c);
    metric
}

fn gauge(labels: &[(&str, &str)], value: u64) -> proto::Metric {
    let mut metric = labelled(labels);
    let mut g = proto::Gauge::default();
    g.set_value(value as f64);
    metric.set_gauge(g);
    metric
}

/// A histogram from its count, sum and (upper bound, cumulative count) buckets.
fn histogram(
    labels: &[(&str, &str)],
    count: u64,
    sum: f64,
    buckets: impl Iterator<Item = (f64, u64)>,
) -> proto::Metric {
    let mut histogram = proto::Histogram::default();
    histogram.set_sample_count(count);
    histogram.set_sample_sum(sum);
    histogram.set_bucket(
        buckets
            .map(|(bound, count)| {
                let mut bucket = proto::Bucket::default();
                bucket.set_upper_bound(bound);
                bucket.set_cumulative_count(count);
                bucket
            })
            .collect(),
    );
    let mut metric = labelled(labels);
    metric.set_histogram(histogram);
    metric
}

impl Collector for CacheCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        let mut per_family: Vec<Vec<proto::Metric>> = vec![Vec::new(); FAMILIES.len()];
        for kind in CacheKind::ALL {
            let stats = self.cache.stats(kind);
            let capacity = self.cache.settings(kind).capacity;
            let label = [("cache_type", kind.as_str())];
            per_family[0].push(counter(&label, stats.hits));
            per_family[1].push(counter(&label, stats.misses));
            per_family[2].push(counter(&label, stats.loads));

            per_family[3].push(histogram(
                &label,
                stats.loads,
                stats.load_seconds_sum,
                LOAD_BUCKETS.iter().copied().zip(stats.load_buckets),
            ));

            for (cause, value) in [
                ("size", stats.evicted_size),
                ("expired", stats.evicted_expired),
            ] {
                per_family[4].push(counter(
                    &[("cache_type", kind.as_str()), ("cause", cause)],
                    value,
                ));
            }
            per_family[5].push(counter(&label, stats.invalidations));
            per_family[6].push(counter(&label, stats.stale_discards));
            per_family[7].push(gauge(&label, stats.entries));
            per_family[8].push(gauge(&label, capacity));
            per_family[9].push(counter(&label, stats.stale_served));
            per_family[10].push(counter(&label, stats.refreshes));
            per_family[11].push(gauge(&label, stats.bytes));
            if let Some(max_bytes) = self.cache.settings(kind).max_bytes {
                per_family[12].push(gauge(&label, max_bytes));
            }
        }
        per_family
            .into_iter()
            .enumerate()
            .map(|(i, metrics)| {
                let kind = match i {
                    3 => MetricType::HISTOGRAM,
                    7 | 8 | 11 | 12 => MetricType::GAUGE,
                    _ => MetricType::COUNTER,
                };
                family(i, kind, metrics)
            })
            // A family with no sample (no cache has a byte budget) is not one to expose.
            .filter(|family| !family.get_metric().is_empty())
            .collect()
    }
}

/// Reads each upstream's counters (Jira, when configured) into metric families at scrape time.
struct UpstreamCollector {
    upstreams: Vec<Upstream>,
    descs: Vec<Desc>,
}

const UPSTREAM_FAMILIES: [(&str, &str, &[&str]); 3] = [
    (
        "qa_pms_upstream_requests_total",
        "HTTP requests to an upstream, by how they ended.",
        &["upstream", "outcome"],
    ),
    (
        "qa_pms_upstream_request_duration_seconds",
        "Duration of each HTTP request to an upstream.",
        &["upstream"],
    ),
    (
        "qa_pms_upstream_circuit_open",
        "1 while an upstream's circuit breaker refuses calls.",
        &["upstream"],
    ),
];

impl UpstreamCollector {
    fn new(upstreams: Vec<Upstream>) -> Self {
        let descs = UPSTREAM_FAMILIES
            .iter()
            .map(|(name, help, labels)| {
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    labels.iter().map(|l| (*l).to_owned()).collect(),
                    Default::default(),
                )
                .expect("static metric definition")
            })
            .collect();
        Self { upstreams, descs }
    }
}

impl Collector for UpstreamCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<proto::MetricFamily> {
        if self.upstreams.is_empty() {
            return Vec::new();
        }
        let (mut requests, mut durations, mut circuits) = (Vec::new(), Vec::new(), Vec::new());
        for upstream in &self.upstreams {
            let stats = upstream.stats();
            for (outcome, count) in stats.requests {
                requests.push(counter(
                    &[("upstream", stats.name), ("outcome", outcome.as_str())],
                    count,
                ));
            }
            durations.push(histogram(
                &[("upstream", stats.name)],
                stats.duration_count,
                stats.duration_sum_seconds,
                DURATION_BUCKETS.iter().copied().zip(stats.duration_buckets),
            ));
            circuits.push(gauge(
                &[("upstream", stats.name)],
                u64::from(stats.circuit_open),
            ));
        }
        let kinds = [
            MetricType::COUNTER,
            MetricType::HISTOGRAM,
            MetricType::GAUGE,
        ];
        UPSTREAM_FAMILIES
            .iter()
            .zip(kinds)
            .zip([requests, durations, circuits])
            .map(|(((name, help, _), kind), metrics)| named_family(name, help, kind, metrics))
            .collect()
    }
}
