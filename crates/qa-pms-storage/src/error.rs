//! The storage error: what callers branch on (not found, conflict) and everything else.

use std::sync::Arc;

/// Cloneable, so that one failed cache load can be handed to every request that waited on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// A conditional write found the row changed (or gone) since the version it was given.
    #[error("the {0} changed since it was read")]
    Changed(&'static str),
    #[error("database error: {0}")]
    Database(Arc<sqlx::Error>),
    #[error("migration failed: {0}")]
    Migrate(Arc<sqlx::migrate::MigrateError>),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(Arc::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migrate(Arc::new(e))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// A database that cannot be reached lets a cache answer with what it last loaded.
impl qa_pms_core::cache::LoadError for StoreError {
    fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound(_))
    }

    fn stale_status(&self) -> Option<u16> {
        self.is_unavailable().then_some(503)
    }
}

impl StoreError {
    /// The database could not be reached (as opposed to a query that failed).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Database(e) if matches!(
                **e,
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
            )
        )
    }

    /// Maps a foreign-key violation to `on_fk`, any other error as usual.
    pub(crate) fn foreign_key(e: sqlx::Error, on_fk: StoreError) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => on_fk,
            _ => e.into(),
        }
    }

    /// What a write that matched no row means: the row is not there, or (a conditional write)
    /// it changed since the version it was given.
    pub(crate) fn missing_or_changed<T>(what: &'static str, expected: Option<&T>) -> Self {
        match expected {
            Some(_) => StoreError::Changed(what),
            None => StoreError::NotFound(what),
        }
    }

    pub(crate) fn unique(e: sqlx::Error, on_unique: StoreError) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => on_unique,
            _ => e.into(),
        }
    }
}
