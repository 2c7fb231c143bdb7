//! Where a ticket comes from and where its changes go: the database alone (the embedded default),
//! or Jira, with the database as its mirror.
//!
//! With Jira, a cache miss reads the mirror first: a row fetched from Jira recently enough (by
//! this replica, another one, a webhook or a sync) answers without a Jira call. Otherwise one
//! replica takes a short lease on the key, fetches it from Jira and mirrors it; the others wait
//! for the mirror. When Jira fails, the last mirrored value answers as a fallback (STALE). Writes
//! go to Jira first, then to the mirror, then invalidate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use qa_pms_core::cache::{CacheMode, Fetched, LoadError, REFRESH_AT};
use qa_pms_core::{JiraTicket, TicketKey, TicketPatch};
use qa_pms_jira::{JiraClient, JiraError};
use qa_pms_storage::{MirroredTicket, Store, StoreError};

use crate::error::ApiError;

/// How often a replica that waits for another one's Jira fetch looks at the mirror.
const LEASE_POLL: Duration = Duration::from_millis(25);

/// The ticket source of this process.
#[derive(Clone)]
pub enum TicketSource {
    Database,
    Jira(Arc<JiraTickets>),
}

/// Tickets from Jira, mirrored in the database.
pub struct JiraTickets {
    pub client: JiraClient,
    /// A mirror row fetched less than this long ago answers without a Jira call: the part of the
    /// ticket TTL before a refresh ahead is due, so that a refresh really asks Jira.
    pub fresh_for: Duration,
    /// A row older than `fresh_for` but younger than this answers at once while Jira is asked in
    /// the background (stale-while-revalidate): two ticket TTLs.
    pub revalidate_for: Duration,
    /// How long a fetch lease lasts, and how long a replica waits on another's fetch.
    pub timeout: Duration,
    /// This replica, as a lease holder.
    pub instance: Arc<str>,
}

/// Why a ticket could not be read or written: the database's error or Jira's.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TicketError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Jira(#[from] JiraError),
}

impl From<serde_json::Error> for TicketError {
    fn from(e: serde_json::Error) -> Self {
        TicketError::Store(e.into())
    }
}

impl LoadError for TicketError {
    fn is_not_found(&self) -> bool {
        match self {
            TicketError::Store(e) => e.is_not_found(),
            TicketError::Jira(e) => matches!(e, JiraError::NotFound { .. }),
        }
    }

    fn stale_status(&self) -> Option<u16> {
        match self {
            TicketError::Store(e) => e.stale_status(),
            TicketError::Jira(JiraError::Upstream(e)) => Some(e.http_status()),
            TicketError::Jira(_) => None,
        }
    }
}

impl From<TicketError> for ApiError {
    fn from(e: TicketError) -> Self {
        match e {
            TicketError::Store(e) => e.into(),
            TicketError::Jira(e) => jira_error(e),
        }
    }
}

/// Jira's answer as this API's: its 4xx messages reach the client, its failures are 502/503/504.
fn jira_error(e: JiraError) -> ApiError {
    match e {
        JiraError::NotFound { .. } => ApiError::NotFound("ticket".to_owned()),
        JiraError::Rejected { status, message } if status == 400 || status == 409 => {
            ApiError::BadRequest(format!("Jira rejected the change: {message}"))
        }
        // 401/403 mean our credentials are wrong or lack a permission: the operator's problem.
        JiraError::Rejected { status, message } => {
            tracing::error!(status, %message, "Jira refused a request");
            ApiError::BadGateway(format!("Jira answered {status}: {message}"))
        }
        e @ JiraError::NoTransition { .. } => ApiError::Conflict(e.to_string()),
        e @ (JiraError::Malformed(_) | JiraError::Config(_) | JiraError::UnsupportedEvent(_)) => {
            ApiError::BadGateway(e.to_string())
        }
        JiraError::Upstream(e) => match e.http_status() {
            504 => ApiError::GatewayTimeout(format!("Jira did not answer in time: {e}")),
            502 => ApiError::BadGateway(format!("Jira failed: {e}")),
            _ => ApiError::UpstreamUnavailable(format!("Jira is unavailable: {e}")),
        },
    }
}

