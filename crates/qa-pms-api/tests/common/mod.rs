//! Test harness: an app over a fresh real database per test (a temp SQLite file, or a new
//! PostgreSQL database dropped afterwards), driven through `router.oneshot(..)`.
//!
//! PostgreSQL comes from `QA_PMS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached the PostgreSQL tests
//! fail; `QA_PMS_TEST_POSTGRES=off` switches them off explicitly.

#![allow(dead_code)]

pub mod delayed;
pub mod jira;
pub mod proxy;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use qa_pms_api::{AppConfig, AppState};
use qa_pms_storage::{Backend, Store};
use serde_json::Value;
use sqlx::Connection;
use tower::ServiceExt;

/// Runs each named `async fn(Backend)` as one test on SQLite and one on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(qa_pms_storage::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if $crate::common::postgres_switched_off() {
                        eprintln!("QA_PMS_TEST_POSTGRES=off: not run on PostgreSQL");
                        return;
                    }
                    super::$name(qa_pms_storage::Backend::Postgres).await
                }
            )*
        }
    };
}

pub fn postgres_switched_off() -> bool {
    std::env::var("QA_PMS_TEST_POSTGRES").is_ok_and(|v| v == "off")
}

fn postgres_admin_url() -> String {
    std::env::var("QA_PMS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test.
pub enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    pub async fn create(backend: Backend) -> (Self, String) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("qa-pms-test-{id}.db"));
                let url = format!("sqlite:{}", path.display());
                (TestDb::Sqlite(path), url)
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("qa_pms_test_{id}");
                let mut admin = sqlx::PgConnection::connect(&admin_url)
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "PostgreSQL is unreachable at {admin_url} ({e}). Start it, point \
                         QA_PMS_TEST_POSTGRES_URL at one, or set QA_PMS_TEST_POSTGRES=off."
                        )
                    });
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create the test database");
                let url = match admin_url.rsplit_once('/') {
                    Some((server, _)) => format!("{server}/{name}"),
                    None => panic!("QA_PMS_TEST_POSTGRES_URL has no database part"),
                };
                (TestDb::Postgres { admin_url, name }, url)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self {
            TestDb::Sqlite(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            TestDb::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime: do the async work on a thread of its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    runtime.block_on(async {
                        if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut admin)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub url: String,
    /// The database this app made; `None` for a second replica over another app's database.
    _db: Option<TestDb>,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .expect("ASCII header")
    }

    pub fn cache_status(&self) -> &str {
        self.header("x-cache-status")
    }

    /// Asserts the API's error envelope and status, and returns the error code.
    pub fn assert_error(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), "application/json");
        let body = self.json();
        assert!(body["error"]["message"].is_string(), "envelope: {body}");
        body["error"]["code"]
            .as_str()
            .expect("error code")
            .to_owned()
    }
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        Self::with_config(backend, AppConfig::default()).await
    }

    pub async fn with_config(backend: Backend, config: AppConfig) -> Self {
        let (db, url) = TestDb::create(backend).await;
        let store = qa_pms_storage::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        Self::over(store, db, url, config)
    }

    /// An app over a store the test wraps (see [`delayed`]).
    pub async fn with_store(
        backend: Backend,
        config: AppConfig,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> Self {
        let (db, url) = TestDb::create(backend).await;
        let store = qa_pms_storage::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        Self::over(wrap(store), db, url, config)
    }

    /// An app over a fresh database reached at `reach(url)` (through a proxy, say).
    pub async fn reached_through(
        backend: Backend,
        config: AppConfig,
        reach: impl FnOnce(&str) -> String,
    ) -> Self {
        let (db, url) = TestDb::create(backend).await;
        let url = reach(&url);
        let store = qa_pms_storage::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        Self::over(store, db, url, config)
    }

    /// Another replica of the service over this app's database: its own pool, caches and state.
    pub async fn replica(&self) -> Self {
        self.replica_with(AppConfig::default()).await
    }

    /// [`Self::replica`] with its own settings (for instance the same Jira).
    pub async fn replica_with(&self, config: AppConfig) -> Self {
        let store = qa_pms_storage::connect(&self.url).await.expect("connect");
        let (router, state) = qa_pms_api::build(Arc::clone(&store), config);
        Self {
            router,
            state,
            store,
            url: self.url.clone(),
            _db: None,
        }
    }

    fn over(store: Arc<dyn Store>, db: TestDb, url: String, config: AppConfig) -> Self {
        let (router, state) = qa_pms_api::build(Arc::clone(&store), config);
        Self {
            router,
            state,
            store,
            url,
            _db: Some(db),
        }
    }

    pub async fn request(&self, method: Method, uri: &str, body: Option<Value>) -> TestResponse {
        let builder = Request::builder().method(method).uri(uri);
        let request = match body {
            Some(json) => builder
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json.to_string())),
            None => builder.body(Body::empty()),
        }
        .expect("request");
        self.send(request).await
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// A request with extra headers and a raw body.
    pub async fn send_raw(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> TestResponse {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Body::from(body)).expect("request"))
            .await
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.request(Method::GET, uri, None).await
    }

    pub async fn post(&self, uri: &str, body: Value) -> TestResponse {
        self.request(Method::POST, uri, Some(body)).await
    }

    pub async fn put(&self, uri: &str, body: Value) -> TestResponse {
        self.request(Method::PUT, uri, Some(body)).await
    }

    pub async fn patch(&self, uri: &str, body: Value) -> TestResponse {
        self.request(Method::PATCH, uri, Some(body)).await
    }

    pub async fn delete(&self, uri: &str) -> TestResponse {
        self.request(Method::DELETE, uri, None).await
    }

    /// Creates (or replaces) a ticket and asserts it worked.
    pub async fn put_ticket(&self, key: &str, summary: &str, status: &str, assignee: Option<&str>) {
        let response = self
            .put(
                &format!("/api/v1/tickets/{key}"),
                serde_json::json!({"summary": summary, "status": status, "assignee": assignee}),
            )
            .await;
        assert!(response.status.is_success(), "{response:?}");
    }

    /// The value of one sample on `/metrics`, e.g.
    /// `metric("qa_pms_cache_loads_total", &[("cache_type", "tickets")])`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = String::from_utf8(self.get("/metrics").await.body.to_vec()).expect("utf-8");
        find_sample(&text, name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
    }
}

/// Finds a sample in Prometheus text format by name and (a subset of) its labels.
pub fn find_sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
            let all_match = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all_match.then(|| value.parse().ok()).flatten()
        })
}
