//! Domain types of qa-pms and the in-memory cache layer of story 14.4.
//!
//! Nothing here knows about HTTP or SQL: the storage crate persists these types, the API crate
//! turns them into JSON responses, and [`cache::AppCache`] sits between the two.

pub mod cache;
pub mod catalog;
pub mod dashboard;
pub mod error;
pub mod template;
pub mod ticket;
pub mod workflow;

pub use cache::{AppCache, CacheConfig, CacheKind, CacheSettings, CacheStats};
pub use catalog::{CatalogEntry, SearchQuery, SearchResult, Source};
pub use dashboard::{DashboardMetrics, Period};
pub use error::ValidationError;
pub use template::{TemplateDraft, WorkflowTemplate};
pub use ticket::{JiraTicket, TicketKey, TicketPatch, TicketUpsert};
pub use workflow::{Pattern, StepProgress, Workflow, WorkflowAction, WorkflowState};
