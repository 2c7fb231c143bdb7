//! A Jira Cloud REST API v3 client: one typed method per remote operation, each sent through a
//! [`qa_pms_upstream::Upstream`] (rate budget, retries, breaker, deadline).
//!
//! It knows nothing of axum, the cache or the database: the API crate joins them with a loader
//! closure. Jira's JSON lives in [`model`], rich text in [`adf`], webhooks in [`webhook`].

pub mod adf;
mod error;
pub mod model;
pub mod webhook;

use std::time::Duration;

use qa_pms_core::{JiraTicket, TicketPatch};
use qa_pms_upstream::{Upstream, UpstreamConfig, UpstreamError};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

pub use error::{ErrorCollection, JiraError};
use model::{Issue, SearchResponse, Transitions, User, FIELDS};

/// Issues per page of a JQL search (Jira's maximum for these fields).
pub const PAGE_SIZE: u32 = 100;
/// The most of a 4xx body read for its message.
const ERROR_BODY_MAX: usize = 16 * 1024;

/// How to reach one Jira Cloud site.
#[derive(Clone)]
pub struct JiraConfig {
    /// Like `https://acme.atlassian.net`; a trailing slash is tolerated.
    pub base_url: String,
    pub email: String,
    pub api_token: String,
    /// The deadline of one operation's HTTP call, retries included.
    pub timeout: Duration,
    pub max_rps: u32,
}

/// The API token stays out of logs and error messages.
impl std::fmt::Debug for JiraConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraConfig")
            .field("base_url", &self.base_url)
            .field("email", &self.email)
            .field("api_token", &"***")
            .field("timeout", &self.timeout)
            .field("max_rps", &self.max_rps)
            .finish()
    }
}

impl JiraConfig {
    /// A config with a 5 s timeout and 10 requests per second.
    pub fn new(
        base_url: impl Into<String>,
        email: impl Into<String>,
        api_token: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            email: email.into(),
            api_token: api_token.into(),
            timeout: Duration::from_secs(5),
            max_rps: 10,
        }
    }
}

/// One page of a JQL search; `next_page_token` is `None` on the last page.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub tickets: Vec<JiraTicket>,
    pub next_page_token: Option<String>,
}

/// The Jira client: built once, cloned cheaply (the HTTP pool and the upstream are shared).
#[derive(Clone)]
pub struct JiraClient {
    http: reqwest::Client,
    base: Url,
    email: String,
    api_token: String,
    upstream: Upstream,
}

