//! `/api/v1/workflows`: start a QA run, read it, complete its steps and move it through its
//! states. Every change invalidates the KPI dashboards.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use qa_pms_core::cache::CacheMode;
use qa_pms_core::workflow::TransitionError;
use qa_pms_core::{Pattern, TicketKey, Workflow, WorkflowAction};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::invalidation::Invalidation;
use crate::openapi::ErrorBody;
use crate::state::AppState;

/// Attempts at an optimistic write before answering 409.
const SAVE_ATTEMPTS: usize = 5;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/workflows", post(start))
        .route("/api/v1/workflows/{id}", get(fetch))
        .route(
            "/api/v1/workflows/{id}/steps/{index}/complete",
            post(complete_step),
        )
        .route("/api/v1/workflows/{id}/{action}", post(transition))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    template_id: Uuid,
    #[schema(value_type = TicketKey)]
    ticket_key: String,
}

/// Start a workflow
///
/// A run of a template's steps for a ticket, which must exist (with Jira: in Jira).
#[utoipa::path(
    post,
    path = "/api/v1/workflows",
    tag = "workflows",
    operation_id = "start_workflow",
    request_body = StartRequest,
    responses(
        (status = 201, description = "The workflow, active", body = Workflow,
            links(
                ("get" = (operation_id = "get_workflow", parameters(("id" = "$response.body#/id")))),
                ("complete_step" = (operation_id = "complete_workflow_step", parameters(("id" = "$response.body#/id"), ("index" = "0")))),
                ("transition" = (operation_id = "transition_workflow", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "The JSON is malformed, or the ticket key is not like PROJ-123",
            body = ErrorBody),
        (status = 404, description = "No such template or ticket", body = ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "The JSON is not of the body's shape (an unknown, missing or \
            mistyped field)", body = ErrorBody),
        (status = 502, description = "With Jira: Jira answered something unusable or refused \
            the service's credentials", body = ErrorBody),
        (status = 503, description = "The database, or with Jira Jira, is unavailable", body = ErrorBody),
        (status = 504, description = "With Jira: Jira did not answer in time", body = ErrorBody),
    ),
)]
pub async fn start(
    State(state): State<AppState>,
    Json(request): Json<StartRequest>,
) -> Result<(StatusCode, Json<Workflow>), ApiError> {
    let key = TicketKey::parse(&request.ticket_key)?;
    let template = state.store.template(request.template_id).await?;
    super::tickets::read(&state, &key, CacheMode::Normal).await?;
    let workflow = Workflow::start(&template, key.to_string(), Utc::now(), Uuid::new_v4());
    let workflow = state
        .write(|state| async move {
            let written = state.store.insert_workflow(&workflow).await;
            state
                .invalidate_after(&written, Invalidation::Dashboards)
                .await;
            written?;
            Ok(workflow)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(workflow)))
}

/// One workflow
#[utoipa::path(
    get,
    path = "/api/v1/workflows/{id}",
    tag = "workflows",
    operation_id = "get_workflow",
    params(("id" = Uuid, Path, description = "The workflow's id")),
    responses(
        (status = 200, description = "The workflow", body = Workflow,
            links(
                ("complete_step" = (operation_id = "complete_workflow_step", parameters(("id" = "$response.body#/id"), ("index" = "0")))),
                ("transition" = (operation_id = "transition_workflow", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such workflow", body = ErrorBody),
    ),
)]
pub async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<Workflow>, ApiError> {
    Ok(Json(state.store.workflow(id).await?))
}

/// Complete a step
///
/// Marks a step of an active workflow done; again is a no-op.
#[utoipa::path(
    post,
    path = "/api/v1/workflows/{id}/steps/{index}/complete",
    tag = "workflows",
    operation_id = "complete_workflow_step",
    params(("id" = Uuid, Path, description = "The workflow's id"), ("index" = usize, Path, description = "The step's index, from 0")),
    responses(
        (status = 200, description = "The workflow", body = Workflow,
            links(
                ("get" = (operation_id = "get_workflow", parameters(("id" = "$response.body#/id")))),
                ("transition" = (operation_id = "transition_workflow", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "The id is not a UUID, or the index not a number", body = ErrorBody),
        (status = 404, description = "No such workflow, or it has no such step", body = ErrorBody),
        (status = 409, description = "The workflow is not active, or it kept changing while the \
            request tried to change it", body = ErrorBody),
    ),
)]
pub async fn complete_step(
    State(state): State<AppState>,
    Path((id, index)): Path<(Uuid, usize)>,
) -> Result<Json<Workflow>, ApiError> {
    change(&state, id, move |wf| {
        let changed = wf.complete_step(index, Utc::now())?;
        Ok((changed, None))
    })
    .await
    .map(Json)
}

/// Pause, resume, complete or cancel a workflow
///
/// active ⇄ paused, active → completed, active or paused → cancelled. A completed run that took
/// more than 1.5× its template's estimate records a `time_excess` pattern.
#[utoipa::path(
    post,
    path = "/api/v1/workflows/{id}/{action}",
    tag = "workflows",
    operation_id = "transition_workflow",
    params(("id" = Uuid, Path, description = "The workflow's id"), ("action" = WorkflowAction, Path, description = "What to do")),
    responses(
        (status = 200, description = "The workflow in its new state", body = Workflow,
            links(
                ("get" = (operation_id = "get_workflow", parameters(("id" = "$response.body#/id")))),
                ("transition" = (operation_id = "transition_workflow", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such workflow, or no such action", body = ErrorBody),
        (status = 409, description = "The workflow's state does not allow the action, or it kept \
            changing while the request tried to change it", body = ErrorBody),
    ),
)]
pub async fn transition(
    State(state): State<AppState>,
    Path((id, action)): Path<(Uuid, String)>,
) -> Result<Json<Workflow>, ApiError> {
    let action: WorkflowAction = action
        .parse()
        .map_err(|_| ApiError::NotFound(format!("workflow action `{action}`")))?;
    change(&state, id, move |wf| {
        let pattern = wf.apply(action, Utc::now())?;
        Ok((true, pattern))
    })
    .await
    .map(Json)
}

/// Reads a workflow, applies `edit` (which says whether it changed anything and which pattern it
/// revealed) and writes it back if nobody else wrote it meanwhile, retrying a few times.
async fn change(
    state: &AppState,
    id: Uuid,
    edit: impl Fn(&mut Workflow) -> Result<(bool, Option<Pattern>), TransitionError> + Send + 'static,
) -> Result<Workflow, ApiError> {
    state
        .write(|state| async move { change_detached(&state, id, edit).await })
        .await
}

async fn change_detached(
    state: &AppState,
    id: Uuid,
    edit: impl Fn(&mut Workflow) -> Result<(bool, Option<Pattern>), TransitionError>,
) -> Result<Workflow, ApiError> {
    for _ in 0..SAVE_ATTEMPTS {
        let mut workflow = state.store.workflow(id).await?;
        let read_version = workflow.version;
        let (changed, pattern) = edit(&mut workflow)?;
        if !changed {
            return Ok(workflow);
        }
        let written = state
            .store
            .save_workflow(&workflow, read_version, pattern.as_ref())
            .await;
        // Ok(false): another write got there first and nothing was written; try again.
        if matches!(written, Ok(false)) {
            continue;
        }
        // Written, or failed in a way that may have committed.
        state
            .invalidate_after(&written, Invalidation::Dashboards)
            .await;
        written?;
        return Ok(workflow);
    }
    Err(ApiError::Conflict(
        "the workflow kept changing while this request tried to update it; retry".into(),
    ))
}
