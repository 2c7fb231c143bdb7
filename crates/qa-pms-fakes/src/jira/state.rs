//! The fake's shared state: issues, users, behaviour knobs and the log of received requests.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::issue::{account_id_for, FakeIssue};

/// How a request fails when a failure is injected with `fail_next` or `set_down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// That status: 502/503/504 with a gateway's HTML page, anything else with Jira's JSON envelope.
    Status(u16),
    /// 429 with `Retry-After: <retry_after_secs>` and Jira's JSON.
    TooManyRequests { retry_after_secs: u64 },
    /// Never answers (sleeps for an hour).
    Hang,
    /// 200 with `application/json` and a truncated JSON body.
    Malformed,
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/rest/api/3/user/search?query=ana`.
    pub path: String,
    pub body: Vec<u8>,
    pub received_at: Instant,
}

/// Everything the router and the test share, behind one lock.
pub(crate) struct Shared {
    pub base_url: String,
    pub email: String,
    pub token: String,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(base_url: String, email: String, token: String) -> Self {
        Self {
            base_url,
            email,
            token,
            state: Mutex::new(State::default()),
        }
    }

    /// A panic while holding the lock leaves consistent data here, so poisoning is ignored.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub issues: BTreeMap<String, FakeIssue>,
    /// (accountId, displayName)
    pub users: Vec<(String, String)>,
    pub latency: Duration,
    pub rate_limit: Option<u32>,
    window: Option<(Instant, u32)>,
    /// Runs of injected failures: (how many left, which).
    pending_failures: VecDeque<(usize, Failure)>,
    pub down: Option<Failure>,
    pub requests: Vec<RecordedRequest>,
    rng: u64,
}

impl State {
    pub fn queue_failures(&mut self, n: usize, failure: Failure) {
        if n > 0 {
            self.pending_failures.push_back((n, failure));
        }
    }

    pub fn clear_failures(&mut self) {
        self.pending_failures.clear();
    }

    pub fn pending_failures(&self) -> usize {
        self.pending_failures.iter().map(|(left, _)| left).sum()
    }

    /// The failure this request must get, if any: down mode first, then the `fail_next` queue.
    pub fn take_failure(&mut self) -> Option<Failure> {
        if let Some(failure) = &self.down {
            return Some(failure.clone());
        }
        let (left, failure) = self.pending_failures.front_mut()?;
        let failure = failure.clone();
        *left -= 1;
        if *left == 0 {
            self.pending_failures.pop_front();
        }
        Some(failure)
    }

    /// Counts the request in the current one-second window; true if it is over the limit.
    pub fn over_rate_limit(&mut self, now: Instant) -> bool {
        let Some(limit) = self.rate_limit else {
            return false;
        };
        let (start, count) = match self.window {
            Some((start, count)) if now.duration_since(start) < Duration::from_secs(1) => {
                (start, count + 1)
            }
            _ => (now, 1),
        };
        self.window = Some((start, count));
        count > limit
    }

    pub fn reset_rate_window(&mut self) {
        self.window = None;
    }

    /// The configured latency with uniform jitter in 0.5x..1.5x.
    pub fn sample_latency(&mut self) -> Duration {
        if self.latency.is_zero() {
            return Duration::ZERO;
        }
        let unit = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        self.latency.mul_f64(0.5 + unit)
    }

    /// splitmix64: good enough for jitter, and no extra dependency.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The accountId shown for a display name: a configured user's, else a derived one.
    pub fn account_id(&self, display_name: &str) -> String {
        self.users
            .iter()
            .find(|(_, name)| name == display_name)
            .map_or_else(|| account_id_for(display_name), |(id, _)| id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_failures_run_out_in_order() {
        let mut state = State::default();
        state.queue_failures(2, Failure::Status(500));
        state.queue_failures(1, Failure::Hang);
        assert_eq!(state.take_failure(), Some(Failure::Status(500)));
        assert_eq!(state.take_failure(), Some(Failure::Status(500)));
        assert_eq!(state.take_failure(), Some(Failure::Hang));
        assert_eq!(state.take_failure(), None);
    }

    #[test]
    fn rate_limit_allows_exactly_the_limit_per_window() {
        let mut state = State {
            rate_limit: Some(2),
            ..State::default()
        };
        let now = Instant::now();
        assert!(!state.over_rate_limit(now));
        assert!(!state.over_rate_limit(now));
        assert!(state.over_rate_limit(now));
        assert!(!state.over_rate_limit(now + Duration::from_secs(1)));
    }

    #[test]
    fn latency_jitter_stays_within_half_to_one_and_a_half() {
        let mut state = State {
            latency: Duration::from_millis(100),
            ..State::default()
        };
        for _ in 0..1000 {
            let sample = state.sample_latency();
            assert!(sample >= Duration::from_millis(50) && sample <= Duration::from_millis(150));
        }
    }
}
