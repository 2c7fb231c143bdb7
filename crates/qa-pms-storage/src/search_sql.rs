//! The catalog search queries, written once for both backends (a [`Dialect`] holds what differs).
//!
//! Each term scores `NAME_POINTS` when it is in an entry's lower-cased name and `TEXT_POINTS`
//! when it is in its lower-cased text; entries are ranked by score, then name, source and url in
//! byte order, so that both backends return the same list. "In" is plain substring containment,
//! character for character.
//!
//! Each backend has a trigram index (the `0004_catalog_search` migrations) that finds the entries
//! containing a term of three or more characters, so that [`search_sql`] ranks those instead of
//! scanning the table: PostgreSQL's GIN indexes answer the LIKE test itself; SQLite passes the
//! FTS5 lookup as `candidates`.
//!
//! SQLite, whose index also says in a few pages whether a term occurs in a column at all, first
//! tries [`first_tier_sql`]: no entry scores more than the (term, column) pairs that occur are
//! worth, so the entries holding every one of them come first, in name order, and a walk of the
//! name index that finds `limit` of them has the answer without reading every match (a common
//! term matches thousands of entries, and ranking them all means reading all their names).
//!
//! PostgreSQL does the same in steps, in one snapshot: [`occurs_sql`] says which (term, column)
//! pairs occur; [`walk_sql`] walks an index in name order that holds the lower-cased name (an
//! index-only scan, reading the table only for the entries whose names hold every occurring name
//! term); when the walk falls short, [`tier_sql`] intersects the trigram indexes for the entries
//! holding every occurring pair (few, when their names come late in name order) and sorts those;
//! and only when they are fewer than `limit`, [`search_sql`] ranks every match.

use qa_pms_core::catalog::{NAME_POINTS, TEXT_POINTS};
use qa_pms_core::SearchQuery;

/// What a backend puts in the search queries. Every query binds, in order: one value per term
/// (what `contains` compares), then the source if any, then the limit.
pub(crate) struct Dialect {
    /// The n-th (1-based) placeholder.
    pub placeholder: fn(usize) -> String,
    /// SQL true when text column `.0` contains the term bound at `.1`.
    pub contains: fn(&str, &str) -> String,
    /// Appended to text columns in comparisons and ORDER BY so that both backends sort bytes.
    pub collate: &'static str,
}

/// What [`first_tier_sql`] needs besides the [`Dialect`].
pub(crate) struct Walk {
    /// SQL true when some entry may contain the term bound at `.1` in column `.0` (at least when
    /// one does): a cheap index lookup. Every term of a first-tier query must have one.
    pub occurs: fn(&str, &str) -> String,
    /// The most entries the walk reads in name order before giving up.
    pub entries: u32,
}

/// The score of an entry, the placeholder of each term, and the placeholders of the source
/// filter (if any) and the limit.
struct Parts {
    terms: Vec<String>,
    score: String,
    source: String,
    source_placeholder: Option<String>,
    limit: String,
}

fn parts(query: &SearchQuery, dialect: &Dialect) -> Parts {
    let terms: Vec<String> = (1..=query.terms().len()).map(dialect.placeholder).collect();
    let score: Vec<String> = terms
        .iter()
        .flat_map(|t| {
            [
                format!(
                    "CASE WHEN {} THEN {NAME_POINTS} ELSE 0 END",
                    (dialect.contains)("search_name", t)
                ),
                format!(
                    "CASE WHEN {} THEN {TEXT_POINTS} ELSE 0 END",
                    (dialect.contains)("search_text", t)
                ),
            ]
        })
        .collect();
    let mut next = terms.len() + 1;
    let source_placeholder = query.source().map(|_| {
        next += 1;
        (dialect.placeholder)(next - 1)
    });
    let source = source_placeholder
        .as_ref()
        .map_or_else(String::new, |p| format!(" AND source = {p}"));
    Parts {
        terms,
        score: score.join(" + "),
        source,
        source_placeholder,
        limit: (dialect.placeholder)(next),
    }
}

