//! The SQLite backend: the embedded default. One file, WAL mode, migrations embedded.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use qa_pms_core::dashboard::KpiTotals;
use qa_pms_core::{
    CatalogEntry, JiraTicket, Pattern, SearchQuery, SearchResult, Source, StepProgress, TicketKey,
    TicketPatch, TicketUpsert, Workflow, WorkflowState, WorkflowTemplate,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use crate::search_sql::{first_tier_sql, relevance, search_sql, trigram_indexable, Dialect, Walk};
use crate::{
    change_from, Backend, CatalogChange, CatalogSyncRecord, MirroredTicket, OutboxRead, OutboxRow,
    Store, StoreError, StoreResult, TicketFilter, TicketPage,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

const TICKET_COLUMNS: &str = "key, summary, status, description, assignee, priority, updated_at";
/// The condition of a conditional ticket write: no expectation (`?11` is 0), or the row still
/// holds exactly the expected ticket (`?12`..`?17`, bound by [`bind_ticket_expected`]).
const TICKET_UNCHANGED: &str =
    "(?11 = 0 OR (summary = ?12 AND status = ?13 AND description IS ?14 \
     AND assignee IS ?15 AND priority IS ?16 AND updated_at = ?17))";

/// The same for templates, at `?7`..`?12` (see [`bind_template_expected`]).
const TEMPLATE_UNCHANGED: &str = "(?7 = 0 OR (name = ?8 AND steps = ?9 AND workflow_type = ?10 \
     AND estimated_minutes = ?11 AND updated_at = ?12))";

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds `?11`..`?17` of [`TICKET_UNCHANGED`].
fn bind_ticket_expected<'q>(
    query: SqliteQuery<'q>,
    expected: Option<&JiraTicket>,
) -> SqliteQuery<'q> {
    let query = query.bind(expected.is_some());
    match expected {
        Some(t) => query
            .bind(t.summary.clone())
            .bind(t.status.clone())
            .bind(t.description.clone())
            .bind(t.assignee.clone())
            .bind(t.priority.clone())
            .bind(millis(t.updated_at)),
        None => query
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<i64>),
    }
}

/// Binds `?7`..`?12` of [`TEMPLATE_UNCHANGED`].
fn bind_template_expected<'q>(
    query: SqliteQuery<'q>,
    expected: Option<&WorkflowTemplate>,
) -> StoreResult<SqliteQuery<'q>> {
    let query = query.bind(expected.is_some());
    Ok(match expected {
        Some(t) => query
            .bind(t.name.clone())
            .bind(serde_json::to_string(&t.steps)?)
            .bind(t.workflow_type.clone())
            .bind(t.estimated_minutes)
            .bind(millis(t.updated_at)),
        None => query
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<i64>)
            .bind(None::<i64>),
    })
}

const TEMPLATE_COLUMNS: &str = "id, name, steps, workflow_type, estimated_minutes, updated_at";
const WORKFLOW_COLUMNS: &str = "id, template_id, ticket_key, state, steps, estimated_minutes, \
                                started_at, completed_at, updated_at, version";

/// Rows per multi-row INSERT in bulk loads: 11 columns x 500 rows stays well under SQLite's
/// 32,766 bound parameters.
const ROWS_PER_INSERT: usize = 500;

/// The search queries' SQLite parts. A term is matched with `instr`, byte for byte: SQLite's LIKE
/// reads U+FFFE and U+FFFF as U+FFFD, which PostgreSQL's does not. The index is the FTS5 trigram
/// table `catalog_search` (migration 0004), where the phrase of a term of three or more
/// characters matches exactly the texts containing it.
const SEARCH: Dialect = Dialect {
    placeholder: |i| format!("?{i}"),
    contains: |column, term| format!("instr({column}, {term}) > 0"),
    collate: "",
};

/// The entries `catalog_search` finds any of the terms bound at `terms` in.
fn trigram_candidates(terms: &[String]) -> String {
    let phrases: Vec<String> = terms.iter().map(|t| fts5_phrase(t)).collect();
    format!(
        "id IN (SELECT rowid FROM catalog_search WHERE catalog_search MATCH ({}))",
        phrases.join(" || ' OR ' || ")
    )
}

/// A lookup in `catalog_search` tells in a few pages whether a term occurs in a column, and the
/// name index holds the lower-cased name: walking it tests names without reading rows.
const WALK: Walk = Walk {
    occurs: |column, term| {
        format!(
            "EXISTS (SELECT 1 FROM catalog_search WHERE {column} MATCH {})",
            fts5_phrase(term)
        )
    },
    entries: 4_000,
};

