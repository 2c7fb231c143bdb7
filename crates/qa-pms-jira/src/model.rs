//! Types mirroring Jira's JSON (only the parts we read), and their mapping into [`JiraTicket`].

use chrono::{DateTime, Utc};
use qa_pms_core::ticket::{DESCRIPTION_MAX, SHORT_TEXT_MAX, SUMMARY_MAX};
use qa_pms_core::JiraTicket;
use serde::Deserialize;

use crate::{adf, bound, JiraError};

/// The fields we ask Jira for, and the only ones [`Fields`] reads.
pub const FIELDS: [&str; 6] = [
    "summary",
    "status",
    "description",
    "assignee",
    "priority",
    "updated",
];

/// An issue, as `GET /rest/api/3/issue/{key}`, the JQL search and webhooks return it.
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    #[serde(default)]
    pub id: Option<String>,
    pub key: String,
    #[serde(default)]
    pub fields: Fields,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Fields {
    pub summary: Option<String>,
    pub status: Option<Named>,
    /// An ADF document (REST v3), or a string in webhooks (which use REST v2 shapes).
    pub description: Option<serde_json::Value>,
    pub assignee: Option<User>,
    pub priority: Option<Named>,
    /// Like `2024-03-05T14:07:12.345+0000`.
    pub updated: Option<String>,
}

/// Anything Jira names: a status, a priority.
#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    #[serde(default)]
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub account_id: Option<String>,
    pub display_name: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

/// `POST /rest/api/3/search/jql`. The last page may omit `nextPageToken` or set `isLast`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResponse {
    #[serde(default)]
    pub issues: Vec<Issue>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub is_last: Option<bool>,
}

/// `GET /rest/api/3/issue/{key}/transitions`.
#[derive(Debug, Clone, Deserialize)]
pub struct Transitions {
    #[serde(default)]
    pub transitions: Vec<Transition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transition {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub to: Named,
}

impl Issue {
    /// Our ticket for this issue. Jira's texts are bounded like qa-pms-core bounds its own
    /// (summary 1000 characters, description 32768, status, assignee and priority 128) by
    /// truncating them on a character boundary rather than failing, so that a huge value upstream
    /// can neither break a sync nor the cache's memory bound. An empty description is `None`.
    pub fn into_ticket(self) -> Result<JiraTicket, JiraError> {
        let key = self.key;
        let missing = |field: &str| JiraError::Malformed(format!("issue {key} has no {field}"));
        let fields = self.fields;
        let summary = fields.summary.ok_or_else(|| missing("summary"))?;
        let status = fields
            .status
            .and_then(|s| s.name)
            .ok_or_else(|| missing("status name"))?;
        let updated = fields.updated.ok_or_else(|| missing("updated time"))?;
        let updated_at = parse_jira_time(&updated).ok_or_else(|| {
            JiraError::Malformed(format!(
                "issue {key} has an unreadable updated time `{updated}`"
            ))
        })?;
        let description = fields
            .description
            .map(|doc| bound(&adf::to_plain_text(&doc), DESCRIPTION_MAX))
            .filter(|text| !text.is_empty());
        let short = |text: Option<String>| {
            text.map(|t| bound(t.trim(), SHORT_TEXT_MAX))
                .filter(|t| !t.is_empty())
        };
        Ok(JiraTicket {
            summary: bound(summary.trim(), SUMMARY_MAX),
            status: bound(status.trim(), SHORT_TEXT_MAX),
            description,
            assignee: short(fields.assignee.and_then(|a| a.display_name)),
            priority: short(fields.priority.and_then(|p| p.name)),
            updated_at,
            key,
        })
    }
}

/// Jira's timestamps (`2024-03-05T14:07:12.345+0000`, no colon in the offset), or RFC 3339.
pub fn parse_jira_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn jira_and_rfc3339_timestamps_are_read() {
        let expected = Utc
            .with_ymd_and_hms(2024, 3, 5, 12, 7, 12)
            .single()
            .map(|t| t + chrono::Duration::milliseconds(345));
        assert_eq!(parse_jira_time("2024-03-05T14:07:12.345+0200"), expected);
        assert_eq!(parse_jira_time("2024-03-05T12:07:12.345Z"), expected);
        assert!(parse_jira_time("2024-03-05T12:07:12+0000").is_some());
        assert_eq!(parse_jira_time("yesterday"), None);
    }

    #[test]
    fn huge_texts_are_truncated_on_character_boundaries() {
        let issue: Issue = serde_json::from_value(json!({
            "key": "PROJ-1",
            "fields": {
                "summary": "é".repeat(SUMMARY_MAX + 10),
                "status": {"name": "x".repeat(500)},
                "updated": "2024-03-05T14:07:12.345+0000"
            }
        }))
        .expect("an issue");
        let ticket = issue.into_ticket().expect("a ticket");
        assert_eq!(ticket.summary.chars().count(), SUMMARY_MAX);
        assert_eq!(ticket.status.chars().count(), SHORT_TEXT_MAX);
    }

    #[test]
    fn an_issue_without_a_status_name_is_malformed() {
        let issue: Issue = serde_json::from_value(json!({
            "key": "PROJ-1",
            "fields": {"summary": "s", "status": {}, "updated": "2024-03-05T14:07:12.345+0000"}
        }))
        .expect("an issue");
        assert!(
            matches!(issue.into_ticket(), Err(JiraError::Malformed(m)) if m.contains("status"))
        );
    }
}
