//! `GET /openapi.json` and `GET /`, through the router: the document is OpenAPI 3.1, documents
//! exactly the routes the router serves (derived from the route modules' `.route(..)` calls and
//! the methods the router answers for each), resolves every `$ref`, states the conventions of
//! the middleware on every operation, and keeps the validation bounds of the code. The index
//! names the service, its version and links that answer.
//!
//! The document does not depend on the database: SQLite only.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use common::TestApp;
use qa_pms_api::AppConfig;
use qa_pms_storage::Backend;
use serde_json::Value;

const TOKEN: &str = "openapi-test-token";
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// The app with every route on (the admin API too).
async fn app() -> TestApp {
    let config = AppConfig {
        admin_token: Some(TOKEN.into()),
        ..AppConfig::default()
    };
    TestApp::with_config(Backend::Sqlite, config).await
}

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), "application/json");
    response.json()
}

/// Every path the route modules give `.route(..)`, as written there.
fn routed_paths() -> BTreeSet<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/routes");
    let mut paths = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (_, rest) in source
            .match_indices(".route(")
            .map(|(i, _)| source.split_at(i + 7))
        {
            let rest = rest.trim_start();
            if let Some(literal) = rest.strip_prefix('"') {
                paths.insert(literal[..literal.find('"').unwrap()].to_owned());
            }
        }
    }
    assert!(paths.len() > 10, "found only {paths:?} in {dir}");
    paths
}

/// A request path for a route's path: each parameter filled with a plausible value.
fn concrete(path: &str) -> String {
    path.replace("{key}", "PROJ-1")
        .replace("{id}", "00000000-0000-4000-8000-0000000000ff")
        .replace("{cache}", "tickets")
        .replace("{index}", "0")
        .replace("{action}", "pause")
}

/// The `(method, path)` pairs the router serves: for each routed path, the methods it does not
/// answer 405 (`method_not_allowed`).
async fn routed_operations(app: &TestApp) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    let auth = format!("Bearer {TOKEN}");
    for path in routed_paths() {
        let uri = concrete(&path);
        let mut any = false;
        for method in METHODS {
            let response = app
                .send_raw(
                    method.clone(),
                    &uri,
                    &[
                        ("authorization", &auth),
                        ("content-type", "application/json"),
                    ],
                    b"{}".to_vec(),
                )
                .await;
            if response.status == StatusCode::METHOD_NOT_ALLOWED {
                // In the error envelope, like every error, and with the methods it allows.
                assert_eq!(
                    response
                        .headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap()),
                    Some("application/json"),
                    "{method} {path}: {response:?}"
                );
                assert_eq!(
                    response.assert_error(StatusCode::METHOD_NOT_ALLOWED),
                    "method_not_allowed"
                );
                assert!(response.headers.contains_key("allow"), "{method} {path}");
                continue;
            }
            any = true;
            operations.insert((method.as_str().to_lowercase(), path.clone()));
        }
        assert!(any, "{path}: no method answers");
    }
    operations
}

fn documented_operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            operations.insert((method.clone(), path.clone()));
        }
    }
    operations
}

