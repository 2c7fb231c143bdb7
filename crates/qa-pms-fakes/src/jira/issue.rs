//! `FakeIssue` and the Jira Cloud REST v3 JSON it is served as: issue, status, priority, user.

use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::adf;

/// The site URL used in `self` links when an issue is rendered outside a running fake.
pub const DEFAULT_SITE: &str = "https://fake-jira.atlassian.net";

/// Jira's timestamp format: milliseconds and an offset without a colon (`+0000`).
pub const JIRA_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3f%z";

/// One issue as the fake stores it; rendered to Jira's JSON by [`FakeIssue::to_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeIssue {
    pub key: String,
    pub summary: String,
    /// A status name; the workflow knows "To Do", "In Progress", "QA" and "Done".
    pub status: String,
    /// Plain text; served as an ADF document with one paragraph per line.
    pub description: Option<String>,
    /// The assignee's display name.
    pub assignee: Option<String>,
    /// A priority name: Highest, High, Medium, Low or Lowest.
    pub priority: Option<String>,
    pub updated: DateTime<Utc>,
}

impl FakeIssue {
    /// An issue with no description, assignee or priority, updated now.
    pub fn new(
        key: impl Into<String>,
        summary: impl Into<String>,
        status: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            summary: summary.into(),
            status: status.into(),
            description: None,
            assignee: None,
            priority: None,
            updated: truncate_to_millis(Utc::now()),
        }
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    pub fn with_assignee(mut self, display_name: impl Into<String>) -> Self {
        self.assignee = Some(display_name.into());
        self
    }

    pub fn with_priority(mut self, priority: impl Into<String>) -> Self {
        self.priority = Some(priority.into());
        self
    }

    pub fn with_updated(mut self, updated: DateTime<Utc>) -> Self {
        self.updated = updated;
        self
    }

    /// The numeric issue id, derived from the key: stable, and distinct within a project.
    pub fn id(&self) -> String {
        let (project, number) = split_key(&self.key);
        let bucket = 10 + stable_hash(project) % 890;
        (bucket * 100_000 + number % 100_000).to_string()
    }

    /// The full v3 issue JSON, as `GET /rest/api/3/issue/{key}` returns it, linked to [`DEFAULT_SITE`].
    pub fn to_json(&self) -> Value {
        self.to_json_at(DEFAULT_SITE)
    }

    /// Like [`FakeIssue::to_json`] with `self` links under `base_url`.
    pub fn to_json_at(&self, base_url: &str) -> Value {
        issue_json(self, base_url, &account_id_for)
    }
}

/// The accountId the fake gives a display name that no configured user claims.
pub fn account_id_for(display_name: &str) -> String {
    let digest = Sha256::digest(display_name.as_bytes());
    format!("5b10{}", &hex::encode(digest)[..20])
}

/// Drops sub-millisecond precision, which Jira's timestamps do not carry.
pub(crate) fn truncate_to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(ChronoDuration::milliseconds(1))
        .unwrap_or(at)
}

/// Renders an issue; `account_id` maps an assignee display name to its accountId.
pub(crate) fn issue_json(
    issue: &FakeIssue,
    base: &str,
    account_id: &dyn Fn(&str) -> String,
) -> Value {
    let id = issue.id();
    let (project, _) = split_key(&issue.key);
    let updated = issue.updated.format(JIRA_TIME_FORMAT).to_string();
    json!({
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
        "id": id,
        "self": format!("{base}/rest/api/3/issue/{id}"),
        "key": issue.key,
        "fields": {
            "summary": issue.summary,
            "status": status_json(base, &issue.status),
            "description": issue.description.as_deref().map(adf::from_text),
            "assignee": issue.assignee.as_deref().map(|name| user_json(base, &account_id(name), name)),
            "priority": issue.priority.as_deref().map(|name| priority_json(base, name)),
            "updated": updated,
            "created": updated,
            "issuetype": {
                "self": format!("{base}/rest/api/3/issuetype/10001"),
                "id": "10001",
                "description": "A small, distinct piece of work.",
                "iconUrl": format!("{base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/10318?size=medium"),
                "name": "Task",
                "subtask": false,
                "hierarchyLevel": 0
            },
            "project": {
                "self": format!("{base}/rest/api/3/project/{}", project_id(project)),
                "id": project_id(project),
                "key": project,
                "name": format!("{project} project"),
                "projectTypeKey": "software",
                "simplified": false
            },
            "labels": []
        }
    })
}

/// A status of the fixed workflow, with the id of the transition that leads to it.
pub(crate) struct WorkflowStatus {
    pub name: &'static str,
    pub id: &'static str,
    pub transition_id: &'static str,
    category: usize,
}

