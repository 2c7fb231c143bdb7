//! Storage for qa-pms: the [`Store`] trait and its two backends.
//!
//! SQLite is the embedded default; PostgreSQL is production. Each backend owns its migrations and
//! its SQL; everything above the trait is backend-agnostic, and both run the same test suite.

mod error;
mod postgres;
mod search_sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use qa_pms_core::dashboard::KpiTotals;
use qa_pms_core::{
    CatalogEntry, JiraTicket, Pattern, SearchQuery, SearchResult, Source, TicketKey, TicketPatch,
    TicketUpsert, Workflow, WorkflowTemplate,
};
use uuid::Uuid;

pub use error::{StoreError, StoreResult};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Filters and page of `GET /api/v1/tickets`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    pub status: Option<String>,
    pub assignee: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TicketPage {
    pub tickets: Vec<JiraTicket>,
    pub total: u64,
}

/// What an import or a sync did to the catalog, entry by entry. An entry whose name and text are
/// what the catalog already holds counts as unchanged and is not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CatalogChange {
    pub added: u64,
    pub changed: u64,
    /// Only a sync removes: entries its source no longer has.
    pub removed: u64,
    pub unchanged: u64,
}

impl CatalogChange {
    /// Whether any search could now answer differently.
    pub fn is_empty(&self) -> bool {
        self.added + self.changed + self.removed == 0
    }
}

/// A finished sync's counts as the backends store them (`None` unless it succeeded); `unchanged`
/// is not kept.
fn change_from([added, changed, removed]: [Option<i64>; 3]) -> Option<CatalogChange> {
    Some(CatalogChange {
        added: u64::try_from(added?).ok()?,
        changed: u64::try_from(changed?).ok()?,
        removed: u64::try_from(removed?).ok()?,
        unchanged: 0,
    })
}

/// The sync record of one catalog source: the run in progress, or the last one that ended.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSyncRecord {
    pub source: Source,
    /// Who runs it, while it runs.
    pub holder: Option<String>,
    /// A run still holding the source after this has stopped (its process died).
    pub lease_until: Option<DateTime<Utc>>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the last run changed, if it succeeded.
    pub change: Option<CatalogChange>,
    /// Why the last run failed.
    pub error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The entries of this source the catalog holds now.
    pub entries: u64,
}

/// A ticket as the mirror of Jira holds it: the ticket, when it was last fetched from Jira
/// (`None`: only ever written here) and whether Jira deleted it.
#[derive(Debug, Clone, PartialEq)]
pub struct MirroredTicket {
    pub ticket: JiraTicket,
    pub fetched_at: Option<DateTime<Utc>>,
    pub deleted: bool,
}

/// What the invalidation feed delivers: when to read the outbox ([`Store::read_outbox`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A transaction that recorded invalidations committed.
    Wake,
    /// The feed lost its connection and may have missed wakes; it reconnects by itself.
    Lost,
}

/// One cache invalidation recorded in the database by the triggers of the cached tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Unique to the row.
    pub seq: i64,
    /// Where the row stands in the order the outbox is read in (see [`Store::read_outbox`]).
    pub position: u64,
    /// `db <what> [<key>]`, as `qa_pms_api::invalidation` reads it.
    pub message: String,
}

/// A read of the outbox: the rows at or after the position asked for, and where to read next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRead {
    pub rows: Vec<OutboxRow>,
    /// Every row a later read can return has a position at or after this one. Rows returned now
    /// may be returned again while their position is not below it: skip those by `seq`.
    pub next: u64,
    /// Above the position of every transaction that had committed when this read began: a reader
    /// whose `next` reaches it has applied all of them (PostgreSQL: the snapshot's `xmax`).
    pub horizon_end: u64,
}

