//! The one `Clone` state every handler receives: storage, caches, metrics.

use std::future::Future;
use std::sync::Arc;

use qa_pms_core::{AppCache, CacheConfig};
use qa_pms_storage::Store;

use crate::error::ApiError;
use crate::invalidation::Invalidation;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub cache: Arc<AppCache>,
    pub metrics: Arc<Metrics>,
    /// This process among the replicas: its own published invalidations are not applied twice.
    pub instance: Arc<str>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, cache: CacheConfig) -> Self {
        let cache = Arc::new(AppCache::new(cache));
        let metrics = Arc::new(Metrics::new(Arc::clone(&cache)));
        Self {
            store,
            cache,
            metrics,
            instance: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
        }
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
