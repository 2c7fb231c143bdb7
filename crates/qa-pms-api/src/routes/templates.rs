//! `/api/v1/templates`: one template through the cache; list; create, update and delete, which
//! invalidate it.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use qa_pms_core::cache::{CacheMode, Lookup};
use qa_pms_core::{TemplateDraft, WorkflowTemplate};
use qa_pms_storage::StoreError;
use uuid::Uuid;

use crate::cached::Cached;
use crate::error::ApiError;
use crate::extract::{IfMatch, Json, Path, RequestCache};
use crate::invalidation::Invalidation;
use crate::openapi::{ErrorBody, IfMatchHeader};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/templates", get(list).post(create))
        .route(
            "/api/v1/templates/{id}",
            get(fetch).put(update).delete(remove),
        )
}

/// One template
///
/// Through the templates cache.
#[utoipa::path(
    get,
    path = "/api/v1/templates/{id}",
    tag = "templates",
    operation_id = "get_template",
    params(("id" = Uuid, Path, description = "The template's id", example = "00000000-0000-4000-8000-000000000001")),
    responses(
        (status = 200, description = "The template", body = WorkflowTemplate,
            links(
                ("put" = (operation_id = "put_template", parameters(("id" = "$response.body#/id"), ("header.If-Match" = "$response.header.ETag")))),
                ("start" = (operation_id = "start_workflow", request_body = json!({"template_id": "$response.body#/id", "ticket_key": "PROJ-1"}))),
            )),
        (status = 400, description = "The id is not a UUID", body = ErrorBody),
        (status = 404, description = "No such template", body = ErrorBody),
    ),
    extensions(("x-cache" = json!("templates"))),
)]
pub async fn fetch(
    State(state): State<AppState>,
    RequestCache(mode): RequestCache,
    id: Result<Path<Uuid>, ApiError>,
) -> Cached<WorkflowTemplate> {
    let lookup = async {
        let Path(id) = id?;
        Ok(read(&state, id, mode).await?)
    };
    Cached(lookup.await)
}

/// One template through the templates cache: what `GET` answers and what a warm-up loads.
pub async fn read(
    state: &AppState,
    id: Uuid,
    mode: CacheMode,
) -> Result<Lookup<WorkflowTemplate>, StoreError> {
    let store = &state.store;
    let cache = &state.cache.templates;
    cache
        .get_or_load_with(&id, mode, || store.template(id))
        .await
}

/// List templates
///
/// Every template, by name.
#[utoipa::path(
    get,
    path = "/api/v1/templates",
    tag = "templates",
    operation_id = "list_templates",
    responses((status = 200, description = "Every template", body = Vec<WorkflowTemplate>,
            links(
                ("first" = (operation_id = "get_template", parameters(("id" = "$response.body#/0/id")))),
            ))),
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<WorkflowTemplate>>, ApiError> {
    Ok(Json(state.store.templates().await?))
}

/// Create a template
///
/// The server assigns its id: a body with an `id` is a 400.
#[utoipa::path(
    post,
    path = "/api/v1/templates",
    tag = "templates",
    operation_id = "create_template",
    request_body = TemplateDraft,
    responses(
        (status = 201, description = "The template, created", body = WorkflowTemplate,
            headers(("Location" = String, description = "/api/v1/templates/{id}: the new template")),
            links(
                ("get" = (operation_id = "get_template", parameters(("id" = "$response.body#/id")))),
                ("put" = (operation_id = "put_template", parameters(("id" = "$response.body#/id")))),
                ("delete" = (operation_id = "delete_template", parameters(("id" = "$response.body#/id")))),
                ("start" = (operation_id = "start_workflow", request_body = json!({"template_id": "$response.body#/id", "ticket_key": "PROJ-1"}))),
            )),
        (status = 400, description = "The JSON is malformed, a field is invalid (blank, too long, \
            NUL, steps or estimate out of bounds), or the body has an id", body = ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "The JSON is not of the body's shape (an unknown, missing or \
            mistyped field)", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    Json(draft): Json<TemplateDraft>,
) -> Result<impl IntoResponse, ApiError> {
    draft.check_id(None)?;
    let template = draft.validate()?.into_template(Uuid::new_v4(), Utc::now());
    let template = state
        .write(|state| async move {
            let written = state.store.insert_template(&template).await;
            state
                .invalidate_after(&written, Invalidation::Template(template.id))
                .await;
            written?;
            Ok(template)
        })
        .await?;
    let location = HeaderValue::try_from(format!("/api/v1/templates/{}", template.id))
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((StatusCode::CREATED, [(LOCATION, location)], Json(template)))
}

/// Replace a template
///
/// What `GET` returns may be sent back as it is: `updated_at` is ignored, and an `id` must be the
/// path's.
#[utoipa::path(
    put,
    path = "/api/v1/templates/{id}",
    tag = "templates",
    operation_id = "put_template",
    params(("id" = Uuid, Path, description = "The template's id", example = "00000000-0000-4000-8000-000000000001"), IfMatchHeader),
    request_body = TemplateDraft,
    responses(
        (status = 200, description = "The template, replaced", body = WorkflowTemplate,
            links(
                ("get" = (operation_id = "get_template", parameters(("id" = "$response.body#/id")))),
                ("delete" = (operation_id = "delete_template", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "The id is not a UUID or contradicts the body's, the JSON is \
            malformed, a field is invalid, or If-Match is malformed", body = ErrorBody),
        (status = 404, description = "No such template", body = ErrorBody),
        (status = 412, description = "If-Match names no current version of the template (or it \
            does not exist)", body = ErrorBody),
        (status = 413, description = "The body is larger than the body limit", body = ErrorBody),
        (status = 415, description = "The body is not sent as application/json", body = ErrorBody),
        (status = 422, description = "The JSON is not of the body's shape (an unknown, missing or \
            mistyped field)", body = ErrorBody),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
    Json(draft): Json<TemplateDraft>,
) -> Result<Json<WorkflowTemplate>, ApiError> {
    draft.check_id(Some(id))?;
    let draft = draft.validate()?;
    let template = state
        .write(|state| async move {
            let expected = if_match.check(state.store.template(id)).await?;
            // After the version it replaces, so that a second writer holding its ETag fails.
            let now = match &expected {
                Some(t) => Utc::now().max(t.updated_at + chrono::Duration::milliseconds(1)),
                None => Utc::now(),
            };
            let template = draft.into_template(id, now);
            let written = state
                .store
                .update_template(&template, expected.as_ref())
                .await;
            state
                .invalidate_after(&written, Invalidation::Template(id))
                .await;
            written?;
            Ok(template)
        })
        .await?;
    Ok(Json(template))
}

/// Delete a template
#[utoipa::path(
    delete,
    path = "/api/v1/templates/{id}",
    tag = "templates",
    operation_id = "delete_template",
    params(("id" = Uuid, Path, description = "The template's id", example = "00000000-0000-4000-8000-000000000001"), IfMatchHeader),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID, or If-Match is malformed", body = ErrorBody),
        (status = 404, description = "No such template", body = ErrorBody),
        (status = 409, description = "Workflows use the template", body = ErrorBody),
        (status = 412, description = "If-Match names no current version of the template (or it \
            does not exist)", body = ErrorBody),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    if_match: IfMatch,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .write(|state| async move {
            let expected = if_match.check(state.store.template(id)).await?;
            let written = state.store.delete_template(id, expected.as_ref()).await;
            state
                .invalidate_after(&written, Invalidation::Template(id))
                .await;
            Ok(written?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
