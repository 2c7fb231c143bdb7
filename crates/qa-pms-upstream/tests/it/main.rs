//! Behaviour of `Upstream::send` against a real HTTP server (wiremock): retries, the rate
//! budget, 429 pauses, deadlines and the circuit breaker.
#![allow(clippy::unwrap_used)]

mod breaker;
mod rate;
mod retries;
mod support;
