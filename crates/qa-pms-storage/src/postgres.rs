//! The PostgreSQL backend: production. Native UUID, TIMESTAMPTZ and JSONB columns; bulk loads
//! through `UNNEST` of bound arrays.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use qa_pms_core::dashboard::KpiTotals;
use qa_pms_core::{
    CatalogEntry, JiraTicket, Pattern, SearchQuery, SearchResult, Source, StepProgress, TicketKey,
    TicketPatch, TicketUpsert, Workflow, WorkflowState, WorkflowTemplate,
};
use sqlx::postgres::{PgConnection, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

use crate::search_sql::{
    occurs_sql, relevance, search_sql, tier_sql, trigram_indexable, walk_sql, Dialect, IndexWalk,
    COLUMNS,
};
use crate::{
    change_from, Backend, CatalogChange, CatalogSyncRecord, MirroredTicket, Notice, OutboxRead,
    OutboxRow, Store, StoreError, StoreResult, TicketFilter, TicketPage,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const TICKET_COLUMNS: &str = "key, summary, status, description, assignee, priority, updated_at";
const TEMPLATE_COLUMNS: &str = "id, name, steps, workflow_type, estimated_minutes, updated_at";
const WORKFLOW_COLUMNS: &str = "id, template_id, ticket_key, state, steps, estimated_minutes, \
                                started_at, completed_at, updated_at, version";

/// The `LISTEN`/`NOTIFY` channel on which the outbox's trigger wakes the replicas (migration 0007).
pub const INVALIDATION_CHANNEL: &str = "qa_pms_cache";

/// Rows per `UNNEST` batch in bulk loads.
const BATCH: usize = 5_000;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn ticket_from(row: &PgRow) -> StoreResult<JiraTicket> {
    Ok(JiraTicket {
        key: row.try_get("key")?,
        summary: row.try_get("summary")?,
        status: row.try_get("status")?,
        description: row.try_get("description")?,
        assignee: row.try_get("assignee")?,
        priority: row.try_get("priority")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn template_from(row: &PgRow) -> StoreResult<WorkflowTemplate> {
    Ok(WorkflowTemplate {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        steps: row.try_get::<Json<Vec<String>>, _>("steps")?.0,
        workflow_type: row.try_get("workflow_type")?,
        estimated_minutes: u32::try_from(row.try_get::<i32, _>("estimated_minutes")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn workflow_from(row: &PgRow) -> StoreResult<Workflow> {
    let state: String = row.try_get("state")?;
    Ok(Workflow {
        id: row.try_get("id")?,
        template_id: row.try_get("template_id")?,
        ticket_key: row.try_get("ticket_key")?,
        state: WorkflowState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("workflow state `{state}`")))?,
        steps: row.try_get::<Json<Vec<StepProgress>>, _>("steps")?.0,
        estimated_minutes: u32::try_from(row.try_get::<i32, _>("estimated_minutes")?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        started_at: row.try_get("started_at")?,
        completed_at: row.try_get("completed_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
    })
}

/// The search query's PostgreSQL parts: LIKE, which the trigram indexes of migration 0004 answer
/// for a term of three or more characters.
const SEARCH: Dialect = Dialect {
    placeholder: |i| format!("${i}"),
    contains: |column, pattern| format!("{column} LIKE {pattern} ESCAPE '\\'"),
    collate: " COLLATE \"C\"",
};

/// Whether some entry holds the term bound at `term` in `column`: a look at the first few hundred
/// rows (a common term is there), then the trigram index through the functions of migration 0006
/// (which an EXISTS alone would not use, see there). Exact either way.
fn occurs(column: &str, term: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM (SELECT {column} FROM catalog_entries LIMIT 500) AS probe \
                  WHERE {contains}) \
          OR catalog_{column}_occurs({term}))",
        contains = (SEARCH.contains)(column, term),
    )
}

/// The walk index of migration 0006; these predicates are its and its complement's, verbatim.
const WALK: IndexWalk = IndexWalk {
    covered: "octet_length(name) + octet_length(search_name) + octet_length(url) <= 2000",
    uncovered: "octet_length(name) + octet_length(search_name) + octet_length(url) > 2000",
    entries: 4_000,
};

/// Runs one of the search queries of `search_sql` (terms bound as LIKE patterns, then the source,
/// then the limit): the rows, with `walked` if the query has that column.
async fn ranked(
    conn: &mut PgConnection,
    sql: &str,
    query: &SearchQuery,
) -> StoreResult<(Vec<SearchResult>, Option<i64>)> {
    // Planned with the terms' values, never from a cached generic plan: the planner then sees
    // which terms the trigram indexes can look up, and scans the table for the others.
    let mut q = sqlx::query(sql).persistent(false);
    for term in query.terms() {
        q = q.bind(SearchQuery::like_pattern(term));
    }
    if let Some(source) = query.source() {
        q = q.bind(source.as_str());
    }
    let rows = q
        .bind(i64::from(query.limit()))
        .fetch_all(&mut *conn)
        .await?;
    let walked = match rows.first() {
        Some(row) if row.columns().len() > 4 => Some(row.try_get::<i64, _>("walked")?),
        _ => None,
    };
    let results = rows
        .iter()
        .map(|row| {
            let source: String = row.try_get("source")?;
            Ok(SearchResult {
                source: Source::from_str(&source)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                name: row.try_get("name")?,
                url: row.try_get("url")?,
                relevance: relevance(i64::from(row.try_get::<i32, _>("score")?), query),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok((results, walked))
}

/// An estimate in the INTEGER column; validated drafts are far below `i32::MAX`.
/// The condition of a conditional ticket write, its parameters from `$first`: no expectation
/// (`$first` is false), or the row still holds exactly the expected ticket (bound by
/// [`bind_ticket_expected`]).
fn ticket_unchanged(first: usize) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "(NOT {} OR (summary = {} AND status = {} AND description IS NOT DISTINCT FROM {} \
         AND assignee IS NOT DISTINCT FROM {} AND priority IS NOT DISTINCT FROM {} \
         AND updated_at = {}))",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6)
    )
}

/// The same for templates (see [`bind_template_expected`]).
fn template_unchanged(first: usize) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "(NOT {} OR (name = {} AND steps = {} AND workflow_type = {} \
         AND estimated_minutes = {} AND updated_at = {}))",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5)
    )
}

type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

fn bind_ticket_expected<'q>(query: PgQuery<'q>, expected: Option<&JiraTicket>) -> PgQuery<'q> {
    let query = query.bind(expected.is_some());
    match expected {
        Some(t) => query
            .bind(t.summary.clone())
            .bind(t.status.clone())
            .bind(t.description.clone())
            .bind(t.assignee.clone())
            .bind(t.priority.clone())
            .bind(t.updated_at),
        None => query
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<DateTime<Utc>>),
    }
}

fn bind_template_expected<'q>(
    query: PgQuery<'q>,
    expected: Option<&WorkflowTemplate>,
) -> PgQuery<'q> {
    let query = query.bind(expected.is_some());
    match expected {
        Some(t) => query
            .bind(t.name.clone())
            .bind(Json(t.steps.clone()))
            .bind(t.workflow_type.clone())
            .bind(minutes(t.estimated_minutes))
            .bind(t.updated_at),
        None => query
            .bind(None::<String>)
            .bind(None::<Json<Vec<String>>>)
            .bind(None::<String>)
            .bind(None::<i32>)
            .bind(None::<DateTime<Utc>>),
    }
}

