//! A Postman API client: the collections a key can see, each in Collection v2.1 format, and
//! their requests flattened into catalog entries ([`entries`] says how). Every call goes through
//! a [`qa_pms_upstream::Upstream`] (rate budget, retries, Postman's `X-RateLimit-RetryAfter`,
//! breaker, deadline).
//!
//! It knows nothing of axum, the cache or the database: a sync joins them.

pub mod entries;
mod error;
pub mod model;

use std::collections::HashSet;
use std::time::Duration;

use qa_pms_upstream::{Upstream, UpstreamConfig, UpstreamError};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::{Response, StatusCode, Url};
use serde::de::DeserializeOwned;

pub use entries::{CatalogEntries, FoundRequest, SkipCounts, TruncateCounts, SEPARATOR};
pub use error::PostmanError;
use model::{Collection, CollectionList, CollectionResponse, CollectionSummary};

/// The public Postman API.
pub const DEFAULT_BASE_URL: &str = "https://api.getpostman.com";
/// Where Postman states the wait of a 429, in seconds: its own headers first, then the standard.
pub const RETRY_AFTER_HEADERS: &[&str] = &["x-ratelimit-retryafter", "retryafter", "retry-after"];
/// Collections asked for per page of `GET /collections`.
pub const COLLECTIONS_PAGE: u64 = 100;
/// The most of a 4xx body read for its message.
const ERROR_BODY_MAX: usize = 16 * 1024;

/// How to reach the Postman API.
#[derive(Clone)]
pub struct PostmanConfig {
    /// [`DEFAULT_BASE_URL`] unless pointed elsewhere (a fake in tests); a trailing slash is fine.
    pub base_url: String,
    /// Sent as `X-Api-Key`.
    pub api_key: String,
    /// Only this workspace's collections (`?workspace=`); `None`: every collection of the key.
    pub workspace: Option<String>,
    /// At most this many requests per second. Postman allows 300 a minute per key: 5.
    pub max_rps: u32,
    /// The deadline of one HTTP call, retries and 429 waits included.
    pub timeout: Duration,
}

/// The API key stays out of logs and error messages.
impl std::fmt::Debug for PostmanConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostmanConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"***")
            .field("workspace", &self.workspace)
            .field("max_rps", &self.max_rps)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PostmanConfig {
    /// The public API, every workspace, 5 requests per second, and a 90 s deadline per call (a
    /// sync runs in the background: room to wait out Postman's one-minute rate window).
    pub fn new(api_key: impl Into<String>) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: api_key.into(),
            workspace: None,
            max_rps: 5,
            timeout: Duration::from_secs(90),
        }
    }
}

/// The Postman client: built once, cloned cheaply (the HTTP pool and the upstream are shared).
#[derive(Clone)]
pub struct PostmanClient {
    http: reqwest::Client,
    base: Url,
    workspace: Option<String>,
    upstream: Upstream,
}

impl PostmanClient {
    pub fn new(config: PostmanConfig) -> Result<Self, PostmanError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| PostmanError::Config(format!("base_url `{}`: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(PostmanError::Config(format!(
                "base_url `{}` is not an http(s) URL",
                config.base_url
            )));
        }
        let mut key = HeaderValue::from_str(config.api_key.trim())
            .map_err(|_| PostmanError::Config("the API key is not a valid header value".into()))?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert("x-api-key", key);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("qa-pms/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| PostmanError::Config(format!("HTTP client: {e}")))?;
        let mut upstream = UpstreamConfig::new("postman", config.max_rps, config.timeout);
        upstream.retry_after_headers = RETRY_AFTER_HEADERS;
        Ok(Self {
            http,
            base,
            workspace: config.workspace.filter(|w| !w.trim().is_empty()),
            upstream: Upstream::new(upstream),
        })
    }

    /// The upstream the calls go through, for its metrics.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// `GET /collections` (`?workspace=` when configured), page after page (`limit`/`offset`)
    /// until `meta.total`; an answer without `meta` holds every collection. A collection listed
    /// twice (the list shifted between pages) is kept once.
    pub async fn list_collections(&self) -> Result<Vec<CollectionSummary>, PostmanError> {
        let mut collections = Vec::new();
        let mut seen = HashSet::new();
        let mut offset = 0u64;
        loop {
            let mut url = self.url(&["collections"]);
            {
                let mut query = url.query_pairs_mut();
                if let Some(workspace) = &self.workspace {
                    query.append_pair("workspace", workspace);
                }
                query
                    .append_pair("limit", &COLLECTIONS_PAGE.to_string())
                    .append_pair("offset", &offset.to_string());
            }
            let page: CollectionList = self.get(url, "GET /collections").await?;
            let count = page.collections.len() as u64;
            for collection in page.collections {
                if seen.insert(collection.uid.clone()) {
                    collections.push(collection);
                }
            }
            let total = page.meta.and_then(|meta| meta.total);
            match total {
                Some(total) if count > 0 && ((offset + count) as f64) < total => offset += count,
                _ => return Ok(collections),
            }
        }
    }

    /// `GET /collections/{uid}`.
    pub async fn collection(&self, uid: &str) -> Result<Collection, PostmanError> {
        let url = self.url(&["collections", uid]);
        let what = format!("GET /collections/{uid}");
        let response: CollectionResponse = self.get(url, &what).await?;
        Ok(response.collection)
    }

    /// Every request of every collection as catalog entries. Any failure fails the whole call
    /// (never a partial list), except a collection that disappears between the list and its
    /// fetch (404), which is left out.
    pub async fn catalog_entries(&self) -> Result<CatalogEntries, PostmanError> {
        let mut found = Vec::new();
        for summary in self.list_collections().await? {
            match self.collection(&summary.uid).await {
                Ok(collection) => found.extend(entries::requests_of(&collection, &summary.uid)),
                Err(PostmanError::NotFound { message }) => {
                    tracing::warn!(uid = %summary.uid, %message, "collection gone since the list; left out");
                }
                Err(error) => return Err(error),
            }
        }
        let fitted = entries::fit(found);
        if fitted.skipped.total() > 0 {
            tracing::warn!(skipped = ?fitted.skipped, "Postman requests left out of the catalog");
        }
        Ok(fitted)
    }

    /// `{base}/{segments...}`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A GET through the upstream: a 2xx body parsed as `T`, anything else as [`PostmanError`].
    async fn get<T: DeserializeOwned>(&self, url: Url, what: &str) -> Result<T, PostmanError> {
        let response = self.upstream.send(|| self.http.get(url.clone())).await?;
        let status = response.status();
        if !status.is_success() {
            let body = read_bounded(response, ERROR_BODY_MAX)
                .await
                .unwrap_or_default();
            let message = error::error_message(status, &body);
            return Err(match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => PostmanError::Unauthorized {
                    status: status.as_u16(),
                    message,
                },
                StatusCode::NOT_FOUND => PostmanError::NotFound { message },
                _ => PostmanError::Rejected {
                    status: status.as_u16(),
                    message,
                },
            });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| UpstreamError::from_reqwest(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| PostmanError::Malformed(format!("{what}: {e}")))
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
