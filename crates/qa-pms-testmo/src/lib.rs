//! A Testmo REST API client: the repository cases of the configured projects, page after page,
//! and those cases as catalog entries ([`entries`] says how). Every call goes through a
//! [`qa_pms_upstream::Upstream`] (rate budget, retries, `Retry-After` or 60 s without it,
//! breaker, deadline).
//!
//! It knows nothing of axum, the cache or the database: a sync joins them.

pub mod entries;
mod error;
pub mod model;
pub mod text;

use std::collections::HashSet;
use std::time::Duration;

use qa_pms_upstream::{Upstream, UpstreamConfig, UpstreamError};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION};
use reqwest::{Response, StatusCode, Url};

pub use entries::{case_url, CatalogEntries, SkipCounts, TruncateCounts};
pub use error::TestmoError;
use model::{Case, Page};

/// Cases asked for per page (Testmo's largest page).
pub const PER_PAGE: u64 = 100;
/// The wait after a 429 without `Retry-After`, as Testmo's documentation asks.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The most of a 4xx body read for its message.
const ERROR_BODY_MAX: usize = 16 * 1024;

/// How to reach one Testmo site.
#[derive(Clone)]
pub struct TestmoConfig {
    /// The site, like `https://acme.testmo.net` (a trailing `/` or `/api/v1` is tolerated).
    pub base_url: String,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: String,
    /// The projects whose repository cases make the catalog.
    pub projects: Vec<u64>,
    /// At most this many requests per second.
    pub max_rps: u32,
    /// The deadline of one HTTP call, retries and 429 waits included.
    pub timeout: Duration,
}

/// The API token stays out of logs and error messages.
impl std::fmt::Debug for TestmoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestmoConfig")
            .field("base_url", &self.base_url)
            .field("token", &"***")
            .field("projects", &self.projects)
            .field("max_rps", &self.max_rps)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl TestmoConfig {
    /// 5 requests per second (Testmo publishes no number; it asks for restraint) and a 90 s
    /// deadline per call (a sync runs in the background: room for the 60 s wait of a 429
    /// without `Retry-After`).
    pub fn new(base_url: impl Into<String>, token: impl Into<String>, projects: Vec<u64>) -> Self {
        Self {
            base_url: base_url.into(),
            token: token.into(),
            projects,
            max_rps: 5,
            timeout: Duration::from_secs(90),
        }
    }
}

/// The Testmo client: built once, cloned cheaply (the HTTP pool and the upstream are shared).
#[derive(Clone)]
pub struct TestmoClient {
    http: reqwest::Client,
    /// The site, for web links; the API is under `api/v1`.
    web: Url,
    projects: Vec<u64>,
    upstream: Upstream,
}

impl TestmoClient {
    pub fn new(config: TestmoConfig) -> Result<Self, TestmoError> {
        let mut web = Url::parse(config.base_url.trim())
            .map_err(|e| TestmoError::Config(format!("base_url `{}`: {e}", config.base_url)))?;
        if !matches!(web.scheme(), "http" | "https") || web.cannot_be_a_base() {
            return Err(TestmoError::Config(format!(
                "base_url `{}` is not an http(s) URL",
                config.base_url
            )));
        }
        let path = web.path().trim_end_matches('/');
        let path = path.strip_suffix("/api/v1").unwrap_or(path).to_owned();
        web.set_path(&path);
        web.set_query(None);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", config.token.trim()))
            .map_err(|_| TestmoError::Config("the API token is not a valid header value".into()))?;
        bearer.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(AUTHORIZATION, bearer);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("qa-pms/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| TestmoError::Config(format!("HTTP client: {e}")))?;
        let mut upstream = UpstreamConfig::new("testmo", config.max_rps, config.timeout);
        upstream.default_retry_after = Some(DEFAULT_RETRY_AFTER);
        Ok(Self {
            http,
            web,
            projects: config.projects,
            upstream: Upstream::new(upstream),
        })
    }

    /// The upstream the calls go through, for its metrics.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// The site's web address (what case URLs start with).
    pub fn web_url(&self) -> &Url {
        &self.web
    }

    /// `GET /api/v1/projects/{project}/cases?page={page}&per_page=100`: one page.
    pub async fn cases_page(&self, project: u64, page: u64) -> Result<Page<Case>, TestmoError> {
        let mut url = self.web.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "projects", &project.to_string(), "cases"]);
        }
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("per_page", &PER_PAGE.to_string());
        let response = self.upstream.send(|| self.http.get(url.clone())).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(rejection(status, response).await);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| UpstreamError::from_reqwest(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            TestmoError::Malformed(format!("cases of project {project}, page {page}: {e}"))
        })
    }

    /// Every case of the project: page 1, then each `next_page` until it is `null`. Any failing
    /// page fails the call (never a partial list); so does a `next_page` that does not advance,
    /// or a page without cases that promises another.
    pub async fn cases(&self, project: u64) -> Result<Vec<Case>, TestmoError> {
        let mut cases = Vec::new();
        let mut page_number = 1;
        loop {
            let page = self.cases_page(project, page_number).await?;
            let empty = page.result.is_empty();
            cases.extend(page.result);
            match page.next_page {
                None => return Ok(cases),
                Some(next) if next <= page_number || empty => {
                    return Err(TestmoError::Malformed(format!(
                        "cases of project {project}: page {page_number} ({} cases) points to page {next}",
                        if empty { "no" } else { "some" }
                    )))
                }
                Some(next) => page_number = next,
            }
        }
    }

    /// The cases of every configured project, as catalog entries; any failure fails the whole
    /// call.
    pub async fn catalog_entries(&self) -> Result<CatalogEntries, TestmoError> {
        let mut result = CatalogEntries::default();
        let mut seen = HashSet::new();
        for &project in &self.projects {
            let cases = self.cases(project).await?;
            entries::add_cases(&mut result, &mut seen, &self.web, project, cases);
        }
        if result.skipped.total() > 0 {
            tracing::warn!(skipped = ?result.skipped, "Testmo cases left out of the catalog");
        }
        Ok(result)
    }
}

/// A non-2xx answer as [`TestmoError`].
async fn rejection(status: StatusCode, response: Response) -> TestmoError {
    let body = read_bounded(response, ERROR_BODY_MAX)
        .await
        .unwrap_or_default();
    let message = error::error_message(status, &body);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => TestmoError::Unauthorized {
            status: status.as_u16(),
            message,
        },
        StatusCode::NOT_FOUND => TestmoError::NotFound { message },
        _ => TestmoError::Rejected {
            status: status.as_u16(),
            message,
        },
    }
}

/// At most `max` bytes of a body.
async fn read_bounded(mut response: Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut bytes = Vec::new();
    while bytes.len() < max {
        match response.chunk().await? {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => break,
        }
    }
    bytes.truncate(max);
    Ok(bytes)
}
