//! The one error an upstream call returns, and the HTTP status our API answers it with.

use std::time::Duration;

/// Why a call to an upstream failed. Responses with a status that is not retried (2xx, 3xx, 4xx
/// other than 429) are not errors: the caller maps them into its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The deadline of the call passed (an attempt timed out, or waiting would pass it).
    #[error("the upstream did not answer in time")]
    Timeout,
    /// The connection failed: refused, reset, DNS, TLS...
    #[error("could not reach the upstream: {0}")]
    Connect(String),
    /// A 5xx answer after the retries. `body` is truncated to about 1 KiB.
    #[error("the upstream answered {status}: {body}")]
    Status { status: u16, body: String },
    /// A 429 whose wait does not fit in the deadline (or the attempts ran out).
    #[error("the upstream is rate limiting us (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// The circuit breaker is open: refused without a call.
    #[error("the upstream is failing; calls are paused")]
    CircuitOpen,
}

impl UpstreamError {
    /// The status our own API answers with when this error reaches it.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Timeout => 504,
            Self::Status { .. } => 502,
            Self::Connect(_) | Self::RateLimited { .. } | Self::CircuitOpen => 503,
        }
    }

    /// Maps a reqwest error (for example while a caller reads a response body) to this enum.
    pub fn from_reqwest(err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            Self::Timeout
        } else {
            Self::Connect(error_chain(err))
        }
    }
}

/// An error and its sources joined with ": ", since reqwest's own message hides the cause
/// ("error sending request" rather than "connection refused").
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_the_documented_status() {
        assert_eq!(UpstreamError::Timeout.http_status(), 504);
        let status = UpstreamError::Status {
            status: 500,
            body: String::new(),
        };
        assert_eq!(status.http_status(), 502);
        assert_eq!(UpstreamError::Connect("refused".into()).http_status(), 503);
        let limited = UpstreamError::RateLimited { retry_after: None };
        assert_eq!(limited.http_status(), 503);
        assert_eq!(UpstreamError::CircuitOpen.http_status(), 503);
    }
}
