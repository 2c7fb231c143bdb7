//! The production middleware every route runs behind: panic catcher, request id, tracing span,
//! HTTP metrics, timeout, body-size limit, consistency tokens (read-your-writes across replicas),
//! hits marked STALE while invalidations may be missed, and `If-None-Match` answered 304.
//!
//! All of it is one hand-written tower service ([`Stack`]) put on the router with one
//! `Router::layer` call, rather than one layer each (`from_fn` middlewares and tower-http's
//! request-id, trace and catch-panic layers). axum boxes and clones every route once per layer
//! and per request, and each `from_fn` boxes a future and clones the state as well: nine layers
//! cost four times the router itself on a cached hit. One service does the same steps, in the
//! same order, with one boxed future per request (`qa-pms-bench load --only layers` measures
//! each step).

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::time::{Instant, Sleep};
use tower::{Service, ServiceBuilder};
use tracing::{Instrument, Span};

use crate::cached::{CACHE_STATUS, X_CACHE_STATUS};
use crate::error::ApiError;
use crate::metrics::EndpointMetrics;
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

/// One step of the stack [`apply`] builds, to leave out with [`apply_without`].
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

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// Puts `router` behind the production middleware.
pub fn apply(router: Router<AppState>, state: &AppState, limits: Limits) -> Router<AppState> {
    apply_without(router, state, limits, &[])
}

/// [`apply`] with the steps in `without` left out: the load harness measures what each step
/// costs this way. Production code calls [`apply`].
pub fn apply_without(
    router: Router<AppState>,
    state: &AppState,
    limits: Limits,
    without: &[LayerKind],
) -> Router<AppState> {
    if LayerKind::ALL.iter().all(|kind| without.contains(kind)) {
        return router;
    }
    let on = LayerKind::ALL
        .iter()
        .filter(|kind| !without.contains(kind))
        .fold(0, |bits, kind| bits | kind.bit());
    let layer = StackLayer {
        config: Arc::new(Config {
            state: state.clone(),
            timeout: limits.request_timeout,
            on,
        }),
    };
    if without.contains(&LayerKind::BodyLimit) {
        router.layer(layer)
    } else {
        // The limit is a request extension the body extractors read: composed here, it adds no
        // route of its own.
        router.layer(
            ServiceBuilder::new()
                .layer(layer)
                .layer(DefaultBodyLimit::max(limits.body_limit)),
        )
    }
}

struct Config {
    state: AppState,
    timeout: Duration,
    /// [`LayerKind::bit`]s of the steps that run.
    on: u16,
}

impl Config {
    fn on(&self, kind: LayerKind) -> bool {
        self.on & kind.bit() != 0
    }
}

/// Makes a [`Stack`] of each route the router holds (axum layers every route on its own).
#[derive(Clone)]
struct StackLayer {
    config: Arc<Config>,
}

impl<S> tower::Layer<S> for StackLayer {
    type Service = Stack<S>;

    fn layer(&self, inner: S) -> Stack<S> {
        Stack {
            inner,
            endpoint: Arc::new(Endpoint {
                config: Arc::clone(&self.config),
                metrics: EndpointMetrics::default(),
            }),
        }
    }
}

/// What the requests of one route share: the configuration and the route's metric handles.
struct Endpoint {
    config: Arc<Config>,
    metrics: EndpointMetrics,
}

/// The middleware around one route, outermost first:
///
/// 1. panic catcher: a panic in the route (or in this service) is answered 500;
/// 2. request id: `X-Request-Id` is kept if the request has one, else made (see
///    [`new_request_id`]), named in the span and set on the response (see [`RequestIdent`]);
/// 3. tracing: an INFO span `request` (method, route, request id) around the request, created
///    only if a subscriber wants it, and tower-http's events (`started processing request` and
///    `finished processing request` at DEBUG, `response failed` at ERROR for a 5xx) under
///    tower-http's targets;
/// 4. metrics: `qa_pms_http_requests_total` and `qa_pms_http_request_duration_seconds`, through
///    handles resolved once per route, method and status;
/// 5. body limit ([`DefaultBodyLimit`], composed in [`apply_without`]);
/// 6. consistency token: see [`CONSISTENCY_TOKEN`];
/// 7. hits marked STALE while this process may have missed invalidations;
/// 8. timeout: past [`Limits::request_timeout`] the request is answered 503;
/// 9. not modified: a matching `If-None-Match` is answered 304.
#[derive(Clone)]
struct Stack<S> {
    inner: S,
    endpoint: Arc<Endpoint>,
}

