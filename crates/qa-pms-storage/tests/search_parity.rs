//! Catalog search means the same on both backends, and the same as the `LIKE` scan that the
//! trigram indexes replaced: a generated catalog of several thousand entries (mixed case,
//! non-ASCII, punctuation, FTS5 operators, words inside words), a few hundred searches, and the
//! results compared entry by entry and in order.
//!
//! One difference from the old scan is deliberate: SQLite's LIKE read U+FFFE and U+FFFF as
//! U+FFFD, so a term holding any of the three matched the others there and not on PostgreSQL.
//! SQLite now matches them exactly, as PostgreSQL always did; searches for those terms are compared
//! with PostgreSQL's scan instead of SQLite's.
//!
//! PostgreSQL comes from `QA_PMS_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); `QA_PMS_TEST_POSTGRES=off` leaves it out, and
//! then SQLite is compared with the scan alone.

#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is the point

use std::path::{Path, PathBuf};

use qa_pms_core::catalog::{NAME_POINTS, TEXT_POINTS};
use qa_pms_core::{CatalogEntry, SearchQuery, SearchResult, Source};
use qa_pms_storage::{PostgresStore, SqliteStore, Store};
use sqlx::{Connection, Row};

/// Entries in the generated catalog, before the deletions: more than SQLite's first-tier walk
/// reads (4,000), so that searches are answered by the walk, by the ranking of the index's
/// candidates after a walk that fell short, and by the table scan.
const CATALOG: u64 = 6_000;
/// Generated searches, on top of the hand-written edge cases.
const RANDOM_SEARCHES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_return_what_the_like_scan_returned_for_every_search() {
    let mut rng = Rng(0x5eed_cafe);
    let catalog: Vec<CatalogEntry> = (0..CATALOG).map(|i| entry(&mut rng, i)).collect();
    // Re-imported with new names and texts (the index follows an update), or unchanged.
    let changed: Vec<CatalogEntry> = catalog
        .iter()
        .step_by(7)
        .map(|e| CatalogEntry {
            name: format!("{} {}", pick(&mut rng, WORDS), e.name),
            text: phrase(&mut rng, 12),
            ..e.clone()
        })
        .chain(catalog.iter().step_by(11).cloned())
        .collect();
    // Deleted outright (the index follows a delete).
    let deleted: Vec<&CatalogEntry> = catalog.iter().skip(3).step_by(13).collect();

    let backends = Backends::new().await;
    for store in backends.stores() {
        for chunk in catalog.chunks(1_000) {
            store.import_catalog(chunk).await.unwrap();
        }
        store.import_catalog(&changed).await.unwrap();
    }
    backends.delete(&deleted).await;
    backends.assert_sqlite_index_matches_the_table().await;

    let searches = searches(&mut rng, &catalog);
    let outcome = backends.compare(&searches).await;
    assert!(searches.len() >= 300, "{} searches", searches.len());
    // The comparison is worth something only if the searches find things, fill their limit (ties
    // at the cut) and go through the index as well as around it.
    assert!(
        outcome.with_results * 10 >= searches.len() * 7,
        "{outcome:?}"
    );
    assert!(outcome.full_pages >= 50, "{outcome:?}");
    assert!(outcome.indexable >= 150, "{outcome:?}");
    assert!(outcome.not_indexable >= 50, "{outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_imported_before_the_index_existed_are_found() {
    let mut rng = Rng(42);
    let catalog: Vec<CatalogEntry> = (0..600).map(|i| entry(&mut rng, i)).collect();
    let backends = Backends::unmigrated().await;
    for store in backends.stores() {
        store.import_catalog(&catalog).await.unwrap();
        store.migrate().await.unwrap();
    }
    backends.assert_sqlite_index_matches_the_table().await;

    let searches = searches(&mut rng, &catalog);
    let outcome = backends.compare(&searches).await;
    assert!(
        outcome.with_results * 10 >= searches.len() * 7,
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noncharacter_is_not_the_replacement_character_on_any_backend() {
    let backends = Backends::new().await;
    let catalog: Vec<CatalogEntry> = ["a\u{FFFD}b", "a\u{FFFE}b", "a\u{FFFF}b"]
        .iter()
        .enumerate()
        .map(|(i, name)| CatalogEntry {
            source: Source::Testmo,
            name: (*name).to_owned(),
            url: format!("https://testmo.example.test/{i}"),
            text: String::new(),
        })
        .collect();
    for store in backends.stores() {
        store.import_catalog(&catalog).await.unwrap();
        // Three characters go through the trigram index; one scans the table.
        for term in ["a\u{FFFF}b", "\u{FFFF}"] {
            let query = SearchQuery::new(term, None, None).unwrap();
            let names: Vec<String> = store
                .search(&query)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.name)
                .collect();
            assert_eq!(names, ["a\u{FFFF}b"], "{:?}: {term:?}", store.backend());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reference: the LIKE scan every search ran before the trigram indexes, kept verbatim.

fn like_scan_sql(
    query: &SearchQuery,
    placeholder: impl Fn(usize) -> String,
    collate: &str,
) -> String {
    let terms = query.terms().len();
    let mut score = Vec::with_capacity(terms * 2);
    let mut any = Vec::with_capacity(terms * 2);
    for i in 1..=terms {
        let p = placeholder(i);
        score.push(format!(
            "CASE WHEN search_name LIKE {p} ESCAPE '\\' THEN {NAME_POINTS} ELSE 0 END"
        ));
        score.push(format!(
            "CASE WHEN search_text LIKE {p} ESCAPE '\\' THEN {TEXT_POINTS} ELSE 0 END"
        ));
        any.push(format!("search_name LIKE {p} ESCAPE '\\'"));
        any.push(format!("search_text LIKE {p} ESCAPE '\\'"));
    }
    let mut next = terms + 1;
    let source = if query.source().is_some() {
        next += 1;
        format!(" AND source = {}", placeholder(next - 1))
    } else {
        String::new()
    };
    format!(
        "SELECT source, name, url, ({score}) AS score FROM catalog_entries \
         WHERE ({any}){source} \
         ORDER BY score DESC, name{collate}, source{collate}, url{collate} LIMIT {limit}",
        score = score.join(" + "),
        any = any.join(" OR "),
        limit = placeholder(next),
    )
}

fn result(
    source: &str,
    name: String,
    url: String,
    score: i64,
    query: &SearchQuery,
) -> SearchResult {
    SearchResult {
        source: source.parse().unwrap(),
        name,
        url,
        relevance: score as f64 / f64::from(query.max_score()),
    }
}

async fn like_scan_sqlite(store: &SqliteStore, query: &SearchQuery) -> Vec<SearchResult> {
    let sql = like_scan_sql(query, |i| format!("?{i}"), "");
    let mut q = sqlx::query(&sql);
    for term in query.terms() {
        q = q.bind(SearchQuery::like_pattern(term));
    }
    if let Some(source) = query.source() {
        q = q.bind(source.as_str());
    }
    let rows = q
        .bind(i64::from(query.limit()))
        .fetch_all(store.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let source: String = row.get("source");
            result(
                &source,
                row.get("name"),
                row.get("url"),
                row.get("score"),
                query,
            )
        })
        .collect()
}

async fn like_scan_postgres(store: &PostgresStore, query: &SearchQuery) -> Vec<SearchResult> {
    let sql = like_scan_sql(query, |i| format!("${i}"), " COLLATE \"C\"");
    let mut q = sqlx::query(&sql);
    for term in query.terms() {
        q = q.bind(SearchQuery::like_pattern(term));
    }
    if let Some(source) = query.source() {
        q = q.bind(source.as_str());
    }
    let rows = q
        .bind(i64::from(query.limit()))
        .fetch_all(store.pool())
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            let source: String = row.get("source");
            let score: i32 = row.get("score");
            result(
                &source,
                row.get("name"),
                row.get("url"),
                score.into(),
                query,
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The two databases of a test, and the comparison.

struct Backends {
    sqlite: SqliteStore,
    postgres: Option<PostgresStore>,
    _databases: Vec<TestDb>,
}

#[derive(Debug, Default)]
struct Outcome {
    with_results: usize,
    full_pages: usize,
    /// Every term has a trigram (three characters or more): the indexes can answer.
    indexable: usize,
    not_indexable: usize,
}

impl Backends {
    async fn new() -> Self {
        let backends = Self::unmigrated().await;
        for store in backends.stores() {
            store.migrate().await.unwrap();
        }
        backends
    }

    /// Fresh databases with the migrations before the search indexes (0001..=0003) applied.
    async fn unmigrated() -> Self {
        let (sqlite_db, sqlite_url) = TestDb::sqlite();
        let sqlite = SqliteStore::connect(&sqlite_url).await.unwrap();
        migrations_before_search("sqlite")
            .await
            .run(sqlite.pool())
            .await
            .unwrap();
        let mut databases = vec![sqlite_db];
        let postgres = if postgres_switched_off() {
            eprintln!("QA_PMS_TEST_POSTGRES=off: SQLite is compared with the LIKE scan alone");
            None
        } else {
            let (db, url) = TestDb::postgres().await;
            databases.push(db);
            let store = PostgresStore::connect(&url).await.unwrap();
            migrations_before_search("postgres")
                .await
                .run(store.pool())
                .await
                .unwrap();
            Some(store)
        };
        Self {
            sqlite,
            postgres,
            _databases: databases,
        }
    }

    fn stores(&self) -> Vec<&dyn Store> {
        let mut stores: Vec<&dyn Store> = vec![&self.sqlite];
        if let Some(postgres) = &self.postgres {
            stores.push(postgres);
        }
        stores
    }

    async fn delete(&self, entries: &[&CatalogEntry]) {
        for e in entries {
            sqlx::query("DELETE FROM catalog_entries WHERE source = ?1 AND url = ?2")
                .bind(e.source.as_str())
                .bind(&e.url)
                .execute(self.sqlite.pool())
                .await
                .unwrap();
            if let Some(postgres) = &self.postgres {
                sqlx::query("DELETE FROM catalog_entries WHERE source = $1 AND url = $2")
                    .bind(e.source.as_str())
                    .bind(&e.url)
                    .execute(postgres.pool())
                    .await
                    .unwrap();
            }
        }
    }

    /// FTS5 checks its index against the content table (`rank` 1): every insert, update and
    /// delete reached it. PostgreSQL maintains its GIN indexes itself.
    async fn assert_sqlite_index_matches_the_table(&self) {
        sqlx::query(
            "INSERT INTO catalog_search (catalog_search, rank) VALUES ('integrity-check', 1)",
        )
        .execute(self.sqlite.pool())
        .await
        .unwrap();
    }

    async fn compare(&self, searches: &[SearchQuery]) -> Outcome {
        let mut outcome = Outcome::default();
        for query in searches {
            let sqlite = self.sqlite.search(query).await.unwrap();
            if !holds_a_replacement_character(query) {
                let scanned = like_scan_sqlite(&self.sqlite, query).await;
                assert_eq!(sqlite, scanned, "SQLite search vs the LIKE scan: {query:?}");
            }
            if let Some(postgres) = &self.postgres {
                let scanned = like_scan_postgres(postgres, query).await;
                let found = postgres.search(query).await.unwrap();
                assert_eq!(
                    found, scanned,
                    "PostgreSQL search vs the LIKE scan: {query:?}"
                );
                assert_eq!(found, sqlite, "PostgreSQL vs SQLite: {query:?}");
            }
            outcome.with_results += usize::from(!sqlite.is_empty());
            outcome.full_pages += usize::from(sqlite.len() == query.limit() as usize);
            if query.terms().iter().all(|t| t.chars().count() >= 3) {
                outcome.indexable += 1;
            } else {
                outcome.not_indexable += 1;
            }
        }
        outcome
    }
}

/// Whether a term holds U+FFFD, U+FFFE or U+FFFF, which SQLite's LIKE told no apart.
fn holds_a_replacement_character(query: &SearchQuery) -> bool {
    query
        .terms()
        .iter()
        .any(|t| t.contains(['\u{FFFD}', '\u{FFFE}', '\u{FFFF}']))
}

/// The crate's migrations up to, not including, the search indexes: a database as it was before.
async fn migrations_before_search(backend: &str) -> sqlx::migrate::Migrator {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let to = std::env::temp_dir().join(format!(
        "qa-pms-migrations-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir(&to).unwrap();
    for file in std::fs::read_dir(&from).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        if name.as_str() < "0004" {
            std::fs::copy(file.path(), to.join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(to.clone()).await.unwrap();
    std::fs::remove_dir_all(&to).unwrap();
    assert_eq!(migrator.iter().count(), 3, "migrations before 0004");
    migrator
}

// ---------------------------------------------------------------------------------------------
// The generated catalog and searches.

/// Words of entries and searches: cases, scripts whose lower case is not one character per
/// character (`İ`, final sigma, `ß`), LIKE wildcards and escapes, quotes, FTS5 operators and
/// syntax, one- and two-character words, and words that hide inside others.
const WORDS: &[&str] = &[
    "login",
    "Login",
    "LOGIN",
    "logout",
    "log",
    "in",
    "catalog",
    "checkout",
    "check",
    "out",
    "api",
    "API",
    "Api",
    "rapid",
    "payment",
    "pay",
    "ment",
    "token",
    "session",
    "timeout",
    "time",
    "Straße",
    "STRASSE",
    "strasse",
    "Ça",
    "façade",
    "FAÇADE",
    "naïve",
    "Ünïcödé",
    "ÆØÅ",
    "æøå",
    "İstanbul",
    "ISTANBUL",
    "istanbul",
    "ΣΟΦΙΑ",
    "ΟΔΟΣ",
    "σοφία",
    "Привет",
    "ПРИВЕТ",
    "検索",
    "テスト",
    "🚀🚀",
    "\u{212A}elvin",
    "ﬁle",
    "ǅemal",
    "Ǆ",
    "\u{FFFF}x",
    "\u{FFFD}x",
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "NEAR(a",
    "\"quoted\"",
    "'single'",
    "it's",
    "a*",
    "*",
    "-",
    "-x",
    "^start",
    "col:value",
    "search_name:",
    "{search_text}",
    "(group)",
    "+",
    "50%",
    "100%_done",
    "under_score",
    "back\\slash",
    "%_",
    "\\%",
    "a",
    "b",
    "ab",
    "ba",
    "QA",
    "qa",
    "x",
    "é",
    "ß",
    "GET",
    "POST",
    "/api/v1/users",
    "https://x.test/a?b=c&d=e",
    "e-mail",
    "e.g.",
    "C++",
    "C#",
    "node.js",
];
const SEPARATORS: &[&str] = &[" ", " ", " ", "-", "_", "/", ".", "", "\n", ", "];

/// A small deterministic generator (SplitMix64): the same catalog and searches on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[rng.below(items.len())]
}

fn phrase(rng: &mut Rng, max_words: usize) -> String {
    let mut out = String::new();
    for i in 0..rng.below(max_words + 1) {
        if i > 0 {
            out.push_str(pick(rng, SEPARATORS));
        }
        out.push_str(pick(rng, WORDS));
    }
    out
}

fn entry(rng: &mut Rng, i: u64) -> CatalogEntry {
    let source = if rng.below(2) == 0 {
        Source::Postman
    } else {
        Source::Testmo
    };
    // Few distinct short names, so that ties on score and name are common and fall to source
    // and url; urls in an order unrelated to insertion.
    let name = match rng.below(4) {
        0 => pick(rng, WORDS).to_owned(),
        _ => format!(
            "{}{}{}",
            pick(rng, WORDS),
            pick(rng, SEPARATORS),
            phrase(rng, 4)
        ),
    };
    let name = if name.trim().is_empty() {
        format!("entry {i}")
    } else {
        name
    };
    CatalogEntry {
        source,
        name,
        url: format!("https://{source}.example.test/{:x}/{i}", rng.next() % 4096),
        text: phrase(rng, 30),
    }
    .validate()
    .unwrap()
}

/// Hand-written edge cases, then random searches: pieces of the catalog's own names and texts
/// (so that most find something), with random case, source and limit.
fn searches(rng: &mut Rng, catalog: &[CatalogEntry]) -> Vec<SearchQuery> {
    let edge_cases = [
        "a",
        "ab",
        "A B",
        "%",
        "_",
        "%%",
        "\\",
        "'",
        "\"",
        "\"\"",
        "*",
        "-",
        "^",
        ":",
        "(",
        ")",
        "AND",
        "OR",
        "NOT",
        "NEAR",
        "near(",
        "NEAR(a",
        "login AND api",
        "login OR api",
        "login NOT api",
        "\"login\"",
        "\"login",
        "login*",
        "log*",
        "-login",
        "^log",
        "search_name:log",
        "{search_name}:log",
        "{search_text}",
        "(log)",
        "50%",
        "_done",
        "%_",
        "\\%",
        "back\\slash",
        "it's",
        "'single'",
        "straße",
        "STRASSE",
        "ss",
        "ß",
        "ça",
        "ÇA",
        "İ",
        "i\u{307}",
        "i̇stanbul",
        "istanbul",
        "σ",
        "ς",
        "οδος",
        "ΟΔΟΣ",
        "σοφία",
        "привет",
        "検索",
        "テスト",
        "🚀",
        "🚀🚀",
        "k",
        "\u{212A}",
        "kelvin",
        "ǆ",
        "ǆemal",
        "\u{FFFD}x",
        "\u{FFFF}x",
        "\u{FFFE}x",
        "fi",
        "ﬁle",
        "file",
        "api",
        "API",
        "lo",
        "gin",
        "ogi",
        "in",
        "e-mail",
        "c++",
        "c#",
        "node.js",
        "e.g.",
        "log in",
        "login login",
        "a b c d e f g h",
        "abc",
        "zzzq",
        "zzzq login",
        "a login",
        "login a",
        "https://x.test/a?b=c&d=e",
        "/api/v1/users",
        "x.test",
        "=c&",
        "100%_done",
    ];
    let limits = [1, 3, 10, 10, 50, 100];
    let mut searches = Vec::new();
    for (n, text) in edge_cases.iter().enumerate() {
        let source = [None, Some(Source::Postman), Some(Source::Testmo)][n % 3];
        searches.push(SearchQuery::new(text, source, Some(limits[n % limits.len()])).unwrap());
        searches.push(SearchQuery::new(text, None, Some(100)).unwrap());
    }
    while searches.len() < edge_cases.len() * 2 + RANDOM_SEARCHES {
        let mut text = String::new();
        for _ in 0..=rng.below(3) {
            let term = match rng.below(6) {
                0 => pick(rng, WORDS).to_owned(),
                1 => "zzzq".to_owned(),
                _ => {
                    let e = &catalog[rng.below(catalog.len())];
                    let from = if rng.below(2) == 0 { &e.name } else { &e.text };
                    let chars: Vec<char> = from.chars().collect();
                    if chars.is_empty() {
                        continue;
                    }
                    let start = rng.below(chars.len());
                    let len = 1 + rng.below(8.min(chars.len() - start));
                    chars[start..start + len].iter().collect()
                }
            };
            let term = match rng.below(3) {
                0 => term.to_uppercase(),
                _ => term,
            };
            text.push_str(&term);
            text.push(' ');
        }
        let source = [None, None, Some(Source::Postman), Some(Source::Testmo)][rng.below(4)];
        let limit = limits[rng.below(limits.len())];
        if let Ok(query) = SearchQuery::new(&text, source, Some(limit)) {
            searches.push(query);
        }
    }
    searches
}

// ---------------------------------------------------------------------------------------------
// Fresh databases, one per test and backend.

fn postgres_switched_off() -> bool {
    std::env::var("QA_PMS_TEST_POSTGRES").is_ok_and(|v| v == "off")
}

enum TestDb {
    Sqlite(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    fn sqlite() -> (Self, String) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let path = std::env::temp_dir().join(format!("qa-pms-test-{id}.db"));
        let url = format!("sqlite:{}", path.display());
        (TestDb::Sqlite(path), url)
    }

    async fn postgres() -> (Self, String) {
        let admin_url = std::env::var("QA_PMS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("qa_pms_test_{}", uuid::Uuid::new_v4().simple());
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
            .unwrap();
        let url = match admin_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("QA_PMS_TEST_POSTGRES_URL has no database part"),
        };
        (TestDb::Postgres { admin_url, name }, url)
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
                        .unwrap();
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
