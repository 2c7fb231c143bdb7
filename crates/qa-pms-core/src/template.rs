//! Workflow templates: the ordered steps a QA run follows for one kind of work.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{required_text, ValidationError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkflowTemplate {
    pub id: Uuid,
    pub name: String,
    pub steps: Vec<String>,
    pub workflow_type: String,
    pub estimated_minutes: u32,
    pub updated_at: DateTime<Utc>,
}

pub const NAME_MAX: usize = 200;
pub const STEP_MAX: usize = 500;
pub const STEPS_MAX: usize = 100;
pub const TYPE_MAX: usize = 64;
/// A week: anything longer is a typo, not a QA run.
pub const ESTIMATE_MAX_MINUTES: u32 = 7 * 24 * 60;

/// The body of `POST /api/v1/templates` and `PUT /api/v1/templates/{id}`: what `GET` returns may
/// be sent back as it is. `id` and `updated_at` are the server's: `updated_at` is ignored, and an
/// `id` must be the path's ([`TemplateDraft::check_id`]).
///
/// Text fields are trimmed, must not be blank and may not contain NUL.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateDraft {
    /// The server's: absent on `POST`; on `PUT`, if given, the path's id.
    #[serde(default)]
    pub id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(schema_with = steps_schema)]
    pub steps: Vec<String>,
    #[schema(min_length = 1, max_length = 64)]
    pub workflow_type: String,
    #[schema(minimum = 1, maximum = 10080)]
    pub estimated_minutes: u32,
    /// The server's: ignored.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// `steps` of a draft: 1 to [`STEPS_MAX`] steps of 1 to [`STEP_MAX`] characters.
fn steps_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(STEP_MAX)),
        )
        .min_items(Some(1))
        .max_items(Some(STEPS_MAX))
        .build()
}

impl TemplateDraft {
    /// A body's `id`, if it has one, names the template the path names (`None`: a new template,
    /// whose id the server assigns).
    pub fn check_id(&self, path: Option<Uuid>) -> Result<(), ValidationError> {
        match (self.id, path) {
            (None, _) => Ok(()),
            (Some(id), Some(path)) if id == path => Ok(()),
            (Some(id), Some(path)) => Err(ValidationError::new(
                "id",
                format!("`{id}` contradicts the path's `{path}`"),
            )),
            (Some(_), None) => Err(ValidationError::new(
                "id",
                "is assigned by the server: leave it out to create a template",
            )),
        }
    }

    pub fn validate(self) -> Result<Self, ValidationError> {
        if self.steps.is_empty() || self.steps.len() > STEPS_MAX {
            return Err(ValidationError::new(
                "steps",
                format!("must have between 1 and {STEPS_MAX} steps"),
            ));
        }
        if !(1..=ESTIMATE_MAX_MINUTES).contains(&self.estimated_minutes) {
            return Err(ValidationError::new(
                "estimated_minutes",
                format!("must be between 1 and {ESTIMATE_MAX_MINUTES}"),
            ));
        }
        let steps = self
            .steps
            .iter()
            .map(|s| required_text("steps", s, STEP_MAX))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: self.id,
            name: required_text("name", &self.name, NAME_MAX)?,
            steps,
            workflow_type: required_text("workflow_type", &self.workflow_type, TYPE_MAX)?,
            estimated_minutes: self.estimated_minutes,
            updated_at: self.updated_at,
        })
    }

    pub fn into_template(self, id: Uuid, updated_at: DateTime<Utc>) -> WorkflowTemplate {
        WorkflowTemplate {
            id,
            name: self.name,
            steps: self.steps,
            workflow_type: self.workflow_type,
            estimated_minutes: self.estimated_minutes,
            updated_at,
        }
    }
}

/// The ids of the default templates: fixed, so that every database (and every benchmark) agrees.
pub const BUG_FIX_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);
pub const FEATURE_TEST_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0002);
pub const REGRESSION_TEST_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0003);

/// The templates every new database starts with, with their fixed ids.
pub fn default_templates() -> Vec<(Uuid, TemplateDraft)> {
    let draft = |name: &str, workflow_type: &str, minutes: u32, steps: &[&str]| TemplateDraft {
        id: None,
        updated_at: None,
        name: name.to_owned(),
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        workflow_type: workflow_type.to_owned(),
        estimated_minutes: minutes,
    };
    vec![
        (
            BUG_FIX_ID,
            draft(
                "Bug Fix Workflow",
                "bug",
                60,
                &[
                    "Reproduce the bug",
                    "Verify the fix",
                    "Run related regression tests",
                    "Update the ticket",
                ],
            ),
        ),
        (
            FEATURE_TEST_ID,
            draft(
                "Feature Test Workflow",
                "feature",
                120,
                &[
                    "Review acceptance criteria",
                    "Write test cases",
                    "Execute test cases",
                    "Exploratory testing",
                    "Report results",
                ],
            ),
        ),
        (
            REGRESSION_TEST_ID,
            draft(
                "Regression Test Workflow",
                "regression",
                180,
                &[
                    "Select the regression suite",
                    "Run the Postman collection",
                    "Run the Testmo cases",
                    "Triage failures",
                    "Sign off",
                ],
            ),
        ),
    ]
}