fn minutes(m: u32) -> i32 {
    i32::try_from(m).unwrap_or(i32::MAX)
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        let empty: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM jira_tickets) AND NOT EXISTS (SELECT 1 FROM workflows)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(empty)
    }

    async fn ticket(&self, key: &TicketKey) -> StoreResult<JiraTicket> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM jira_tickets WHERE key = $1 AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("ticket"))?;
        ticket_from(&row)
    }

    async fn list_tickets(&self, filter: &TicketFilter) -> StoreResult<TicketPage> {
        let condition = "deleted_at IS NULL AND ($1::text IS NULL OR status = $1) \
                         AND ($2::text IS NULL OR assignee = $2)";
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM jira_tickets WHERE {condition} \
             ORDER BY key COLLATE \"C\" LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(&filter.status)
            .bind(&filter.assignee)
            .bind(i64::from(filter.limit))
            .bind(i64::try_from(filter.offset).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM jira_tickets WHERE {condition}"
        ))
        .bind(&filter.status)
        .bind(&filter.assignee)
        .fetch_one(&self.pool)
        .await?;
        Ok(TicketPage {
            tickets: rows.iter().map(ticket_from).collect::<StoreResult<_>>()?,
            total: total as u64,
        })
    }

    async fn patch_ticket(
        &self,
        key: &TicketKey,
        patch: &TicketPatch,
        now: DateTime<Utc>,
        expected: Option<&JiraTicket>,
    ) -> StoreResult<JiraTicket> {
        let unchanged = ticket_unchanged(11);
        let sql = format!(
            "UPDATE jira_tickets SET \
               summary = COALESCE($2, summary), \
               status = COALESCE($3, status), \
               description = CASE WHEN $4 THEN $5 ELSE description END, \
               assignee = CASE WHEN $6 THEN $7 ELSE assignee END, \
               priority = CASE WHEN $8 THEN $9 ELSE priority END, \
               updated_at = $10 \
             WHERE key = $1 AND deleted_at IS NULL AND {unchanged} RETURNING {TICKET_COLUMNS}"
        );
        let query = sqlx::query(&sql)
            .bind(key.as_str())
            .bind(&patch.summary)
            .bind(&patch.status)
            .bind(patch.description.is_some())
            .bind(patch.description.clone().flatten())
            .bind(patch.assignee.is_some())
            .bind(patch.assignee.clone().flatten())
            .bind(patch.priority.is_some())
            .bind(patch.priority.clone().flatten())
            .bind(now);
        let row = bind_ticket_expected(query, expected)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::missing_or_changed("ticket", expected))?;
        ticket_from(&row)
    }

    async fn put_ticket(
        &self,
        key: &TicketKey,
        t: &TicketUpsert,
        now: DateTime<Utc>,
        expected: Option<&JiraTicket>,
    ) -> StoreResult<(JiraTicket, bool)> {
        if expected.is_some() {
            // A conditional PUT replaces the ticket it names and creates none.
            let unchanged = ticket_unchanged(8);
            let sql = format!(
                "UPDATE jira_tickets SET summary = $2, status = $3, description = $4, \
                 assignee = $5, priority = $6, updated_at = $7 \
                 WHERE key = $1 AND deleted_at IS NULL AND {unchanged} RETURNING {TICKET_COLUMNS}"
            );
            let query = sqlx::query(&sql)
                .bind(key.as_str())
                .bind(&t.summary)
                .bind(&t.status)
                .bind(&t.description)
                .bind(&t.assignee)
                .bind(&t.priority)
                .bind(now);
            let row = bind_ticket_expected(query, expected)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::Changed("ticket"))?;
            return Ok((ticket_from(&row)?, false));
        }
        // xmax = 0 only on a row this statement inserted.
        let sql = format!(
            "INSERT INTO jira_tickets (key, summary, status, description, assignee, priority, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (key) DO UPDATE SET summary = EXCLUDED.summary, status = EXCLUDED.status, \
               description = EXCLUDED.description, assignee = EXCLUDED.assignee, \
               priority = EXCLUDED.priority, updated_at = EXCLUDED.updated_at, deleted_at = NULL \
             RETURNING {TICKET_COLUMNS}, (xmax = 0) AS inserted"
        );
        let row = sqlx::query(&sql)
            .bind(key.as_str())
            .bind(&t.summary)
            .bind(&t.status)
            .bind(&t.description)
            .bind(&t.assignee)
            .bind(&t.priority)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok((ticket_from(&row)?, row.try_get("inserted")?))
    }

    async fn mirrored_ticket(&self, key: &TicketKey) -> StoreResult<Option<MirroredTicket>> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS}, fetched_at, deleted_at IS NOT NULL AS deleted \
             FROM jira_tickets WHERE key = $1"
        );
        let row = sqlx::query(&sql)
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(MirroredTicket {
                ticket: ticket_from(&row)?,
                fetched_at: row.try_get("fetched_at")?,
                deleted: row.try_get("deleted")?,
            })
        })
        .transpose()
    }

    async fn mirror_ticket(
        &self,
        t: &JiraTicket,
        fetched_at: DateTime<Utc>,
    ) -> StoreResult<JiraTicket> {
        sqlx::query(
            "INSERT INTO jira_tickets \
               (key, summary, status, description, assignee, priority, updated_at, fetched_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (key) DO UPDATE SET summary = EXCLUDED.summary, status = EXCLUDED.status, \
               description = EXCLUDED.description, assignee = EXCLUDED.assignee, \
               priority = EXCLUDED.priority, updated_at = EXCLUDED.updated_at, \
               fetched_at = EXCLUDED.fetched_at, deleted_at = NULL \
             WHERE EXCLUDED.updated_at >= jira_tickets.updated_at",
        )
        .bind(&t.key)
        .bind(&t.summary)
        .bind(&t.status)
        .bind(&t.description)
        .bind(&t.assignee)
        .bind(&t.priority)
        .bind(t.updated_at)
        .bind(fetched_at)
        .execute(&self.pool)
        .await?;
        let sql = format!("SELECT {TICKET_COLUMNS} FROM jira_tickets WHERE key = $1");
        let row = sqlx::query(&sql).bind(&t.key).fetch_one(&self.pool).await?;
        ticket_from(&row)
    }

    async fn mirror_ticket_deleted(&self, key: &TicketKey, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE jira_tickets SET deleted_at = $2, fetched_at = $2 WHERE key = $1")
            .bind(key.as_str())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn claim_ticket_fetch(
        &self,
        key: &TicketKey,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let claimed = sqlx::query(
            "INSERT INTO jira_fetch_leases (key, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
             WHERE jira_fetch_leases.expires_at < $4",
        )
        .bind(key.as_str())
        .bind(holder)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    async fn release_ticket_fetch(&self, key: &TicketKey, holder: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM jira_fetch_leases WHERE key = $1 AND holder = $2")
            .bind(key.as_str())
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn import_catalog(&self, entries: &[CatalogEntry]) -> StoreResult<CatalogChange> {
        let mut tx = self.pool.begin().await?;
        let mut change = CatalogChange::default();
        for e in entries {
            // No row comes back when the stored name and text are already these (the update's
            // WHERE): an entry imported again as it was is left alone, and counts as unchanged.
            let inserted: Option<bool> = sqlx::query_scalar(
                "INSERT INTO catalog_entries (source, url, name, text, search_name, search_text) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (source, url) DO UPDATE SET name = EXCLUDED.name, text = EXCLUDED.text, \
                   search_name = EXCLUDED.search_name, search_text = EXCLUDED.search_text \
                 WHERE catalog_entries.name <> EXCLUDED.name OR catalog_entries.text <> EXCLUDED.text \
                 RETURNING (xmax = 0)",
            )
            .bind(e.source.as_str())
            .bind(&e.url)
            .bind(&e.name)
            .bind(&e.text)
            .bind(e.search_name())
            .bind(e.search_text())
            .fetch_optional(&mut *tx)
            .await?;
            match inserted {
                Some(true) => change.added += 1,
                Some(false) => change.changed += 1,
                None => change.unchanged += 1,
            }
        }
        tx.commit().await?;
        Ok(change)
    }

    async fn claim_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        unless_started_after: Option<DateTime<Utc>>,
    ) -> StoreResult<bool> {
        let claimed = sqlx::query(
            "INSERT INTO catalog_syncs (source, holder, lease_until, started_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (source) DO UPDATE SET holder = EXCLUDED.holder, \
               lease_until = EXCLUDED.lease_until, started_at = EXCLUDED.started_at, \
               finished_at = NULL, added = NULL, changed = NULL, removed = NULL, error = NULL \
             WHERE (catalog_syncs.holder IS NULL OR catalog_syncs.lease_until < $4) \
               AND ($5::timestamptz IS NULL OR catalog_syncs.started_at <= $5)",
        )
        .bind(source.as_str())
        .bind(holder)
        .bind(until)
        .bind(now)
        .bind(unless_started_after)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    async fn renew_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        until: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let renewed = sqlx::query(
            "UPDATE catalog_syncs SET lease_until = $3 WHERE source = $1 AND holder = $2",
        )
        .bind(source.as_str())
        .bind(holder)
        .bind(until)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    async fn replace_catalog(
        &self,
        source: Source,
        holder: &str,
        entries: &[CatalogEntry],
    ) -> StoreResult<Option<CatalogChange>> {
        let mut tx = self.pool.begin().await?;
        // The sync's row locked first: a holder that lost its lease writes nothing, and a claim
        // by another holder waits for this transaction.
        let held: Option<String> = sqlx::query_scalar(
            "SELECT source FROM catalog_syncs WHERE source = $1 AND holder = $2 FOR UPDATE",
        )
        .bind(source.as_str())
        .bind(holder)
        .fetch_optional(&mut *tx)
        .await?;
        if held.is_none() {
            return Ok(None);
        }
        // Statements over a temporary table are never kept prepared: the table is new each time.
        sqlx::query(
            "CREATE TEMP TABLE catalog_incoming (url TEXT PRIMARY KEY, name TEXT NOT NULL, \
             text TEXT NOT NULL, search_name TEXT NOT NULL, search_text TEXT NOT NULL) \
             ON COMMIT DROP",
        )
        .persistent(false)
        .execute(&mut *tx)
        .await?;
        for batch in entries.chunks(BATCH) {
            let column = |f: fn(&CatalogEntry) -> String| batch.iter().map(f).collect::<Vec<_>>();
            sqlx::query(
                "INSERT INTO catalog_incoming (url, name, text, search_name, search_text) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])",
            )
            .persistent(false)
            .bind(column(|e| e.url.clone()))
            .bind(column(|e| e.name.clone()))
            .bind(column(|e| e.text.clone()))
            .bind(column(CatalogEntry::search_name))
            .bind(column(CatalogEntry::search_text))
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("ANALYZE catalog_incoming")
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query(
            "DELETE FROM catalog_entries AS c WHERE c.source = $1 \
             AND NOT EXISTS (SELECT 1 FROM catalog_incoming AS i WHERE i.url = c.url)",
        )
        .persistent(false)
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let changed = sqlx::query(
            "UPDATE catalog_entries AS c SET name = i.name, text = i.text, \
               search_name = i.search_name, search_text = i.search_text \
             FROM catalog_incoming AS i \
             WHERE c.source = $1 AND c.url = i.url AND (c.name <> i.name OR c.text <> i.text)",
        )
        .persistent(false)
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let added = sqlx::query(
            "INSERT INTO catalog_entries (source, url, name, text, search_name, search_text) \
             SELECT $1, i.url, i.name, i.text, i.search_name, i.search_text \
             FROM catalog_incoming AS i \
             WHERE NOT EXISTS (SELECT 1 FROM catalog_entries AS c \
                               WHERE c.source = $1 AND c.url = i.url)",
        )
        .persistent(false)
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Some(CatalogChange {
            added,
            changed,
            removed,
            unchanged: entries.len() as u64 - added - changed,
        }))
    }

    async fn finish_catalog_sync(
        &self,
        source: Source,
        holder: &str,
        now: DateTime<Utc>,
        outcome: Result<CatalogChange, String>,
    ) -> StoreResult<()> {
        let (change, error) = match outcome {
            Ok(change) => (Some(change), None),
            Err(error) => (None, Some(error)),
        };
        sqlx::query(
            "UPDATE catalog_syncs SET holder = NULL, lease_until = NULL, finished_at = $3, \
               added = $4, changed = $5, removed = $6, error = $7, \
               last_success_at = CASE WHEN $7::text IS NULL THEN $3 ELSE last_success_at END \
             WHERE source = $1 AND holder = $2",
        )
        .bind(source.as_str())
        .bind(holder)
        .bind(now)
        .bind(change.map(|c| c.added as i64))
        .bind(change.map(|c| c.changed as i64))
        .bind(change.map(|c| c.removed as i64))
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn catalog_syncs(&self) -> StoreResult<Vec<CatalogSyncRecord>> {
        let rows = sqlx::query(
            "SELECT source, holder, lease_until, started_at, finished_at, added, changed, removed, \
               error, last_success_at, \
               (SELECT COUNT(*) FROM catalog_entries AS c WHERE c.source = s.source) AS entries \
             FROM catalog_syncs AS s ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let source: String = row.try_get("source")?;
                let counts: [Option<i64>; 3] = [
                    row.try_get("added")?,
                    row.try_get("changed")?,
                    row.try_get("removed")?,
                ];
                Ok(CatalogSyncRecord {
                    source: Source::from_str(&source)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    holder: row.try_get("holder")?,
                    lease_until: row.try_get("lease_until")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    change: change_from(counts),
                    error: row.try_get("error")?,
                    last_success_at: row.try_get("last_success_at")?,
                    entries: row.try_get::<i64, _>("entries")? as u64,
                })
            })
            .collect()
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<SearchResult>> {
        let mut conn = self.pool.acquire().await?;
        if !trigram_indexable(query) {
            return Ok(ranked(&mut conn, &search_sql(query, &SEARCH, None), query)
                .await?
                .0);
        }
        // Every step sees the same catalog: one read-only snapshot.
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let sql = occurs_sql(query, &SEARCH, occurs);
        let mut q = sqlx::query(&sql).persistent(false);
        for term in query.terms() {
            q = q.bind(SearchQuery::like_pattern(term));
        }
        let row = q.fetch_one(&mut *tx).await?;
        let occurring = (0..query.terms().len())
            .map(|t| {
                let mut pair = [false; 2];
                for (c, occurs) in pair.iter_mut().enumerate() {
                    *occurs = row.try_get(t * COLUMNS.len() + c)?;
                }
                Ok(pair)
            })
            .collect::<StoreResult<Vec<[bool; 2]>>>()?;
        let limit = query.limit() as usize;
        let found = if !occurring.iter().flatten().any(|o| *o) {
            // No entry holds any term.
            Vec::new()
        } else {
            let mut found = None;
            if occurring.iter().any(|[in_names, _]| *in_names) {
                let sql = walk_sql(query, &SEARCH, &occurring, &WALK);
                let (walk, walked) = ranked(&mut tx, &sql, query).await?;
                if walked == Some(limit as i64) {
                    found = Some(walk);
                }
            }
            if found.is_none() {
                let (tier, _) =
                    ranked(&mut tx, &tier_sql(query, &SEARCH, &occurring), query).await?;
                if tier.len() == limit {
                    found = Some(tier);
                }
            }
            match found {
                Some(found) => found,
                None => {
                    ranked(&mut tx, &search_sql(query, &SEARCH, None), query)
                        .await?
                        .0
                }
            }
        };
        tx.commit().await?;
        Ok(found)
    }

    async fn kpi_totals(&self, since: DateTime<Utc>) -> StoreResult<KpiTotals> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT ticket_key), COUNT(*), COALESCE(SUM(duration_seconds), 0)::BIGINT, \
                    (SELECT COUNT(*) FROM patterns WHERE detected_at >= $1) \
             FROM workflows WHERE state = 'completed' AND completed_at >= $1",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(KpiTotals {
            tickets_completed: row.try_get::<i64, _>(0)? as u64,
            workflows_completed: row.try_get::<i64, _>(1)? as u64,
            total_duration_seconds: row.try_get(2)?,
            patterns_detected: row.try_get::<i64, _>(3)? as u64,
        })
    }

    async fn templates(&self) -> StoreResult<Vec<WorkflowTemplate>> {
        let sql = format!(
            "SELECT {TEMPLATE_COLUMNS} FROM workflow_templates ORDER BY name COLLATE \"C\", id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(template_from).collect()
    }

    async fn template(&self, id: Uuid) -> StoreResult<WorkflowTemplate> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM workflow_templates WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("template"))?;
        template_from(&row)
    }

    async fn insert_template(&self, t: &WorkflowTemplate) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO workflow_templates (id, name, steps, workflow_type, estimated_minutes, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.id)
        .bind(&t.name)
        .bind(Json(&t.steps))
        .bind(&t.workflow_type)
        .bind(minutes(t.estimated_minutes))
        .bind(t.updated_at)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::unique(e, StoreError::Conflict("template id already exists".into())))?;
        Ok(())
    }

    async fn update_template(
        &self,
        t: &WorkflowTemplate,
        expected: Option<&WorkflowTemplate>,
    ) -> StoreResult<()> {
        let unchanged = template_unchanged(7);
        let sql = format!(
            "UPDATE workflow_templates SET name = $2, steps = $3, workflow_type = $4, \
             estimated_minutes = $5, updated_at = $6 WHERE id = $1 AND {unchanged}"
        );
        let query = sqlx::query(&sql)
            .bind(t.id)
            .bind(&t.name)
            .bind(Json(&t.steps))
            .bind(&t.workflow_type)
            .bind(minutes(t.estimated_minutes))
            .bind(t.updated_at);
        let updated = bind_template_expected(query, expected)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::missing_or_changed("template", expected));
        }
        Ok(())
    }

    async fn delete_template(
        &self,
        id: Uuid,
        expected: Option<&WorkflowTemplate>,
    ) -> StoreResult<()> {
        let unchanged = template_unchanged(2);
        let sql = format!("DELETE FROM workflow_templates WHERE id = $1 AND {unchanged}");
        let query = sqlx::query(&sql).bind(id);
        let deleted = bind_template_expected(query, expected)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                StoreError::foreign_key(
                    e,
                    StoreError::Conflict(
                        "template is used by workflows and cannot be deleted".into(),
                    ),
                )
            })?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::missing_or_changed("template", expected));
        }
        Ok(())
    }

    async fn insert_workflow(&self, wf: &Workflow) -> StoreResult<()> {
        self.insert_workflows(std::slice::from_ref(wf))
            .await
            .map_err(|e| match e {
                StoreError::Database(db)
                    if db
                        .as_database_error()
                        .is_some_and(|d| d.is_foreign_key_violation()) =>
                {
                    StoreError::NotFound("ticket or template")
                }
                other => other,
            })
    }

    async fn workflow(&self, id: Uuid) -> StoreResult<Workflow> {
        let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("workflow"))?;
        workflow_from(&row)
    }

    async fn save_workflow(
        &self,
        wf: &Workflow,
        expected_version: i64,
        pattern: Option<&Pattern>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE workflows SET state = $3, steps = $4, completed_at = $5, duration_seconds = $6, \
             updated_at = $7, version = $8 WHERE id = $1 AND version = $2",
        )
        .bind(wf.id)
        .bind(expected_version)
        .bind(wf.state.as_str())
        .bind(Json(&wf.steps))
        .bind(wf.completed_at)
        .bind(wf.duration_seconds())
        .bind(wf.updated_at)
        .bind(wf.version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        if let Some(p) = pattern {
            insert_patterns(&mut *tx, std::slice::from_ref(p)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_tickets(&self, tickets: &[JiraTicket]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for batch in tickets.chunks(BATCH) {
            sqlx::query(
                "INSERT INTO jira_tickets (key, summary, status, description, assignee, priority, updated_at) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
                                      $6::text[], $7::timestamptz[])",
            )
            .bind(batch.iter().map(|t| t.key.as_str()).collect::<Vec<_>>())
            .bind(batch.iter().map(|t| t.summary.as_str()).collect::<Vec<_>>())
            .bind(batch.iter().map(|t| t.status.as_str()).collect::<Vec<_>>())
            .bind(batch.iter().map(|t| t.description.as_deref()).collect::<Vec<_>>())
            .bind(batch.iter().map(|t| t.assignee.as_deref()).collect::<Vec<_>>())
            .bind(batch.iter().map(|t| t.priority.as_deref()).collect::<Vec<_>>())
            .bind(batch.iter().map(|t| t.updated_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_workflows(&self, workflows: &[Workflow]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for batch in workflows.chunks(BATCH) {
            let steps = batch
                .iter()
                .map(|wf| serde_json::to_string(&wf.steps))
                .collect::<Result<Vec<_>, _>>()?;
            sqlx::query(
                "INSERT INTO workflows (id, template_id, ticket_key, state, steps, estimated_minutes, \
                   started_at, completed_at, duration_seconds, updated_at, version) \
                 SELECT id, template_id, ticket_key, state, steps::jsonb, estimated_minutes, \
                   started_at, completed_at, duration_seconds, updated_at, version \
                 FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], \
                             $7::timestamptz[], $8::timestamptz[], $9::bigint[], $10::timestamptz[], \
                             $11::bigint[]) \
                   AS u(id, template_id, ticket_key, state, steps, estimated_minutes, started_at, \
                        completed_at, duration_seconds, updated_at, version)",
            )
            .bind(batch.iter().map(|wf| wf.id).collect::<Vec<_>>())
            .bind(batch.iter().map(|wf| wf.template_id).collect::<Vec<_>>())
            .bind(batch.iter().map(|wf| wf.ticket_key.as_str()).collect::<Vec<_>>())
            .bind(batch.iter().map(|wf| wf.state.as_str()).collect::<Vec<_>>())
            .bind(steps)
            .bind(batch.iter().map(|wf| minutes(wf.estimated_minutes)).collect::<Vec<_>>())
            .bind(batch.iter().map(|wf| wf.started_at).collect::<Vec<_>>())
            .bind(batch.iter().map(|wf| wf.completed_at).collect::<Vec<_>>())
            .bind(batch.iter().map(Workflow::duration_seconds).collect::<Vec<_>>())
            .bind(batch.iter().map(|wf| wf.updated_at).collect::<Vec<_>>())
            .bind(batch.iter().map(|wf| wf.version).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn read_outbox(&self, from: u64) -> StoreResult<OutboxRead> {
        // One statement, one snapshot: the horizon and the rows it lets through agree.
        let rows = sqlx::query(
            "WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon, \
                               pg_snapshot_xmax(pg_current_snapshot())::text AS horizon_end) \
             SELECT h.horizon, h.horizon_end, o.seq, o.xid::text AS xid, o.message \
             FROM h LEFT JOIN cache_invalidations AS o ON o.xid >= $1::text::xid8 \
             ORDER BY o.seq",
        )
        .bind(from.to_string())
        .fetch_all(&self.pool)
        .await?;
        let number = |text: String| {
            text.parse::<u64>()
                .map_err(|e| StoreError::Corrupt(format!("transaction id `{text}`: {e}")))
        };
        let mut next = from;
        let mut horizon_end = from;
        let mut read = Vec::with_capacity(rows.len());
        for row in &rows {
            next = next.max(number(row.try_get("horizon")?)?);
            horizon_end = horizon_end.max(number(row.try_get("horizon_end")?)?);
            if let Some(seq) = row.try_get::<Option<i64>, _>("seq")? {
                read.push(OutboxRow {
                    seq,
                    position: number(row.try_get("xid")?)?,
                    message: row.try_get("message")?,
                });
            }
        }
        Ok(OutboxRead {
            rows: read,
            next,
            horizon_end,
        })
    }

    async fn outbox_position(&self) -> StoreResult<u64> {
        let horizon: String =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&self.pool)
                .await?;
        horizon
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("transaction id `{horizon}`: {e}")))
    }

    async fn prune_outbox(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let pruned = sqlx::query("DELETE FROM cache_invalidations WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(pruned)
    }

    async fn record_invalidations(&self, messages: &[String]) -> StoreResult<()> {
        sqlx::query("INSERT INTO cache_invalidations (message) SELECT unnest($1::text[])")
            .bind(messages)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn save_warm_keys(
        &self,
        cache: &str,
        keys: &[(String, u64)],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (names, reads): (Vec<&str>, Vec<i64>) = keys
            .iter()
            .map(|(key, reads)| (key.as_str(), i64::try_from(*reads).unwrap_or(i64::MAX)))
            .unzip();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM cache_warm_keys WHERE cache = $1")
            .bind(cache)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO cache_warm_keys (cache, rank, key, reads, saved_at) \
             SELECT $1, k.ord - 1, k.key, k.reads, $4 \
             FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS k(key, reads, ord)",
        )
        .bind(cache)
        .bind(&names)
        .bind(&reads)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn warm_keys(&self, cache: &str) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT key FROM cache_warm_keys WHERE cache = $1 ORDER BY rank")
                .bind(cache)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn subscribe_invalidations(
        &self,
    ) -> StoreResult<Option<tokio::sync::mpsc::Receiver<Notice>>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(INVALIDATION_CHANNEL).await?;
        let (feed, notices) = tokio::sync::mpsc::channel(1_024);
        tokio::spawn(async move {
            loop {
                let notice = match listener.try_recv().await {
                    Ok(Some(_)) => Notice::Wake,
                    // The connection dropped; the next try_recv reconnects and listens again.
                    Ok(None) => Notice::Lost,
                    Err(error) => {
                        tracing::warn!(%error, "invalidation feed failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Notice::Lost
                    }
                };
                // A full channel already holds a wake: the reader reads everything anyway.
                match feed.try_send(notice) {
                    Ok(()) | Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
        });
        Ok(Some(notices))
    }

    async fn refresh_statistics(&self) -> StoreResult<()> {
        // VACUUM cannot run in a transaction: one statement per table, on the pool.
        for table in ["jira_tickets", "workflows", "patterns", "catalog_entries"] {
            sqlx::query(&format!("VACUUM (ANALYZE) {table}"))
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn insert_patterns(&self, patterns: &[Pattern]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for batch in patterns.chunks(BATCH) {
            insert_patterns(&mut *tx, batch).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_patterns<'e, E>(executor: E, batch: &[Pattern]) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(
        "INSERT INTO patterns (id, workflow_id, ticket_key, kind, detail, detected_at) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
                              $6::timestamptz[])",
    )
    .bind(batch.iter().map(|p| p.id).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.workflow_id).collect::<Vec<_>>())
    .bind(
        batch
            .iter()
            .map(|p| p.ticket_key.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(batch.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.detail.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|p| p.detected_at).collect::<Vec<_>>())
    .execute(executor)
    .await?;
    Ok(())
}
