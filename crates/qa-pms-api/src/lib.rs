//! The qa-pms HTTP service: routes, the cached read path, errors, metrics and the command line.
//!
//! Where a ticket goes: `routes/tickets.rs` extracts and validates the key, asks the tickets cache
//! (`qa_pms_core::cache`), which on a miss loads it through `tickets.rs`: from the `Store`
//! (`qa_pms_storage`) alone, or with Jira configured from the mirror or Jira (`qa_pms_jira`). Then
//! `cached.rs` turns the cached entry into the JSON response.
//!
//! Where a search goes: `routes/search.rs` validates the query and asks the search cache, which on
//! a miss runs it in the `Store`'s catalog. `catalog.rs` fills that catalog from Postman
//! (`qa_pms_postman`) and Testmo (`qa_pms_testmo`); `routes/catalog.rs` imports entries and runs
//! or reports syncs.

pub mod app;
pub mod cache_cli;
pub mod cached;
pub mod catalog;
pub mod cli;
pub mod error;
pub mod extract;
pub mod invalidation;
pub mod layers;
pub mod metrics;
pub mod openapi;
mod routes;
pub mod seed;
pub mod state;
pub mod sync;
pub mod tickets;
pub mod warm;

pub use app::{
    build, build_with, serve, shutdown_signal, try_build, AppConfig, JiraSettings, SettingsError,
};
pub use catalog::CatalogSettings;
pub use state::AppState;
