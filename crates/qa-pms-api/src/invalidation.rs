//! What a write invalidates, and how every process learns it.
//!
//! The database records each write's invalidations in the write's own transaction (the outbox
//! table `cache_invalidations`, filled by triggers on every cached table: migration 0007 on
//! PostgreSQL, 0006 on SQLite), whoever writes: the service, `psql`, a migration, another process.
//! Each process reads the outbox from where it last stopped ([`Outbox::catch_up`]) and applies
//! what it finds:
//! - after each of its own writes, before answering, so that a write is never followed by a read
//!   of what it replaced (with the generation check in `qa_pms_core::cache`);
//! - when PostgreSQL's `NOTIFY` says another transaction recorded some (milliseconds after its
//!   commit), and every few seconds regardless; on SQLite every 250 ms, for writes of other
//!   processes to the file;
//! - after the feed lost its connection: what it missed is read again, nothing is flushed, unless
//!   the outbox no longer holds it ([`RETENTION`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qa_pms_core::{AppCache, CacheKind, TicketKey};
use qa_pms_storage::{Notice, Store, StoreResult};
use uuid::Uuid;

use crate::state::AppState;

/// How long the outbox keeps an invalidation. A process that could not read it for longer may have
/// missed some, and drops everything it cached.
pub const RETENTION: Duration = Duration::from_secs(10 * 60);
/// How often a process reads the outbox without being woken: on SQLite, the only way to learn of
/// another process's writes; on PostgreSQL, a safety net under `NOTIFY`.
const POLL_SQLITE: Duration = Duration::from_millis(250);
const POLL_POSTGRES: Duration = Duration::from_secs(5);
/// Between two attempts to read the outbox while the database does not answer.
const RETRY: Duration = Duration::from_millis(500);

/// Where this process stands in the outbox.
#[derive(Debug)]
pub struct Outbox {
    reader: tokio::sync::Mutex<Reader>,
    /// When the last read succeeded, in milliseconds since `started`.
    last_read_ms: AtomicU64,
    started: Instant,
    /// Where the last read of the outbox left this process (mirrors `Reader::position`).
    applied_through: AtomicU64,
    /// The largest `horizon_end` read: a consistency token covering every write acknowledged here.
    token: AtomicU64,
    /// False from the moment this process may have missed invalidations (its feed dropped, a read
    /// failed) until a read of the outbox succeeds: what it has cached is then unconfirmed.
    confirmed: AtomicBool,
    /// Keys an operator asked every process to load (`admin warm`), read but not loaded yet:
    /// loading needs the whole state ([`crate::warm::requested`]).
    to_warm: std::sync::Mutex<Vec<(CacheKind, String)>>,
}

