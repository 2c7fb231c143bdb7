//! The one `Clone` state every handler receives: storage, caches, the ticket source (database or
//! Jira), the catalog sources (Postman, Testmo), metrics.

use std::future::Future;
use std::sync::Arc;

use qa_pms_core::AppCache;
use qa_pms_jira::JiraClient;
use qa_pms_storage::Store;

use crate::app::{AppConfig, SettingsError};
use crate::catalog::CatalogSync;
use crate::error::ApiError;
use crate::invalidation::{Invalidation, Outbox};
use crate::metrics::Metrics;
use crate::tickets::{JiraTickets, TicketSource};

/// Cloned for every request (axum hands each handler its own copy, and `State` clones again):
/// one reference count, rather than one per field, which the two runtime threads would otherwise
/// contend on several cache lines at once.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds; its fields are reached through `Deref` (`state.store`).
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub cache: Arc<AppCache>,
    pub metrics: Arc<Metrics>,
    /// This process among the replicas: the holder of its Jira fetch leases and catalog sync claims.
    pub instance: Arc<str>,
    pub tickets: TicketSource,
    /// Set when Jira webhooks are accepted (Jira and a webhook secret configured).
    pub jira_webhook_secret: Option<Arc<[u8]>>,
    /// Postman and Testmo, where configured, and this process's syncs of them.
    pub catalog: Arc<CatalogSync>,
    /// Where this process stands in the database's record of invalidations.
    pub outbox: Arc<Outbox>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: &AppConfig) -> Result<Self, SettingsError> {
        let cache = Arc::new(AppCache::new(config.cache));
        let instance: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let mut upstreams = Vec::new();
        let (tickets, jira_webhook_secret) = match &config.jira {
            None => (TicketSource::Database, None),
            Some(jira) => {
                let client = JiraClient::new(jira.client.clone())?;
                upstreams.push(client.upstream().clone());
                let source =
                    JiraTickets::new(client, config.cache.tickets.ttl, Arc::clone(&instance));
                let secret = jira
                    .webhook_secret
                    .as_deref()
                    .map(|secret| Arc::from(secret.as_bytes()));
                (TicketSource::Jira(Arc::new(source)), secret)
            }
        };
        let catalog = Arc::new(CatalogSync::new(&config.catalog)?);
        upstreams.extend(catalog.sources().iter().map(|s| s.upstream().clone()));
        let outbox = Arc::new(Outbox::default());
        let metrics = Arc::new(Metrics::new(
            Arc::clone(&cache),
            upstreams,
            Arc::clone(&outbox),
        ));
        Ok(Self(Arc::new(Shared {
            store,
            cache,
            metrics,
            instance,
            tickets,
            jira_webhook_secret,
            catalog,
            outbox,
        })))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Runs a write and the invalidations that follow it on a task of its own, so that both finish
    /// even if the request is dropped (the client went away, the timeout fired) after the write
    /// committed: a committed write whose invalidation never ran would leave a stale entry behind.
    pub async fn write<T, Fut>(&self, work: impl FnOnce(AppState) -> Fut) -> Result<T, ApiError>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T, ApiError>> + Send + 'static,
    {
        tokio::spawn(work(self.clone()))
            .await
            .map_err(|e| ApiError::Internal(format!("write task failed: {e}")))?
    }
}

impl AppState {
    /// Applies what a write invalidated, here, before it is answered: the invalidations its
    /// transaction recorded in the outbox (the other processes read them there too). Call it after
    /// the write, failed or not (a failed write may have committed), inside [`AppState::write`].
    ///
    /// If the outbox cannot be read (the database went away after the write): a write about to be
    /// acknowledged drops `fallback` here, so that no read here returns what it replaced; a failed
    /// one, which the client will not see acknowledged, leaves the cache as it is, unconfirmed
    /// (hits are answered STALE) until the outbox is read again.
    pub async fn invalidate_after<T, E>(&self, written: &Result<T, E>, fallback: Invalidation) {
        if let Err(error) = self.outbox.catch_up(self.store.as_ref(), &self.cache).await {
            tracing::warn!(%error, "could not read the invalidation outbox after a write");
            // The failed read left the cache unconfirmed (hits answer STALE) until a read succeeds.
            if written.is_ok() {
                fallback.apply(&self.cache).await;
            }
        }
        crate::warm::requested(self);
    }

    /// [`Self::invalidate_after`] a write that succeeded.
    pub async fn invalidate(&self, fallback: Invalidation) {
        self.invalidate_after(&Ok::<(), ()>(()), fallback).await;
    }
}
