//! The one `Clone` state every handler receives: storage, caches, metrics.

use std::sync::Arc;

use qa_pms_core::{AppCache, CacheConfig};
use qa_pms_storage::Store;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub cache: Arc<AppCache>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, cache: CacheConfig) -> Self {
        let cache = Arc::new(AppCache::new(cache));
        let metrics = Arc::new(Metrics::new(Arc::clone(&cache)));
        Self {
            store,
            cache,
            metrics,
        }
    }
}