/// The ranked search: every entry containing a term, best first. `candidates`, if given, renders
/// from the terms' placeholders a condition that holds for at least every entry containing a
/// term (an index lookup), to which the ranking is narrowed.
/// Whether the trigram indexes (FTS5 on SQLite, `pg_trgm` on PostgreSQL) can look every term up:
/// a term under three characters has no trigram, and its search scans the table. (A NUL, which
/// FTS5 stops reading at, never reaches here: `SearchQuery::new` refuses it.)
pub(crate) fn trigram_indexable(query: &SearchQuery) -> bool {
    query.terms().iter().all(|term| term.chars().count() >= 3)
}

pub(crate) fn search_sql(
    query: &SearchQuery,
    dialect: &Dialect,
    candidates: Option<fn(&[String]) -> String>,
) -> String {
    let Parts {
        terms,
        score,
        source,
        limit,
        ..
    } = parts(query, dialect);
    let any: Vec<String> = terms
        .iter()
        .flat_map(|t| {
            [
                (dialect.contains)("search_name", t),
                (dialect.contains)("search_text", t),
            ]
        })
        .collect();
    let candidates = candidates.map_or_else(String::new, |c| format!("{} AND ", c(&terms)));
    let collate = dialect.collate;
    format!(
        "SELECT source, name, url, ({score}) AS score FROM catalog_entries \
         WHERE {candidates}({any}){source} \
         ORDER BY score DESC, name{collate}, source{collate}, url{collate} LIMIT {limit}",
        any = any.join(" OR "),
    )
}

/// The first `limit` entries, in name order, that hold every (term, column) pair occurring in the
/// catalog: the search's answer when there are `limit` of them among the first
/// [`Walk::entries`] entries by name, since no entry can score more. Fewer rows: run
/// [`search_sql`]. The walk runs only when some term occurs in names: it then passes over an
/// entry whose name lacks one from the name index alone, where a term found only in texts would
/// need every entry's row read.
pub(crate) fn first_tier_sql(query: &SearchQuery, dialect: &Dialect, walk: &Walk) -> String {
    let Parts {
        terms,
        score,
        source,
        limit,
        ..
    } = parts(query, dialect);
    let mut in_some_name = Vec::with_capacity(terms.len());
    let mut holds_every_pair = Vec::with_capacity(terms.len() * 2);
    for t in &terms {
        for column in ["search_name", "search_text"] {
            let occurs = (walk.occurs)(column, t);
            holds_every_pair.push(format!(
                "(NOT {occurs} OR {})",
                (dialect.contains)(column, t)
            ));
            if column == "search_name" {
                in_some_name.push(occurs);
            }
        }
    }
    let collate = dialect.collate;
    // The name the walk stops at: the walk-th by name, or the last one in a smaller catalog.
    let last = format!(
        "COALESCE((SELECT name{collate} FROM catalog_entries \
                   ORDER BY name{collate} LIMIT 1 OFFSET {offset}), \
                  (SELECT MAX(name{collate}) FROM catalog_entries))",
        offset = walk.entries - 1,
    );
    format!(
        "SELECT source, name, url, ({score}) AS score FROM catalog_entries \
         WHERE name{collate} <= {last} AND ({in_some_name}) AND {every}{source} \
         ORDER BY name{collate}, source{collate}, url{collate} LIMIT {limit}",
        in_some_name = in_some_name.join(" OR "),
        every = holds_every_pair.join(" AND "),
    )
}

/// The two columns a term is looked for in, in the order of [`Occurring`].
pub(crate) const COLUMNS: [&str; 2] = ["search_name", "search_text"];

/// Which (term, column) pairs occur in the catalog: for each term in query order, whether some
/// entry's name and whether some entry's text contains it ([`COLUMNS`] order).
pub(crate) type Occurring = [[bool; 2]];

/// One row of one boolean per (term, column) pair, term by term, in [`COLUMNS`] order: whether
/// the pair occurs, by `occurs(column, term placeholder)`. Binds the terms only.
pub(crate) fn occurs_sql(
    query: &SearchQuery,
    dialect: &Dialect,
    occurs: fn(&str, &str) -> String,
) -> String {
    let pairs: Vec<String> = (1..=query.terms().len())
        .map(dialect.placeholder)
        .flat_map(|t| COLUMNS.map(|column| occurs(column, &t)))
        .collect();
    format!("SELECT {}", pairs.join(", "))
}