type BoxedResponse = Pin<Box<dyn Future<Output = Response> + Send>>;

impl<S> Service<Request> for Stack<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> ResponseFuture {
        let endpoint = Arc::clone(&self.endpoint);
        let catch_panics = endpoint.config.on(LayerKind::PanicCatcher);
        let future = if catch_panics {
            match catch_unwind(AssertUnwindSafe(|| self.start(endpoint, request))) {
                Ok(future) => future,
                Err(_) => return ResponseFuture::ready(panicked()),
            }
        } else {
            self.start(endpoint, request)
        };
        ResponseFuture {
            future: Some(future),
            catch_panics,
        }
    }
}

/// What the route is asked, once the steps before it have run.
enum Next<S: Service<Request>> {
    /// Already answered (a malformed consistency token, a panic in the route's `call`).
    Answer(Response),
    /// Called; its response to come.
    Called(S::Future),
    /// To be called once this replica has confirmed the consistency token.
    AfterConfirming {
        token: u64,
        inner: S,
        request: Request,
    },
}

impl<S> Stack<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    fn start(&mut self, endpoint: Arc<Endpoint>, request: Request) -> BoxedResponse {
        let config = &*endpoint.config;
        let start = Instant::now();

        let request_id = config
            .on(LayerKind::RequestId)
            .then(|| RequestIdent::of(&request));
        let span = if config.on(LayerKind::Trace) {
            request_span(&request, request_id.as_ref())
        } else {
            Span::none()
        };
        let method = request.method();
        let series = config.on(LayerKind::Metrics).then(|| {
            endpoint.metrics.series(
                method_label(method),
                request.extensions().get::<MatchedPath>(),
            )
        });
        let condition = match *method {
            Method::GET | Method::HEAD if config.on(LayerKind::NotModified) => {
                request.headers().get(IF_NONE_MATCH).cloned()
            }
            _ => None,
        };
        let write = !method.is_safe();

        let token = if config.on(LayerKind::Consistency) {
            consistency_token(&request)
        } else {
            Token::Absent
        };
        let next = match token {
            Token::Malformed => Next::Answer(
                ApiError::BadRequest(
                    "X-Consistency-Token must be a token from a write's response".into(),
                )
                .into_response(),
            ),
            Token::Absent => {
                let _entered = (!span.is_disabled()).then(|| span.enter());
                match call(&mut self.inner, request, config.on(LayerKind::PanicCatcher)) {
                    Some(future) => Next::Called(future),
                    None => Next::Answer(panicked()),
                }
            }
            Token::Sent(token) => {
                // The route is called after the wait: take this (ready) service along.
                let clone = self.inner.clone();
                Next::AfterConfirming {
                    token,
                    inner: std::mem::replace(&mut self.inner, clone),
                    request,
                }
            }
        };

        let trace = config.on(LayerKind::Trace);
        let future = async move {
            let config = &*endpoint.config;
            if trace {
                tracing::debug!(
                    target: "tower_http::trace::on_request",
                    "started processing request"
                );
            }
            let catch_panics = config.on(LayerKind::PanicCatcher);
            let timeout = config.on(LayerKind::Timeout).then_some(config.timeout);
            let mut response = match next {
                Next::Answer(response) => response,
                Next::Called(future) => {
                    guarded(future, timeout.map(|t| start + t), catch_panics).await
                }
                Next::AfterConfirming {
                    token,
                    mut inner,
                    request,
                } => {
                    let state = &config.state;
                    let confirmed = state.outbox.confirm(
                        token,
                        state.store.as_ref(),
                        &state.cache,
                        CONSISTENCY_WAIT,
                    );
                    if confirmed.await {
                        // The timeout counts from here, as it did behind the consistency layer.
                        let deadline = timeout.map(|t| Instant::now() + t);
                        match call(&mut inner, request, catch_panics) {
                            Some(future) => guarded(future, deadline, catch_panics).await,
                            None => panicked(),
                        }
                    } else {
                        ApiError::Unavailable.into_response()
                    }
                }
            };
            if let Some(condition) = condition {
                not_modified(&condition, &mut response);
            }
            if config.on(LayerKind::MarkUnconfirmed) && !config.state.outbox.is_confirmed() {
                mark_unconfirmed(&mut response);
            }
            if write && response.status().is_success() {
                response.headers_mut().insert(
                    CONSISTENCY_TOKEN,
                    HeaderValue::from(config.state.outbox.token()),
                );
            }
            let elapsed = start.elapsed();
            if let Some(series) = &series {
                endpoint
                    .metrics
                    .observe(&config.state.metrics, series, response.status(), elapsed);
            }
            if trace {
                trace_response(&response, elapsed);
            }
            if let Some(request_id) = request_id {
                propagate_request_id(&mut response, request_id);
            }
            response
        };
        if span.is_disabled() {
            Box::pin(future)
        } else {
            Box::pin(future.instrument(span))
        }
    }
}

