//! Search and catalog import over HTTP: ranking, identical results on both backends, caching,
//! invalidation on import, bad input.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

mod common;

use axum::http::StatusCode;
use common::TestApp;
use qa_pms_storage::Backend;
use serde_json::{json, Value};

on_both_backends!(
    results_are_ranked_the_same_on_every_backend,
    a_repeated_search_is_a_hit_and_an_import_invalidates_it,
    the_source_filter_and_limit_shape_results_and_the_cache_key,
    importing_an_existing_url_replaces_the_entry,
    an_import_that_changes_nothing_keeps_every_cached_search,
    out_of_range_limits_and_bad_queries_are_400,
    bad_imports_are_4xx_and_change_nothing,
    a_nul_character_is_a_400_never_a_5xx,
);

fn entry(source: &str, name: &str, url: &str, text: &str) -> Value {
    json!({"source": source, "name": name, "url": url, "text": text})
}

async fn import(app: &TestApp, entries: Vec<Value>) -> Value {
    let response = app
        .post("/api/v1/catalog/import", json!({"entries": entries}))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{response:?}");
    response.json()
}

async fn catalog(app: &TestApp) {
    import(
        app,
        vec![
            entry(
                "postman",
                "Login API",
                "https://p/1",
                "POST /login with a password",
            ),
            entry(
                "testmo",
                "Login with SSO",
                "https://t/1",
                "single sign-on login",
            ),
            entry(
                "testmo",
                "Checkout total",
                "https://t/2",
                "verify the login banner",
            ),
            entry("postman", "Cart API", "https://p/2", "add items"),
            entry(
                "postman",
                "login_50%",
                "https://p/3",
                "wildcards in the name",
            ),
        ],
    )
    .await;
}

fn names(results: &Value) -> Vec<&str> {
    results
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect()
}

async fn results_are_ranked_the_same_on_every_backend(backend: Backend) {
    let app = TestApp::new(backend).await;
    catalog(&app).await;

    let results = app.get("/api/v1/search?query=LOGIN&limit=10").await.json();

    // Name and text (4 points) before name only (3), ties by name in byte order, text only last.
    assert_eq!(
        names(&results),
        ["Login API", "Login with SSO", "login_50%", "Checkout total"]
    );
    assert_eq!(results[0]["relevance"], 1.0);
    assert_eq!(results[2]["relevance"], 0.75);
    assert_eq!(results[3]["relevance"], 0.25);
    assert_eq!(results[0]["source"], "postman");
    // LIKE wildcards in the query are literal.
    let literal = app.get("/api/v1/search?query=50%25").await.json();
    assert_eq!(names(&literal), ["login_50%"]);
    let underscore = app.get("/api/v1/search?query=n_5").await.json();
    assert_eq!(names(&underscore), ["login_50%"]);
}

async fn a_repeated_search_is_a_hit_and_an_import_invalidates_it(backend: Backend) {
    let app = TestApp::new(backend).await;
    catalog(&app).await;

    let first = app.get("/api/v1/search?query=cart").await;
    let second = app.get("/api/v1/search?query=%20Cart%20").await;
    import(&app, vec![entry("testmo", "Cart badge", "https://t/9", "")]).await;
    let after_import = app.get("/api/v1/search?query=cart").await;

    assert_eq!(first.cache_status(), "MISS");
    assert_eq!(
        second.cache_status(),
        "HIT",
        "normalised queries share an entry"
    );
    assert_eq!(first.body, second.body);
    assert_eq!(after_import.cache_status(), "MISS");
    assert_eq!(names(&after_import.json()), ["Cart API", "Cart badge"]);
}

async fn the_source_filter_and_limit_shape_results_and_the_cache_key(backend: Backend) {
    let app = TestApp::new(backend).await;
    catalog(&app).await;

    let testmo = app.get("/api/v1/search?query=login&source=testmo").await;
    let all = app.get("/api/v1/search?query=login").await;
    let one = app.get("/api/v1/search?query=login&limit=1").await;

    assert_eq!(names(&testmo.json()), ["Login with SSO", "Checkout total"]);
    assert_eq!(all.cache_status(), "MISS");
    assert_eq!(one.cache_status(), "MISS");
    assert_eq!(names(&one.json()), ["Login API"]);
    app.get("/api/v1/search?query=login&source=jira")
        .await
        .assert_error(StatusCode::BAD_REQUEST);
}

