//! The qa-pms HTTP service: routes, the cached read path, errors, metrics and the command line.
//!
//! Where a ticket goes: `routes/tickets.rs` extracts and validates the key, asks the tickets cache
//! (`qa_pms_core::cache`), which on a miss loads it through `tickets.rs`: from the `Store`
//! (`qa_pms_storage`) alone, or with Jira configured from the mirror or Jira (`qa_pms_jira`). Then
//! `cached.rs` turns the cached entry into the JSON response.

pub mod app;
pub mod cached;
pub mod cli;
pub mod error;
pub mod extract;
pub mod invalidation;
pub mod layers;
pub mod metrics;
mod routes;
pub mod seed;
pub mod state;
pub mod sync;
pub mod tickets;

pub use app::{build, build_with, serve, shutdown_signal, try_build, AppConfig, JiraSettings};
pub use state::AppState;
