//! Workflows: one QA run of a template's steps for a ticket, its state machine, and the patterns
//! a finished run can reveal.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ValidationError;
use crate::template::WorkflowTemplate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowState {
    Active,
    Paused,
    Completed,
    Cancelled,
}

impl WorkflowState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowState::Active => "active",
            WorkflowState::Paused => "paused",
            WorkflowState::Completed => "completed",
            WorkflowState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Active, Self::Paused, Self::Completed, Self::Cancelled]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

impl fmt::Display for WorkflowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change asked for through `POST /api/v1/workflows/{id}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum WorkflowAction {
    Pause,
    Resume,
    Complete,
    Cancel,
}

impl WorkflowAction {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowAction::Pause => "pause",
            WorkflowAction::Resume => "resume",
            WorkflowAction::Complete => "complete",
            WorkflowAction::Cancel => "cancel",
        }
    }
}

impl FromStr for WorkflowAction {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pause" => Ok(Self::Pause),
            "resume" => Ok(Self::Resume),
            "complete" => Ok(Self::Complete),
            "cancel" => Ok(Self::Cancel),
            other => Err(ValidationError::new(
                "action",
                format!("`{other}` is not one of pause, resume, complete, cancel"),
            )),
        }
    }
}

/// A change the state machine does not allow: the API answers 409.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cannot {action} a workflow that is {from}")]
    InvalidTransition {
        action: &'static str,
        from: WorkflowState,
    },
    #[error("workflow has no step {index} (it has {count})")]
    NoSuchStep { index: usize, count: usize },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StepProgress {
    pub name: String,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Workflow {
    pub id: Uuid,
    pub template_id: Uuid,
    pub ticket_key: String,
    pub state: WorkflowState,
    pub steps: Vec<StepProgress>,
    /// The template's estimate when the run started; a later template edit does not change it.
    pub estimated_minutes: u32,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change; storage writes only if it still holds the version it read.
    pub version: i64,
}

/// A run that took more than this many times its template's estimate records a `time_excess`.
pub const TIME_EXCESS_FACTOR: f64 = 1.5;

impl Workflow {
    pub fn start(
        template: &WorkflowTemplate,
        ticket_key: String,
        now: DateTime<Utc>,
        id: Uuid,
    ) -> Self {
        Self {
            id,
            template_id: template.id,
            ticket_key,
            state: WorkflowState::Active,
            steps: template
                .steps
                .iter()
                .map(|name| StepProgress {
                    name: name.clone(),
                    completed_at: None,
                })
                .collect(),
            estimated_minutes: template.estimated_minutes,
            started_at: now,
            completed_at: None,
            updated_at: now,
            version: 1,
        }
    }

    /// Applies a state change. Returns the pattern the change revealed, if any.
    pub fn apply(
        &mut self,
        action: WorkflowAction,
        now: DateTime<Utc>,
    ) -> Result<Option<Pattern>, TransitionError> {
        use WorkflowAction as A;
        use WorkflowState as S;
        let next = match (self.state, action) {
            (S::Active, A::Pause) => S::Paused,
            (S::Paused, A::Resume) => S::Active,
            (S::Active, A::Complete) => S::Completed,
            (S::Active | S::Paused, A::Cancel) => S::Cancelled,
            (from, action) => {
                return Err(TransitionError::InvalidTransition {
                    action: action.as_str(),
                    from,
                })
            }
        };
        self.state = next;
        self.touch(now);
        if next == S::Completed {
            self.completed_at = Some(now);
            return Ok(Pattern::time_excess(self, now));
        }
        Ok(None)
    }

    /// Marks a step done. Completing a done step again changes nothing and returns `false`.
    pub fn complete_step(
        &mut self,
        index: usize,
        now: DateTime<Utc>,
    ) -> Result<bool, TransitionError> {
        let count = self.steps.len();
        if self.state != WorkflowState::Active {
            return Err(TransitionError::InvalidTransition {
                action: "complete a step of",
                from: self.state,
            });
        }
        let step = self
            .steps
            .get_mut(index)
            .ok_or(TransitionError::NoSuchStep { index, count })?;
        if step.completed_at.is_some() {
            return Ok(false);
        }
        step.completed_at = Some(now);
        self.touch(now);
        Ok(true)
    }

    /// Seconds from start to completion, for a completed run.
    pub fn duration_seconds(&self) -> Option<i64> {
        self.completed_at
            .map(|done| (done - self.started_at).num_seconds().max(0))
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.version += 1;
    }
}

/// Something the service noticed about finished runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    pub id: Uuid,
    pub workflow_id: Uuid,
    pub ticket_key: String,
    pub kind: String,
    pub detail: String,
    pub detected_at: DateTime<Utc>,
}

impl Pattern {
    /// A `time_excess` pattern when a completed run took more than 1.5x its estimate.
    pub fn time_excess(workflow: &Workflow, now: DateTime<Utc>) -> Option<Self> {
        let actual_minutes = workflow.duration_seconds()? as f64 / 60.0;
        let estimate = f64::from(workflow.estimated_minutes);
        (actual_minutes > estimate * TIME_EXCESS_FACTOR).then(|| Pattern {
            id: Uuid::new_v4(),
            workflow_id: workflow.id,
            ticket_key: workflow.ticket_key.clone(),
            kind: "time_excess".to_owned(),
            detail: format!(
                "took {actual_minutes:.0} min against an estimate of {estimate:.0} min"
            ),
            detected_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn template(minutes: u32) -> WorkflowTemplate {
        WorkflowTemplate {
            id: Uuid::new_v4(),
            name: "t".into(),
            steps: vec!["a".into(), "b".into()],
            workflow_type: "bug".into(),
            estimated_minutes: minutes,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn allowed_transitions_follow_the_state_machine() {
        let now = Utc::now();
        let mut wf = Workflow::start(&template(60), "PROJ-1".into(), now, Uuid::new_v4());
        wf.apply(WorkflowAction::Pause, now).unwrap();
        wf.apply(WorkflowAction::Resume, now).unwrap();
        wf.apply(WorkflowAction::Complete, now).unwrap();
        assert_eq!(wf.state, WorkflowState::Completed);
        assert_eq!(wf.version, 4);
    }

    #[test]
    fn finished_runs_reject_every_action() {
        let now = Utc::now();
        let mut wf = Workflow::start(&template(60), "PROJ-1".into(), now, Uuid::new_v4());
        wf.apply(WorkflowAction::Cancel, now).unwrap();
        for action in [
            WorkflowAction::Pause,
            WorkflowAction::Resume,
            WorkflowAction::Complete,
            WorkflowAction::Cancel,
        ] {
            assert!(wf.apply(action, now).is_err());
        }
        assert!(wf.complete_step(0, now).is_err());
    }

    #[test]
    fn a_paused_run_cannot_complete() {
        let now = Utc::now();
        let mut wf = Workflow::start(&template(60), "PROJ-1".into(), now, Uuid::new_v4());
        wf.apply(WorkflowAction::Pause, now).unwrap();
        assert!(wf.apply(WorkflowAction::Complete, now).is_err());
    }

    #[test]
    fn a_run_over_one_and_a_half_times_its_estimate_records_time_excess() {
        let start = Utc::now();
        let mut slow = Workflow::start(&template(60), "PROJ-1".into(), start, Uuid::new_v4());
        let pattern = slow
            .apply(WorkflowAction::Complete, start + Duration::minutes(91))
            .unwrap();
        assert_eq!(pattern.unwrap().kind, "time_excess");

        let mut on_time = Workflow::start(&template(60), "PROJ-2".into(), start, Uuid::new_v4());
        let pattern = on_time
            .apply(WorkflowAction::Complete, start + Duration::minutes(90))
            .unwrap();
        assert!(pattern.is_none());
    }

    #[test]
    fn steps_outside_the_template_are_rejected() {
        let now = Utc::now();
        let mut wf = Workflow::start(&template(60), "PROJ-1".into(), now, Uuid::new_v4());
        assert!(wf.complete_step(2, now).is_err());
        assert!(wf.complete_step(1, now).unwrap());
        assert!(!wf.complete_step(1, now).unwrap());
    }
}
