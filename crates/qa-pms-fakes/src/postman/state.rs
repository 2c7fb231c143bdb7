//! The fake Postman's shared state (collections, paging and retry-header settings) and how it
//! answers the harness: `X-Api-Key` auth, Postman's 401 and 429 bodies.

use std::sync::{Mutex, MutexGuard};

use axum::http::HeaderMap;
use axum::response::Response;

use super::collection::FakeCollection;
use super::reply;
use crate::harness::{lock, Controls, Failure, Knobs, Service};

/// The headers Postman states the wait of a 429 in.
pub const RETRY_HEADERS: &[&str] = &["X-RateLimit-RetryAfter", "RetryAfter"];

pub(crate) struct Shared {
    pub base_url: String,
    pub api_key: String,
    pub controls: Controls,
    data: Mutex<Data>,
}

pub(crate) struct Data {
    /// In creation order; `put_collection` replaces one with the same uid in place.
    pub collections: Vec<FakeCollection>,
    /// A `limit` above this is lowered to it (as servers clamp page sizes).
    pub max_page_size: Option<usize>,
    pub retry_headers: &'static [&'static str],
}

impl Shared {
    pub fn new(base_url: String, api_key: String) -> Self {
        Self {
            base_url,
            api_key,
            controls: Controls::default(),
            data: Mutex::new(Data {
                collections: Vec::new(),
                max_page_size: None,
                retry_headers: RETRY_HEADERS,
            }),
        }
    }

    pub fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.data)
    }
}

impl Service for Shared {
    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.controls.knobs()
    }

    fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        match headers.get("x-api-key").map(|v| v.as_bytes()) {
            None => Some(reply::api_key_missing()),
            Some(key) if key == self.api_key.as_bytes() => None,
            Some(_) => Some(reply::api_key_invalid()),
        }
    }

    fn too_many_requests(&self, retry_after_secs: Option<u64>) -> Response {
        let headers = self.data().retry_headers;
        reply::too_many_requests(retry_after_secs, headers)
    }

    fn failure(&self, failure: &Failure) -> Response {
        reply::failure(failure)
    }
}
