//! The catalog that search searches, synced from Postman and Testmo.
//!
//! A sync of one source: claim it in the database (`catalog_syncs`: one run per source across
//! every replica and `qa-pms sync catalog`), fetch its whole catalog through its client (which
//! fails rather than return part of it), make that the source's entries in one transaction
//! (`Store::replace_catalog`, fenced by the claim), drop cached searches here and on the other
//! replicas if any entry was added, changed or removed, then record the outcome. A failure at any
//! step leaves the source's previous entries searchable, and the record says why.
//!
//! `serve` runs a sync at start and every `QA_PMS_CATALOG_SYNC_INTERVAL`, skipping a source that
//! any replica synced within the interval; `POST /api/v1/catalog/sync` runs one at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use qa_pms_core::catalog::CatalogEntries;
use qa_pms_core::Source;
use qa_pms_postman::{PostmanClient, PostmanConfig};
use qa_pms_storage::CatalogChange;
use qa_pms_testmo::{TestmoClient, TestmoConfig};
use qa_pms_upstream::Upstream;

use crate::app::SettingsError;
use crate::invalidation::Invalidation;
use crate::state::AppState;

/// How long a run holds its source without renewing its claim: another run may take the source
/// over after this (the run was abandoned: its process died or was stopped mid-run). A run renews
/// its claim every [`RENEW_EVERY`] while it fetches.
pub const SYNC_LEASE: Duration = Duration::from_secs(2 * 60);
pub const RENEW_EVERY: Duration = Duration::from_secs(30);
/// The longest a run waits for its source's whole catalog.
pub const FETCH_DEADLINE: Duration = Duration::from_secs(25 * 60);
/// The default `QA_PMS_CATALOG_SYNC_INTERVAL`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Where the catalog comes from.
#[derive(Debug, Clone)]
pub struct CatalogSettings {
    pub postman: Option<PostmanConfig>,
    pub testmo: Option<TestmoConfig>,
    /// Between two scheduled syncs; zero: only at start and on request.
    pub interval: Duration,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            postman: None,
            testmo: None,
            interval: DEFAULT_INTERVAL,
        }
    }
}

/// One upstream catalog.
#[derive(Clone)]
pub enum CatalogSource {
    Postman(PostmanClient),
    Testmo(TestmoClient),
}

impl CatalogSource {
    pub fn source(&self) -> Source {
        match self {
            CatalogSource::Postman(_) => Source::Postman,
            CatalogSource::Testmo(_) => Source::Testmo,
        }
    }

    pub fn upstream(&self) -> &Upstream {
        match self {
            CatalogSource::Postman(client) => client.upstream(),
            CatalogSource::Testmo(client) => client.upstream(),
        }
    }

    /// The source's whole catalog, or why it could not be read.
    async fn entries(&self) -> Result<CatalogEntries, String> {
        match self {
            CatalogSource::Postman(client) => {
                client.catalog_entries().await.map_err(|e| e.to_string())
            }
            CatalogSource::Testmo(client) => {
                client.catalog_entries().await.map_err(|e| e.to_string())
            }
        }
    }
}

/// What one run did to one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceOutcome {
    Synced(CatalogChange),
    Failed(String),
    /// Another run holds the source, or (a scheduled run) one synced it within the interval.
    Skipped,
}

impl SourceOutcome {
    /// The label of `qa_pms_catalog_syncs_total`.
    pub fn label(&self) -> &'static str {
        match self {
            SourceOutcome::Synced(change) if change.is_empty() => "unchanged",
            SourceOutcome::Synced(_) => "changed",
            SourceOutcome::Failed(_) => "failed",
            SourceOutcome::Skipped => "skipped",
        }
    }
}

/// The configured sources and this process's runs of them.
pub struct CatalogSync {
    sources: Vec<CatalogSource>,
    interval: Duration,
    runner: Mutex<Runner>,
}

#[derive(Default)]
struct Runner {
    running: bool,
    /// A request came while a run was under way: run once more after it.
    again: bool,
}

impl CatalogSync {
    pub fn new(settings: &CatalogSettings) -> Result<Self, SettingsError> {
        let mut sources = Vec::new();
        if let Some(config) = &settings.postman {
            sources.push(CatalogSource::Postman(PostmanClient::new(config.clone())?));
        }
        if let Some(config) = &settings.testmo {
            sources.push(CatalogSource::Testmo(TestmoClient::new(config.clone())?));
        }
        Ok(Self {
            sources,
            interval: settings.interval,
            runner: Mutex::new(Runner::default()),
        })
    }