#[derive(Debug)]
struct Reader {
    position: u64,
    /// Rows already applied that a later read may return again, with their positions.
    applied: HashMap<i64, u64>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self {
            reader: tokio::sync::Mutex::new(Reader {
                // From the start of what the outbox keeps, until `start_at_end`: applying old
                // invalidations to empty caches costs nothing but the read.
                position: 0,
                applied: HashMap::new(),
            }),
            last_read_ms: AtomicU64::new(0),
            started: Instant::now(),
            confirmed: AtomicBool::new(true),
            applied_through: AtomicU64::new(0),
            token: AtomicU64::new(0),
            to_warm: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Outbox {
    /// Applies every invalidation recorded since the last read; returns how many distinct ones.
    pub async fn catch_up(&self, store: &dyn Store, cache: &AppCache) -> StoreResult<usize> {
        let mut reader = self.reader.lock().await;
        let read = match store.read_outbox(reader.position).await {
            Ok(read) => read,
            Err(error) => {
                // Under the lock: a failure never overrides a later success.
                self.unconfirm();
                return Err(error);
            }
        };
        let mut fresh = Vec::new();
        for row in read.rows {
            if reader.applied.insert(row.seq, row.position).is_none() {
                fresh.push(row.message);
            }
        }
        // A transaction that wrote several rows of one kind (two statements on the workflows)
        // drops that kind once.
        let mut seen = HashSet::new();
        fresh.retain(|message| seen.insert(message.clone()));
        for message in &fresh {
            match Invalidation::decode(message) {
                Some(Invalidation::Warm(kind, key)) => {
                    if let Ok(mut to_warm) = self.to_warm.lock() {
                        to_warm.push((kind, key));
                    }
                }
                Some(invalidation) => invalidation.apply(cache).await,
                None => {
                    tracing::warn!(%message, "unreadable invalidation; dropping every cache");
                    cache.invalidate_all();
                }
            }
        }
        let next = read.next;
        reader.applied.retain(|_, position| *position >= next);
        reader.position = next;
        self.applied_through.store(next, Ordering::SeqCst);
        self.token.fetch_max(read.horizon_end, Ordering::SeqCst);
        let since_start = self.started.elapsed().as_millis();
        self.last_read_ms.store(
            u64::try_from(since_start).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        self.confirmed.store(true, Ordering::SeqCst);
        Ok(fresh.len())
    }

    /// Starts reading at the end of the outbox instead of its beginning, unless a read already
    /// happened: a process that starts with nothing cached has nothing to apply from before.
    ///
    /// On PostgreSQL the end is the oldest transaction still open in the whole cluster (any
    /// database), which may be older than writes already committed: those are read once now, so
    /// that a later read does not take them for news and drop what was cached since.
    pub async fn start_at_end(&self, store: &dyn Store, cache: &AppCache) -> StoreResult<()> {
        {
            let mut reader = self.reader.lock().await;
            if reader.position != 0 {
                return Ok(());
            }
            reader.position = store.outbox_position().await?;
            self.applied_through
                .store(reader.position, Ordering::SeqCst);
        }
        self.catch_up(store, cache).await.map(drop)
    }

    /// A consistency token for the writes this process acknowledged so far: a process that has
    /// applied it has applied their invalidations ([`Self::confirm`]).
    pub fn token(&self) -> u64 {
        self.token.load(Ordering::SeqCst)
    }

    /// Makes sure this process has applied every invalidation of the writes behind `token`: at
    /// once if its last read already covers it, else by reading the outbox now (which sees every
    /// write committed before the token was handed out). `false` if that read fails or takes
    /// longer than `wait`.
    pub async fn confirm(
        &self,
        token: u64,
        store: &dyn Store,
        cache: &AppCache,
        wait: Duration,
    ) -> bool {
        if self.applied_through.load(Ordering::SeqCst) >= token {
            return true;
        }
        matches!(
            tokio::time::timeout(wait, self.catch_up(store, cache)).await,
            Ok(Ok(_))
        )
    }

    /// Whether this process has read every invalidation committed up to its last read, with
    /// nothing since to suggest it missed one. While not, cache hits are answered as STALE.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed.load(Ordering::SeqCst)
    }

    /// The keys operators asked to warm since the last call.
    pub fn take_to_warm(&self) -> Vec<(CacheKind, String)> {
        self.to_warm
            .lock()
            .map(|mut to_warm| std::mem::take(&mut *to_warm))
            .unwrap_or_default()
    }

    /// Marks what this process has cached as unconfirmed until the next successful read.
    pub fn unconfirm(&self) {
        self.confirmed.store(false, Ordering::SeqCst);
    }

    /// How long since this process last read the outbox (since it started, before its first read).
    pub fn unread_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    Ticket(TicketKey),
    /// Every ticket (a bulk write).
    AllTickets,
    /// Any search may rank differently (a catalog import).
    AllSearches,
    /// Every KPI period (a workflow change or a recorded pattern).
    Dashboards,
    Template(Uuid),
    /// Every template (a bulk write).
    AllTemplates,
    /// An operator's purge (`DELETE /admin/cache/...`): one key of a cache, as text, or all of it.
    Purge(CacheKind, Option<String>),
    /// An operator's warm-up (`POST /admin/cache/.../warm`): not an invalidation but an order to
    /// every process to load a key; the outbox keeps it for the state to load.
    Warm(CacheKind, String),
}

impl Invalidation {
    pub async fn apply(&self, cache: &AppCache) {
        match self {
            Invalidation::Ticket(key) => cache.tickets.invalidate(key).await,
            Invalidation::AllTickets => cache.tickets.invalidate_all(),
            Invalidation::AllTemplates => cache.templates.invalidate_all(),
            Invalidation::AllSearches => cache.search.invalidate_all(),
            Invalidation::Dashboards => cache.invalidate_dashboards().await,
            Invalidation::Template(id) => cache.templates.invalidate(id).await,
            Invalidation::Purge(kind, key) => {
                cache.purge(*kind, key.as_deref()).await;
            }
            Invalidation::Warm(..) => {}
        }
    }

    /// The outbox message of an operator's purge or warm-up (origin `admin`); the key, last, may
    /// hold spaces (a search's key does).
    pub fn encode(&self) -> Option<String> {
        match self {
            Invalidation::Purge(kind, None) => Some(format!("admin purge {kind}")),
            Invalidation::Purge(kind, Some(key)) => Some(format!("admin purge {kind} {key}")),
            Invalidation::Warm(kind, key) => Some(format!("admin warm {kind} {key}")),
            _ => None,
        }
    }

    /// The invalidation of an outbox message, `<origin> <what> [<key>]` as the triggers of the
    /// cached tables write it (`db ticket PROJ-1`); `None` for one this version cannot read.
    pub fn decode(message: &str) -> Option<Self> {
        if let Some(command) = message.strip_prefix("admin ") {
            let mut parts = command.splitn(3, ' ');
            let (verb, kind) = (parts.next()?, parts.next()?.parse().ok()?);
            let key = parts.next().map(str::to_owned);
            return match (verb, key) {
                ("purge", key) => Some(Invalidation::Purge(kind, key)),
                ("warm", Some(key)) => Some(Invalidation::Warm(kind, key)),
                _ => None,
            };
        }
        let mut parts = message.split(' ');
        let _origin = parts.next()?;
        let invalidation = match (parts.next()?, parts.next()) {
            ("ticket", Some(key)) => Invalidation::Ticket(TicketKey::parse(key).ok()?),
            ("search", None) => Invalidation::AllSearches,
            ("tickets", None) => Invalidation::AllTickets,
            ("templates", None) => Invalidation::AllTemplates,
            ("dashboards", None) => Invalidation::Dashboards,
            ("template", Some(id)) => Invalidation::Template(Uuid::parse_str(id).ok()?),
            _ => return None,
        };
        parts.next().is_none().then_some(invalidation)
    }
}

/// Follows the outbox for as long as the process runs: woken by the feed where the backend has one
/// (PostgreSQL), polling it otherwise. Returns whether there is a feed.
pub async fn listen(state: AppState) -> Result<bool, qa_pms_storage::StoreError> {
    let mut notices = state.store.subscribe_invalidations().await?;
    state
        .outbox
        .start_at_end(state.store.as_ref(), &state.cache)
        .await?;
    let has_feed = notices.is_some();
    let poll = if has_feed { POLL_POSTGRES } else { POLL_SQLITE };
    tokio::spawn(async move {
        let mut pruned = Instant::now();
        loop {
            let woken = match &mut notices {
                Some(feed) => match tokio::time::timeout(poll, feed.recv()).await {
                    Ok(Some(mut notice)) => {
                        // One read covers every wake queued meanwhile.
                        while let Ok(next) = feed.try_recv() {
                            if next == Notice::Lost {
                                notice = Notice::Lost;
                            }
                        }
                        Some(notice)
                    }
                    Ok(None) => {
                        notices = None; // the feed ended: poll
                        None
                    }
                    Err(_) => None,
                },
                None => {
                    tokio::time::sleep(poll).await;
                    None
                }
            };
            if woken == Some(Notice::Lost) {
                tracing::warn!("invalidation feed lost its connection; reading what it missed");
            }
            follow(&state, woken == Some(Notice::Lost)).await;
            if pruned.elapsed() > Duration::from_secs(60) {
                pruned = Instant::now();
                let before = chrono::Utc::now() - RETENTION;
                if let Err(error) = state.store.prune_outbox(before).await {
                    tracing::warn!(%error, "could not prune the invalidation outbox");
                }
            }
        }
    });
    Ok(has_feed)
}

/// Reads the outbox until a read succeeds. Past [`RETENTION`] without one, the outbox may no longer
/// hold what this process missed: it drops every cache, once.
async fn follow(state: &AppState, replaying: bool) {
    if replaying {
        state.outbox.unconfirm();
    }
    let mut flushed = false;
    loop {
        match state
            .outbox
            .catch_up(state.store.as_ref(), &state.cache)
            .await
        {
            Ok(applied) => {
                if replaying && applied > 0 {
                    tracing::info!(
                        applied,
                        "replayed the invalidations missed while disconnected"
                    );
                }
                state.metrics.invalidations_replayed(replaying, applied);
                crate::warm::requested(state);
                return;
            }
            Err(error) => {
                if !flushed && state.outbox.unread_for() > RETENTION {
                    tracing::warn!(%error, "invalidations unread for too long; dropping every cache");
                    state.cache.invalidate_all();
                    flushed = true;
                }
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_triggers_messages_decode() {
        let template = Uuid::new_v4();
        let all = [
            (
                "db ticket PROJ-1".to_owned(),
                Invalidation::Ticket(TicketKey::parse("PROJ-1").unwrap()),
            ),
            ("db tickets".to_owned(), Invalidation::AllTickets),
            ("db templates".to_owned(), Invalidation::AllTemplates),
            ("db search".to_owned(), Invalidation::AllSearches),
            ("db dashboards".to_owned(), Invalidation::Dashboards),
            (
                format!("db template {template}"),
                Invalidation::Template(template),
            ),
        ];
        for (message, invalidation) in all {
            assert_eq!(
                Invalidation::decode(&message),
                Some(invalidation),
                "{message}"
            );
        }
    }

    #[test]
    fn operators_commands_round_trip_through_their_messages() {
        for command in [
            Invalidation::Purge(CacheKind::Search, None),
            Invalidation::Purge(
                CacheKind::Search,
                Some("login api|source=all|limit=20".into()),
            ),
            Invalidation::Warm(CacheKind::Tickets, "PROJ-1".into()),
        ] {
            let message = command.encode().unwrap();
            assert_eq!(Invalidation::decode(&message), Some(command), "{message}");
        }
        for message in [
            "admin warm tickets",
            "admin purge nope",
            "admin nope tickets x",
        ] {
            assert_eq!(Invalidation::decode(message), None, "{message}");
        }
    }

    #[test]
    fn unreadable_messages_decode_to_none() {
        for message in [
            "",
            "me",
            "me ticket",
            "me ticket bad",
            "me ticket PROJ-1 x",
            "me nope",
        ] {
            assert_eq!(Invalidation::decode(message), None, "{message}");
        }
    }
}
