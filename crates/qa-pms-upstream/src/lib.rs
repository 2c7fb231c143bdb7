//! Resilience around the HTTP calls to one named upstream (Jira now, Postman and Testmo later):
//! a rate budget, retries with backoff, `Retry-After`, a circuit breaker, a deadline, counters.
//!
//! This crate knows nothing of any upstream's API, of axum or of the cache: a client builds a
//! `reqwest::RequestBuilder` and [`Upstream::send`] decides when, and how often, to send it.

mod breaker;
mod error;
mod retry_after;
mod stats;

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::{RequestBuilder, Response, StatusCode};
use tokio::time::Instant;

use breaker::{Breaker, Verdict};
pub use error::UpstreamError;
use stats::Stats;
pub use stats::{Outcome, UpstreamStats, DURATION_BUCKETS};

/// The first retry waits up to this long; each later one up to twice the previous, capped.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The body of a final 5xx kept in [`UpstreamError::Status`].
const ERROR_BODY_MAX: usize = 1024;
/// A safety net over the deadline, should an await ever outlive it.
const DEADLINE_SLACK: Duration = Duration::from_millis(100);

/// The settings of one upstream.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// "jira", "postman", "testmo": the `upstream` metric label.
    pub name: &'static str,
    /// Never more than this many requests per second: one every `1 / max_rps`, no bursts, so
    /// that no one-second window of the upstream's own limiter sees more.
    pub max_rps: u32,
    /// The deadline of one [`Upstream::send`] call, all attempts and waits included.
    pub timeout: Duration,
    /// HTTP attempts per `send`, the first included.
    pub max_attempts: u32,
    /// Consecutive failed `send` calls that open the circuit.
    pub breaker_threshold: u32,
    /// How long the circuit stays open before one probe is let through.
    pub breaker_cooldown: Duration,
    /// Headers that say how long a 429 asks us to wait, read in order.
    pub retry_after_headers: &'static [&'static str],
    /// The wait after a 429 without a usable header; `None` backs off instead.
    pub default_retry_after: Option<Duration>,
}

impl UpstreamConfig {
    /// A config with 4 attempts, a breaker of 5 failures and 5 s, and `Retry-After`.
    pub fn new(name: &'static str, max_rps: u32, timeout: Duration) -> Self {
        Self {
            name,
            max_rps,
            timeout,
            max_attempts: 4,
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(5),
            retry_after_headers: &["retry-after"],
            default_retry_after: None,
        }
    }
}

/// One upstream, shared by every task that calls it. Cloning is cheap and shares the budget, the
/// breaker and the counters.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    config: UpstreamConfig,
    limiter: DefaultDirectRateLimiter,
    /// Set by a 429: no request to this upstream leaves before then.
    paused_until: Mutex<Option<Instant>>,
    breaker: Breaker,
    stats: Stats,
}

/// What to do after one HTTP attempt.
enum Step {
    Done(Result<Response, UpstreamError>),
    /// Retry after this wait, unless the attempts or the deadline run out; then fail with this.
    Retry(Duration, Failed),
}

/// A failed attempt; a 5xx keeps its response so that the final error can quote its body.
enum Failed {
    Error(UpstreamError),
    ServerError(Response),
}

