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
use crate::invalidation::Invalidation;
use crate::metrics::Metrics;
use crate::tickets::{JiraTickets, TicketSource};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub cache: Arc<AppCache>,
    pub metrics: Arc<Metrics>,
    /// This process among the replicas: its own published invalidations are not applied twice.
    pub instance: Arc<str>,
    pub tickets: TicketSource,
    /// Set when Jira webhooks are accepted (Jira and a webhook secret configured).
    pub jira_webhook_secret: Option<Arc<[u8]>>,
    /// Postman and Testmo, where configured, and this process's syncs of them.
    pub catalog: Arc<CatalogSync>,
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
        let metrics = Arc::new(Metrics::new(Arc::clone(&cache), upstreams));
        Ok(Self {
            store,
            cache,
            metrics,
            instance,
            tickets,
            jira_webhook_secret,
            catalog,
        })
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
    /// Applies a write's invalidation here, then publishes it to the other replicas. Call it after
    /// the write committed and before answering (inside [`AppState::write`]).
    pub async fn invalidate(&self, invalidation: Invalidation) {
        invalidation.apply(&self.cache).await;
        let message = invalidation.encode(&self.instance);
        if let Err(error) = self.store.publish_invalidation(&message).await {
            // Other replicas keep the old entry until its TTL: loud, but the write stands.
            tracing::error!(%error, %message, "could not publish a cache invalidation");
        }
    }
}