/// Everything the service reads and writes. Methods that look up one thing return
/// [`StoreError::NotFound`] when it is not there.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    async fn ping(&self) -> StoreResult<()>;
    async fn migrate(&self) -> StoreResult<()>;
    /// No tickets, no workflows: a database the demo data may be loaded into.
    async fn is_empty(&self) -> StoreResult<bool>;

    async fn ticket(&self, key: &TicketKey) -> StoreResult<JiraTicket>;
    async fn list_tickets(&self, filter: &TicketFilter) -> StoreResult<TicketPage>;
    /// Applies a partial update; absent fields keep their value. With `expected` (a conditional
    /// write, `If-Match`), only if the stored ticket is still exactly that one, checked in the
    /// same statement: [`StoreError::Changed`] otherwise.
    async fn patch_ticket(
        &self,
        key: &TicketKey,
        patch: &TicketPatch,
        now: DateTime<Utc>,
        expected: Option<&JiraTicket>,
    ) -> StoreResult<JiraTicket>;
    /// Creates or replaces a ticket; `true` if it was created. With `expected`, replaces only
    /// that ticket, as [`Store::patch_ticket`] does.
    async fn put_ticket(
        &self,
        key: &TicketKey,
        ticket: &TicketUpsert,
        now: DateTime<Utc>,
        expected: Option<&JiraTicket>,
    ) -> StoreResult<(JiraTicket, bool)>;

    /// The mirror row of a ticket, deleted ones included; `None` if there is none.
    async fn mirrored_ticket(&self, key: &TicketKey) -> StoreResult<Option<MirroredTicket>>;
    /// Stores what Jira answered for a ticket, fetched at `fetched_at`, unless the mirror already
    /// holds a newer version of it (by Jira's `updated`). Returns the ticket the mirror now holds.
    async fn mirror_ticket(
        &self,
        ticket: &JiraTicket,
        fetched_at: DateTime<Utc>,
    ) -> StoreResult<JiraTicket>;
    /// Jira deleted the ticket: it is kept as a tombstone (workflows may name it) and no longer read.
    async fn mirror_ticket_deleted(&self, key: &TicketKey, at: DateTime<Utc>) -> StoreResult<()>;
    /// Takes the right to fetch `key` from Jira until `until`, unless another holder has a lease
    /// that has not expired at `now`: replicas missing one key at once make one Jira call.
    async fn claim_ticket_fetch(
        &self,
        key: &TicketKey,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn release_ticket_fetch(&self, key: &TicketKey, holder: &str) -> StoreResult<()>;

    /// Adds entries, replacing those with the same source and url.
    async fn import_catalog(&self, entries: &[CatalogEntry]) -> StoreResult<CatalogChange>;

    /// Starts a sync of `source` for `holder` until `until`, unless a run holds it whose lease has
    /// not expired at `now`, or (with `unless_started_after`) a run started after that time.
    async fn claim_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        unless_started_after: Option<DateTime<Utc>>,
    ) -> StoreResult<bool>;
    /// Extends `holder`'s sync of `source` to `until`; `false` if it no longer holds it.
    async fn renew_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Makes `entries` the whole catalog of `source` in one transaction (added, changed, removed),
    /// if `holder` still holds its sync; `None`, with nothing written, if it does not.
    async fn replace_catalog(
        &self,
        source: Source,
        holder: &str,
        entries: &[CatalogEntry],
    ) -> StoreResult<Option<CatalogChange>>;
    /// Ends `holder`'s sync of `source`: what it changed, or why it failed. No-op if `holder` no
    /// longer holds it.
    async fn finish_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        now: DateTime<Utc>,
        outcome: Result<CatalogChange, String>,
    ) -> StoreResult<()>;
    /// Every source's sync record.
    async fn catalog_syncs(&self) -> StoreResult<Vec<CatalogSyncRecord>>;
    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<SearchResult>>;

    async fn kpi_totals(&self, since: DateTime<Utc>) -> StoreResult<KpiTotals>;

    async fn templates(&self) -> StoreResult<Vec<WorkflowTemplate>>;
    async fn template(&self, id: Uuid) -> StoreResult<WorkflowTemplate>;
    async fn insert_template(&self, template: &WorkflowTemplate) -> StoreResult<()>;
    /// With `expected`, only if the stored template is still exactly that one
    /// ([`StoreError::Changed`] otherwise), checked in the same statement.
    async fn update_template(
        &self,
        template: &WorkflowTemplate,
        expected: Option<&WorkflowTemplate>,
    ) -> StoreResult<()>;
    /// [`StoreError::Conflict`] while workflows still use the template. `expected` as in
    /// [`Store::update_template`].
    async fn delete_template(
        &self,
        id: Uuid,
        expected: Option<&WorkflowTemplate>,
    ) -> StoreResult<()>;

    async fn insert_workflow(&self, workflow: &Workflow) -> StoreResult<()>;
    async fn workflow(&self, id: Uuid) -> StoreResult<Workflow>;
    /// Writes `workflow` (and the pattern it revealed) if the stored row still has
    /// `expected_version`; `false` if another write got there first.
    async fn save_workflow(
        &self,
        workflow: &Workflow,
        expected_version: i64,
        pattern: Option<&Pattern>,
    ) -> StoreResult<bool>;

    /// Bulk loads for the demo data and `qa-pms seed`: plain inserts, existing keys are an error.
    async fn insert_tickets(&self, tickets: &[JiraTicket]) -> StoreResult<()>;
    async fn insert_workflows(&self, workflows: &[Workflow]) -> StoreResult<()>;
    async fn insert_patterns(&self, patterns: &[Pattern]) -> StoreResult<()>;
    /// After a bulk load: refresh the planner's statistics (and, on PostgreSQL, the visibility map
    /// that lets the KPI query read its covering index alone).
    async fn refresh_statistics(&self) -> StoreResult<()>;

    /// The cache invalidations recorded at or after `from` (0: every one still kept), in the
    /// order they were recorded. On PostgreSQL a position is a transaction id, and `next` the
    /// oldest transaction still running: a transaction that commits late is read however late it
    /// commits. On SQLite, where writers take turns, it is the row's sequence number.
    async fn read_outbox(&self, from: u64) -> StoreResult<OutboxRead>;
    /// Where a reader with nothing cached starts: after every invalidation of the transactions
    /// already committed (whose writes it will read from the database anyway).
    async fn outbox_position(&self) -> StoreResult<u64>;
    /// Deletes the invalidations recorded before `before`; returns how many.
    async fn prune_outbox(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// Records messages in the outbox beside the triggers' own (`admin purge tickets`): every
    /// process applies them as it applies invalidations.
    async fn record_invalidations(&self, messages: &[String]) -> StoreResult<()>;

    /// Replaces the saved most-read keys of `cache` (most read first, with their reads): what
    /// the next process to start loads first.
    async fn save_warm_keys(
        &self,
        cache: &str,
        keys: &[(String, u64)],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The saved most-read keys of `cache`, most read first.
    async fn warm_keys(&self, cache: &str) -> StoreResult<Vec<String>>;

    /// Wakes the reader of the outbox when another process's transaction recorded invalidations
    /// (PostgreSQL `LISTEN`). `None` where there is no such feed (SQLite): poll the outbox.
    async fn subscribe_invalidations(
        &self,
    ) -> StoreResult<Option<tokio::sync::mpsc::Receiver<Notice>>>;
}

/// Opens the database a URL names: `postgres://` or `postgresql://` for PostgreSQL, anything else
/// (`sqlite:qa-pms.db`, a plain path) for SQLite, created if missing. Does not migrate.
pub async fn connect(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    }
}
