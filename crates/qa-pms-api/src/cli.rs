//! The `qa-pms` command line: `serve` (the default), `migrate`, `seed`, `sync jira`, `sync catalog`,
//! `cache stats|purge|warm`. Every flag of `serve` has an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use qa_pms_core::{CacheConfig, CacheKind};

use crate::app::{AppConfig, JiraSettings};
use crate::catalog::CatalogSettings;
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
    /// Copy tickets from an upstream into the database once, then exit.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// See, purge and warm a running service's caches (its admin API, `QA_PMS_ADMIN_TOKEN`).
    #[command(subcommand)]
    Cache(crate::cache_cli::CacheCommand),
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Mirror every Jira issue a JQL search finds (e.g. `--jql 'project = PROJ'`).
    Jira(SyncJiraArgs),
    /// Replace each configured source's catalog entries (Postman, Testmo) with what it holds now.
    Catalog(SyncCatalogArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SyncCatalogArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// Postman and Testmo behind the catalog that search searches. Without an API key or a Testmo
/// URL, the catalog grows through `POST /api/v1/catalog/import` alone.
#[derive(Clone, Args)]
pub struct CatalogArgs {
    /// A Postman API key (Postman, Settings, API keys); every collection it can see is synced.
    #[arg(long, env = "QA_PMS_POSTMAN_API_KEY", hide_env_values = true)]
    pub postman_api_key: Option<String>,
    /// Only this Postman workspace's collections (its id).
    #[arg(long, env = "QA_PMS_POSTMAN_WORKSPACE")]
    pub postman_workspace: Option<String>,
    /// The Postman API.
    #[arg(long, env = "QA_PMS_POSTMAN_URL", default_value = qa_pms_postman::DEFAULT_BASE_URL)]
    pub postman_url: String,
    /// Most requests per second sent to Postman (it allows 300 a minute per key).
    #[arg(long, env = "QA_PMS_POSTMAN_MAX_RPS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub postman_max_rps: u32,
    /// Longest one Postman call may take, retries and rate-limit waits included.
    #[arg(long, env = "QA_PMS_POSTMAN_TIMEOUT", default_value = "90s", value_parser = humantime::parse_duration)]
    pub postman_timeout: Duration,
    /// The Testmo site, like `https://acme.testmo.net`.
    #[arg(long, env = "QA_PMS_TESTMO_URL")]
    pub testmo_url: Option<String>,
    /// A Testmo API token (Testmo, your profile, API access).
    #[arg(
        long,
        env = "QA_PMS_TESTMO_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub testmo_token: String,
    /// The Testmo projects whose repository cases are synced: ids, comma-separated.
    #[arg(long, env = "QA_PMS_TESTMO_PROJECTS", value_delimiter = ',')]
    pub testmo_projects: Vec<u64>,
    /// Most requests per second sent to Testmo.
    #[arg(long, env = "QA_PMS_TESTMO_MAX_RPS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub testmo_max_rps: u32,
    /// Longest one Testmo call may take, retries and rate-limit waits included.
    #[arg(long, env = "QA_PMS_TESTMO_TIMEOUT", default_value = "90s", value_parser = humantime::parse_duration)]
    pub testmo_timeout: Duration,
    /// Between two scheduled syncs of `serve` (it also syncs at start); 0 turns them off.
    #[arg(long, env = "QA_PMS_CATALOG_SYNC_INTERVAL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub catalog_sync_interval: Duration,
}

/// Secrets stay out of logs and error messages.
impl std::fmt::Debug for CatalogArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogArgs")
            .field(
                "postman_api_key",
                &self.postman_api_key.as_ref().map(|_| "***"),
            )
            .field("postman_workspace", &self.postman_workspace)
            .field("postman_url", &self.postman_url)
            .field("testmo_url", &self.testmo_url)
            .field("testmo_projects", &self.testmo_projects)
            .field("catalog_sync_interval", &self.catalog_sync_interval)
            .finish_non_exhaustive()
    }
}

