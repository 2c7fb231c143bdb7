//! The fake Testmo's shared state (cases by project) and how it answers the harness: Bearer
//! auth, Testmo's 401 and 429.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use axum::http::{header, HeaderMap};
use axum::response::Response;

use super::case::FakeCase;
use super::reply;
use crate::harness::{lock, Controls, Failure, Knobs, Service};

pub(crate) struct Shared {
    pub base_url: String,
    pub token: String,
    pub controls: Controls,
    /// Project id → case id → case.
    projects: Mutex<BTreeMap<u64, BTreeMap<u64, FakeCase>>>,
}

impl Shared {
    pub fn new(base_url: String, token: String) -> Self {
        Self {
            base_url,
            token,
            controls: Controls::default(),
            projects: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn projects(&self) -> MutexGuard<'_, BTreeMap<u64, BTreeMap<u64, FakeCase>>> {
        lock(&self.projects)
    }
}

impl Service for Shared {
    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.controls.knobs()
    }

    /// `Authorization: Bearer <token>`, the scheme in any case.
    fn refusal(&self, headers: &HeaderMap) -> Option<Response> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        (presented != Some(self.token.as_str())).then(reply::unauthenticated)
    }

    fn too_many_requests(&self, retry_after_secs: Option<u64>) -> Response {
        reply::too_many_requests(retry_after_secs)
    }

    fn failure(&self, failure: &Failure) -> Response {
        reply::failure(failure)
    }
}
