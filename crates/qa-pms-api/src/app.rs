//! Builds the application the binary, the tests and the benchmarks all run: one router over one
//! state, behind the production layers.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use qa_pms_core::CacheConfig;
use qa_pms_jira::{JiraConfig, JiraError};
use qa_pms_storage::Store;
use tokio::net::TcpListener;

use crate::catalog::CatalogSettings;
use crate::layers::{self, Limits};
use crate::routes;
use crate::state::AppState;

#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    pub cache: CacheConfig,
    pub limits: Limits,
    /// Jira behind the tickets; `None`: tickets live in the database alone.
    pub jira: Option<JiraSettings>,
    /// Postman and Testmo behind the catalog; none: the catalog grows through imports alone.
    pub catalog: CatalogSettings,
    /// Enables `/admin/*`, which requires it as a bearer token; `None`: those routes are 404.
    pub admin_token: Option<String>,
}

/// An upstream's settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid Jira settings: {0}")]
    Jira(#[from] JiraError),
    #[error("invalid Postman settings: {0}")]
    Postman(#[from] qa_pms_postman::PostmanError),
    #[error("invalid Testmo settings: {0}")]
    Testmo(#[from] qa_pms_testmo::TestmoError),
}

/// Jira Cloud as the source of tickets.
#[derive(Debug, Clone)]
pub struct JiraSettings {
    pub client: JiraConfig,
    /// Enables `POST /api/v1/webhooks/jira`, whose deliveries must be signed with it.
    pub webhook_secret: Option<String>,
}

/// The router and the state behind it (kept so callers can read the caches' stats).
///
/// # Panics
/// If an upstream's settings are unusable; [`try_build`] returns that error instead.
pub fn build(store: Arc<dyn Store>, config: AppConfig) -> (Router, AppState) {
    build_with(store, config, Router::new())
}

/// [`build`], with unusable upstream settings as an error.
pub fn try_build(
    store: Arc<dyn Store>,
    config: AppConfig,
    extra: Router<AppState>,
) -> Result<(Router, AppState), SettingsError> {
    let state = AppState::new(store, &config)?;
    let mut routes = routes::router().merge(extra);
    if let Some(token) = &config.admin_token {
        routes = routes.merge(routes::admin::router(token));
    }
    let router = layers::apply(routes, &state, config.limits).with_state(state.clone());
    Ok((router, state))
}

/// [`build`] with `extra` routes served behind the same middleware stack: the load harness adds
/// its reference route this way.
pub fn build_with(
    store: Arc<dyn Store>,
    config: AppConfig,
    extra: Router<AppState>,
) -> (Router, AppState) {
    try_build(store, config, extra).unwrap_or_else(|e| panic!("{e}"))
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
