//! What the fake catalog services (Postman, Testmo) share: the behaviour knobs (latency, a rate
//! limit, injected failures), the request log, the middleware that applies them, and serving on
//! loopback. Each service plugs in its own answers (error bodies, retry headers, auth) through
//! [`Service`]; the fake Testmo uses this module from here.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How a request fails when a failure is injected with `fail_next` or `set_down`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// That status with the service's own error body (502/503/504 with a gateway's HTML page).
    Status(u16),
    /// 429 with the service's own retry header(s) set to this many seconds; `None` sends none.
    TooManyRequests { retry_after_secs: Option<u64> },
    /// Never answers (sleeps for an hour).
    Hang,
    /// 200 with `application/json` and a truncated JSON body.
    Malformed,
}

/// One request as a fake received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/collections?workspace=w1&limit=100&offset=0`.
    pub path: String,
    pub received_at: Instant,
    /// The status answered; `None` while in flight (or hanging).
    pub status: Option<u16>,
}

/// A run of injected failures, optionally only for requests whose path and query contain a text.
struct Pending {
    left: usize,
    failure: Failure,
    path_contains: Option<String>,
}

/// The behaviour knobs of one fake and its request log.
#[derive(Default)]
pub(crate) struct Knobs {
    pub latency: Duration,
    pub rate_limit: Option<u32>,
    window: Option<(Instant, u32)>,
    pending: VecDeque<Pending>,
    pub down: Option<Failure>,
    pub requests: Vec<RecordedRequest>,
    rng: u64,
}

/// What the gate decided for one request.
enum Verdict {
    Fail(Failure),
    RateLimited,
    Pass(Duration),
}

impl Knobs {
    pub fn queue_failures(&mut self, n: usize, failure: Failure, path_contains: Option<String>) {
        if n > 0 {
            self.pending.push_back(Pending {
                left: n,
                failure,
                path_contains,
            });
        }
    }

    pub fn pending_failures(&self) -> usize {
        self.pending.iter().map(|p| p.left).sum()
    }

    pub fn set_rate_limit(&mut self, per_second: Option<u32>) {
        self.rate_limit = per_second;
        self.window = None;
    }

    /// The failure this request gets, if any: down mode first, then the first queued run that
    /// applies to its path.
    fn take_failure(&mut self, path: &str) -> Option<Failure> {
        if let Some(failure) = &self.down {
            return Some(failure.clone());
        }
        let index = self.pending.iter().position(|p| {
            p.path_contains
                .as_deref()
                .is_none_or(|text| path.contains(text))
        })?;
        let run = &mut self.pending[index];
        let failure = run.failure.clone();
        run.left -= 1;
        if run.left == 0 {
            self.pending.remove(index);
        }
        Some(failure)
    }

    /// Counts the request in the current one-second window; true if it is over the limit.
    fn over_rate_limit(&mut self, now: Instant) -> bool {
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

    /// The configured latency with uniform jitter in 0.5x..1.5x.
    fn sample_latency(&mut self) -> Duration {
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

    /// Logs the request and decides its fate; returns its index in the log.
    fn admit(&mut self, method: &str, path: String, now: Instant) -> (usize, Verdict) {
        let verdict = match self.take_failure(&path) {
            Some(failure) => Verdict::Fail(failure),
            None if self.over_rate_limit(now) => Verdict::RateLimited,
            None => Verdict::Pass(self.sample_latency()),
        };
        self.requests.push(RecordedRequest {
            method: method.to_owned(),
            path,
            received_at: now,
            status: None,
        });
        (self.requests.len() - 1, verdict)
    }
}

/// What a test drives and observes in any fake catalog service; each fake derefs to its own.
#[derive(Default)]
pub struct Controls(Mutex<Knobs>);

impl Controls {
    pub(crate) fn knobs(&self) -> MutexGuard<'_, Knobs> {
        lock(&self.0)
    }

    /// Delays every response by `median` with uniform jitter in 0.5x..1.5x (zero turns it off).
    pub fn set_latency(&self, median: Duration) {
        self.knobs().latency = median;
    }

    /// Beyond `per_second` requests in a one-second window: 429 with a wait of 1 s, stated in
    /// the service's own retry header(s).
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.knobs().set_rate_limit(per_second);
    }