impl JiraClient {
    pub fn new(config: JiraConfig) -> Result<Self, JiraError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| JiraError::Config(format!("base_url `{}`: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(JiraError::Config(format!(
                "base_url `{}` is not an http(s) URL",
                config.base_url
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("qa-pms/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| JiraError::Config(format!("HTTP client: {e}")))?;
        let upstream = Upstream::new(UpstreamConfig::new("jira", config.max_rps, config.timeout));
        Ok(Self {
            http,
            base,
            email: config.email,
            api_token: config.api_token,
            upstream,
        })
    }

    /// The upstream the calls go through, for its metrics.
    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// `GET /rest/api/3/issue/{key}` with the fields a ticket needs.
    pub async fn issue(&self, key: &str) -> Result<JiraTicket, JiraError> {
        let mut url = self.url(&["issue", key]);
        url.query_pairs_mut()
            .append_pair("fields", &FIELDS.join(","));
        let issue: Issue = self.call(Method::GET, url, None).await?;
        issue.into_ticket()
    }

    /// `POST /rest/api/3/search/jql`: one page of the issues `jql` finds.
    pub async fn search_page(
        &self,
        jql: &str,
        page_token: Option<&str>,
    ) -> Result<SearchPage, JiraError> {
        let mut body = json!({ "jql": jql, "fields": FIELDS, "maxResults": PAGE_SIZE });
        if let Some(token) = page_token {
            body["nextPageToken"] = json!(token);
        }
        let url = self.url(&["search", "jql"]);
        let page: SearchResponse = self.call(Method::POST, url, Some(body)).await?;
        let tickets = page
            .issues
            .into_iter()
            .map(Issue::into_ticket)
            .collect::<Result<_, _>>()?;
        let next_page_token = page
            .next_page_token
            .filter(|token| page.is_last != Some(true) && !token.is_empty());
        Ok(SearchPage {
            tickets,
            next_page_token,
        })
    }

    /// Every issue `jql` finds, page after page. Fails with [`JiraError::Malformed`] if Jira
    /// hands back the token it was given (which would otherwise loop forever).
    pub async fn search_all(&self, jql: &str) -> Result<Vec<JiraTicket>, JiraError> {
        let mut tickets = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.search_page(jql, token.as_deref()).await?;
            tickets.extend(page.tickets);
            match page.next_page_token {
                None => return Ok(tickets),
                Some(next) if token.as_deref() == Some(next.as_str()) => {
                    return Err(JiraError::Malformed(format!(
                        "the search repeats page token `{next}`"
                    )))
                }
                next => token = next,
            }
        }
    }

    /// `PUT /rest/api/3/issue/{key}` with the summary, description (as ADF), priority and assignee
    /// the patch sets (`Some(None)` clears). The assignee is a display name, resolved with
    /// [`Self::find_user`]. The status is not a field: see [`Self::transition`] or [`Self::update`].
    /// Makes no call when the patch sets nothing but the status.
    pub async fn edit(&self, key: &str, patch: &TicketPatch) -> Result<(), JiraError> {
        let mut fields = Map::new();
        if let Some(summary) = &patch.summary {
            fields.insert("summary".into(), json!(summary));
        }
        if let Some(description) = &patch.description {
            let doc = description.as_deref().map(adf::from_plain_text);
            fields.insert("description".into(), doc.unwrap_or(Value::Null));
        }
        if let Some(priority) = &patch.priority {
            let named = priority.as_ref().map(|name| json!({ "name": name }));
            fields.insert("priority".into(), named.unwrap_or(Value::Null));
        }
        if let Some(assignee) = &patch.assignee {
            let user = match assignee {
                Some(name) => json!({ "accountId": self.find_user(name).await? }),
                None => Value::Null,
            };
            fields.insert("assignee".into(), user);
        }
        if fields.is_empty() {
            return Ok(());
        }
        let url = self.url(&["issue", key]);
        self.call_for_status(Method::PUT, url, Some(json!({ "fields": fields })))
            .await
    }

    /// Moves the issue to `status` (compared case-insensitively with each transition's target).
    pub async fn transition(&self, key: &str, status: &str) -> Result<(), JiraError> {
        let url = self.url(&["issue", key, "transitions"]);
        let offered: Transitions = self.call(Method::GET, url.clone(), None).await?;
        let wanted = status.to_lowercase();
        let Some(chosen) = offered
            .transitions
            .iter()
            .find(|t| t.to.name.as_deref().map(str::to_lowercase).as_deref() == Some(&wanted))
        else {
            return Err(JiraError::NoTransition {
                status: status.to_owned(),
                available: offered
                    .transitions
                    .into_iter()
                    .filter_map(|t| t.to.name)
                    .collect(),
            });
        };
        let body = json!({ "transition": { "id": chosen.id } });
        self.call_for_status(Method::POST, url, Some(body)).await
    }

    /// Applies a whole patch: [`Self::edit`] for the fields, then [`Self::transition`] for the
    /// status if the patch sets one.
    pub async fn update(&self, key: &str, patch: &TicketPatch) -> Result<(), JiraError> {
        self.edit(key, patch).await?;
        match &patch.status {
            Some(status) => self.transition(key, status).await,
            None => Ok(()),
        }
    }

    /// The account id of the one user whose display name is exactly `display_name`
    /// (`GET /rest/api/3/user/search`). None or several: [`JiraError::Rejected`] with 400.
    pub async fn find_user(&self, display_name: &str) -> Result<String, JiraError> {
        let mut url = self.url(&["user", "search"]);
        url.query_pairs_mut().append_pair("query", display_name);
        let users: Vec<User> = self.call(Method::GET, url, None).await?;
        let mut matching: Vec<String> = users
            .into_iter()
            .filter(|u| u.display_name.as_deref() == Some(display_name) && u.active != Some(false))
            .filter_map(|u| u.account_id)
            .collect();
        let problem = match matching.len() {
            1 => return Ok(matching.remove(0)),
            0 => format!("no active Jira user is named `{display_name}`"),
            n => format!("{n} Jira users are named `{display_name}`; assign in Jira instead"),
        };
        Err(JiraError::Rejected {
            status: 400,
            message: problem,
        })
    }

    /// `{base}/rest/api/3/{segments...}`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["rest", "api", "3"])
                .extend(segments);
        }
        url
    }

    fn request(&self, method: &Method, url: &Url, body: Option<&Value>) -> RequestBuilder {
        let request = self
            .http
            .request(method.clone(), url.clone())
            .basic_auth(&self.email, Some(&self.api_token));
        match body {
            Some(body) => request.json(body),
            None => request,
        }
    }

    /// Sends through the upstream and turns a non-2xx answer into [`JiraError`].
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Response, JiraError> {
        let response = self
            .upstream
            .send(|| self.request(&method, &url, body.as_ref()))
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_bounded(response, ERROR_BODY_MAX)
            .await
            .unwrap_or_default();
        let message = error::error_message(status, &body);
        Err(match status {
            StatusCode::NOT_FOUND => JiraError::NotFound { message },
            _ => JiraError::Rejected {
                status: status.as_u16(),
                message,
            },
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<T, JiraError> {
        let response = self.send(method, url, body).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| UpstreamError::from_reqwest(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| JiraError::Malformed(e.to_string()))
    }

    async fn call_for_status(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<(), JiraError> {
        self.send(method, url, body).await.map(drop)
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

/// `text` cut to at most `max` characters, on a character boundary.
pub(crate) fn bound(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}
