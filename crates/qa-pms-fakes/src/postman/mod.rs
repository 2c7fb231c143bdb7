//! `FakePostman`: the Postman API (`GET /collections`, `GET /collections/{uid}` in Collection v2.1
//! format) on 127.0.0.1, driven and observed by the test.
//!
//! Every request passes, in order: recording, injected failure (`set_down`, then `fail_next`),
//! rate limit, latency, `X-Api-Key` auth, then the route. A 429 states its wait in
//! `X-RateLimit-RetryAfter` and `RetryAfter` (seconds), never in `Retry-After`.

mod collection;
mod demo;
pub(crate) mod harness;
mod reply;
mod routes;
mod state;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use collection::{folder, request, FakeCollection, DEFAULT_OWNER, DEFAULT_WORKSPACE};
pub use demo::{demo_collections, CATALOG_WORKSPACE};
pub use harness::{Failure, RecordedRequest};
pub use state::RETRY_HEADERS;

use harness::{Service, Serving};
use state::Shared;

/// The API key the fake accepts in `X-Api-Key`.
const API_KEY: &str = "PMAK-65f1c0ffee0123456789abcd-0123456789abcdef0123456789abcdef01";

/// A fake Postman API on a random loopback port; it stops serving when dropped.
pub struct FakePostman {
    shared: Arc<Shared>,
    serving: Serving,
}

impl std::fmt::Debug for FakePostman {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePostman")
            .field("addr", &self.serving.addr)
            .finish_non_exhaustive()
    }
}

impl FakePostman {
    /// Binds 127.0.0.1:0 and serves in a tokio task, with no collections.
    pub async fn start() -> FakePostman {
        let (listener, addr) = Serving::bind().await;
        let shared = Arc::new(Shared::new(format!("http://{addr}"), API_KEY.to_owned()));
        let serving = Serving::spawn(listener, routes::router(shared.clone()));
        FakePostman { shared, serving }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.serving.addr
    }

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// Adds the collection, or replaces the one with the same uid; items without an `id` get one.
    pub fn put_collection(&self, mut collection: FakeCollection) {
        collection.fill_item_ids();
        let mut data = self.shared.data();
        let uid = collection.uid();
        match data.collections.iter_mut().find(|c| c.uid() == uid) {
            Some(existing) => *existing = collection,
            None => data.collections.push(collection),
        }
    }

    /// The stored collection with this uid (with the item ids it was given).
    pub fn collection(&self, uid: &str) -> Option<FakeCollection> {
        let data = self.shared.data();
        data.collections.iter().find(|c| c.uid() == uid).cloned()
    }

    pub fn remove_collection(&self, uid: &str) {
        self.shared.data().collections.retain(|c| c.uid() != uid);
    }

    /// Lowers any `limit` above `max` to `max` (`None`: honour every limit).
    pub fn set_max_page_size(&self, max: Option<usize>) {
        self.shared.data().max_page_size = max;
    }

    /// The headers a 429 states its wait in (default [`RETRY_HEADERS`]).
    pub fn set_retry_after_headers(&self, headers: &'static [&'static str]) {
        self.shared.data().retry_headers = headers;
    }

    /// Delays every response by `median` with uniform jitter in 0.5x..1.5x (zero turns it off).
    pub fn set_latency(&self, median: Duration) {
        self.shared.knobs().latency = median;
    }

    /// Beyond `per_second` requests in a one-second window: 429 with a wait of 1 s.
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.shared.knobs().set_rate_limit(per_second);
    }

    /// The next `n` requests fail that way; runs queue up behind each other.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.shared.knobs().queue_failures(n, failure, None);
    }

    /// The next `n` requests whose path and query contain `text` fail that way (others pass).
    pub fn fail_next_matching(&self, text: &str, n: usize, failure: Failure) {
        self.shared
            .knobs()
            .queue_failures(n, failure, Some(text.to_owned()));
    }

    /// Injected failures queued by `fail_next*` that no request has taken yet.
    pub fn pending_failures(&self) -> usize {
        self.shared.knobs().pending_failures()
    }

    /// Every request fails that way until `set_down(None)`.
    pub fn set_down(&self, failure: Option<Failure>) {
        self.shared.knobs().down = failure;
    }

    /// Every request received, 401s, 429s and injected failures included, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.knobs().requests.clone()
    }

    /// Requests with this method (any case) whose path starts with `path_prefix`.
    pub fn calls_to(&self, method: &str, path_prefix: &str) -> usize {
        self.shared
            .knobs()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .count()
    }

    /// Forgets the recorded requests.
    pub fn reset_counts(&self) {
        self.shared.knobs().requests.clear();
    }
}
