//! The circuit breaker of one upstream: closed, open, then half-open with a single probe.
//!
//! Hand-written rather than taken from a crate: we need a half-open state that lets exactly one
//! probe through while every other caller is still refused, a gauge for `/metrics`, and
//! breaker failures counted per `send` call (after its retries) rather than per HTTP attempt. That
//! is a small state machine under one mutex, simpler to read than to configure a generic one.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// How a `send` call ended, as far as the breaker is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The upstream answered (any status that is not retried).
    Success,
    /// 5xx, timeouts or connection errors after the retries.
    Failure,
    /// Neither: rate limited, or cancelled before an answer.
    Neutral,
}

pub(crate) struct Breaker {
    name: &'static str,
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

/// Permission to make one call; a probe must report back (dropping it unreported frees the probe
/// slot, so a cancelled probe does not keep the circuit half-open forever).
pub(crate) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub(crate) fn new(name: &'static str, threshold: u32, cooldown: Duration) -> Self {
        Self {
            name,
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// A permit to call, or `None` when the call must be refused.
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } if Instant::now() < until => return None,
            State::Open { .. } => {
                tracing::warn!(upstream = self.name, "circuit half-open: sending one probe");
                true
            }
            State::HalfOpen { probing: true } => return None,
            State::HalfOpen { probing: false } => true,
        };
        if probe {
            *state = State::HalfOpen { probing: true };
        }
        Some(Permit {
            breaker: self,
            probe,
            reported: false,
        })
    }

    /// True while closed with no failure counted since the last success.
    pub(crate) fn is_healthy(&self) -> bool {
        matches!(*self.lock(), State::Closed { failures: 0 })
    }

    /// True while calls are refused or only a probe is let through (open or half-open).
    pub(crate) fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    fn record(&self, probe: bool, verdict: Verdict) {
        let mut state = self.lock();
        let next = match (&*state, probe, verdict) {
            (_, true, Verdict::Success) => {
                tracing::warn!(upstream = self.name, "circuit closed: the probe succeeded");
                State::Closed { failures: 0 }
            }
            (_, true, Verdict::Failure) => {
                tracing::warn!(upstream = self.name, cooldown = ?self.cooldown, "circuit open again: the probe failed");
                State::Open {
                    until: Instant::now() + self.cooldown,
                }
            }
            (_, true, Verdict::Neutral) => State::HalfOpen { probing: false },
            // Calls let through while closed only move the count while still closed.
            (State::Closed { .. }, false, Verdict::Success) => State::Closed { failures: 0 },
            (State::Closed { failures }, false, Verdict::Failure) => {
                let failures = failures + 1;
                if failures >= self.threshold {
                    tracing::warn!(upstream = self.name, failures, cooldown = ?self.cooldown, "circuit open");
                    State::Open {
                        until: Instant::now() + self.cooldown,
                    }
                } else {
                    State::Closed { failures }
                }
            }
            _ => return,
        };
        *state = next;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Permit<'_> {
    pub(crate) fn report(mut self, verdict: Verdict) {
        self.reported = true;
        self.breaker.record(self.probe, verdict);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.record(true, Verdict::Neutral);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOLDOWN: Duration = Duration::from_millis(50);

    fn call(breaker: &Breaker, verdict: Verdict) {
        breaker.try_acquire().expect("a permit").report(verdict);
    }

    async fn wait_out_the_cooldown() {
        tokio::time::sleep(COOLDOWN * 2).await;
    }

    #[tokio::test]
    async fn half_open_lets_exactly_one_probe_through() {
        let breaker = Breaker::new("test", 2, COOLDOWN);
        call(&breaker, Verdict::Failure);
        call(&breaker, Verdict::Failure);
        assert!(breaker.is_open());
        assert!(breaker.try_acquire().is_none());

        wait_out_the_cooldown().await;
        let probe = breaker.try_acquire();
        assert!(probe.is_some());
        assert!(
            breaker.try_acquire().is_none(),
            "a second caller is refused"
        );

        drop(probe);
        assert!(breaker.is_open());
        call(&breaker, Verdict::Success);
        assert!(!breaker.is_open(), "a cancelled probe frees the slot");
    }

    #[tokio::test]
    async fn a_success_resets_the_count_of_consecutive_failures() {
        let breaker = Breaker::new("test", 2, COOLDOWN);
        for verdict in [Verdict::Failure, Verdict::Success, Verdict::Failure] {
            call(&breaker, verdict);
        }
        assert!(!breaker.is_open());
    }

    #[tokio::test]
    async fn a_failed_probe_opens_the_circuit_for_another_cooldown() {
        let breaker = Breaker::new("test", 1, COOLDOWN);
        call(&breaker, Verdict::Failure);
        wait_out_the_cooldown().await;
        call(&breaker, Verdict::Failure);
        assert!(breaker.try_acquire().is_none());
        wait_out_the_cooldown().await;
        assert!(breaker.try_acquire().is_some());
    }
}
