//! The OpenAPI 3.1 document `GET /openapi.json` serves, generated from the code with `utoipa`.
//!
//! Each handler's `#[utoipa::path]` says its parameters, request body and the statuses it answers;
//! the bodies' schemas are the domain types' own (`ToSchema` derives in `qa-pms-core` and beside
//! the handlers). What the middleware does to every operation is added here once, in
//! [`conventions`], rather than repeated on each handler:
//!
//! - every response carries `X-Request-Id`; every request may send `X-Consistency-Token` (a
//!   malformed one is a 400, a replica that cannot catch up a 503), and every successful write
//!   answers one;
//! - an operation served through a cache (marked `x-cache` with the cache's name) takes
//!   `If-None-Match` (304) and `Cache-Control`, and answers `X-Cache-Status`, `Cache-Status`,
//!   `ETag` and `Age`;
//! - a response header that a handler's annotation declares is always sent (`required`).

use std::sync::LazyLock;

use bytes::Bytes;
use qa_pms_core::{CacheKind, TicketKey, WorkflowAction};
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::error::ApiError;
use crate::routes::{
    admin, catalog, dashboard, health, index, search, templates, tickets, webhooks, workflows,
};

/// The name of the bearer-token security scheme of `/admin/*`.
pub const ADMIN_TOKEN: &str = "admin_token";

/// The operation extension naming the cache an operation reads through.
pub const CACHE_EXTENSION: &str = "x-cache";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "qa-pms",
        description = "The API service of a QA companion platform: Jira tickets, searches across \
            the Postman and Testmo test catalogs, dashboard KPIs, workflow templates and workflows, \
            read through an in-memory cache. Every error answers the envelope \
            `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}` (`ErrorBody`)."
    ),
    paths(
        index::index,
        index::openapi_json,
        health::health,
        health::metrics,
        tickets::list,
        tickets::fetch,
        tickets::patch,
        tickets::put,
        search::search,
        catalog::import,
        catalog::start_sync,
        catalog::sync_status,
        dashboard::kpi,
        templates::list,
        templates::create,
        templates::fetch,
        templates::update,
        templates::remove,
        workflows::start,
        workflows::fetch,
        workflows::complete_step,
        workflows::transition,
        webhooks::jira,
        admin::stats,
        admin::purge_all,
        admin::purge_key,
        admin::warm_up,
    ),
    components(schemas(ErrorBody, TicketKey, WorkflowAction, CacheKind)),
    modifiers(&AdminToken, &PropertyCounts),
    tags(
        (name = "service", description = "The index, health, metrics and this document"),
        (name = "tickets", description = "Jira tickets, read through the tickets cache"),
        (name = "search", description = "Searches across the catalog, through the search cache"),
        (name = "catalog", description = "What search searches: imports and syncs from Postman and Testmo"),
        (name = "dashboard", description = "KPIs, through the metrics cache"),
        (name = "templates", description = "Workflow templates, read through the templates cache"),
        (name = "workflows", description = "QA runs of a template's steps for a ticket"),
        (name = "webhooks", description = "Jira's issue events"),
        (name = "admin", description = "The caches, for operators: only with QA_PMS_ADMIN_TOKEN set (else 404)"),
    ),
)]
struct ApiDoc;

/// `Authorization: Bearer <QA_PMS_ADMIN_TOKEN>` on `/admin/*`.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The service's QA_PMS_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// How many properties a body must have: set here because utoipa 5's `min_properties` attribute
/// writes `maxProperties`.
struct PropertyCounts;

impl Modify for PropertyCounts {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        // (schema, at least, at most)
        let counts = [
            // A patch must set a field.
            ("TicketPatch", 1, None),
            // Either `keys` or `top`.
            ("WarmRequest", 1, Some(1)),
        ];
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (name, min, max) in counts {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(name) {
                object.min_properties = Some(min);
                object.max_properties = max;
            }
        }
    }
}

/// The error envelope every error answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// For people: its wording may change. A 500 never says its cause.
    pub message: String,
}

/// What went wrong, for programs: one code per kind of error ([`ApiError::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidBody,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    MethodNotAllowed,
    Unavailable,
    BadGateway,
    UpstreamUnavailable,
    UpstreamTimeout,
    Unauthorized,
    PreconditionFailed,
    Timeout,
    Internal,
}

