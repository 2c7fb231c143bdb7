//! `FakeJira`: a Jira Cloud site speaking REST API v3 on 127.0.0.1, driven and observed by the test.
//!
//! Every request passes, in order: recording, injected failure (`set_down`, then `fail_next`),
//! rate limit, latency, Basic auth, then the route.

mod adf;
mod edit;
mod gate;
mod issue;
mod reply;
mod routes;
mod search;
mod server;
mod state;
mod webhook;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use issue::{account_id_for, FakeIssue, DEFAULT_SITE, JIRA_TIME_FORMAT};
pub use state::{Failure, RecordedRequest};
pub use webhook::{webhook_body, webhook_signature, WEBHOOK_USER};

use server::Running;
use state::Shared;

/// The credentials the fake requires (Basic auth `email:token`).
const EMAIL: &str = "qa-bot@example.com";
const TOKEN: &str = "ATATT3xFfGF0-fake-jira-api-token";

/// A fake Jira Cloud site on a random loopback port; it stops serving when dropped.
pub struct FakeJira {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Option<Running>,
}

impl std::fmt::Debug for FakeJira {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeJira")
            .field("addr", &self.addr)
            .field("listening", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl FakeJira {
    /// Binds 127.0.0.1:0 and serves in a tokio task.
    pub async fn start() -> FakeJira {
        let listener = server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("binding 127.0.0.1:0 for the fake Jira");
        let addr = listener
            .local_addr()
            .expect("a bound listener has a local address");
        let shared = Arc::new(Shared::new(
            format!("http://{addr}"),
            EMAIL.to_owned(),
            TOKEN.to_owned(),
        ));
        let running = server::spawn(listener, routes::router(shared.clone()));
        FakeJira {
            addr,
            shared,
            running: Some(running),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn email(&self) -> &str {
        &self.shared.email
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Creates or replaces the issue with this key.
    pub fn put_issue(&self, issue: FakeIssue) {
        self.shared.lock().issues.insert(issue.key.clone(), issue);
    }

    pub fn issue(&self, key: &str) -> Option<FakeIssue> {
        self.shared.lock().issues.get(key).cloned()
    }

    pub fn remove_issue(&self, key: &str) {
        self.shared.lock().issues.remove(key);
    }

    /// The users `/user/search` finds and `PUT` accepts as assignees: (accountId, displayName).
    pub fn set_users(&self, users: Vec<(String, String)>) {
        self.shared.lock().users = users;
    }

    /// Delays every response by `median` with uniform jitter in 0.5x..1.5x (zero turns it off).
    pub fn set_latency(&self, median: Duration) {
        self.shared.lock().latency = median;
    }

    /// Beyond `per_second` requests in a one-second window: 429 with `Retry-After: 1`.
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        let mut state = self.shared.lock();
        state.rate_limit = per_second;
        state.reset_rate_window();
    }

    /// The next `n` requests fail that way; calls queue up behind each other.
    pub fn fail_next(&self, n: usize, failure: Failure) {
        self.shared.lock().queue_failures(n, failure);
    }

    /// Drops the failures queued by `fail_next` that no request has taken yet.
    pub fn clear_failures(&self) {
        self.shared.lock().clear_failures();
    }

    /// Injected failures queued by `fail_next` that no request has taken yet.
    pub fn pending_failures(&self) -> usize {
        self.shared.lock().pending_failures()
    }

    /// Every request fails that way until `set_down(None)`.
    pub fn set_down(&self, failure: Option<Failure>) {
        self.shared.lock().down = failure;
    }

    /// Closes the listening socket: new connections are refused and idle ones closed.
    pub async fn refuse_connections(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }

    /// Listens again on the same port.
    pub async fn accept_connections(&mut self) {
        if self.running.is_some() {
            return;
        }
        let listener = server::rebind(self.addr)
            .await
            .expect("re-binding the fake Jira's port");
        self.running = Some(server::spawn(listener, routes::router(self.shared.clone())));
    }

    /// Requests received on any route, 401s, 429s and injected failures included.
    pub fn calls(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Requests with this method (any case) whose path starts with `path_prefix`.
    pub fn calls_to(&self, method: &str, path_prefix: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .count()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the recorded requests (the rate-limit window is kept).
    pub fn reset_counts(&self) {
        self.shared.lock().requests.clear();
    }
}

impl Drop for FakeJira {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.abort();
        }
    }
}
