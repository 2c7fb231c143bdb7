//! A real store with latency added after ticket reads and writes, like a slow network between the
//! service and its database. Read latency widens the window in which a cache load holds a row that
//! a concurrent write is replacing; write latency lets a request be cancelled after its write has
//! committed. Those are the races the stale-read tests must show the cache surviving.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use qa_pms_core::dashboard::KpiTotals;
use qa_pms_core::{
    CatalogEntry, JiraTicket, Pattern, SearchQuery, SearchResult, Source, TicketKey, TicketPatch,
    TicketUpsert, Workflow, WorkflowTemplate,
};
use qa_pms_storage::{
    Backend, CatalogChange, CatalogSyncRecord, MirroredTicket, Store, StoreResult, TicketFilter,
    TicketPage,
};
use uuid::Uuid;

pub struct DelayedTicketReads {
    pub inner: Arc<dyn Store>,
    /// Bounds of the random delay added after each ticket read.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Delay after a ticket PATCH has committed, before it returns.
    pub after_write: Duration,
    /// A ticket PATCH that committed panics instead of returning: the writing process dies
    /// between its commit and anything it would do next (invalidate, answer).
    pub die_after_write: bool,
}

impl DelayedTicketReads {
    async fn read_delay(&self) {
        let (min, max) = (
            self.min_delay.as_micros() as u64,
            self.max_delay.as_micros() as u64,
        );
        let micros = min + rand::random::<u64>() % (max.saturating_sub(min) + 1);
        tokio::time::sleep(Duration::from_micros(micros)).await;
    }

    pub fn reads(inner: Arc<dyn Store>, min_delay: Duration, max_delay: Duration) -> Self {
        Self {
            inner,
            min_delay,
            max_delay,
            after_write: Duration::ZERO,
            die_after_write: false,
        }
    }
}