/// `contains` of every occurring (term, column) pair, on `columns` (the name column, the text
/// column) as the query names them.
fn every_occurring(
    terms: &[String],
    occurring: &Occurring,
    dialect: &Dialect,
    columns: [&str; 2],
) -> Vec<String> {
    terms
        .iter()
        .zip(occurring)
        .flat_map(|(t, occurs)| {
            columns
                .iter()
                .zip(occurs)
                .filter(|(_, occurs)| **occurs)
                .map(|(column, _)| (dialect.contains)(column, t))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What [`walk_sql`] needs besides the [`Dialect`]: a B-tree index in ranking order holding `id`
/// and `search_name`, partial on `covered`; `uncovered` holds for the other entries (few, with
/// an index of their own).
pub(crate) struct IndexWalk {
    pub covered: &'static str,
    pub uncovered: &'static str,
    /// The most entries of the index the walk reads in name order before giving up.
    pub entries: u32,
}

/// The first `limit` entries, in name order, holding every occurring pair (at least one of them
/// in names): the search's answer when the column `walked` says that the walk found `limit` of
/// them among the first [`IndexWalk::entries`] entries of the index. The names are tested in the
/// index; the table is read only for the entries whose names pass. The entries the index leaves
/// out are tested all and merged in.
pub(crate) fn walk_sql(
    query: &SearchQuery,
    dialect: &Dialect,
    occurring: &Occurring,
    walk: &IndexWalk,
) -> String {
    let Parts {
        terms,
        score,
        source,
        source_placeholder,
        limit,
    } = parts(query, dialect);
    let collate = dialect.collate;
    let order = format!("name{collate}, source{collate}, url{collate}");
    // Names are tested in the index, texts in the table's row.
    let mut in_walk = every_occurring(
        &terms,
        occurring,
        dialect,
        ["walk_search_name", "search_text"],
    );
    if let Some(p) = &source_placeholder {
        in_walk.push(format!("walk_source = {p}"));
    }
    let every = every_occurring(&terms, occurring, dialect, COLUMNS);
    format!(
        "WITH walk AS (\
           SELECT source, name, url, ({score}) AS score FROM (\
             SELECT id AS walk_id, name{collate} AS walk_name, source{collate} AS walk_source, \
                    url{collate} AS walk_url, search_name AS walk_search_name \
             FROM catalog_entries WHERE {covered} ORDER BY {order} LIMIT {entries}) AS index_entries \
           JOIN catalog_entries ON id = walk_id WHERE {in_walk} \
           ORDER BY walk_name, walk_source, walk_url LIMIT {limit}), \
         uncovered AS (\
           SELECT source, name, url, ({score}) AS score FROM catalog_entries \
           WHERE {uncovered} AND {every}{source} ORDER BY {order} LIMIT {limit}) \
         SELECT source, name, url, score, (SELECT COUNT(*) FROM walk) AS walked FROM (\
           SELECT source, name, url, score FROM walk \
           UNION ALL SELECT source, name, url, score FROM uncovered) AS found \
         ORDER BY {order} LIMIT {limit}",
        covered = walk.covered,
        uncovered = walk.uncovered,
        entries = walk.entries,
        in_walk = in_walk.join(" AND "),
        every = every.join(" AND "),
    )
}

/// The first `limit` entries, in name order, holding every occurring pair (at least one): the
/// search's answer when there are `limit` of them. The entries are found by intersecting the
/// pairs' index lookups, all of them, then sorted.
pub(crate) fn tier_sql(query: &SearchQuery, dialect: &Dialect, occurring: &Occurring) -> String {
    let Parts {
        terms,
        score,
        source,
        limit,
        ..
    } = parts(query, dialect);
    let collate = dialect.collate;
    let every = every_occurring(&terms, occurring, dialect, COLUMNS);
    format!(
        "WITH tier AS MATERIALIZED (\
           SELECT source, name, url, ({score}) AS score FROM catalog_entries \
           WHERE {every}{source}) \
         SELECT source, name, url, score FROM tier \
         ORDER BY name{collate}, source{collate}, url{collate} LIMIT {limit}",
        every = every.join(" AND "),
    )
}

/// Relevance in 0..=1 from an integer score.
pub(crate) fn relevance(score: i64, query: &SearchQuery) -> f64 {
    score as f64 / f64::from(query.max_score())
}
