//! Counters of one upstream (requests by outcome, a latency histogram) and their snapshot for
//! `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the latency histogram buckets (`+Inf` is `duration_count`).
pub const DURATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How one request to an upstream ended: the `outcome` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    ClientError,
    ServerError,
    RateLimited,
    Timeout,
    ConnectError,
    CircuitOpen,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Success,
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::RateLimited,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::CircuitOpen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
            Outcome::RateLimited => "rate_limited",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::CircuitOpen => "circuit_open",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A snapshot of one upstream's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamStats {
    /// The `upstream` label.
    pub name: &'static str,
    /// Requests by outcome, in the order of [`Outcome::ALL`].
    pub requests: [(Outcome, u64); 7],
    /// Cumulative counts of HTTP attempts at most each bound of [`DURATION_BUCKETS`].
    pub duration_buckets: [u64; DURATION_BUCKETS.len()],
    pub duration_sum_seconds: f64,
    pub duration_count: u64,
    pub circuit_open: bool,
}

impl UpstreamStats {
    /// The number of requests that ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.requests[outcome.index()].1
    }

    pub fn total_requests(&self) -> u64 {
        self.requests.iter().map(|(_, n)| n).sum()
    }
}

#[derive(Default)]
pub(crate) struct Stats {
    requests: [AtomicU64; 7],
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Stats {
    /// Counts one request; `duration` is that of its HTTP attempt (`None` when no call was made).
    pub(crate) fn record(&self, outcome: Outcome, duration: Option<Duration>) {
        self.requests[outcome.index()].fetch_add(1, Ordering::Relaxed);
        let Some(duration) = duration else { return };
        let seconds = duration.as_secs_f64();
        if let Some(bucket) = DURATION_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, name: &'static str, circuit_open: bool) -> UpstreamStats {
        let requests = Outcome::ALL.map(|o| (o, self.requests[o.index()].load(Ordering::Relaxed)));
        let mut running = 0;
        let duration_buckets = std::array::from_fn(|i| {
            running += self.buckets[i].load(Ordering::Relaxed);
            running
        });
        UpstreamStats {
            name,
            requests,
            duration_buckets,
            duration_sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            duration_count: self.count.load(Ordering::Relaxed),
            circuit_open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_cumulative_buckets() {
        let stats = Stats::default();
        stats.record(Outcome::Success, Some(Duration::from_millis(3)));
        stats.record(Outcome::ServerError, Some(Duration::from_millis(300)));
        stats.record(Outcome::Timeout, Some(Duration::from_secs(60)));
        stats.record(Outcome::CircuitOpen, None);
        let snap = stats.snapshot("jira", false);
        assert_eq!(snap.duration_buckets[0], 1);
        assert_eq!(snap.duration_buckets[6], 2);
        assert_eq!(snap.duration_buckets[10], 2);
        assert_eq!(snap.duration_count, 3);
        assert_eq!(snap.total_requests(), 4);
        assert_eq!(snap.count(Outcome::CircuitOpen), 1);
        assert!((snap.duration_sum_seconds - 60.303).abs() < 1e-6);
    }
}
