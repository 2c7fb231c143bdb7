//! Types mirroring Testmo's JSON (only the parts we read).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// One page of a paginated Testmo list. `page` and `last_page` are `null` for an empty list;
/// `next_page` is `null` on the last page.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    #[serde(default)]
    pub page: Option<u64>,
    #[serde(default)]
    pub prev_page: Option<u64>,
    #[serde(default)]
    pub next_page: Option<u64>,
    #[serde(default)]
    pub last_page: Option<u64>,
    #[serde(default)]
    pub per_page: Option<u64>,
    #[serde(default)]
    pub total: Option<u64>,
    pub result: Vec<T>,
}

/// A repository case. Besides its fixed fields, a case carries the project's custom fields by
/// column name (`custom_description`, `custom_steps`, `custom_priority`...), kept in `fields`
/// with every other attribute, in key order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Case {
    pub id: u64,
    #[serde(default)]
    pub project_id: Option<u64>,
    #[serde(default)]
    pub folder_id: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub fields: BTreeMap<String, Value>,
}
