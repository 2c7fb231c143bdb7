//! The middleware every request passes: record it, then injected failures, rate limit, latency, auth.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::reply;
use super::state::{Failure, RecordedRequest, Shared};

/// Bodies larger than this are answered with 413 (Jira's own limit is far lower for these routes).
const MAX_BODY: usize = 10 * 1024 * 1024;

pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let received_at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY).await;
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());

    let (failure, limited, latency) = {
        let mut state = shared.lock();
        state.requests.push(RecordedRequest {
            method: parts.method.as_str().to_owned(),
            path,
            body: body.as_ref().map(|b| b.to_vec()).unwrap_or_default(),
            received_at,
        });
        let failure = state.take_failure();
        let limited = failure.is_none() && state.over_rate_limit(received_at);
        (
            failure,
            limited.then_some(state.rate_limit).flatten(),
            state.sample_latency(),
        )
    };

    match failure {
        Some(Failure::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return reply::failure(&Failure::Hang);
        }
        Some(failure) => return reply::failure(&failure),
        None => {}
    }
    if let Some(limit) = limited {
        return reply::too_many_requests(1, Some(limit));
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if !authorized(&parts.headers, &shared.email, &shared.token) {
        return reply::unauthorized();
    }
    let Ok(body) = body else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// Basic auth with exactly `email:token`.
fn authorized(headers: &HeaderMap, email: &str, token: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    decode_base64(encoded.trim())
        .is_some_and(|decoded| decoded == format!("{email}:{token}").as_bytes())
}

/// Standard base64 with optional padding; `None` on any other character.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        acc = (acc << 6) | sextet(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("YTpi").as_deref(), Some(&b"a:b"[..]));
        assert_eq!(decode_base64("YTpiYw==").as_deref(), Some(&b"a:bc"[..]));
        assert_eq!(decode_base64("YTpiYw").as_deref(), Some(&b"a:bc"[..]));
        assert_eq!(decode_base64("!!"), None);
    }

    #[test]
    fn only_the_exact_credentials_are_accepted() {
        let mut headers = HeaderMap::new();
        assert!(!authorized(&headers, "a", "b"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YTpi"),
        );
        assert!(authorized(&headers, "a", "b"));
        assert!(!authorized(&headers, "a", "c"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer YTpi"),
        );
        assert!(!authorized(&headers, "a", "b"));
    }
}
