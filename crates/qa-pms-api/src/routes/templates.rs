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
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/templates", get(list).post(create))
        .route(
            "/api/v1/templates/{id}",
            get(fetch).put(update).delete(remove),
        )
}

async fn fetch(
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

async fn list(State(state): State<AppState>) -> Result<Json<Vec<WorkflowTemplate>>, ApiError> {
    Ok(Json(state.store.templates().await?))
}

async fn create(
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

async fn update(
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

async fn remove(
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
