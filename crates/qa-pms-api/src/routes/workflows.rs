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
use uuid::Uuid;

use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::invalidation::Invalidation;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartRequest {
    template_id: Uuid,
    ticket_key: String,
}

async fn start(
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

async fn fetch(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Json<Workflow>, ApiError> {
    Ok(Json(state.store.workflow(id).await?))
}

async fn complete_step(
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

async fn transition(
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