impl TicketSource {
    /// The cache's loader: one ticket, from wherever this process reads tickets. A client's
    /// `Cache-Control: no-cache`/`no-store` (`mode` other than `Normal`) reaches past the mirror to
    /// Jira itself.
    pub async fn fetch(
        &self,
        store: &Arc<dyn Store>,
        key: &TicketKey,
        mode: CacheMode,
    ) -> Result<Fetched<JiraTicket>, TicketError> {
        match self {
            TicketSource::Database => Ok(Fetched::fresh(store.ticket(key).await?)),
            TicketSource::Jira(jira) if mode == CacheMode::Normal => jira.fetch(store, key).await,
            TicketSource::Jira(jira) => {
                let mirrored = store.mirrored_ticket(key).await?;
                jira.jira_answer(store.as_ref(), key, mirrored.as_ref())
                    .await
            }
        }
    }
}

impl JiraTickets {
    pub fn new(client: JiraClient, ticket_ttl: Duration, instance: Arc<str>) -> Self {
        let timeout = client.upstream().config().timeout;
        Self {
            client,
            fresh_for: ticket_ttl.mul_f64(REFRESH_AT),
            revalidate_for: ticket_ttl * 2,
            timeout,
            instance,
        }
    }

    async fn fetch(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        key: &TicketKey,
    ) -> Result<Fetched<JiraTicket>, TicketError> {
        let mut mirrored = store.mirrored_ticket(key).await?;
        if let Some(answer) = self.mirror_answer(mirrored.as_ref(), Utc::now()) {
            return answer;
        }
        // Read not long after it expired, with Jira answering: the row answers now, Jira is asked
        // in the background. Every acknowledged write is in the mirror, so the row is never older
        // than one; it is at most `revalidate_for` behind Jira. While Jira fails, the read asks
        // it itself, and a failure answers the row as stale-if-error, with Jira's status.
        if self.client.upstream().healthy() {
            if let Some(answer) = self.revalidating_answer(mirrored.as_ref(), Utc::now()) {
                let (this, store, key) = (Arc::clone(self), Arc::clone(store), key.clone());
                tokio::spawn(async move {
                    if let Ok(Some(Err(error))) = this.fetch_under_lease(store.as_ref(), &key).await
                    {
                        tracing::warn!(%error, %key, "background Jira fetch failed");
                    }
                });
                return Ok(answer);
            }
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(fetched) = self.fetch_under_lease(store.as_ref(), key).await? {
                return fetched;
            }
            // Another fetch of this key is under way (another replica's, or this one's refresh
            // ahead): its result lands in the mirror. Meanwhile a key mirrored before answers at
            // once (stale-while-revalidate): every acknowledged write is in the mirror, so the
            // row is never older than one. Only a key never fetched waits for the fetch.
            if let Some(answer) = updating_answer(mirrored.as_ref(), Utc::now()) {
                return Ok(answer);
            }
            if Instant::now() >= deadline {
                return self.fallback(
                    mirrored.as_ref(),
                    TicketError::Jira(JiraError::Upstream(qa_pms_upstream::UpstreamError::Timeout)),
                );
            }
            tokio::time::sleep(LEASE_POLL).await;
            mirrored = store.mirrored_ticket(key).await?;
            if let Some(answer) = self.mirror_answer(mirrored.as_ref(), Utc::now()) {
                return answer;
            }
        }
    }

    /// Jira's answer, if this replica gets the key's fetch lease (`None`: another holder has it).
    /// The mirror is read again under the lease: a holder that released it between our last read
    /// and our claim has mirrored a fresh row, which answers without a second Jira call.
    async fn fetch_under_lease(
        &self,
        store: &dyn Store,
        key: &TicketKey,
    ) -> Result<Option<Result<Fetched<JiraTicket>, TicketError>>, TicketError> {
        let now = Utc::now();
        let until = now + self.timeout;
        if !store
            .claim_ticket_fetch(key, &self.instance, now, until)
            .await?
        {
            return Ok(None);
        }
        let fetched = match store.mirrored_ticket(key).await {
            Ok(mirrored) => match self.mirror_answer(mirrored.as_ref(), Utc::now()) {
                Some(answer) => answer,
                None => self.jira_answer(store, key, mirrored.as_ref()).await,
            },
            Err(error) => Err(error.into()),
        };
        if let Err(error) = store.release_ticket_fetch(key, &self.instance).await {
            tracing::warn!(%error, %key, "could not release a Jira fetch lease");
        }
        Ok(Some(fetched))
    }

