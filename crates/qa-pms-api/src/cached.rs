//! How a cached read becomes an HTTP response: the JSON bytes stored with the entry, plus
//! `X-Cache-Status` (HIT/MISS/STALE/UPDATING/BYPASS, as nginx names them), the RFC 9211 `Cache-Status` header (on errors too) and
//! `Age` on what came from the cache, and the entry's `ETag` (`layers.rs` answers a matching
//! `If-None-Match` with 304).

use std::sync::LazyLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::{AGE, CONTENT_TYPE, ETAG};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use qa_pms_core::cache::{Lookup, LookupStatus};

use crate::error::ApiError;

pub const X_CACHE_STATUS: HeaderName = HeaderName::from_static("x-cache-status");
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

const HIT: HeaderValue = HeaderValue::from_static("HIT");
const MISS: HeaderValue = HeaderValue::from_static("MISS");
const STALE: HeaderValue = HeaderValue::from_static("STALE");
const UPDATING: HeaderValue = HeaderValue::from_static("UPDATING");
/// The client's `Cache-Control` sent the request to the source (nginx's name for it).
const BYPASS: HeaderValue = HeaderValue::from_static("BYPASS");
const UPDATING_STATUS: HeaderValue =
    HeaderValue::from_static("qa-pms; hit; fwd=stale; detail=stale-while-revalidate");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const FWD_MISS: HeaderValue = HeaderValue::from_static("qa-pms; fwd=miss");

/// Headers of a cached response once it leaves the stack: the five set here, `X-Request-Id` and
/// `Content-Length`.
const RESPONSE_HEADERS: usize = 8;

/// Seconds covered by the prebuilt header values below: an hour.
const PREBUILT_SECONDS: u64 = 3_600;

/// `Cache-Status` values of hits, one per second of TTL left up to an hour, built once so that a
/// hit allocates nothing for its headers.
static HIT_VALUES: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    (0..=PREBUILT_SECONDS)
        .map(|ttl| hit_value(ttl).unwrap_or(FWD_MISS))
        .collect()
});

/// `Age` values up to an hour, for the same reason.
static AGE_VALUES: LazyLock<Vec<HeaderValue>> =
    LazyLock::new(|| (0..=PREBUILT_SECONDS).map(HeaderValue::from).collect());

fn age_value(age: Duration) -> HeaderValue {
    let seconds = age.as_secs();
    usize::try_from(seconds)
        .ok()
        .and_then(|i| AGE_VALUES.get(i).cloned())
        .unwrap_or_else(|| HeaderValue::from(seconds))
}

fn stale_status(fwd_status: u16) -> HeaderValue {
    HeaderValue::try_from(format!(
        "qa-pms; hit; fwd=stale; fwd-status={fwd_status}; detail=stale-if-error"
    ))
    .unwrap_or(FWD_MISS)
}

fn hit_value(ttl: u64) -> Option<HeaderValue> {
    HeaderValue::try_from(format!("qa-pms; hit; ttl={ttl}")).ok()
}

fn hit_status(ttl_left: Duration) -> HeaderValue {
    let ttl = ttl_left.as_secs();
    usize::try_from(ttl)
        .ok()
        .and_then(|i| HIT_VALUES.get(i).cloned())
        .or_else(|| hit_value(ttl))
        .unwrap_or(FWD_MISS)
}

/// The response of a cached endpoint. Handlers take their extractors as `Result`s and put every
/// error here too, so that each response of those endpoints says how the cache answered it.
#[derive(Debug)]
pub struct Cached<V>(pub Result<Lookup<V>, ApiError>);

impl<V> IntoResponse for Cached<V> {
    fn into_response(self) -> Response {
        let Lookup { entry, status } = match self.0 {
            Ok(lookup) => lookup,
            Err(error) => {
                // Answered without an entry: a 400 before any lookup, or a failed load.
                let mut response = error.into_response();
                let headers = response.headers_mut();
                headers.insert(X_CACHE_STATUS, MISS);
                headers.insert(CACHE_STATUS, FWD_MISS);
                return response;
            }
        };
        let mut age = None;
        let (x_cache, cache_status) = match status {
            LookupStatus::Hit {
                ttl_left,
                age: entry_age,
            } => {
                age = Some(age_value(entry_age));
                (HIT, hit_status(ttl_left))
            }
            LookupStatus::Stale {
                age: entry_age,
                fwd_status,
            } => {
                age = Some(age_value(entry_age));
                (STALE, stale_status(fwd_status))
            }
            LookupStatus::Updating { age: entry_age } => {
                age = Some(age_value(entry_age));
                (UPDATING, UPDATING_STATUS)
            }
            LookupStatus::Miss { stored, collapsed } => {
                let value = match (stored, collapsed) {
                    (true, false) => "qa-pms; fwd=miss; stored",
                    (true, true) => "qa-pms; fwd=miss; stored; collapsed",
                    (false, false) => "qa-pms; fwd=miss",
                    (false, true) => "qa-pms; fwd=miss; collapsed",
                };
                (MISS, HeaderValue::from_static(value))
            }
            LookupStatus::Forwarded { stored } => {
                let value = if stored {
                    "qa-pms; fwd=request; stored"
                } else {
                    "qa-pms; fwd=request"
                };
                (BYPASS, HeaderValue::from_static(value))
            }
            LookupStatus::Bypass => (MISS, HeaderValue::from_static("qa-pms; fwd=bypass")),
        };
        // Room for these headers and those added on the way out (`X-Request-Id`,
        // `Content-Length`): the map is allocated once and never grows.
        let mut headers = HeaderMap::with_capacity(RESPONSE_HEADERS);
        headers.insert(CONTENT_TYPE, JSON);
        headers.insert(X_CACHE_STATUS, x_cache);
        headers.insert(CACHE_STATUS, cache_status);
        if let Some(age) = age {
            headers.insert(AGE, age);
        }
        if let Ok(etag) = HeaderValue::from_maybe_shared(entry.etag_bytes().clone()) {
            headers.insert(ETAG, etag);
        }
        let mut response = Response::new(Body::from(entry.json().clone()));
        *response.headers_mut() = headers;
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_values_name_the_seconds_left_within_and_beyond_the_table() {
        assert_eq!(
            hit_status(Duration::from_millis(299_900)),
            "qa-pms; hit; ttl=299"
        );
        assert_eq!(hit_status(Duration::ZERO), "qa-pms; hit; ttl=0");
        assert_eq!(
            hit_status(Duration::from_secs(86_400)),
            "qa-pms; hit; ttl=86400"
        );
    }

    #[test]
    fn age_values_are_whole_seconds_within_and_beyond_the_table() {
        assert_eq!(age_value(Duration::from_millis(1_999)), "1");
        assert_eq!(age_value(Duration::from_secs(90_000)), "90000");
    }

    #[test]
    fn stale_answers_name_the_upstream_status() {
        assert_eq!(
            stale_status(503),
            "qa-pms; hit; fwd=stale; fwd-status=503; detail=stale-if-error"
        );
    }
}