fn operations(document: &Value) -> impl Iterator<Item = (String, &Value)> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(method, operation)| (format!("{method} {path}"), operation))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_document_is_openapi_3_1_and_documents_every_route_of_the_router() {
    let app = app().await;
    let document = document(&app).await;
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi: {version}");
    assert_eq!(document["info"]["title"], "qa-pms");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));

    let routed = routed_operations(&app).await;
    let documented = documented_operations(&document);
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "served but not documented: {undocumented:?}; documented but not served: {unrouted:?}"
    );
    // The two routes of the document itself, and one of each kind, for a sense of scale.
    for operation in [
        ("get", "/"),
        ("get", "/openapi.json"),
        ("patch", "/api/v1/tickets/{key}"),
        ("post", "/admin/cache/{cache}/warm"),
    ] {
        assert!(
            documented.contains(&(operation.0.to_owned(), operation.1.to_owned())),
            "{operation:?}"
        );
    }
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(value, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_reference_resolves_and_every_operation_states_the_middlewares_conventions() {
    let app = app().await;
    let document = document(&app).await;

    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let pointer = target.strip_prefix('#').unwrap();
        assert!(
            document.pointer(pointer).is_some(),
            "{target} resolves to nothing"
        );
    }

    let scheme = &document["components"]["securitySchemes"]["admin_token"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");

    for (name, operation) in operations(&document) {
        let responses = operation["responses"].as_object().unwrap();
        for status in ["400", "503"] {
            assert!(responses.contains_key(status), "{name}: no {status}");
        }
        for (status, response) in responses {
            assert_eq!(
                response["headers"]["X-Request-Id"]["required"], true,
                "{name} {status}"
            );
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"];
                let refers =
                    schema["$ref"] == "#/components/schemas/ErrorBody" || name == "get /health"; // its 503 is a health report or an error
                assert!(refers, "{name} {status}: not the error envelope");
            }
            if status.starts_with('2') && !name.starts_with("get ") {
                assert_eq!(
                    response["headers"]["X-Consistency-Token"]["required"], true,
                    "{name} {status}"
                );
            }
        }
        let parameters: Vec<&str> = operation["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(parameters.contains(&"X-Consistency-Token"), "{name}");

        if operation.get("x-cache").is_some() {
            assert!(parameters.contains(&"If-None-Match"), "{name}");
            assert!(parameters.contains(&"Cache-Control"), "{name}");
            for header in ["ETag", "X-Cache-Status", "Cache-Status"] {
                assert_eq!(
                    responses["304"]["headers"][header]["required"], true,
                    "{name}"
                );
                assert_eq!(
                    responses["200"]["headers"][header]["required"], true,
                    "{name}"
                );
            }
        }
        if name.contains(" /admin/") {
            assert_eq!(
                operation["security"][0]["admin_token"],
                serde_json::json!([])
            );
            assert!(responses.contains_key("401"), "{name}");
        }
        if matches!(name.split(' ').next(), Some("put" | "patch" | "delete"))
            && !name.contains(" /admin/")
        {
            assert!(parameters.contains(&"If-Match"), "{name}");
            assert!(responses.contains_key("412"), "{name}");
        }
    }

    let cached: BTreeSet<String> = operations(&document)
        .filter(|(_, operation)| operation.get("x-cache").is_some())
        .map(|(name, _)| name)
        .collect();
    let expected: BTreeSet<String> = [
        "get /api/v1/tickets/{key}",
        "get /api/v1/search",
        "get /api/v1/dashboard/kpi",
        "get /api/v1/templates/{id}",
    ]
    .map(String::from)
    .into();
    assert_eq!(cached, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_schemas_keep_the_bounds_the_code_validates() {
    use qa_pms_core::{catalog, template, ticket};
    let app = app().await;
    let document = document(&app).await;
    let schemas = &document["components"]["schemas"];
    let cases: [(&str, &str, usize); 12] = [
        (
            "/TicketUpsert/properties/summary/maxLength",
            "summary",
            ticket::SUMMARY_MAX,
        ),
        (
            "/TicketUpsert/properties/status/maxLength",
            "status",
            ticket::SHORT_TEXT_MAX,
        ),
        (
            "/TicketUpsert/properties/description/maxLength",
            "description",
            ticket::DESCRIPTION_MAX,
        ),
        (
            "/TicketPatch/properties/summary/maxLength",
            "summary",
            ticket::SUMMARY_MAX,
        ),
        (
            "/TicketPatch/properties/assignee/maxLength",
            "assignee",
            ticket::SHORT_TEXT_MAX,
        ),
        (
            "/TemplateDraft/properties/name/maxLength",
            "name",
            template::NAME_MAX,
        ),
        (
            "/TemplateDraft/properties/steps/maxItems",
            "steps",
            template::STEPS_MAX,
        ),
        (
            "/TemplateDraft/properties/steps/items/maxLength",
            "step",
            template::STEP_MAX,
        ),
        (
            "/TemplateDraft/properties/workflow_type/maxLength",
            "type",
            template::TYPE_MAX,
        ),
        (
            "/TemplateDraft/properties/estimated_minutes/maximum",
            "estimate",
            template::ESTIMATE_MAX_MINUTES as usize,
        ),
        (
            "/CatalogEntry/properties/name/maxLength",
            "entry name",
            catalog::NAME_MAX,
        ),
        (
            "/CatalogEntry/properties/text/maxLength",
            "entry text",
            catalog::TEXT_MAX,
        ),
    ];
    for (pointer, what, bound) in cases {
        assert_eq!(
            schemas.pointer(pointer).and_then(Value::as_u64),
            Some(bound as u64),
            "{what}: {pointer}"
        );
    }
    assert_eq!(schemas["TicketPatch"]["minProperties"], 1);
    let key = schemas["TicketKey"]["pattern"].as_str().unwrap();
    assert_eq!(key, r"^[A-Z][A-Z0-9_]{0,9}-[1-9][0-9]{0,8}$");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_names_the_service_its_version_and_links_that_answer() {
    let app = app().await;
    let index = app.get("/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.header("content-type"), "application/json");
    let index = index.json();
    assert_eq!(index["name"], "qa-pms");
    assert_eq!(index["version"], env!("CARGO_PKG_VERSION"));
    let links = index["links"].as_object().unwrap();
    assert_eq!(
        links.keys().map(String::as_str).collect::<Vec<_>>(),
        ["health", "metrics", "openapi"]
    );
    for (name, link) in links {
        let response = app.get(link.as_str().unwrap()).await;
        assert_eq!(response.status, StatusCode::OK, "{name}: {link}");
    }
    assert_eq!(links["openapi"], "/openapi.json");
    assert_eq!(links["health"], "/health");
    assert_eq!(links["metrics"], "/metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_body_over_the_limit_is_a_413_in_the_error_envelope() {
    let app = app().await;
    let body = vec![b' '; qa_pms_api::layers::Limits::default().body_limit + 1];
    let response = app
        .send_raw(
            Method::POST,
            "/api/v1/webhooks/jira",
            &[("content-type", "application/json")],
            body,
        )
        .await;
    assert_eq!(
        response.assert_error(StatusCode::PAYLOAD_TOO_LARGE),
        "payload_too_large"
    );
}