impl Failed {
    async fn into_error(self) -> UpstreamError {
        match self {
            Failed::Error(error) => error,
            Failed::ServerError(response) => UpstreamError::Status {
                status: response.status().as_u16(),
                body: truncated_body(response).await,
            },
        }
    }
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Self {
        let rps = NonZeroU32::new(config.max_rps).unwrap_or(NonZeroU32::MIN);
        let breaker = Breaker::new(
            config.name,
            config.breaker_threshold,
            config.breaker_cooldown,
        );
        Self {
            inner: Arc::new(Inner {
                limiter: RateLimiter::direct(Quota::per_second(rps).allow_burst(NonZeroU32::MIN)),
                paused_until: Mutex::new(None),
                breaker,
                stats: Stats::default(),
                config,
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.inner.config.name
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.inner.config
    }

    /// Sends the request `build` makes (called once per attempt), through the breaker, the rate
    /// budget and the retry policy, all within `config.timeout`. Returns the response for any
    /// status that is not retried (2xx, 3xx, 4xx other than 429); the caller maps 4xx into its
    /// own errors.
    ///
    /// Each HTTP attempt counts one request with its outcome and duration. A call that ends
    /// without any HTTP attempt (refused by the breaker, or its deadline passed while waiting for
    /// the rate budget or a 429 pause) counts one request with that outcome and no duration.
    pub async fn send(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, UpstreamError> {
        let inner = &*self.inner;
        let Some(permit) = inner.breaker.try_acquire() else {
            inner.stats.record(Outcome::CircuitOpen, None);
            return Err(UpstreamError::CircuitOpen);
        };
        let deadline = Instant::now() + inner.config.timeout;
        let mut reached_upstream = false;
        let attempts = self.attempts(&build, deadline, &mut reached_upstream);
        let result = tokio::time::timeout_at(deadline + DEADLINE_SLACK, attempts)
            .await
            .unwrap_or(Err(UpstreamError::Timeout));
        permit.report(match &result {
            Ok(_) => Verdict::Success,
            Err(UpstreamError::RateLimited { .. } | UpstreamError::CircuitOpen) => Verdict::Neutral,
            Err(_) if !reached_upstream => Verdict::Neutral,
            Err(_) => Verdict::Failure,
        });
        result
    }

    /// A snapshot of the counters, for `/metrics`.
    pub fn stats(&self) -> UpstreamStats {
        self.inner
            .stats
            .snapshot(self.name(), self.inner.breaker.is_open())
    }

    /// True while the breaker refuses calls or lets only one probe through.
    pub fn circuit_open(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// True while the last call succeeded (the breaker is closed and counts no failure): callers
    /// may then answer from what they have and call in the background.
    pub fn healthy(&self) -> bool {
        self.inner.breaker.is_healthy()
    }

    async fn attempts(
        &self,
        build: &impl Fn() -> RequestBuilder,
        deadline: Instant,
        reached_upstream: &mut bool,
    ) -> Result<Response, UpstreamError> {
        let inner = &*self.inner;
        let name = inner.config.name;
        let max_attempts = inner.config.max_attempts.max(1);
        let mut backoff = ExponentialBuilder::new()
            .with_min_delay(BACKOFF_MIN)
            .with_max_delay(BACKOFF_MAX)
            .without_max_times()
            .build();
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Err(refusal) = self.wait_for_budget(deadline).await {
                if !*reached_upstream {
                    let outcome = match refusal {
                        UpstreamError::RateLimited { .. } => Outcome::RateLimited,
                        _ => Outcome::Timeout,
                    };
                    inner.stats.record(outcome, None);
                }
                return Err(refusal);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            let started = Instant::now();
            let sent = build().timeout(remaining).send().await;
            *reached_upstream = true;
            let (outcome, step) = self.judge(sent, &mut backoff);
            inner.stats.record(outcome, Some(started.elapsed()));
            let (wait, failed) = match step {
                Step::Done(result) => return result,
                Step::Retry(wait, failed) => (wait, failed),
            };
            if attempt >= max_attempts || Instant::now() + wait >= deadline {
                return Err(failed.into_error().await);
            }
            tracing::warn!(
                upstream = name,
                attempt,
                ?wait,
                outcome = outcome.as_str(),
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Waits out a 429 pause and then for a permit of the rate budget, or says why the deadline
    /// does not leave time for it. A pause set by another caller while we queued for the permit
    /// is waited out too.
    async fn wait_for_budget(&self, deadline: Instant) -> Result<(), UpstreamError> {
        loop {
            if let Some(until) = self.paused_until() {
                if until >= deadline {
                    let retry_after = Some(until.saturating_duration_since(Instant::now()));
                    return Err(UpstreamError::RateLimited { retry_after });
                }
                tokio::time::sleep_until(until).await;
            }
            let permit = tokio::time::timeout_at(deadline, self.inner.limiter.until_ready()).await;
            if permit.is_err() || Instant::now() >= deadline {
                return Err(UpstreamError::Timeout);
            }
            if self.paused_until().is_none() {
                return Ok(());
            }
        }
    }

    /// The end of the current 429 pause, if one is running.
    fn paused_until(&self) -> Option<Instant> {
        let paused = *self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        paused.filter(|until| *until > Instant::now())
    }

    /// Classifies one attempt: its outcome for the counters, and whether to retry.
    fn judge(
        &self,
        sent: Result<Response, reqwest::Error>,
        backoff: &mut impl Iterator<Item = Duration>,
    ) -> (Outcome, Step) {
        let mut jittered = || full_jitter(backoff.next().unwrap_or(BACKOFF_MAX));
        let response = match sent {
            Ok(response) => response,
            Err(err) if err.is_builder() => {
                let error = UpstreamError::Connect(error::error_chain(&err));
                return (Outcome::ConnectError, Step::Done(Err(error)));
            }
            Err(err) if err.is_timeout() => {
                let failed = Failed::Error(UpstreamError::Timeout);
                return (Outcome::Timeout, Step::Retry(jittered(), failed));
            }
            Err(err) => {
                let error = UpstreamError::Connect(error::error_chain(&err));
                return (
                    Outcome::ConnectError,
                    Step::Retry(jittered(), Failed::Error(error)),
                );
            }
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let config = &self.inner.config;
            let asked = retry_after::retry_after(
                response.headers(),
                config.retry_after_headers,
                SystemTime::now(),
            )
            .or(config.default_retry_after);
            if let Some(wait) = asked {
                self.pause_for(wait);
            }
            let failed = Failed::Error(UpstreamError::RateLimited { retry_after: asked });
            let wait = asked.unwrap_or_else(jittered);
            (Outcome::RateLimited, Step::Retry(wait, failed))
        } else if status.is_server_error() {
            let wait = jittered();
            (
                Outcome::ServerError,
                Step::Retry(wait, Failed::ServerError(response)),
            )
        } else if status.is_client_error() {
            (Outcome::ClientError, Step::Done(Ok(response)))
        } else {
            (Outcome::Success, Step::Done(Ok(response)))
        }
    }

    /// Makes every later request to this upstream wait until `wait` has passed.
    fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut paused = self
            .inner
            .paused_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if paused.is_none_or(|current| current < until) {
            tracing::warn!(
                upstream = self.name(),
                ?wait,
                "rate limited: pausing all requests"
            );
            *paused = Some(until);
        }
    }
}

/// A wait drawn uniformly between zero and the exponential delay ("full jitter"), so that callers
/// failing together do not retry together.
fn full_jitter(delay: Duration) -> Duration {
    rand::thread_rng().gen_range(Duration::ZERO..=delay)
}

/// The start of a response body, for an error message: at most [`ERROR_BODY_MAX`] bytes are read.
async fn truncated_body(mut response: Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_MAX {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(ERROR_BODY_MAX);
    let mut body = String::from_utf8_lossy(&bytes).into_owned();
    if body.ends_with(char::REPLACEMENT_CHARACTER) {
        body.pop();
    }
    body
}
