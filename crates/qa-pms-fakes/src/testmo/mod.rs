//! `FakeTestmo`: a Testmo site's REST API (`GET /api/v1/projects/{id}/cases`, paginated) on
//! 127.0.0.1, driven and observed by the test.
//!
//! Every request passes, in order: recording, injected failure (`set_down`, then `fail_next`),
//! rate limit, latency, Bearer auth, then the route. A 429 states its wait in `Retry-After`
//! (seconds), or, injected with `retry_after_secs: None`, not at all.

mod case;
mod reply;
mod routes;
mod state;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use crate::postman::harness::{Failure, RecordedRequest};
pub use case::{demo_cases, FakeCase};

use crate::postman::harness::{Service, Serving};
use state::Shared;

/// The API token the fake accepts as `Authorization: Bearer <token>`.
const TOKEN: &str = "testmo_api_eyJpdiI6IkZha2VUZXN0bW9Ub2tlbiIsInZhbHVlIjoiMDEyMzQ1In0";

/// A fake Testmo site on a random loopback port; it stops serving when dropped.
pub struct FakeTestmo {
    shared: Arc<Shared>,
    serving: Serving,
}

impl std::fmt::Debug for FakeTestmo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTestmo")
            .field("addr", &self.serving.addr)
            .finish_non_exhaustive()
    }
}

impl FakeTestmo {
    /// Binds 127.0.0.1:0 and serves in a tokio task, with no projects.
    pub async fn start() -> FakeTestmo {
        let (listener, addr) = Serving::bind().await;
        let shared = Arc::new(Shared::new(format!("http://{addr}"), TOKEN.to_owned()));
        let serving = Serving::spawn(listener, routes::router(shared.clone()));
        FakeTestmo { shared, serving }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.serving.addr
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Creates the project (empty) if it does not exist; unknown projects answer 404.
    pub fn add_project(&self, project_id: u64) {
        self.shared.projects().entry(project_id).or_default();
    }

    /// Adds the case to the project (creating it), or replaces the one with the same id.
    pub fn put_case(&self, project_id: u64, case: FakeCase) {
        self.put_cases(project_id, [case]);
    }

    pub fn put_cases(&self, project_id: u64, cases: impl IntoIterator<Item = FakeCase>) {
        let mut projects = self.shared.projects();
        let project = projects.entry(project_id).or_default();
        for case in cases {
            project.insert(case.id, case);
        }
    }

    pub fn remove_case(&self, project_id: u64, case_id: u64) {
        if let Some(project) = self.shared.projects().get_mut(&project_id) {
            project.remove(&case_id);
        }
    }

    /// Delays every response by `median` with uniform jitter in 0.5x..1.5x (zero turns it off).
    pub fn set_latency(&self, median: Duration) {
        self.shared.knobs().latency = median;
    }

    /// Beyond `per_second` requests in a one-second window: 429 with `Retry-After: 1`.
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        self.shared.knobs().set_rate_limit(per_second);
    }

    /// The next `n` requests fail that way; runs queue up behind each other.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.shared.knobs().queue_failures(n, failure, None);
    }

    /// The next `n` requests whose path and query contain `text` (e.g. `page=2`) fail that way.
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