/// The term bound at `term` as a quoted FTS5 phrase (`"` doubled), so that none of its characters
/// is read as an FTS5 operator.
fn fts5_phrase(term: &str) -> String {
    format!("('\"' || replace({term}, '\"', '\"\"') || '\"')")
}

/// Runs one of the search queries of `search_sql`.
async fn ranked(
    pool: &SqlitePool,
    sql: &str,
    query: &SearchQuery,
) -> StoreResult<Vec<SearchResult>> {
    let mut q = sqlx::query(sql);
    for term in query.terms() {
        q = q.bind(term);
    }
    if let Some(source) = query.source() {
        q = q.bind(source.as_str());
    }
    let rows = q.bind(i64::from(query.limit())).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            let source: String = row.try_get("source")?;
            Ok(SearchResult {
                source: Source::from_str(&source)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                name: row.try_get("name")?,
                url: row.try_get("url")?,
                relevance: relevance(row.try_get("score")?, query),
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`: `sqlite:path`, `sqlite://path` or a path.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        }
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

fn uuid(text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("uuid `{text}`: {e}")))
}

fn ticket_from(row: &SqliteRow) -> StoreResult<JiraTicket> {
    Ok(JiraTicket {
        key: row.try_get("key")?,
        summary: row.try_get("summary")?,
        status: row.try_get("status")?,
        description: row.try_get("description")?,
        assignee: row.try_get("assignee")?,
        priority: row.try_get("priority")?,
        updated_at: time(row.try_get("updated_at")?)?,
    })
}

fn template_from(row: &SqliteRow) -> StoreResult<WorkflowTemplate> {
    let steps: String = row.try_get("steps")?;
    Ok(WorkflowTemplate {
        id: uuid(row.try_get("id")?)?,
        name: row.try_get("name")?,
        steps: serde_json::from_str(&steps)?,
        workflow_type: row.try_get("workflow_type")?,
        estimated_minutes: row.try_get("estimated_minutes")?,
        updated_at: time(row.try_get("updated_at")?)?,
    })
}

fn workflow_from(row: &SqliteRow) -> StoreResult<Workflow> {
    let steps: String = row.try_get("steps")?;
    let state: String = row.try_get("state")?;
    Ok(Workflow {
        id: uuid(row.try_get("id")?)?,
        template_id: uuid(row.try_get("template_id")?)?,
        ticket_key: row.try_get("ticket_key")?,
        state: WorkflowState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("workflow state `{state}`")))?,
        steps: serde_json::from_str::<Vec<StepProgress>>(&steps)?,
        estimated_minutes: row.try_get("estimated_minutes")?,
        started_at: time(row.try_get("started_at")?)?,
        completed_at: row
            .try_get::<Option<i64>, _>("completed_at")?
            .map(time)
            .transpose()?,
        updated_at: time(row.try_get("updated_at")?)?,
        version: row.try_get("version")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
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
        let row = sqlx::query(
            "SELECT NOT EXISTS (SELECT 1 FROM jira_tickets) AND NOT EXISTS (SELECT 1 FROM workflows)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<bool, _>(0)?)
    }

    async fn ticket(&self, key: &TicketKey) -> StoreResult<JiraTicket> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM jira_tickets WHERE key = ?1 AND deleted_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("ticket"))?;
        ticket_from(&row)
    }

    async fn list_tickets(&self, filter: &TicketFilter) -> StoreResult<TicketPage> {
        let condition =
            "deleted_at IS NULL AND (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR assignee = ?2)";
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM jira_tickets WHERE {condition} ORDER BY key LIMIT ?3 OFFSET ?4"
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
        let sql = format!(
            "UPDATE jira_tickets SET \
               summary = COALESCE(?2, summary), \
               status = COALESCE(?3, status), \
               description = CASE WHEN ?4 THEN ?5 ELSE description END, \
               assignee = CASE WHEN ?6 THEN ?7 ELSE assignee END, \
               priority = CASE WHEN ?8 THEN ?9 ELSE priority END, \
               updated_at = ?10 \
             WHERE key = ?1 AND deleted_at IS NULL AND {TICKET_UNCHANGED} RETURNING {TICKET_COLUMNS}"
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
            .bind(millis(now));
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
        // A conditional PUT replaces the ticket it names and creates none.
        let inserted = expected.is_none()
            && sqlx::query(
                "INSERT INTO jira_tickets (key, summary, status, description, assignee, priority, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key.as_str())
            .bind(&t.summary)
            .bind(&t.status)
            .bind(&t.description)
            .bind(&t.assignee)
            .bind(&t.priority)
            .bind(millis(now))
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1;
        if !inserted {
            let sql = format!(
                "UPDATE jira_tickets SET summary = ?2, status = ?3, description = ?4, \
                 assignee = ?5, priority = ?6, updated_at = ?7, deleted_at = NULL \
                 WHERE key = ?1 AND (?11 = 0 OR deleted_at IS NULL) AND {TICKET_UNCHANGED}"
            );
            // ?8..?10 are unused: the condition's numbering is shared with the patch.
            let query = sqlx::query(&sql)
                .bind(key.as_str())
                .bind(&t.summary)
                .bind(&t.status)
                .bind(&t.description)
                .bind(&t.assignee)
                .bind(&t.priority)
                .bind(millis(now))
                .bind(None::<String>)
                .bind(None::<String>)
                .bind(None::<String>);
            let updated = bind_ticket_expected(query, expected)
                .execute(&self.pool)
                .await?
                .rows_affected();
            if updated == 0 {
                return Err(StoreError::missing_or_changed("ticket", expected));
            }
        }
        Ok((self.ticket(key).await?, inserted))
    }

    async fn mirrored_ticket(&self, key: &TicketKey) -> StoreResult<Option<MirroredTicket>> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS}, fetched_at, deleted_at IS NOT NULL AS deleted \
             FROM jira_tickets WHERE key = ?1"
        );
        let row = sqlx::query(&sql)
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            Ok(MirroredTicket {
                ticket: ticket_from(&row)?,
                fetched_at: row
                    .try_get::<Option<i64>, _>("fetched_at")?
                    .map(time)
                    .transpose()?,
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT (key) DO UPDATE SET summary = excluded.summary, status = excluded.status, \
               description = excluded.description, assignee = excluded.assignee, \
               priority = excluded.priority, updated_at = excluded.updated_at, \
               fetched_at = excluded.fetched_at, deleted_at = NULL \
             WHERE excluded.updated_at >= jira_tickets.updated_at",
        )
        .bind(&t.key)
        .bind(&t.summary)
        .bind(&t.status)
        .bind(&t.description)
        .bind(&t.assignee)
        .bind(&t.priority)
        .bind(millis(t.updated_at))
        .bind(millis(fetched_at))
        .execute(&self.pool)
        .await?;
        let sql = format!("SELECT {TICKET_COLUMNS} FROM jira_tickets WHERE key = ?1");
        let row = sqlx::query(&sql).bind(&t.key).fetch_one(&self.pool).await?;
        ticket_from(&row)
    }

    async fn mirror_ticket_deleted(&self, key: &TicketKey, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE jira_tickets SET deleted_at = ?2, fetched_at = ?2 WHERE key = ?1")
            .bind(key.as_str())
            .bind(millis(at))
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
            "INSERT INTO jira_fetch_leases (key, holder, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE jira_fetch_leases.expires_at < ?4",
        )
        .bind(key.as_str())
        .bind(holder)
        .bind(millis(until))
        .bind(millis(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    async fn release_ticket_fetch(&self, key: &TicketKey, holder: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM jira_fetch_leases WHERE key = ?1 AND holder = ?2")
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
            // Written only if the name or the text differ (`<>` compares bytes): an entry imported
            // again as it was is left alone, and counts as unchanged.
            let changed = sqlx::query(
                "UPDATE catalog_entries SET name = ?3, text = ?4, search_name = ?5, search_text = ?6 \
                 WHERE source = ?1 AND url = ?2 AND (name <> ?3 OR text <> ?4)",
            )
            .bind(e.source.as_str())
            .bind(&e.url)
            .bind(&e.name)
            .bind(&e.text)
            .bind(e.search_name())
            .bind(e.search_text())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                change.changed += 1;
                continue;
            }
            let added = sqlx::query(
                "INSERT INTO catalog_entries (source, url, name, text, search_name, search_text) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (source, url) DO NOTHING",
            )
            .bind(e.source.as_str())
            .bind(&e.url)
            .bind(&e.name)
            .bind(&e.text)
            .bind(e.search_name())
            .bind(e.search_text())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added == 1 {
                change.added += 1;
            } else {
                change.unchanged += 1;
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
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (source) DO UPDATE SET holder = excluded.holder, \
               lease_until = excluded.lease_until, started_at = excluded.started_at, \
               finished_at = NULL, added = NULL, changed = NULL, removed = NULL, error = NULL \
             WHERE (catalog_syncs.holder IS NULL OR catalog_syncs.lease_until < ?4) \
               AND (?5 IS NULL OR catalog_syncs.started_at <= ?5)",
        )
        .bind(source.as_str())
        .bind(holder)
        .bind(millis(until))
        .bind(millis(now))
        .bind(unless_started_after.map(millis))
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
            "UPDATE catalog_syncs SET lease_until = ?3 WHERE source = ?1 AND holder = ?2",
        )
        .bind(source.as_str())
        .bind(holder)
        .bind(millis(until))
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
        // A write first: the transaction takes the database's write lock here, and a holder that
        // lost its lease writes nothing.
        let held = sqlx::query(
            "UPDATE catalog_syncs SET holder = holder WHERE source = ?1 AND holder = ?2",
        )
        .bind(source.as_str())
        .bind(holder)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if held == 0 {
            return Ok(None);
        }
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS catalog_incoming (url TEXT PRIMARY KEY, \
             name TEXT NOT NULL, text TEXT NOT NULL, search_name TEXT NOT NULL, \
             search_text TEXT NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM temp.catalog_incoming")
            .execute(&mut *tx)
            .await?;
        for batch in entries.chunks(ROWS_PER_INSERT) {
            QueryBuilder::<Sqlite>::new(
                "INSERT INTO temp.catalog_incoming (url, name, text, search_name, search_text) ",
            )
            .push_values(batch, |mut row, e| {
                row.push_bind(&e.url)
                    .push_bind(&e.name)
                    .push_bind(&e.text)
                    .push_bind(e.search_name())
                    .push_bind(e.search_text());
            })
            .build()
            .execute(&mut *tx)
            .await?;
        }
        let removed = sqlx::query(
            "DELETE FROM catalog_entries WHERE source = ?1 \
             AND url NOT IN (SELECT url FROM temp.catalog_incoming)",
        )
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let changed = sqlx::query(
            "UPDATE catalog_entries SET name = i.name, text = i.text, \
               search_name = i.search_name, search_text = i.search_text \
             FROM temp.catalog_incoming AS i \
             WHERE catalog_entries.source = ?1 AND catalog_entries.url = i.url \
               AND (catalog_entries.name <> i.name OR catalog_entries.text <> i.text)",
        )
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let added = sqlx::query(
            "INSERT INTO catalog_entries (source, url, name, text, search_name, search_text) \
             SELECT ?1, i.url, i.name, i.text, i.search_name, i.search_text \
             FROM temp.catalog_incoming AS i \
             WHERE NOT EXISTS (SELECT 1 FROM catalog_entries AS c \
                               WHERE c.source = ?1 AND c.url = i.url)",
        )
        .bind(source.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM temp.catalog_incoming")
            .execute(&mut *tx)
            .await?;
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
            "UPDATE catalog_syncs SET holder = NULL, lease_until = NULL, finished_at = ?3, \
               added = ?4, changed = ?5, removed = ?6, error = ?7, \
               last_success_at = CASE WHEN ?7 IS NULL THEN ?3 ELSE last_success_at END \
             WHERE source = ?1 AND holder = ?2",
        )
        .bind(source.as_str())
        .bind(holder)
        .bind(millis(now))
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
                let optional_time = |column: &str| -> StoreResult<Option<DateTime<Utc>>> {
                    row.try_get::<Option<i64>, _>(column)?.map(time).transpose()
                };
                let counts: [Option<i64>; 3] = [
                    row.try_get("added")?,
                    row.try_get("changed")?,
                    row.try_get("removed")?,
                ];
                Ok(CatalogSyncRecord {
                    source: Source::from_str(&source)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    holder: row.try_get("holder")?,
                    lease_until: optional_time("lease_until")?,
                    started_at: time(row.try_get("started_at")?)?,
                    finished_at: optional_time("finished_at")?,
                    change: change_from(counts),
                    error: row.try_get("error")?,
                    last_success_at: optional_time("last_success_at")?,
                    entries: row.try_get::<i64, _>("entries")? as u64,
                })
            })
            .collect()
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<SearchResult>> {
        if !trigram_indexable(query) {
            return ranked(&self.pool, &search_sql(query, &SEARCH, None), query).await;
        }
        let first = ranked(&self.pool, &first_tier_sql(query, &SEARCH, &WALK), query).await?;
        if first.len() == query.limit() as usize {
            return Ok(first);
        }
        let sql = search_sql(query, &SEARCH, Some(trigram_candidates));
        ranked(&self.pool, &sql, query).await
    }

    async fn kpi_totals(&self, since: DateTime<Utc>) -> StoreResult<KpiTotals> {
        let row = sqlx::query(
            "SELECT COUNT(DISTINCT ticket_key), COUNT(*), COALESCE(SUM(duration_seconds), 0), \
                    (SELECT COUNT(*) FROM patterns WHERE detected_at >= ?1) \
             FROM workflows WHERE state = 'completed' AND completed_at >= ?1",
        )
        .bind(millis(since))
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
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM workflow_templates ORDER BY name, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(template_from).collect()
    }

    async fn template(&self, id: Uuid) -> StoreResult<WorkflowTemplate> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM workflow_templates WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("template"))?;
        template_from(&row)
    }

    async fn insert_template(&self, t: &WorkflowTemplate) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO workflow_templates (id, name, steps, workflow_type, estimated_minutes, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(t.id.to_string())
        .bind(&t.name)
        .bind(serde_json::to_string(&t.steps)?)
        .bind(&t.workflow_type)
        .bind(t.estimated_minutes)
        .bind(millis(t.updated_at))
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
        let sql = format!(
            "UPDATE workflow_templates SET name = ?2, steps = ?3, workflow_type = ?4, \
             estimated_minutes = ?5, updated_at = ?6 WHERE id = ?1 AND {TEMPLATE_UNCHANGED}"
        );
        let query = sqlx::query(&sql)
            .bind(t.id.to_string())
            .bind(&t.name)
            .bind(serde_json::to_string(&t.steps)?)
            .bind(&t.workflow_type)
            .bind(t.estimated_minutes)
            .bind(millis(t.updated_at));
        let updated = bind_template_expected(query, expected)?
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
        // ?2..?6 are unused: the condition's numbering is shared with the update.
        let sql = format!("DELETE FROM workflow_templates WHERE id = ?1 AND {TEMPLATE_UNCHANGED}");
        let query = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(None::<String>);
        let deleted = bind_template_expected(query, expected)?
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::foreign_key(e, template_in_use()))?
            .rows_affected();
        if deleted == 0 {
            return Err(StoreError::missing_or_changed("template", expected));
        }
        Ok(())
    }

    async fn insert_workflow(&self, wf: &Workflow) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        insert_workflow_rows(&mut conn, std::slice::from_ref(wf))
            .await
            .map_err(|e| StoreError::foreign_key(e, StoreError::NotFound("ticket or template")))
    }

    async fn workflow(&self, id: Uuid) -> StoreResult<Workflow> {
        let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = ?1");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
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
            "UPDATE workflows SET state = ?3, steps = ?4, completed_at = ?5, duration_seconds = ?6, \
             updated_at = ?7, version = ?8 WHERE id = ?1 AND version = ?2",
        )
        .bind(wf.id.to_string())
        .bind(expected_version)
        .bind(wf.state.as_str())
        .bind(serde_json::to_string(&wf.steps)?)
        .bind(wf.completed_at.map(millis))
        .bind(wf.duration_seconds())
        .bind(millis(wf.updated_at))
        .bind(wf.version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            return Ok(false);
        }
        if let Some(p) = pattern {
            insert_pattern_rows(&mut tx, std::slice::from_ref(p)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_tickets(&self, tickets: &[JiraTicket]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for batch in tickets.chunks(ROWS_PER_INSERT) {
            QueryBuilder::<Sqlite>::new(
                "INSERT INTO jira_tickets (key, summary, status, description, assignee, priority, updated_at) ",
            )
            .push_values(batch, |mut row, t| {
                row.push_bind(&t.key)
                    .push_bind(&t.summary)
                    .push_bind(&t.status)
                    .push_bind(&t.description)
                    .push_bind(&t.assignee)
                    .push_bind(&t.priority)
                    .push_bind(millis(t.updated_at));
            })
            .build()
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn insert_workflows(&self, workflows: &[Workflow]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for batch in workflows.chunks(ROWS_PER_INSERT) {
            insert_workflow_rows(&mut tx, batch).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn refresh_statistics(&self) -> StoreResult<()> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// An SQLite file has one serving process: nobody else to tell.
    async fn read_outbox(&self, from: u64) -> StoreResult<OutboxRead> {
        let rows = sqlx::query(
            "SELECT seq, message FROM cache_invalidations WHERE seq >= ?1 ORDER BY seq",
        )
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut read = OutboxRead {
            rows: Vec::with_capacity(rows.len()),
            next: from,
            horizon_end: from,
        };
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let position = u64::try_from(seq)
                .map_err(|_| StoreError::Corrupt(format!("outbox sequence {seq}")))?;
            read.next = read.next.max(position + 1);
            read.horizon_end = read.next;
            read.rows.push(OutboxRow {
                seq,
                position,
                message: row.try_get("message")?,
            });
        }
        Ok(read)
    }

    async fn outbox_position(&self) -> StoreResult<u64> {
        let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM cache_invalidations")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(last).unwrap_or(0) + 1)
    }

    async fn prune_outbox(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let pruned = sqlx::query("DELETE FROM cache_invalidations WHERE created_at < ?1")
            .bind(millis(before))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(pruned)
    }

    async fn subscribe_invalidations(
        &self,
    ) -> StoreResult<Option<tokio::sync::mpsc::Receiver<crate::Notice>>> {
        Ok(None)
    }

    async fn record_invalidations(&self, messages: &[String]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let now = millis(Utc::now());
        for message in messages {
            // As the triggers do (migration 0006): one row per message, moved to the end.
            sqlx::query(
                "INSERT INTO cache_invalidations (message, created_at) VALUES (?1, ?2) \
                 ON CONFLICT (message) DO UPDATE SET \
                 seq = (SELECT max(seq) + 1 FROM cache_invalidations), created_at = excluded.created_at",
            )
            .bind(message)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn save_warm_keys(
        &self,
        cache: &str,
        keys: &[(String, u64)],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM cache_warm_keys WHERE cache = ?1")
            .bind(cache)
            .execute(&mut *tx)
            .await?;
        for (rank, (key, reads)) in keys.iter().enumerate() {
            sqlx::query(
                "INSERT INTO cache_warm_keys (cache, rank, key, reads, saved_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(cache)
            .bind(i64::try_from(rank).unwrap_or(i64::MAX))
            .bind(key)
            .bind(i64::try_from(*reads).unwrap_or(i64::MAX))
            .bind(millis(at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn warm_keys(&self, cache: &str) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT key FROM cache_warm_keys WHERE cache = ?1 ORDER BY rank")
                .bind(cache)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn insert_patterns(&self, patterns: &[Pattern]) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        for batch in patterns.chunks(ROWS_PER_INSERT) {
            insert_pattern_rows(&mut tx, batch).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn template_in_use() -> StoreError {
    StoreError::Conflict("template is used by workflows and cannot be deleted".into())
}

/// Inserts up to [`ROWS_PER_INSERT`] workflows in one statement.
async fn insert_workflow_rows(
    conn: &mut SqliteConnection,
    batch: &[Workflow],
) -> Result<(), sqlx::Error> {
    let steps = batch
        .iter()
        .map(|wf| serde_json::to_string(&wf.steps))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    QueryBuilder::<Sqlite>::new(
        "INSERT INTO workflows (id, template_id, ticket_key, state, steps, estimated_minutes, \
         started_at, completed_at, duration_seconds, updated_at, version) ",
    )
    .push_values(batch.iter().zip(steps), |mut row, (wf, steps)| {
        row.push_bind(wf.id.to_string())
            .push_bind(wf.template_id.to_string())
            .push_bind(&wf.ticket_key)
            .push_bind(wf.state.as_str())
            .push_bind(steps)
            .push_bind(wf.estimated_minutes)
            .push_bind(millis(wf.started_at))
            .push_bind(wf.completed_at.map(millis))
            .push_bind(wf.duration_seconds())
            .push_bind(millis(wf.updated_at))
            .push_bind(wf.version);
    })
    .build()
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts up to [`ROWS_PER_INSERT`] patterns in one statement.
async fn insert_pattern_rows(
    conn: &mut SqliteConnection,
    batch: &[Pattern],
) -> Result<(), sqlx::Error> {
    QueryBuilder::<Sqlite>::new(
        "INSERT INTO patterns (id, workflow_id, ticket_key, kind, detail, detected_at) ",
    )
    .push_values(batch, |mut row, p| {
        row.push_bind(p.id.to_string())
            .push_bind(p.workflow_id.to_string())
            .push_bind(&p.ticket_key)
            .push_bind(&p.kind)
            .push_bind(&p.detail)
            .push_bind(millis(p.detected_at));
    })
    .build()
    .execute(conn)
    .await?;
    Ok(())
}