/// Calls the route; `None` if that panicked (caught only if `catch_panics`).
fn call<S>(inner: &mut S, request: Request, catch_panics: bool) -> Option<S::Future>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    if !catch_panics {
        return Some(inner.call(request));
    }
    catch_unwind(AssertUnwindSafe(|| inner.call(request))).ok()
}

/// The route's response: 500 if it panics (and `catch_panics`), 503 if it is not there by
/// `deadline`. The timer is only armed if the response is not ready at the first poll, so that
/// a cached hit, answered at once, never touches the runtime's timer wheel.
async fn guarded<F>(future: F, deadline: Option<Instant>, catch_panics: bool) -> Response
where
    F: Future<Output = Result<Response, Infallible>>,
{
    let mut future = pin!(future);
    let mut sleep = pin!(None::<Sleep>);
    std::future::poll_fn(|cx| {
        let polled = if catch_panics {
            match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                Ok(polled) => polled,
                Err(_) => return Poll::Ready(panicked()),
            }
        } else {
            future.as_mut().poll(cx)
        };
        if let Poll::Ready(Ok(response)) = polled {
            return Poll::Ready(response);
        }
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        if sleep.is_none() {
            sleep.set(Some(tokio::time::sleep_until(deadline)));
        }
        match sleep.as_mut().as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(ApiError::Timeout.into_response()),
            _ => Poll::Pending,
        }
    })
    .await
}

fn panicked() -> Response {
    ApiError::Internal("handler panicked".into()).into_response()
}

/// The future of [`Stack`]: the boxed steps, polled under the panic catcher.
struct ResponseFuture {
    future: Option<BoxedResponse>,
    catch_panics: bool,
}

impl ResponseFuture {
    fn ready(response: Response) -> Self {
        Self {
            future: Some(Box::pin(std::future::ready(response))),
            catch_panics: false,
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let catch_panics = self.catch_panics;
        let Some(future) = self.future.as_mut() else {
            return Poll::Pending;
        };
        let polled = if catch_panics {
            match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                Ok(polled) => polled,
                Err(_) => {
                    // A panic in the steps themselves: the boxed future is not polled again.
                    self.future = None;
                    return Poll::Ready(Ok(panicked()));
                }
            }
        } else {
            future.as_mut().poll(cx)
        };
        polled.map(Ok)
    }
}

thread_local! {
    /// The high half of this thread's request ids: random, fixed for the thread's life.
    static ID_PREFIX: u64 = id_prefix(rand::random());
    /// How many request ids this thread has made.
    static ID_COUNT: Cell<u64> = const { Cell::new(0) };
}

/// `random` with the version bits of a version 4 UUID.
fn id_prefix(random: u64) -> u64 {
    (random & !0xf000) | 0x4000
}

/// A request id in the form of a version 4 UUID, unique without a system call or a lock: a
/// random prefix per thread (60 random bits, drawn once) and the thread's count of ids (62 bits).
/// Two threads, here or on another replica, draw the same prefix with a chance of 2^-60.
/// Hand-written rather than tower-http's `MakeRequestUuid`, which asks the kernel for 16 random
/// bytes (`getrandom`) and formats them through `Display` on every request.
pub fn new_request_id() -> HeaderValue {
    request_id_header(&next_request_id())
}

/// The header value of a made id's text.
fn request_id_header(text: &[u8; 36]) -> HeaderValue {
    HeaderValue::from_bytes(text).expect("hex digits and dashes")
}