impl ErrorCode {
    /// The code of `error`: a new variant of [`ApiError`] does not compile until it has one here.
    pub fn of(error: &ApiError) -> Self {
        match error {
            ApiError::BadRequest(_) => Self::BadRequest,
            ApiError::Unprocessable(_) => Self::InvalidBody,
            ApiError::NotFound(_) => Self::NotFound,
            ApiError::Conflict(_) => Self::Conflict,
            ApiError::PayloadTooLarge => Self::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => Self::UnsupportedMediaType,
            ApiError::MethodNotAllowed => Self::MethodNotAllowed,
            ApiError::Unavailable => Self::Unavailable,
            ApiError::BadGateway(_) => Self::BadGateway,
            ApiError::UpstreamUnavailable(_) => Self::UpstreamUnavailable,
            ApiError::GatewayTimeout(_) => Self::UpstreamTimeout,
            ApiError::Unauthorized(_) => Self::Unauthorized,
            ApiError::PreconditionFailed(_) => Self::PreconditionFailed,
            ApiError::Timeout => Self::Timeout,
            ApiError::Internal(_) => Self::Internal,
        }
    }
}

/// `If-Match` on PATCH, PUT and DELETE (see `extract::IfMatch`).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatchHeader {
    /// `*` (any current version) or a list of quoted entity tags: the write happens only if the
    /// resource's current ETag (of the JSON a GET answers) is one of them (strong comparison),
    /// else 412. Not of that form: 400.
    #[param(
        rename = "If-Match",
        nullable = false,
        pattern = r#"^ *(\*|(W/)?"[!#-+\--~]*")( *, *(\*|(W/)?"[!#-+\--~]*"))* *$"#
    )]
    pub if_match: Option<String>,
}

/// The document, as `GET /openapi.json` serves it.
pub fn document() -> Value {
    let mut document = match serde_json::to_value(ApiDoc::openapi()) {
        Ok(document) => document,
        // utoipa's types always serialize; an empty object keeps this infallible.
        Err(_) => Value::Object(Map::new()),
    };
    conventions(&mut document);
    document
}

/// The document's JSON, built once.
pub fn json() -> &'static Bytes {
    static JSON: LazyLock<Bytes> = LazyLock::new(|| {
        Bytes::from(serde_json::to_vec(&document()).unwrap_or_else(|_| b"{}".to_vec()))
    });
    &JSON
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn error_ref() -> Value {
    json!({"$ref": "#/components/schemas/ErrorBody"})
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": error_ref()}},
    })
}

fn header(schema: Value, description: &str, required: bool) -> Value {
    json!({"schema": schema, "description": description, "required": required})
}

fn request_header(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "header", "required": false, "schema": schema, "description": description})
}

fn consistency_token_schema() -> Value {
    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})
}

/// What the middleware (`layers.rs`) and the cached responses (`cached.rs`) add to every
/// operation; see the module's documentation.
fn conventions(document: &mut Value) {
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        for method in METHODS {
            if let Some(operation) = item.get_mut(method) {
                operation_conventions(method, operation);
            }
        }
    }
}