    /// The mirror's row to answer with while Jira is asked in the background, if it expired less
    /// than `revalidate_for` after it was fetched.
    fn revalidating_answer(
        &self,
        mirrored: Option<&MirroredTicket>,
        now: DateTime<Utc>,
    ) -> Option<Fetched<JiraTicket>> {
        updating_answer(mirrored, now).filter(|answer| answer.age < self.revalidate_for)
    }

    /// The mirror's answer if it was fetched from Jira within `fresh_for`.
    fn mirror_answer(
        &self,
        mirrored: Option<&MirroredTicket>,
        now: DateTime<Utc>,
    ) -> Option<Result<Fetched<JiraTicket>, TicketError>> {
        let mirrored = mirrored?;
        let age = (now - mirrored.fetched_at?)
            .to_std()
            .unwrap_or(Duration::ZERO);
        if age >= self.fresh_for {
            return None;
        }
        Some(if mirrored.deleted {
            Err(StoreError::NotFound("ticket").into())
        } else {
            Ok(Fetched::aged(mirrored.ticket.clone(), age))
        })
    }

    async fn jira_answer(
        &self,
        store: &dyn Store,
        key: &TicketKey,
        mirrored: Option<&MirroredTicket>,
    ) -> Result<Fetched<JiraTicket>, TicketError> {
        match self.client.issue(key.as_str()).await {
            Ok(ticket) => Ok(Fetched::fresh(
                store.mirror_ticket(&ticket, Utc::now()).await?,
            )),
            Err(error) => self.fallback(mirrored, error.into()),
        }
    }

    /// Stale-if-error from the mirror: Jira failed in a way that lets the last mirrored value
    /// answer. The mirror holds every acknowledged write and webhook, so this value is never
    /// older than one of them.
    fn fallback(
        &self,
        mirrored: Option<&MirroredTicket>,
        error: TicketError,
    ) -> Result<Fetched<JiraTicket>, TicketError> {
        let (Some(status), Some(mirrored)) = (error.stale_status(), mirrored) else {
            return Err(error);
        };
        if mirrored.deleted {
            return Err(error);
        }
        let since = mirrored.fetched_at.unwrap_or(mirrored.ticket.updated_at);
        let age = (Utc::now() - since).to_std().unwrap_or(Duration::ZERO);
        tracing::warn!(%error, key = %mirrored.ticket.key, "Jira failed; answering from the mirror");
        Ok(Fetched::fallback(mirrored.ticket.clone(), age, status))
    }

    /// A PATCH: the status through Jira's transitions, the other fields through an edit, then the
    /// issue as Jira now has it into the mirror. Nothing local changes if Jira refuses; if Jira
    /// took part of the change before refusing the rest, the mirror still takes what Jira holds.
    pub async fn patch(
        &self,
        store: &dyn Store,
        key: &TicketKey,
        patch: &TicketPatch,
    ) -> Result<JiraTicket, TicketError> {
        if let Some(status) = &patch.status {
            self.client.transition(key.as_str(), status).await?;
        }
        let edited = self.client.edit(key.as_str(), patch).await;
        let ticket = self.client.issue(key.as_str()).await;
        let mirrored = match ticket {
            Ok(ticket) => store.mirror_ticket(&ticket, Utc::now()).await,
            Err(e) => {
                edited?;
                return Err(e.into());
            }
        };
        edited?;
        Ok(mirrored?)
    }
}

/// The mirrored row of a key whose fetch is under way, if it has one to answer with.
fn updating_answer(
    mirrored: Option<&MirroredTicket>,
    now: DateTime<Utc>,
) -> Option<Fetched<JiraTicket>> {
    let mirrored = mirrored.filter(|m| !m.deleted)?;
    let age = (now - mirrored.fetched_at?)
        .to_std()
        .unwrap_or(Duration::ZERO);
    Some(Fetched::updating(mirrored.ticket.clone(), age))
}