/// The text of [`new_request_id`].
fn next_request_id() -> [u8; 36] {
    let count = ID_COUNT.with(|count| {
        let n = count.get();
        count.set(n.wrapping_add(1));
        n
    });
    let high = ID_PREFIX.with(|prefix| *prefix);
    let low = (count & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format_uuid(high, low)
}

fn format_uuid(high: u64, low: u64) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at] = HEX[usize::from(byte >> 4)];
        text[at + 1] = HEX[usize::from(byte & 0xf)];
        at += 2;
    }
    text
}

/// A request's id: the `X-Request-Id` it sent, or one made for it.
///
/// Set on the response only. tower-http's `SetRequestId` also writes a made id into the
/// request's headers and both ids into `RequestId` extensions, but nothing here reads those, and
/// they cost each request a header-map insertion, a shared copy of the value and two extension
/// maps (measured with `qa-pms-bench load --only layers`). A made id stays text until the
/// response's header is made of it.
enum RequestIdent {
    Sent(HeaderValue),
    Made([u8; 36]),
}

impl RequestIdent {
    fn of(request: &Request) -> Self {
        match request.headers().get(&REQUEST_ID) {
            Some(id) => RequestIdent::Sent(id.clone()),
            None => RequestIdent::Made(next_request_id()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            RequestIdent::Sent(id) => id.to_str().unwrap_or("-"),
            RequestIdent::Made(text) => std::str::from_utf8(text).unwrap_or("-"),
        }
    }

    fn into_header(self) -> HeaderValue {
        match self {
            RequestIdent::Sent(id) => id,
            RequestIdent::Made(text) => request_id_header(&text),
        }
    }
}

/// The response carries the request's id, unless it set an `X-Request-Id` of its own.
fn propagate_request_id(response: &mut Response, request_id: RequestIdent) {
    if !response.headers().contains_key(&REQUEST_ID) {
        response
            .headers_mut()
            .insert(REQUEST_ID, request_id.into_header());
    }
}

/// The INFO span `request`. The macro evaluates the fields only if a subscriber wants the span:
/// otherwise this is a check of the callsite's interest, and the span is disabled.
fn request_span(request: &Request, request_id: Option<&RequestIdent>) -> Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = route_label(request),
        request_id = request_id.map_or("-", RequestIdent::as_str)
    )
}

fn route_label(request: &Request) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
}

/// tower-http's `TraceLayer` events for a response (its defaults: DEBUG on every response, ERROR
/// on a 5xx, latency in milliseconds), under its targets so that filters written for it apply.
fn trace_response(response: &Response, latency: Duration) {
    let status = response.status();
    tracing::debug!(
        target: "tower_http::trace::on_response",
        latency = %Millis(latency),
        status = status.as_u16(),
        "finished processing request"
    );
    if status.is_server_error() {
        tracing::error!(
            target: "tower_http::trace::on_failure",
            classification = %StatusFailure(status),
            latency = %Millis(latency),
            "response failed"
        );
    }
}

struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms", self.0.as_millis())
    }
}

struct StatusFailure(StatusCode);

impl fmt::Display for StatusFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Status code: {}", self.0)
    }
}

/// Read-your-writes across replicas: a successful write's response carries
/// `X-Consistency-Token`; a request that sends one back is answered only once this replica has
/// applied the invalidations of the writes behind it (waiting at most [`CONSISTENCY_WAIT`], else
/// 503), so that it never reads what those writes replaced; a malformed token is a 400.
fn consistency_token(request: &Request) -> Token {
    let Some(value) = request.headers().get(&CONSISTENCY_TOKEN) else {
        return Token::Absent;
    };
    match value
        .to_str()
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    {
        Some(token) => Token::Sent(token),
        None => Token::Malformed,
    }
}

/// The `X-Consistency-Token` of a request.
enum Token {
    Absent,
    Sent(u64),
    Malformed,
}

/// A GET whose `If-None-Match` names the ETag of the representation it would receive is answered
/// 304 with the same validators and cache headers and no body (RFC 9110: weak comparison).
fn not_modified(condition: &HeaderValue, response: &mut Response) {
    if response.status() != StatusCode::OK {
        return;
    }
    let matches = match (condition.to_str(), response.headers().get(ETAG)) {
        (Ok(condition), Some(etag)) => {
            let etag = opaque(etag.to_str().unwrap_or_default());
            condition.trim() == "*" || condition.split(',').any(|tag| opaque(tag) == etag)
        }
        _ => false,
    };
    if !matches {
        return;
    }
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    headers.remove(CONTENT_TYPE);
    headers.remove(CONTENT_LENGTH);
    *response.body_mut() = axum::body::Body::empty();
}

