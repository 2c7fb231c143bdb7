//! The production middleware every route runs behind: panic catcher, request id, tracing span,
//! HTTP metrics, timeout, body-size limit, consistency tokens (read-your-writes across replicas),
//! and hits marked STALE while invalidations may be missed.

use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::cached::{CACHE_STATUS, X_CACHE_STATUS};
use crate::error::ApiError;
use crate::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const CONSISTENCY_TOKEN: HeaderName = HeaderName::from_static("x-consistency-token");
/// The longest a request with a consistency token waits for this replica to catch up.
pub const CONSISTENCY_WAIT: Duration = Duration::from_secs(2);

/// The route label of requests no route matched: one value, whatever the path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub body_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            body_limit: 1024 * 1024,
        }
    }
}

/// One layer of the stack [`apply`] builds, to leave out with [`apply_without`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    PanicCatcher,
    RequestId,
    Trace,
    Metrics,
    BodyLimit,
    Consistency,
    MarkUnconfirmed,
    Timeout,
    NotModified,
}

impl LayerKind {
    /// Outermost first.
    pub const ALL: [LayerKind; 9] = [
        LayerKind::PanicCatcher,
        LayerKind::RequestId,
        LayerKind::Trace,
        LayerKind::Metrics,
        LayerKind::BodyLimit,
        LayerKind::Consistency,
        LayerKind::MarkUnconfirmed,
        LayerKind::Timeout,
        LayerKind::NotModified,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LayerKind::PanicCatcher => "panic catcher",
            LayerKind::RequestId => "request id",
            LayerKind::Trace => "tracing span",
            LayerKind::Metrics => "metrics",
            LayerKind::BodyLimit => "body limit",
            LayerKind::Consistency => "consistency token",
            LayerKind::MarkUnconfirmed => "mark_unconfirmed",
            LayerKind::Timeout => "timeout",
            LayerKind::NotModified => "not_modified (304)",
        }
    }
}

/// Puts `router` behind the production middleware.
pub fn apply(router: Router<AppState>, state: &AppState, limits: Limits) -> Router<AppState> {
    apply_without(router, state, limits, &[])
}

/// [`apply`] with the layers in `without` left out: the load harness measures what each layer
/// costs this way. Production code calls [`apply`].
pub fn apply_without(
    router: Router<AppState>,
    state: &AppState,
    limits: Limits,
    without: &[LayerKind],
) -> Router<AppState> {
    let on = |layer: LayerKind| !without.contains(&layer);
    let timeout = limits.request_timeout;
    let mut router = router;
    if on(LayerKind::NotModified) {
        router = router.layer(middleware::from_fn(not_modified));
    }
    if on(LayerKind::Timeout) {
        router = router.layer(middleware::from_fn(move |request: Request, next: Next| {
            with_timeout(timeout, request, next)
        }));
    }
    if on(LayerKind::MarkUnconfirmed) {
        router = router.layer(middleware::from_fn_with_state(
            state.clone(),
            mark_unconfirmed,
        ));
    }
    if on(LayerKind::Consistency) {
        router = router.layer(middleware::from_fn_with_state(state.clone(), consistency));
    }
    if on(LayerKind::BodyLimit) {
        router = router.layer(DefaultBodyLimit::max(limits.body_limit));
    }
    if on(LayerKind::Metrics) {
        router = router.layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ));
    }
    if on(LayerKind::Trace) {
        router = router.layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
                let request_id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), route, request_id)
            }),
        );
    }
    if on(LayerKind::RequestId) {
        router = router
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));
    }
    if on(LayerKind::PanicCatcher) {
        router = router.layer(CatchPanicLayer::custom(|_panic| {
            ApiError::Internal("handler panicked".into()).into_response()
        }));
    }
    router
}

async fn with_timeout(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    // MatchedPath is a shared string: cloning it does not allocate.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let start = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe_request(
        method,
        route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str),
        response.status().as_str(),
        start.elapsed(),
    );
    response
}

/// A GET whose `If-None-Match` names the ETag of the representation it would receive is answered
/// 304 with the same validators and cache headers and no body (RFC 9110: weak comparison).
async fn not_modified(request: Request, next: Next) -> Response {
    let condition = match *request.method() {
        Method::GET | Method::HEAD => request.headers().get(IF_NONE_MATCH).cloned(),
        _ => None,
    };
    let response = next.run(request).await;
    let Some(condition) = condition else {
        return response;
    };
    let matches = match (condition.to_str(), response.headers().get(ETAG)) {
        (Ok(condition), Some(etag)) if response.status() == StatusCode::OK => {
            let etag = etag.to_str().unwrap_or_default();
            let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
            condition.trim() == "*" || condition.split(',').any(|tag| opaque(tag) == opaque(etag))
        }
        _ => false,
    };
    if !matches {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts.status = StatusCode::NOT_MODIFIED;
    parts.headers.remove(CONTENT_TYPE);
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::empty())
}

/// Read-your-writes across replicas: a successful write's response carries
/// `X-Consistency-Token`; a request that sends one back is answered only once this replica has
/// applied the invalidations of the writes behind it (waiting at most [`CONSISTENCY_WAIT`], else
/// 503), so that it never reads what those writes replaced.
async fn consistency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(value) = request.headers().get(&CONSISTENCY_TOKEN) {
        let Some(token) = value
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        else {
            return ApiError::BadRequest(
                "X-Consistency-Token must be a token from a write's response".into(),
            )
            .into_response();
        };
        let confirmed =
            state
                .outbox
                .confirm(token, state.store.as_ref(), &state.cache, CONSISTENCY_WAIT);
        if !confirmed.await {
            return ApiError::Unavailable.into_response();
        }
    }
    let write = !request.method().is_safe();
    let mut response = next.run(request).await;
    if write && response.status().is_success() {
        response
            .headers_mut()
            .insert(CONSISTENCY_TOKEN, HeaderValue::from(state.outbox.token()));
    }
    response
}

/// A hit served while this process may have missed invalidations (its feed dropped, the database
/// does not answer) is answered as STALE: its value was right when last confirmed, which is all
/// the process can say.
async fn mark_unconfirmed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if !state.outbox.is_confirmed() {
        let headers = response.headers_mut();
        if headers.get(&X_CACHE_STATUS).is_some_and(|v| v == "HIT") {
            headers.insert(X_CACHE_STATUS, HeaderValue::from_static("STALE"));
            headers.insert(
                CACHE_STATUS,
                HeaderValue::from_static("qa-pms; hit; fwd=stale; detail=unconfirmed"),
            );
        }
    }
    response
}

/// Methods from a fixed set, so that a client cannot grow the label space.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