impl CatalogArgs {
    /// The catalog settings; an error if a source is half configured.
    pub fn settings(&self) -> anyhow::Result<CatalogSettings> {
        let postman = match self.postman_api_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(key) => {
                let mut config = qa_pms_postman::PostmanConfig::new(key);
                config.base_url = self.postman_url.clone();
                config.workspace = self.postman_workspace.clone();
                config.max_rps = self.postman_max_rps;
                config.timeout = self.postman_timeout;
                Some(config)
            }
        };
        let testmo = match self.testmo_url.as_deref().map(str::trim) {
            None | Some("") => {
                if !self.testmo_token.is_empty() || !self.testmo_projects.is_empty() {
                    anyhow::bail!(
                        "QA_PMS_TESTMO_TOKEN or QA_PMS_TESTMO_PROJECTS is set: QA_PMS_TESTMO_URL is needed too"
                    );
                }
                None
            }
            Some(url) => {
                if self.testmo_token.is_empty() || self.testmo_projects.is_empty() {
                    anyhow::bail!(
                        "QA_PMS_TESTMO_URL is set: QA_PMS_TESTMO_TOKEN and QA_PMS_TESTMO_PROJECTS are needed too"
                    );
                }
                let mut config = qa_pms_testmo::TestmoConfig::new(
                    url,
                    &self.testmo_token,
                    self.testmo_projects.clone(),
                );
                config.max_rps = self.testmo_max_rps;
                config.timeout = self.testmo_timeout;
                Some(config)
            }
        };
        Ok(CatalogSettings {
            postman,
            testmo,
            interval: self.catalog_sync_interval,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct SyncJiraArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub jira: JiraArgs,
    /// The JQL search whose issues are mirrored.
    #[arg(long)]
    pub jql: String,
}

/// Jira Cloud behind the tickets. Without a URL, tickets live in the database alone.
#[derive(Clone, Default, Args)]
pub struct JiraArgs {
    /// The Jira Cloud site, like `https://acme.atlassian.net`.
    #[arg(long, env = "QA_PMS_JIRA_URL")]
    pub jira_url: Option<String>,
    /// The account whose API token is used (Basic auth).
    #[arg(long, env = "QA_PMS_JIRA_EMAIL", default_value = "")]
    pub jira_email: String,
    /// An API token of that account (id.atlassian.com, Security, API tokens).
    #[arg(
        long,
        env = "QA_PMS_JIRA_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub jira_token: String,
    /// Enables `POST /api/v1/webhooks/jira`; deliveries must carry its HMAC in `X-Hub-Signature`.
    #[arg(long, env = "QA_PMS_JIRA_WEBHOOK_SECRET", hide_env_values = true)]
    pub jira_webhook_secret: Option<String>,
    /// Longest a Jira call may take, retries included (then 504, or the last known value).
    #[arg(long, env = "QA_PMS_JIRA_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub jira_timeout: Duration,
    /// Most requests per second sent to Jira.
    #[arg(long, env = "QA_PMS_JIRA_MAX_RPS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub jira_max_rps: u32,
}

/// Secrets stay out of logs and error messages.
impl std::fmt::Debug for JiraArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraArgs")
            .field("jira_url", &self.jira_url)
            .field("jira_email", &self.jira_email)
            .field("jira_timeout", &self.jira_timeout)
            .field("jira_max_rps", &self.jira_max_rps)
            .finish_non_exhaustive()
    }
}

impl JiraArgs {
    /// The Jira settings, if a URL is given; an error if the rest is missing.
    pub fn settings(&self) -> anyhow::Result<Option<JiraSettings>> {
        let Some(url) = &self.jira_url else {
            return Ok(None);
        };
        if self.jira_email.is_empty() || self.jira_token.is_empty() {
            anyhow::bail!(
                "QA_PMS_JIRA_URL is set: QA_PMS_JIRA_EMAIL and QA_PMS_JIRA_TOKEN are needed too"
            );
        }
        let mut client = qa_pms_jira::JiraConfig::new(url, &self.jira_email, &self.jira_token);
        client.timeout = self.jira_timeout;
        client.max_rps = self.jira_max_rps;
        Ok(Some(JiraSettings {
            client,
            webhook_secret: self.jira_webhook_secret.clone().filter(|s| !s.is_empty()),
        }))
    }
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
    #[command(flatten)]
    pub jira: JiraArgs,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub admin: AdminArgs,
    /// Load the most-read keys the last shutdown saved, in the background while serving
    /// (`--warm-on-start false`: start cold).
    #[arg(long, env = "QA_PMS_WARM_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub warm_on_start: bool,
}

