//! Jira tickets: the validated ticket key, the ticket itself, and the two ways it is written
//! (a partial PATCH and a full PUT, which is how a sync from Jira lands).

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::error::{bounded_text, required_text, ValidationError};

/// A Jira issue key such as `PROJ-123`: a project key (an upper-case letter, then up to 9 upper-case
/// letters, digits or underscores), a dash, and an issue number without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(
    pattern = r"^[A-Z][A-Z0-9_]{0,9}-[1-9][0-9]{0,8}$",
    example = "PROJ-123"
)]
pub struct TicketKey(String);

impl TicketKey {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::validate(raw)?;
        Ok(Self(raw.to_owned()))
    }

    fn validate(raw: &str) -> Result<(), ValidationError> {
        let invalid =
            || ValidationError::new("key", format!("`{raw}` is not a Jira key like PROJ-123"));
        let (project, number) = raw.split_once('-').ok_or_else(invalid)?;
        let mut chars = project.chars();
        let project_ok = chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && project.len() <= 10
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        let number_ok = !number.is_empty()
            && number.len() <= 9
            && !number.starts_with('0')
            && number.bytes().all(|b| b.is_ascii_digit());
        if project_ok && number_ok {
            Ok(())
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TicketKey {
    type Error = ValidationError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::validate(&raw)?;
        Ok(Self(raw))
    }
}

/// Deserializes and validates in one step, so that a path segment becomes a key without a copy.
impl<'de> Deserialize<'de> for TicketKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        TicketKey::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TicketKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Jira ticket as the service stores and serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JiraTicket {
    pub key: String,
    pub summary: String,
    pub status: String,
    pub description: Option<String>,
    pub assignee: Option<String>,
    pub priority: Option<String>,
    pub updated_at: DateTime<Utc>,
}

pub const SUMMARY_MAX: usize = 1_000;
pub const DESCRIPTION_MAX: usize = 32_768;
pub const SHORT_TEXT_MAX: usize = 128;

/// A full ticket body for `PUT /api/v1/tickets/{key}`: create or replace. What `GET` returns may be
/// sent back as it is: `updated_at` is the server's and ignored, and a `key` must be the path's
/// ([`TicketUpsert::check_key`]).
///
/// Text fields are trimmed; `summary` and `status` must not be blank, and no field may contain NUL.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketUpsert {
    /// If given, the path's key.
    #[serde(default)]
    #[schema(value_type = Option<TicketKey>)]
    pub key: Option<String>,
    #[schema(min_length = 1, max_length = 1000)]
    pub summary: String,
    #[schema(min_length = 1, max_length = 128)]
    pub status: String,
    #[serde(default)]
    #[schema(max_length = 32768)]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub assignee: Option<String>,
    #[serde(default)]
    #[schema(max_length = 128)]
    pub priority: Option<String>,
    /// The server's: ignored.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl TicketUpsert {
    /// A body's `key`, if it has one, names the ticket the path names.
    pub fn check_key(&self, path: &TicketKey) -> Result<(), ValidationError> {
        match &self.key {
            None => Ok(()),
            Some(key) if TicketKey::parse(key).is_ok_and(|key| &key == path) => Ok(()),
            Some(key) => Err(ValidationError::new(
                "key",
                format!("`{key}` contradicts the path's `{path}`"),
            )),
        }
    }

    /// Trims and bounds every field.
    pub fn validate(self) -> Result<Self, ValidationError> {
        Ok(Self {
            key: self.key,
            updated_at: self.updated_at,
            summary: required_text("summary", &self.summary, SUMMARY_MAX)?,
            status: required_text("status", &self.status, SHORT_TEXT_MAX)?,
            description: optional("description", self.description, DESCRIPTION_MAX)?,
            assignee: optional("assignee", self.assignee, SHORT_TEXT_MAX)?,
            priority: optional("priority", self.priority, SHORT_TEXT_MAX)?,
        })
    }
}