async fn importing_an_existing_url_replaces_the_entry(backend: Backend) {
    let app = TestApp::new(backend).await;
    catalog(&app).await;

    let summary = import(
        &app,
        vec![
            entry("postman", "Cart API v2", "https://p/2", "add items"),
            entry("postman", "Orders API", "https://p/4", ""),
        ],
    )
    .await;

    assert_eq!(
        summary,
        json!({"inserted": 1, "updated": 1, "unchanged": 0})
    );
    let results = app.get("/api/v1/search?query=cart").await.json();
    assert_eq!(names(&results), ["Cart API v2"]);
}

async fn an_import_that_changes_nothing_keeps_every_cached_search(backend: Backend) {
    let app = TestApp::new(backend).await;
    catalog(&app).await;
    let searches = [
        "/api/v1/search?query=login",
        "/api/v1/search?query=cart&source=postman",
    ];
    for uri in searches {
        assert_eq!(app.get(uri).await.cache_status(), "MISS", "{uri}");
    }

    // The same entries again, byte for byte: nothing written, nothing dropped.
    let summary = import(
        &app,
        vec![
            entry("postman", "Cart API", "https://p/2", "add items"),
            entry(
                "testmo",
                "Login with SSO",
                "https://t/1",
                "single sign-on login",
            ),
        ],
    )
    .await;
    assert_eq!(
        summary,
        json!({"inserted": 0, "updated": 0, "unchanged": 2})
    );
    for uri in searches {
        assert_eq!(app.get(uri).await.cache_status(), "HIT", "{uri}");
    }

    // A change of case only is a change: the next search reads the catalog again.
    let summary = import(
        &app,
        vec![entry("postman", "Cart api", "https://p/2", "add items")],
    )
    .await;
    assert_eq!(
        summary,
        json!({"inserted": 0, "updated": 1, "unchanged": 0})
    );
    let after = app.get(searches[1]).await;
    assert_eq!(after.cache_status(), "MISS");
    assert_eq!(names(&after.json()), ["Cart api"]);
}

async fn out_of_range_limits_and_bad_queries_are_400(backend: Backend) {
    let app = TestApp::new(backend).await;
    for uri in [
        "/api/v1/search?query=x&limit=0".to_owned(),
        "/api/v1/search?query=x&limit=101".to_owned(),
        "/api/v1/search?query=x&limit=-1".to_owned(),
        "/api/v1/search?query=x&limit=ten".to_owned(),
        "/api/v1/search?query=".to_owned(),
        "/api/v1/search".to_owned(),
        "/api/v1/search?query=x&unknown=1".to_owned(),
        format!("/api/v1/search?query={}", "a".repeat(201)),
        "/api/v1/search?query=a+b+c+d+e+f+g+h+i".to_owned(),
    ] {
        let response = app.get(&uri).await;
        response.assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(response.cache_status(), "MISS", "{uri}");
    }
    assert_eq!(
        app.get("/api/v1/search?query=x&limit=100").await.status,
        StatusCode::OK
    );
}

async fn bad_imports_are_4xx_and_change_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    catalog(&app).await;

    let bad_source = app
        .post(
            "/api/v1/catalog/import",
            json!({"entries": [entry("jira", "x", "https://x", "")]}),
        )
        .await;
    let blank_name = app
        .post(
            "/api/v1/catalog/import",
            json!({"entries": [entry("postman", "ok", "https://ok", ""), entry("postman", " ", "https://y", "")]}),
        )
        .await;
    let empty = app
        .post("/api/v1/catalog/import", json!({"entries": []}))
        .await;

    bad_source.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    blank_name.assert_error(StatusCode::BAD_REQUEST);
    empty.assert_error(StatusCode::BAD_REQUEST);
    let ok = app.get("/api/v1/search?query=ok").await.json();
    assert_eq!(ok, json!([]), "a rejected import writes nothing");
}

async fn a_nul_character_is_a_400_never_a_5xx(backend: Backend) {
    let app = TestApp::new(backend).await;
    catalog(&app).await;

    let search = app.get("/api/v1/search?query=log%00in").await;
    let import = app
        .post(
            "/api/v1/catalog/import",
            json!({"entries": [entry("postman", "Null\u{0}byte", "https://p/9", "")]}),
        )
        .await;
    let in_text = app
        .post(
            "/api/v1/catalog/import",
            json!({"entries": [entry("postman", "Nul", "https://p/9", "a\u{0}b")]}),
        )
        .await;

    search.assert_error(StatusCode::BAD_REQUEST);
    import.assert_error(StatusCode::BAD_REQUEST);
    in_text.assert_error(StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/search?query=nul").await.json(), json!([]));
}