/// An entity tag without surrounding space and its weakness indicator.
fn opaque(tag: &str) -> &str {
    tag.trim().trim_start_matches("W/")
}

/// A hit served while this process may have missed invalidations (its feed dropped, the database
/// does not answer) is answered as STALE: its value was right when last confirmed, which is all
/// the process can say.
fn mark_unconfirmed(response: &mut Response) {
    let headers = response.headers_mut();
    if headers.get(&X_CACHE_STATUS).is_some_and(|v| v == "HIT") {
        headers.insert(X_CACHE_STATUS, HeaderValue::from_static("STALE"));
        headers.insert(
            CACHE_STATUS,
            HeaderValue::from_static("qa-pms; hit; fwd=stale; detail=unconfirmed"),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn app(limits: Limits) -> (Router, AppState) {
        let store = qa_pms_storage::connect("sqlite::memory:")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let state =
            AppState::new(store, &crate::AppConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        let routes = Router::new()
            .route(
                "/ok",
                get(|| async { ([(ETAG, "\"t\""), (X_CACHE_STATUS, "HIT")], "{}") }),
            )
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("boom");
                    }
                }),
            )
            .route(
                "/slow",
                get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }),
            );
        let router = apply(routes, &state, limits).with_state(state.clone());
        (router, state)
    }

    async fn send(router: &Router, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|e| match e {})
    }

    fn counted(state: &AppState, route: &str, status: &str) -> bool {
        let line = format!(
            "qa_pms_http_requests_total{{method=\"GET\",route=\"{route}\",status=\"{status}\"}} 1"
        );
        state.metrics.render().contains(&line)
    }

    #[tokio::test]
    async fn every_response_carries_a_request_id_its_own_if_sent() {
        let (router, _) = app(Limits::default()).await;
        let made = send(&router, "/ok", &[]).await;
        let kept = send(&router, "/ok", &[("x-request-id", "abc-1")]).await;
        let unmatched = send(&router, "/nowhere", &[]).await;
        let made_id = made.headers().get(&REQUEST_ID).cloned();
        assert!(made_id.is_some_and(|id| uuid::Uuid::try_parse_ascii(id.as_bytes()).is_ok()));
        assert_eq!(kept.headers()[&REQUEST_ID], "abc-1");
        assert_eq!(unmatched.status(), StatusCode::NOT_FOUND);
        assert!(unmatched.headers().contains_key(&REQUEST_ID));
    }

    #[tokio::test]
    async fn a_panic_is_a_500_that_is_counted_and_carries_the_request_id() {
        let (router, state) = app(Limits::default()).await;
        let response = send(&router, "/boom", &[("x-request-id", "p-1")]).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[&REQUEST_ID], "p-1");
        assert!(
            counted(&state, "/boom", "500"),
            "{}",
            state.metrics.render()
        );
    }

    #[tokio::test]
    async fn a_route_past_the_timeout_is_a_503() {
        let limits = Limits {
            request_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let (router, state) = app(limits).await;
        let response = send(&router, "/slow", &[]).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(counted(&state, "/slow", "503"));
    }

    #[tokio::test]
    async fn statuses_are_counted_per_route_including_304_and_unmatched() {
        let (router, state) = app(Limits::default()).await;
        let ok = send(&router, "/ok", &[]).await;
        let not_modified = send(&router, "/ok", &[("if-none-match", "W/\"t\"")]).await;
        send(&router, "/nowhere", &[]).await;
        send(&router, "/elsewhere", &[]).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert!(counted(&state, "/ok", "200"));
        assert!(counted(&state, "/ok", "304"));
        let text = state.metrics.render();
        assert!(
            text.contains(
                "qa_pms_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "qa_pms_http_request_duration_seconds_count{method=\"GET\",route=\"/ok\"} 2"
        ));
    }

    #[tokio::test]
    async fn a_malformed_consistency_token_is_a_400_and_hits_are_stale_while_unconfirmed() {
        let (router, state) = app(Limits::default()).await;
        let bad = send(&router, "/ok", &[("x-consistency-token", "soon")]).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        state.outbox.unconfirm();
        let stale = send(&router, "/ok", &[]).await;
        assert_eq!(stale.headers()[&X_CACHE_STATUS], "STALE");
    }

    /// The span and the events of tower-http's `TraceLayer`, under its targets.
    #[test]
    fn the_request_span_and_events_reach_a_subscriber() {
        #[derive(Clone, Default)]
        struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                if let Ok(mut out) = self.0.lock() {
                    out.extend_from_slice(bytes);
                }
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        // With a single dispatcher registered, tracing-core computes the interest of a callsite
        // first hit on another test's thread from that thread's (absent) subscriber alone, and
        // caches "never": a second dispatcher makes it ask every registered one.
        let _second = tracing::Dispatch::new(tracing_subscriber::registry());
        tracing::subscriber::with_default(subscriber, || {
            runtime.block_on(async {
                let (router, _) = app(Limits::default()).await;
                send(&router, "/ok", &[("x-request-id", "t-1")]).await;
                send(&router, "/boom", &[("x-request-id", "t-2")]).await;
            });
        });
        let text = String::from_utf8(captured.0.lock().map(|out| out.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert!(
            text.contains("request{method=GET route=\"/ok\" request_id=\"t-1\"}"),
            "{text}"
        );
        assert!(text.contains("tower_http::trace::on_request: started processing request"));
        assert!(text.contains(
            "tower_http::trace::on_response: finished processing request latency=0 ms status=200"
        ));
        assert!(text.contains(
            "request{method=GET route=\"/boom\" request_id=\"t-2\"}: tower_http::trace::on_failure: \
             response failed classification=Status code: 500 Internal Server Error"
        ), "{text}");
    }

    #[test]
    fn request_ids_are_version_4_uuids_and_differ() {
        let ids: Vec<String> = (0..1000)
            .map(|_| new_request_id().to_str().unwrap_or_default().to_owned())
            .collect();
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id, &uuid.hyphenated().to_string());
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn other_threads_make_other_ids() {
        let here = new_request_id();
        let there = std::thread::spawn(new_request_id)
            .join()
            .unwrap_or_else(|_| HeaderValue::from_static("panicked"));
        assert_ne!(here, there);
        assert_ne!(
            here.as_bytes()[..18],
            there.as_bytes()[..18],
            "per-thread prefixes"
        );
    }

    #[test]
    fn uuids_are_formatted_like_the_uuid_crate() {
        let (high, low) = (0x0123_4567_89ab_4def, 0x8123_4567_89ab_cdef);
        let expected = uuid::Uuid::from_u64_pair(high, low)
            .hyphenated()
            .to_string();
        assert_eq!(format_uuid(high, low), expected.as_bytes());
        assert_eq!(id_prefix(u64::MAX) & 0xf000, 0x4000);
    }

    fn with_etag(etag: &str) -> Response {
        let mut response = Response::new(axum::body::Body::from("{}"));
        response.headers_mut().insert(
            ETAG,
            HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("x")),
        );
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let tag = "\"abc\"";
        for (condition, expected) in [
            ("\"abc\"", StatusCode::NOT_MODIFIED),
            (" W/\"abc\" ", StatusCode::NOT_MODIFIED),
            ("\"x\", W/\"abc\"", StatusCode::NOT_MODIFIED),
            ("*", StatusCode::NOT_MODIFIED),
            ("\"abd\"", StatusCode::OK),
            ("", StatusCode::OK),
        ] {
            let condition = HeaderValue::from_static(condition);
            let mut response = with_etag(tag);
            not_modified(&condition, &mut response);
            assert_eq!(response.status(), expected, "{condition:?}");
            if expected == StatusCode::NOT_MODIFIED {
                assert_eq!(response.headers()[ETAG], tag);
                assert!(response.headers().get(CONTENT_TYPE).is_none());
            }
        }
        let mut not_ok = with_etag(tag);
        *not_ok.status_mut() = StatusCode::CREATED;
        let condition = HeaderValue::from_static("\"abc\"");
        not_modified(&condition, &mut not_ok);
        assert_eq!(not_ok.status(), StatusCode::CREATED);
    }
}