/// The workflow every issue follows: each status is reachable from every other one.
pub(crate) const WORKFLOW: [WorkflowStatus; 4] = [
    WorkflowStatus {
        name: "To Do",
        id: "10000",
        transition_id: "11",
        category: 0,
    },
    WorkflowStatus {
        name: "In Progress",
        id: "3",
        transition_id: "21",
        category: 1,
    },
    WorkflowStatus {
        name: "QA",
        id: "10001",
        transition_id: "31",
        category: 1,
    },
    WorkflowStatus {
        name: "Done",
        id: "10002",
        transition_id: "41",
        category: 2,
    },
];

/// Jira's three status categories: (id, key, colorName, name).
const CATEGORIES: [(u64, &str, &str, &str); 3] = [
    (2, "new", "blue-gray", "To Do"),
    (4, "indeterminate", "yellow", "In Progress"),
    (3, "done", "green", "Done"),
];

const PRIORITIES: [(&str, &str); 5] = [
    ("Highest", "1"),
    ("High", "2"),
    ("Medium", "3"),
    ("Low", "4"),
    ("Lowest", "5"),
];

/// The canonical spelling of a known priority name or id.
pub(crate) fn known_priority(name_or_id: &str) -> Option<&'static str> {
    PRIORITIES
        .iter()
        .find(|(name, id)| name.eq_ignore_ascii_case(name_or_id) || *id == name_or_id)
        .map(|(name, _)| *name)
}

pub(crate) fn status_json(base: &str, name: &str) -> Value {
    let known = WORKFLOW.iter().find(|s| s.name.eq_ignore_ascii_case(name));
    let (id, category) = known.map_or(("10100", 1), |s| (s.id, s.category));
    let (cat_id, cat_key, color, cat_name) = CATEGORIES[category];
    json!({
        "self": format!("{base}/rest/api/3/status/{id}"),
        "description": "",
        "iconUrl": format!("{base}/images/icons/statuses/generic.png"),
        "name": known.map_or(name, |s| s.name),
        "id": id,
        "statusCategory": {
            "self": format!("{base}/rest/api/3/statuscategory/{cat_id}"),
            "id": cat_id,
            "key": cat_key,
            "colorName": color,
            "name": cat_name
        }
    })
}

fn priority_json(base: &str, name: &str) -> Value {
    let id = PRIORITIES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map_or("10000", |(_, id)| *id);
    json!({
        "self": format!("{base}/rest/api/3/priority/{id}"),
        "iconUrl": format!("{base}/images/icons/priorities/{}.svg", name.to_lowercase()),
        "name": name,
        "id": id
    })
}

/// A user as Jira Cloud shows one: no email, an opaque accountId, avatars.
pub(crate) fn user_json(base: &str, account_id: &str, display_name: &str) -> Value {
    let avatar =
        |size: u32| format!("https://secure.gravatar.com/avatar/{account_id}?d=identicon&s={size}");
    json!({
        "self": format!("{base}/rest/api/3/user?accountId={account_id}"),
        "accountId": account_id,
        "avatarUrls": {
            "48x48": avatar(48),
            "24x24": avatar(24),
            "16x16": avatar(16),
            "32x32": avatar(32)
        },
        "displayName": display_name,
        "active": true,
        "timeZone": "Europe/Lisbon",
        "accountType": "atlassian"
    })
}

/// `PROJ-12` -> ("PROJ", 12); a key without a numeric suffix sorts as number 0.
pub(crate) fn split_key(key: &str) -> (&str, u64) {
    match key.rsplit_once('-') {
        Some((project, number)) => (project, number.parse().unwrap_or(0)),
        None => (key, 0),
    }
}

fn project_id(project: &str) -> String {
    (10_000 + stable_hash(project) % 90_000).to_string()
}

/// FNV-1a: stable across runs and platforms, unlike `DefaultHasher`.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_within_a_project_and_stable() {
        let a = FakeIssue::new("PROJ-1", "a", "To Do");
        let b = FakeIssue::new("PROJ-2", "b", "To Do");
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), FakeIssue::new("PROJ-1", "x", "Done").id());
    }

    #[test]
    fn updated_is_rendered_with_millis_and_a_colonless_offset() {
        let at = DateTime::parse_from_rfc3339("2024-03-05T14:07:12.345678Z")
            .expect("valid literal")
            .with_timezone(&Utc);
        let json = FakeIssue::new("P-1", "s", "QA").with_updated(at).to_json();
        assert_eq!(json["fields"]["updated"], "2024-03-05T14:07:12.345+0000");
    }

    #[test]
    fn unknown_status_gets_an_in_progress_category() {
        let status = status_json(DEFAULT_SITE, "Blocked");
        assert_eq!(status["name"], "Blocked");
        assert_eq!(status["statusCategory"]["key"], "indeterminate");
    }
}
