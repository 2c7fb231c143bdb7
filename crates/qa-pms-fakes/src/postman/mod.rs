//! `FakePostman`: the Postman API (`GET /collections`, `GET /collections/{uid}` in Collection v2.1
//! format) on 127.0.0.1, driven and observed by the test.
//!
//! Every request passes, in order: recording, injected failure (`set_down`, then `fail_next`),
//! rate limit, latency, `X-Api-Key` auth, then the route. A 429 states its wait in
//! `X-RateLimit-RetryAfter` and `RetryAfter` (seconds), never in `Retry-After`.

mod collection;
mod demo;
mod reply;
mod routes;
mod state;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::harness::{Controls, Failure, RecordedRequest};
pub use collection::{folder, request, FakeCollection, DEFAULT_OWNER, DEFAULT_WORKSPACE};
pub use demo::{demo_collections, CATALOG_WORKSPACE};
pub use state::RETRY_HEADERS;

use crate::harness::Serving;
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
}

/// Latency, rate limit, injected failures and the request log: see [`Controls`].
impl std::ops::Deref for FakePostman {
    type Target = Controls;

    fn deref(&self) -> &Controls {
        &self.shared.controls
    }
}