/// The admin API (`/admin/cache`).
#[derive(Clone, Default, Args)]
pub struct AdminArgs {
    /// Enables `/admin/*`, which requires `Authorization: Bearer <token>`; unset: those routes
    /// are 404.
    #[arg(long, env = "QA_PMS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

/// Secrets stay out of logs and error messages.
impl std::fmt::Debug for AdminArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminArgs")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ServeArgs {
    pub fn app_config(&self) -> anyhow::Result<AppConfig> {
        Ok(AppConfig {
            cache: self.cache.config(),
            limits: Limits {
                request_timeout: self.request_timeout,
                body_limit: self.body_limit,
            },
            jira: self.jira.settings()?,
            catalog: self.catalog.settings()?,
            admin_token: self
                .admin
                .admin_token
                .clone()
                .filter(|token| !token.trim().is_empty()),
        })
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
    /// How long a "not found" for a ticket is remembered (30s).
    #[arg(long, env = "QA_PMS_CACHE_TICKETS_NEGATIVE_TTL", value_parser = humantime::parse_duration)]
    pub cache_tickets_negative_ttl: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_TICKETS_GRACE", value_parser = humantime::parse_duration)]
    pub cache_tickets_grace: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_SEARCH_GRACE", value_parser = humantime::parse_duration)]
    pub cache_search_grace: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_METRICS_GRACE", value_parser = humantime::parse_duration)]
    pub cache_metrics_grace: Option<Duration>,
    #[arg(long, env = "QA_PMS_CACHE_TEMPLATES_GRACE", value_parser = humantime::parse_duration)]
    pub cache_templates_grace: Option<Duration>,
    /// Byte budgets (`32MiB`, `500KiB`, plain bytes; 0: entries alone bound the cache).
    #[arg(long, env = "QA_PMS_CACHE_TICKETS_MAX_BYTES", value_parser = parse_bytes)]
    pub cache_tickets_max_bytes: Option<u64>,
    #[arg(long, env = "QA_PMS_CACHE_SEARCH_MAX_BYTES", value_parser = parse_bytes)]
    pub cache_search_max_bytes: Option<u64>,
    #[arg(long, env = "QA_PMS_CACHE_METRICS_MAX_BYTES", value_parser = parse_bytes)]
    pub cache_metrics_max_bytes: Option<u64>,
    #[arg(long, env = "QA_PMS_CACHE_TEMPLATES_MAX_BYTES", value_parser = parse_bytes)]
    pub cache_templates_max_bytes: Option<u64>,
}

/// A size in bytes: a number, optionally followed by KiB, MiB or GiB (or KB, MB, GB, also 1024).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 32MiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("`{other}` is not a unit of KiB, MiB, GiB")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

impl CacheArgs {
    pub fn config(&self) -> CacheConfig {
        let mut config = CacheConfig::default();
        for kind in CacheKind::ALL {
            let (ttl, tti, capacity, grace, max_bytes) = match kind {
                CacheKind::Tickets => (
                    self.cache_tickets_ttl,
                    self.cache_tickets_tti,
                    self.cache_tickets_capacity,
                    self.cache_tickets_grace,
                    self.cache_tickets_max_bytes,
                ),
                CacheKind::Search => (
                    self.cache_search_ttl,
                    self.cache_search_tti,
                    self.cache_search_capacity,
                    self.cache_search_grace,
                    self.cache_search_max_bytes,
                ),
                CacheKind::Metrics => (
                    self.cache_metrics_ttl,
                    self.cache_metrics_tti,
                    self.cache_metrics_capacity,
                    self.cache_metrics_grace,
                    self.cache_metrics_max_bytes,
                ),
                CacheKind::Templates => (
                    self.cache_templates_ttl,
                    self.cache_templates_tti,
                    self.cache_templates_capacity,
                    self.cache_templates_grace,
                    self.cache_templates_max_bytes,
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
            if let Some(grace) = grace {
                settings.grace = grace;
            }
            if let Some(max_bytes) = max_bytes {
                settings.max_bytes = (max_bytes > 0).then_some(max_bytes);
            }
        }
        if let Some(negative_ttl) = self.cache_tickets_negative_ttl {
            config.tickets.negative_ttl = Some(negative_ttl);
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
    let (router, state) =
        crate::app::try_build(store.clone(), args.app_config()?, axum::Router::new())?;
    if let crate::tickets::TicketSource::Jira(_) = state.tickets {
        tracing::info!(
            jira = args.jira.jira_url.as_deref().unwrap_or_default(),
            webhooks = state.jira_webhook_secret.is_some(),
            "tickets come from Jira, mirrored in the database"
        );
    }
    for source in state.catalog.sources() {
        tracing::info!(
            source = source.source().as_str(),
            interval = %humantime::format_duration(state.catalog.interval()),
            "the catalog syncs from this source at start and on schedule"
        );
    }
    crate::catalog::schedule(&state);
    if crate::invalidation::listen(state.clone()).await? {
        tracing::info!("listening for the other replicas' cache invalidations");
    }
    if args.warm_on_start {
        let state = state.clone();
        tokio::spawn(async move {
            match crate::warm::restore(&state).await {
                Ok(warmed) => tracing::info!(
                    ?warmed,
                    "warmed the caches with the keys saved at the last shutdown"
                ),
                Err(error) => tracing::warn!(%error, "could not warm the caches"),
            }
        });
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
    match crate::warm::save(&state).await {
        Ok(saved) => tracing::info!(saved, "saved the most-read keys for the next start"),
        Err(error) => tracing::warn!(%error, "could not save the most-read keys"),
    }
    Ok(())
}

pub async fn sync(command: SyncCommand) -> anyhow::Result<()> {
    match command {
        SyncCommand::Jira(args) => {
            let Some(settings) = args.jira.settings()? else {
                anyhow::bail!("set QA_PMS_JIRA_URL (or --jira-url) to sync from Jira");
            };
            let store = open(&args.database).await?;
            let client = qa_pms_jira::JiraClient::new(settings.client)?;
            let started = std::time::Instant::now();
            let report = crate::sync::sync_jira(&client, store.as_ref(), &args.jql).await?;
            println!(
                "mirrored {} tickets from {} page(s) of Jira search results in {:.1?}",
                report.tickets,
                report.pages,
                started.elapsed()
            );
            Ok(())
        }
        SyncCommand::Catalog(args) => {
            let config = AppConfig {
                catalog: args.catalog.settings()?,
                ..AppConfig::default()
            };
            if config.catalog.postman.is_none() && config.catalog.testmo.is_none() {
                anyhow::bail!(
                    "set QA_PMS_POSTMAN_API_KEY or QA_PMS_TESTMO_URL (and its token and projects) to sync the catalog"
                );
            }
            let store = open(&args.database).await?;
            let state = crate::state::AppState::new(store, &config)?;
            let holder = format!("cli-{}", uuid::Uuid::new_v4().simple());
            let started = std::time::Instant::now();
            let outcomes = crate::catalog::run(&state, &holder, None).await;
            let mut failed = 0;
            for (source, outcome) in &outcomes {
                match outcome {
                    crate::catalog::SourceOutcome::Synced(change) => println!(
                        "{}: {} added, {} changed, {} removed, {} unchanged",
                        source.as_str(),
                        change.added,
                        change.changed,
                        change.removed,
                        change.unchanged
                    ),
                    crate::catalog::SourceOutcome::Failed(error) => {
                        failed += 1;
                        println!(
                            "{}: failed, the previous entries stay: {error}",
                            source.as_str()
                        );
                    }
                    crate::catalog::SourceOutcome::Skipped => {
                        failed += 1;
                        println!(
                            "{}: not synced, another sync of it is running",
                            source.as_str()
                        );
                    }
                }
            }
            println!("catalog sync ended in {:.1?}", started.elapsed());
            if failed > 0 {
                anyhow::bail!("{failed} source(s) not synced");
            }
            Ok(())
        }
    }
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
    fn jira_needs_credentials_with_its_url_and_is_off_without_it() {
        let off = Cli::try_parse_from(["qa-pms"]).unwrap();
        assert!(off.serve.jira.settings().unwrap().is_none());
        let partial =
            Cli::try_parse_from(["qa-pms", "--jira-url", "https://acme.atlassian.net"]).unwrap();
        assert!(partial.serve.jira.settings().is_err());
        let full = Cli::try_parse_from([
            "qa-pms",
            "--jira-url",
            "https://acme.atlassian.net",
            "--jira-email",
            "qa@acme.test",
            "--jira-token",
            "secret-token",
            "--jira-max-rps",
            "3",
        ])
        .unwrap();
        let settings = full.serve.jira.settings().unwrap().unwrap();
        assert_eq!(settings.client.max_rps, 3);
        assert_eq!(settings.client.timeout, Duration::from_secs(5));
        assert!(!format!("{:?}", full.serve.jira).contains("secret-token"));
    }

    #[test]
    fn malformed_durations_are_rejected() {
        assert!(Cli::try_parse_from(["qa-pms", "--cache-tickets-ttl", "soon"]).is_err());
    }
}
