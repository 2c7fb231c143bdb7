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

pub use crate::harness::{Controls, Failure, RecordedRequest};
pub use case::{demo_cases, FakeCase};

use crate::harness::Serving;
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
}

/// Latency, rate limit, injected failures and the request log: see [`Controls`].
impl std::ops::Deref for FakeTestmo {
    type Target = Controls;

    fn deref(&self) -> &Controls {
        &self.shared.controls
    }
}