#[async_trait]
impl Store for DelayedTicketReads {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn migrate(&self) -> StoreResult<()> {
        self.inner.migrate().await
    }
    async fn is_empty(&self) -> StoreResult<bool> {
        self.inner.is_empty().await
    }
    async fn ticket(&self, key: &TicketKey) -> StoreResult<JiraTicket> {
        let ticket = self.inner.ticket(key).await;
        self.read_delay().await;
        ticket
    }
    async fn list_tickets(&self, filter: &TicketFilter) -> StoreResult<TicketPage> {
        self.inner.list_tickets(filter).await
    }
    async fn patch_ticket(
        &self,
        key: &TicketKey,
        patch: &TicketPatch,
        now: DateTime<Utc>,
        expected: Option<&JiraTicket>,
    ) -> StoreResult<JiraTicket> {
        let written = self.inner.patch_ticket(key, patch, now, expected).await;
        tokio::time::sleep(self.after_write).await;
        assert!(
            !(self.die_after_write && written.is_ok()),
            "the writing process died right after its commit"
        );
        written
    }
    async fn put_ticket(
        &self,
        key: &TicketKey,
        ticket: &TicketUpsert,
        now: DateTime<Utc>,
        expected: Option<&JiraTicket>,
    ) -> StoreResult<(JiraTicket, bool)> {
        self.inner.put_ticket(key, ticket, now, expected).await
    }
    async fn mirrored_ticket(&self, key: &TicketKey) -> StoreResult<Option<MirroredTicket>> {
        let mirrored = self.inner.mirrored_ticket(key).await;
        self.read_delay().await;
        mirrored
    }
    async fn mirror_ticket(
        &self,
        ticket: &JiraTicket,
        fetched_at: DateTime<Utc>,
    ) -> StoreResult<JiraTicket> {
        self.inner.mirror_ticket(ticket, fetched_at).await
    }
    async fn mirror_ticket_deleted(&self, key: &TicketKey, at: DateTime<Utc>) -> StoreResult<()> {
        self.inner.mirror_ticket_deleted(key, at).await
    }
    async fn claim_ticket_fetch(
        &self,
        key: &TicketKey,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.inner.claim_ticket_fetch(key, holder, now, until).await
    }
    async fn release_ticket_fetch(&self, key: &TicketKey, holder: &str) -> StoreResult<()> {
        self.inner.release_ticket_fetch(key, holder).await
    }
    async fn import_catalog(&self, entries: &[CatalogEntry]) -> StoreResult<CatalogChange> {
        self.inner.import_catalog(entries).await
    }
    async fn claim_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        unless_started_after: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        self.inner
            .claim_catalog_sync(source, holder, now, until, unless_started_after)
            .await
    }
    async fn renew_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.inner.renew_catalog_sync(source, holder, until).await
    }
    async fn replace_catalog(
        &self,
        source: Source,
        holder: &str,
        entries: &[CatalogEntry],
    ) -> StoreResult<Option<CatalogChange>> {
        self.inner.replace_catalog(source, holder, entries).await
    }
    async fn finish_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        now: DateTime<Utc>,
        outcome: Result<CatalogChange, String>,
    ) -> StoreResult<()> {
        self.inner
            .finish_catalog_sync(source, holder, now, outcome)
            .await
    }
    async fn catalog_syncs(&self) -> StoreResult<Vec<CatalogSyncRecord>> {
        self.inner.catalog_syncs().await
    }
    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<SearchResult>> {
        self.inner.search(query).await
    }
    async fn kpi_totals(&self, since: DateTime<Utc>) -> StoreResult<KpiTotals> {
        self.inner.kpi_totals(since).await
    }
    async fn templates(&self) -> StoreResult<Vec<WorkflowTemplate>> {
        self.inner.templates().await
    }
    async fn template(&self, id: Uuid) -> StoreResult<WorkflowTemplate> {
        self.inner.template(id).await
    }
    async fn insert_template(&self, template: &WorkflowTemplate) -> StoreResult<()> {
        self.inner.insert_template(template).await
    }
    async fn update_template(
        &self,
        template: &WorkflowTemplate,
        expected: Option<&WorkflowTemplate>,
    ) -> StoreResult<()> {
        self.inner.update_template(template, expected).await
    }
    async fn delete_template(
        &self,
        id: Uuid,
        expected: Option<&WorkflowTemplate>,
    ) -> StoreResult<()> {
        self.inner.delete_template(id, expected).await
    }
    async fn insert_workflow(&self, workflow: &Workflow) -> StoreResult<()> {
        self.inner.insert_workflow(workflow).await
    }
    async fn workflow(&self, id: Uuid) -> StoreResult<Workflow> {
        self.inner.workflow(id).await
    }
    async fn save_workflow(
        &self,
        workflow: &Workflow,
        expected_version: i64,
        pattern: Option<&Pattern>,
    ) -> StoreResult<bool> {
        self.inner
            .save_workflow(workflow, expected_version, pattern)
            .await
    }
    async fn insert_tickets(&self, tickets: &[JiraTicket]) -> StoreResult<()> {
        self.inner.insert_tickets(tickets).await
    }
    async fn insert_workflows(&self, workflows: &[Workflow]) -> StoreResult<()> {
        self.inner.insert_workflows(workflows).await
    }
    async fn insert_patterns(&self, patterns: &[Pattern]) -> StoreResult<()> {
        self.inner.insert_patterns(patterns).await
    }
    async fn refresh_statistics(&self) -> StoreResult<()> {
        self.inner.refresh_statistics().await
    }
    async fn read_outbox(&self, from: u64) -> StoreResult<qa_pms_storage::OutboxRead> {
        self.inner.read_outbox(from).await
    }
    async fn outbox_position(&self) -> StoreResult<u64> {
        self.inner.outbox_position().await
    }
    async fn prune_outbox(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.prune_outbox(before).await
    }
    async fn subscribe_invalidations(
        &self,
    ) -> StoreResult<Option<tokio::sync::mpsc::Receiver<qa_pms_storage::Notice>>> {
        self.inner.subscribe_invalidations().await
    }
    async fn record_invalidations(&self, messages: &[String]) -> StoreResult<()> {
        self.inner.record_invalidations(messages).await
    }
    async fn save_warm_keys(
        &self,
        cache: &str,
        keys: &[(String, u64)],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.save_warm_keys(cache, keys, at).await
    }
    async fn warm_keys(&self, cache: &str) -> StoreResult<Vec<String>> {
        self.inner.warm_keys(cache).await
    }
}