    pub fn sources(&self) -> &[CatalogSource] {
        &self.sources
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a run of this process is under way.
    pub fn is_running(&self) -> bool {
        self.runner.lock().map(|r| r.running).unwrap_or(false)
    }
}

/// Runs one sync of every source now, concurrently, and returns what it did to each. `holder`
/// names this run in the database; `recent` skips a source whose last run started within it.
pub async fn run(
    state: &AppState,
    holder: &str,
    recent: Option<Duration>,
) -> Vec<(Source, SourceOutcome)> {
    let mut runs = tokio::task::JoinSet::new();
    for source in state.catalog.sources() {
        let (state, holder, source) = (state.clone(), holder.to_owned(), source.clone());
        runs.spawn(async move {
            let outcome = sync_source(&state, &source, &holder, recent).await;
            state
                .metrics
                .catalog_syncs
                .with_label_values(&[source.source().as_str(), outcome.label()])
                .inc();
            (source.source(), outcome)
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = runs.join_next().await {
        match done {
            Ok(outcome) => outcomes.push(outcome),
            Err(error) => tracing::error!(%error, "a catalog sync task failed"),
        }
    }
    outcomes.sort_by_key(|(source, _)| source.as_str());
    outcomes
}

/// Starts a run on a task of its own unless one of this process is under way. A `requested` run
/// (not a scheduled one) that finds one under way makes it run once more when it ends, so that
/// what changed upstream before the request is synced after it. Returns whether a run started.
pub fn start(state: &AppState, requested: bool) -> bool {
    let sync = Arc::clone(&state.catalog);
    {
        let Ok(mut runner) = sync.runner.lock() else {
            return false;
        };
        if runner.running {
            runner.again |= requested;
            return false;
        }
        runner.running = true;
    }
    let state = state.clone();
    // A requested run syncs every source now; a scheduled one leaves those another replica synced
    // within the interval (most of an interval: replicas' clocks and timers drift).
    let mut recent = (!requested).then(|| sync.interval.mul_f64(0.9));
    tokio::spawn(async move {
        loop {
            let outcomes = run(&state, &state.instance, recent).await;
            tracing::debug!(?outcomes, "catalog sync ended");
            let Ok(mut runner) = sync.runner.lock() else {
                return;
            };
            if std::mem::take(&mut runner.again) {
                recent = None;
                continue;
            }
            runner.running = false;
            return;
        }
    });
    true
}

/// Syncs at start, then every interval (never if the interval is zero), until the process ends.
pub fn schedule(state: &AppState) {
    if state.catalog.sources().is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        start(&state, false);
        let interval = state.catalog.interval();
        if interval.is_zero() {
            return;
        }
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            start(&state, false);
        }
    });
}

async fn sync_source(
    state: &AppState,
    source: &CatalogSource,
    holder: &str,
    recent: Option<Duration>,
) -> SourceOutcome {
    let which = source.source();
    let store = &state.store;
    let now = Utc::now();
    let claim = store.claim_catalog_sync(
        which,
        holder,
        now,
        now + SYNC_LEASE,
        recent.map(|recent| now - recent),
    );
    match claim.await {
        Ok(true) => {}
        Ok(false) => return SourceOutcome::Skipped,
        Err(error) => {
            tracing::error!(source = which.as_str(), %error, "could not start a catalog sync");
            return SourceOutcome::Failed(format!("database: {error}"));
        }
    }
    let fetch = tokio::time::timeout(FETCH_DEADLINE, source.entries());
    let outcome = match renewing(state, which, holder, fetch).await {
        Err(_) => Err(format!(
            "{} did not return its catalog within {}",
            which.as_str(),
            humantime::format_duration(FETCH_DEADLINE)
        )),
        Ok(Err(error)) => Err(error),
        Ok(Ok(fetched)) => match store.replace_catalog(which, holder, &fetched.entries).await {
            Ok(Some(change)) => Ok(change),
            Ok(None) => {
                tracing::warn!(
                    source = which.as_str(),
                    "catalog sync outlived its lease; another run took the source over"
                );
                return SourceOutcome::Skipped;
            }
            Err(error) => Err(format!("database: {error}")),
        },
    };
    // Searches are dropped before the record says the run finished: whoever reads "finished"
    // searches the new catalog.
    if matches!(&outcome, Ok(change) if !change.is_empty()) {
        state.invalidate(Invalidation::AllSearches).await;
    }
    match &outcome {
        Ok(change) => tracing::info!(
            source = which.as_str(),
            added = change.added,
            changed = change.changed,
            removed = change.removed,
            unchanged = change.unchanged,
            "catalog synced"
        ),
        Err(error) => tracing::warn!(
            source = which.as_str(),
            %error,
            "catalog sync failed; the previous entries stay searchable"
        ),
    }
    let finish = store.finish_catalog_sync(which, holder, Utc::now(), outcome.clone());
    if let Err(error) = finish.await {
        tracing::error!(source = which.as_str(), %error, "could not record a catalog sync");
    }
    match outcome {
        Ok(change) => SourceOutcome::Synced(change),
        Err(error) => SourceOutcome::Failed(error),
    }
}

/// Runs `work` while renewing `holder`'s claim of `source`, so that the claim outlives a long
/// fetch but not a dead process.
async fn renewing<T>(
    state: &AppState,
    source: Source,
    holder: &str,
    work: impl std::future::Future<Output = T>,
) -> T {
    let renew = async {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let until = Utc::now() + SYNC_LEASE;
            match state.store.renew_catalog_sync(source, holder, until).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    source = source.as_str(),
                    "catalog sync lost its claim; its catalog will not be written"
                ),
                Err(error) => tracing::warn!(
                    source = source.as_str(),
                    %error,
                    "could not renew a catalog sync's claim"
                ),
            }
        }
    };
    tokio::select! {
        done = work => done,
        never = renew => never,
    }
}

/// The state of a source's sync as `GET /api/v1/catalog/sync` reports it.
pub fn state_of(
    holder: Option<&str>,
    lease_until: Option<DateTime<Utc>>,
    error: bool,
) -> &'static str {
    match (holder, lease_until) {
        (Some(_), Some(until)) if until < Utc::now() => "abandoned",
        (Some(_), _) => "running",
        (None, _) if error => "failed",
        (None, _) => "finished",
    }
}
