//! The `qa-pms` command line: `serve` (the default), `migrate`, `seed`. Every flag of `serve` has
//! an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use qa_pms_core::{CacheConfig, CacheKind};

use crate::app::AppConfig;
use crate::layers::Limits;

/// The embedded default database: a file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite:qa-pms.db";

#[derive(Debug, Parser)]
#[command(name = "qa-pms", version, about = "The qa-pms API service")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(Box<ServeArgs>),
    /// Run the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Fill an empty database with a large deterministic synthetic dataset.
    Seed(SeedArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `postgres://...` for PostgreSQL; `sqlite:path` or a path for SQLite.
    /// Without it: SQLite in ./qa-pms.db, with the demo data.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    pub fn url(&self) -> &str {
        self.database_url.as_deref().unwrap_or(DEFAULT_DATABASE_URL)
    }

    /// No database named: the embedded default.
    pub fn is_embedded_default(&self) -> bool {
        self.database_url.is_none()
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "QA_PMS_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Load the demo dataset into an empty database (implied by the embedded default).
    #[arg(long, env = "QA_PMS_DEMO")]
    pub demo: bool,
    /// Longest time a request may take before it is answered 503.
    #[arg(long, env = "QA_PMS_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Largest request body, in bytes (catalog imports allow 16 MiB).
    #[arg(long, env = "QA_PMS_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    #[command(flatten)]
    pub cache: CacheArgs,
}

impl ServeArgs {
    pub fn app_config(&self) -> AppConfig {
        AppConfig {
            cache: self.cache.config(),
            limits: Limits {
                request_timeout: self.request_timeout,
                body_limit: self.body_limit,
            },
        }
    }
}

/// Per-cache overrides of the story's defaults. Durations like `300s`, `500ms`, `5m`; a capacity
/// of 0 turns a cache off.
#[derive(Debug, Clone, Default, Args)]
pub struct CacheArgs {
    #[arg(long, env = "QA_PMS_CACHE_TICKETS_TTL", value_parser = humantime::parse_duration)]
    pub cache_tickets_ttl: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_TICKETS_TTI", value_parser = humantime::parse_duration)]
    pub cache_tickets_tti: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_TICKETS_CAPACITY")]
    pub cache_tickets_capacity: Option<u64>,
    #[arg(long, env = "QA_PMS_CACHE_SEARCH_TTL", value_parser = humantime::parse_duration)]
    pub cache_search_ttl: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_SEARCH_TTI", value_parser = humantime::parse_duration)]
    pub cache_search_tti: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_SEARCH_CAPACITY")]
    pub cache_search_capacity: Option<u64>,
    #[arg(long, env = "QA_PMS_CACHE_METRICS_TTL", value_parser = humantime::parse_duration)]
    pub cache_metrics_ttl: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_METRICS_TTI", value_parser = humantime::parse_duration)]
    pub cache_metrics_tti: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_METRICS_CAPACITY")]
    pub cache_metrics_capacity: Option<u64>,
    #[arg(long, env = "QA_PMS_CACHE_TEMPLATES_TTL", value_parser = humantime::parse_duration)]
    pub cache_templates_ttl: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_TEMPLATES_TTI", value_parser = humantime::parse_duration)]
    pub cache_templates_tti: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_TEMPLATES_CAPACITY")]
    pub cache_templates_capacity: Option<u64>,
}

impl CacheArgs {
    pub fn config(&self) -> CacheConfig {
        let mut config = CacheConfig::default();
        for kind in CacheKind::ALL {
            let (ttl, tti, capacity) = match kind {
                CacheKind::Tickets => (
                    self.cache_tickets_ttl,
                    self.cache_tickets_tti,
                    self.cache_tickets_capacity,
                ),
                CacheKind::Search => (
                    self.cache_search_ttl,
                    self.cache_search_tti,
                    self.cache_search_capacity,
                ),
                CacheKind::Metrics => (
                    self.cache_metrics_ttl,
                    self.cache_metrics_tti,
                    self.cache_metrics_capacity,
                ),
                CacheKind::Templates => (
                    self.cache_templates_ttl,
                    self.cache_templates_tti,
                    self.cache_templates_capacity,
                ),
            };
            let settings = config.get_mut(kind);
            if let Some(ttl) = ttl {
                settings.ttl = ttl;
            }
            if let Some(tti) = tti {
                settings.tti = Some(tti);
            }
            if let Some(capacity) = capacity {
                settings.capacity = capacity;
            }
        }
        config
    }
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[arg(long)]
    pub tickets: u64,
    #[arg(long)]
    pub workflows: u64,
    #[arg(long)]
    pub catalog: u64,
    /// Seed of the random generator: the same seed gives the same data.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Opens and migrates the database the arguments name.
async fn open(
    database: &DatabaseArgs,
) -> anyhow::Result<std::sync::Arc<dyn qa_pms_storage::Store>> {
    let store = qa_pms_storage::connect(database.url())
        .await
        .with_context(|| format!("cannot open the database {}", redacted(database.url())))?;
    store.migrate().await.context("migrations failed")?;
    Ok(store)
}

/// A database URL without its password, for logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = open(&args.database).await?;
    if (args.demo || args.database.is_embedded_default()) && store.is_empty().await? {
        let report = crate::seed::seed(
            store.as_ref(),
            crate::seed::SeedSpec::DEMO,
            chrono::Utc::now(),
        )
        .await?;
        tracing::info!(?report, "loaded the demo dataset");
    }
    let (router, state) = crate::app::build(store.clone(), args.app_config());
    if crate::invalidation::listen(state).await? {
        tracing::info!("listening for the other replicas' cache invalidations");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        backend = store.backend().as_str(),
        database = %redacted(args.database.url()),
        "qa-pms listening"
    );
    crate::app::serve(listener, router, crate::app::shutdown_signal()).await?;
    Ok(())
}

pub async fn migrate(args: DatabaseArgs) -> anyhow::Result<()> {
    open(&args).await?;
    tracing::info!(database = %redacted(args.url()), "migrations applied");
    Ok(())
}

pub async fn seed(args: SeedArgs) -> anyhow::Result<()> {
    let store = open(&args.database).await?;
    let spec = crate::seed::SeedSpec {
        tickets: args.tickets,
        workflows: args.workflows,
        catalog: args.catalog,
        seed: args.seed,
        history_days: 365,
    };
    let started = std::time::Instant::now();
    let report = crate::seed::seed(store.as_ref(), spec, chrono::Utc::now()).await?;
    println!(
        "seeded {} tickets, {} workflows, {} patterns, {} catalog entries in {:.1?}",
        report.tickets,
        report.workflows,
        report.patterns,
        report.catalog,
        started.elapsed()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_flags_override_the_defaults_and_zero_turns_a_cache_off() {
        let cli = Cli::try_parse_from([
            "qa-pms",
            "--cache-tickets-ttl",
            "500ms",
            "--cache-search-capacity",
            "0",
        ])
        .unwrap();
        let config = cli.serve.cache.config();
        assert_eq!(config.tickets.ttl, Duration::from_millis(500));
        assert_eq!(config.tickets.tti, Some(Duration::from_secs(60)));
        assert_eq!(config.search.capacity, 0);
        assert_eq!(config.metrics, CacheConfig::default().metrics);
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["qa-pms", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.port(), 0);
    }

    #[test]
    fn malformed_durations_are_rejected() {
        assert!(Cli::try_parse_from(["qa-pms", "--cache-tickets-ttl", "soon"]).is_err());
    }
}