fn operation_conventions(method: &str, operation: &mut Value) {
    let cached = operation.get(CACHE_EXTENSION).is_some();
    let write = method != "get";

    let parameters = operation
        .as_object_mut()
        .map(|o| o.entry("parameters").or_insert_with(|| json!([])));
    if let Some(Value::Array(parameters)) = parameters {
        parameters.push(request_header(
            "X-Consistency-Token",
            consistency_token_schema(),
            "A token from a write's response: this replica answers only once it has applied the \
             invalidations of the writes behind it (503 if it cannot within 2 s). Not a token: 400.",
        ));
        if cached {
            parameters.push(request_header(
                "If-None-Match",
                json!({"type": "string"}),
                "Entity tags (or `*`): a 200 whose ETag one of them names (weak comparison) is \
                 answered 304 without a body.",
            ));
            parameters.push(request_header(
                "Cache-Control",
                json!({"type": "string"}),
                "`no-cache` or `max-age=0`: reload from the source and store the result \
                 (X-Cache-Status BYPASS); `no-store`: bypass the cache. Other directives are ignored.",
            ));
        }
    }

    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // Declared by the handler's annotation: always sent.
    for response in responses.values_mut() {
        if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
            for header in headers.values_mut() {
                if let Some(header) = header.as_object_mut() {
                    header.insert("required".into(), Value::Bool(true));
                }
            }
        }
    }
    const BAD_TOKEN: &str = "X-Consistency-Token is not a token from a write's response";
    match responses.get_mut("400") {
        Some(response) => {
            if let Some(Value::String(description)) = response.get_mut("description") {
                description.push_str("; or ");
                description.push_str(BAD_TOKEN);
            }
        }
        None => {
            responses.insert("400".into(), error_response(BAD_TOKEN));
        }
    }
    responses.entry("503").or_insert_with(|| {
        error_response(
            "The database is unavailable, this replica could not catch up with X-Consistency-Token \
             in time, or the request took longer than the request timeout",
        )
    });
    if cached {
        responses.entry("304").or_insert_with(|| {
            json!({"description": "Not modified: If-None-Match names the representation's ETag. No body."})
        });
    }

    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        if let Some(Value::Object(links)) = response.get_mut("links") {
            links.values_mut().for_each(camel_case_link);
        }
        let headers = response
            .entry("headers")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        let Some(headers) = headers else { continue };
        headers.insert(
            "X-Request-Id".into(),
            header(
                json!({"type": "string"}),
                "The request's own X-Request-Id, or a new UUID if it sent none",
                true,
            ),
        );
        let success = status.starts_with('2');
        if write && success {
            headers.insert(
                "X-Consistency-Token".into(),
                header(
                    consistency_token_schema(),
                    "Send it back on reads, to any replica, to read this write there",
                    true,
                ),
            );
        }
        if cached {
            // The middleware's own 400 and 503 come before the cache: they may lack these.
            let from_cache = !matches!(status.as_str(), "400" | "503");
            headers.insert(
                "X-Cache-Status".into(),
                header(
                    json!({"type": "string", "enum": ["HIT", "MISS", "STALE", "UPDATING", "BYPASS"]}),
                    "How the cache answered: HIT, MISS (loaded, or an error), STALE (served past \
                     its TTL while the source fails, or while invalidations may have been missed), \
                     UPDATING (stale while being refreshed), BYPASS (Cache-Control sent the \
                     request to the source)",
                    from_cache,
                ),
            );
            headers.insert(
                "Cache-Status".into(),
                header(
                    json!({"type": "string", "pattern": "^qa-pms(; [a-z-]+(=[A-Za-z0-9-]+)?)*$"}),
                    "The same as RFC 9211 `Cache-Status`, e.g. `qa-pms; hit; ttl=299` or \
                     `qa-pms; fwd=miss; stored`",
                    from_cache,
                ),
            );
            if matches!(status.as_str(), "200" | "304") {
                headers.insert(
                    "ETag".into(),
                    header(
                        json!({"type": "string", "pattern": "^\"[0-9a-f]{32}\"$"}),
                        "A strong entity tag of the JSON, equal on every replica for equal bytes",
                        true,
                    ),
                );
                headers.insert(
                    "Age".into(),
                    header(
                        json!({"type": "integer", "minimum": 0}),
                        "Seconds since the entry was loaded: on HIT, STALE and UPDATING",
                        false,
                    ),
                );
            }
        }
        if headers.is_empty() {
            response.remove("headers");
        }
    }
}

/// utoipa 5 writes a Link Object's fields in snake case (`operation_id`): OpenAPI's names are
/// camel case (`operationId`).
fn camel_case_link(link: &mut Value) {
    let Some(link) = link.as_object_mut() else {
        return;
    };
    for (snake, camel) in [
        ("operation_id", "operationId"),
        ("operation_ref", "operationRef"),
        ("request_body", "requestBody"),
    ] {
        if let Some(value) = link.remove(snake) {
            link.insert(camel.into(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_the_one_the_envelope_answers() {
        let errors = [
            ApiError::BadRequest(String::new()),
            ApiError::Unprocessable(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::Conflict(String::new()),
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::MethodNotAllowed,
            ApiError::Unavailable,
            ApiError::BadGateway(String::new()),
            ApiError::UpstreamUnavailable(String::new()),
            ApiError::GatewayTimeout(String::new()),
            ApiError::Unauthorized(String::new()),
            ApiError::PreconditionFailed(String::new()),
            ApiError::Timeout,
            ApiError::Internal(String::new()),
        ];
        for error in errors {
            assert_eq!(
                serde_json::to_value(ErrorCode::of(&error)).unwrap(),
                error.code(),
                "{error:?}"
            );
        }
    }
}