    /// The next `n` requests fail that way; runs queue up behind each other.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.knobs().queue_failures(n, failure, None);
    }

    /// The next `n` requests whose path and query contain `text` (e.g. `page=2`) fail that way
    /// (others pass).
    pub fn fail_next_matching(&self, text: &str, n: usize, failure: Failure) {
        self.knobs()
            .queue_failures(n, failure, Some(text.to_owned()));
    }

    /// Injected failures queued by `fail_next*` that no request has taken yet.
    pub fn pending_failures(&self) -> usize {
        self.knobs().pending_failures()
    }

    /// Every request fails that way until `set_down(None)`.
    pub fn set_down(&self, failure: Option<Failure>) {
        self.knobs().down = failure;
    }

    /// Every request received, 401s, 429s and injected failures included, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.knobs().requests.clone()
    }

    /// Requests with this method (any case) whose path starts with `path_prefix`.
    pub fn calls_to(&self, method: &str, path_prefix: &str) -> usize {
        self.knobs()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .count()
    }

    /// Forgets the recorded requests.
    pub fn reset_counts(&self) {
        self.knobs().requests.clear();
    }
}

/// How one fake service answers what the gate decides, and where its knobs live.
pub(crate) trait Service: Send + Sync + 'static {
    fn knobs(&self) -> MutexGuard<'_, Knobs>;
    /// The service's own 401 when the request's credentials are missing or wrong.
    fn refusal(&self, headers: &HeaderMap) -> Option<Response>;
    /// 429 with the service's retry header(s), if `retry_after_secs` is set.
    fn too_many_requests(&self, retry_after_secs: Option<u64>) -> Response;
    /// An injected [`Failure::Status`] or [`Failure::Malformed`].
    fn failure(&self, failure: &Failure) -> Response;
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The middleware every request passes, in order: recording, injected failure (`set_down`, then
/// `fail_next`), rate limit (429 with `retry after 1 s`), latency, auth, then the route.
pub(crate) async fn gate<S: Service>(
    State(service): State<Arc<S>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let method = request.method().as_str().to_owned();
    let (index, verdict) = service.knobs().admit(&method, path, Instant::now());
    let response = match verdict {
        Verdict::Fail(Failure::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            service.failure(&Failure::Status(504))
        }
        Verdict::Fail(Failure::TooManyRequests { retry_after_secs }) => {
            service.too_many_requests(retry_after_secs)
        }
        Verdict::Fail(failure) => service.failure(&failure),
        Verdict::RateLimited => service.too_many_requests(Some(1)),
        Verdict::Pass(latency) => {
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            match service.refusal(request.headers()) {
                None => next.run(request).await,
                Some(refusal) => refusal,
            }
        }
    };
    if let Some(record) = service.knobs().requests.get_mut(index) {
        record.status = Some(response.status().as_u16());
    }
    response
}

/// A fake serving on a random loopback port until dropped.
pub(crate) struct Serving {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Serving {
    /// Binds 127.0.0.1:0; serve on it with [`Serving::spawn`] once the router exists.
    pub async fn bind() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("binding 127.0.0.1:0 for a fake");
        let addr = listener
            .local_addr()
            .expect("a bound listener has a local address");
        (listener, addr)
    }

    pub fn spawn(listener: TcpListener, router: Router) -> Serving {
        let addr = listener
            .local_addr()
            .expect("a bound listener has a local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Serving { addr, task }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_failures_apply_in_order_and_only_to_matching_paths() {
        let mut knobs = Knobs::default();
        knobs.queue_failures(1, Failure::Status(500), Some("page=2".into()));
        knobs.queue_failures(1, Failure::Malformed, None);
        assert_eq!(
            knobs.take_failure("/cases?page=1"),
            Some(Failure::Malformed)
        );
        assert_eq!(knobs.take_failure("/cases?page=1"), None);
        assert_eq!(
            knobs.take_failure("/cases?page=2"),
            Some(Failure::Status(500))
        );
        assert_eq!(knobs.pending_failures(), 0);
    }

    #[test]
    fn down_mode_wins_over_the_queue() {
        let mut knobs = Knobs::default();
        knobs.queue_failures(1, Failure::Malformed, None);
        knobs.down = Some(Failure::Status(503));
        assert_eq!(knobs.take_failure("/"), Some(Failure::Status(503)));
        assert_eq!(knobs.pending_failures(), 1);
    }

    #[test]
    fn the_rate_limit_allows_exactly_the_limit_per_window() {
        let mut knobs = Knobs::default();
        knobs.set_rate_limit(Some(2));
        let now = Instant::now();
        assert!(!knobs.over_rate_limit(now));
        assert!(!knobs.over_rate_limit(now));
        assert!(knobs.over_rate_limit(now));
        assert!(!knobs.over_rate_limit(now + Duration::from_secs(1)));
    }
}