impl TicketUpsert {
    /// The same change as a patch that sets every field (absent optional fields are cleared).
    pub fn into_patch(self) -> TicketPatch {
        TicketPatch {
            summary: Some(self.summary),
            status: Some(self.status),
            description: Some(self.description),
            assignee: Some(self.assignee),
            priority: Some(self.priority),
        }
    }
}

/// A partial update for `PATCH /api/v1/tickets/{key}`.
///
/// An absent field is left unchanged; `null` clears a nullable field. `summary` and `status` are
/// not nullable.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000, nullable = false)]
    pub summary: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 128, nullable = false)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 32768)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 128)]
    pub assignee: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 128)]
    pub priority: Option<Option<String>>,
}

impl TicketPatch {
    pub fn validate(self) -> Result<Self, ValidationError> {
        let patch = Self {
            summary: self
                .summary
                .map(|s| required_text("summary", &s, SUMMARY_MAX))
                .transpose()?,
            status: self
                .status
                .map(|s| required_text("status", &s, SHORT_TEXT_MAX))
                .transpose()?,
            description: self
                .description
                .map(|d| optional("description", d, DESCRIPTION_MAX))
                .transpose()?,
            assignee: self
                .assignee
                .map(|a| optional("assignee", a, SHORT_TEXT_MAX))
                .transpose()?,
            priority: self
                .priority
                .map(|p| optional("priority", p, SHORT_TEXT_MAX))
                .transpose()?,
        };
        if patch.is_empty() {
            return Err(ValidationError::new(
                "body",
                "a patch must set at least one of summary, status, description, assignee, priority",
            ));
        }
        Ok(patch)
    }

    pub fn is_empty(&self) -> bool {
        self.summary.is_none()
            && self.status.is_none()
            && self.description.is_none()
            && self.assignee.is_none()
            && self.priority.is_none()
    }

    /// Applies the patch to a stored ticket.
    pub fn apply(&self, ticket: &mut JiraTicket) {
        if let Some(summary) = &self.summary {
            ticket.summary.clone_from(summary);
        }
        if let Some(status) = &self.status {
            ticket.status.clone_from(status);
        }
        if let Some(description) = &self.description {
            ticket.description.clone_from(description);
        }
        if let Some(assignee) = &self.assignee {
            ticket.assignee.clone_from(assignee);
        }
        if let Some(priority) = &self.priority {
            ticket.priority.clone_from(priority);
        }
    }
}

/// Deserializes a field that is present (possibly `null`) as `Some(..)`; absent fields take the
/// `#[serde(default)]` of `None`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// An optional text field: trimmed, bounded, and an empty string stored as `None`.
fn optional(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, ValidationError> {
    match value {
        None => Ok(None),
        Some(v) => {
            let v = bounded_text(field, v.trim(), max)?;
            Ok((!v.is_empty()).then(|| v.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_keys_are_accepted() {
        for key in ["PROJ-1", "A-9", "QA_2-123456789", "ABCDEFGHIJ-10"] {
            assert!(TicketKey::parse(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn malformed_keys_are_rejected() {
        for key in [
            "",
            "PROJ",
            "proj-1",
            "PROJ-",
            "PROJ-0",
            "PROJ-01",
            "1PROJ-1",
            "PROJ-1a",
            "PR OJ-1",
            "PROJ--1",
            "ABCDEFGHIJK-1",
            "PROJ-1234567890",
            "PRÖJ-1",
        ] {
            assert!(TicketKey::parse(key).is_err(), "{key}");
        }
    }

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let patch: TicketPatch = serde_json::from_str(r#"{"status":"Done"}"#).unwrap();
        assert_eq!(patch.assignee, None);
        let patch: TicketPatch = serde_json::from_str(r#"{"assignee":null}"#).unwrap();
        assert_eq!(patch.assignee, Some(None));
    }

    #[test]
    fn empty_patch_is_rejected() {
        let patch: TicketPatch = serde_json::from_str("{}").unwrap();
        assert!(patch.validate().is_err());
    }
}
