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
    let source = if query.source().is_some() {
        next += 1;
        format!(" AND source = {}", (dialect.placeholder)(next - 1))
    } else {
        String::new()
    };
    Parts {
        terms,
        score: score.join(" + "),
        source,
        limit: (dialect.placeholder)(next),
    }
}

/// The ranked search: every entry containing a term, best first. `candidates`, if given, renders
/// from the terms' placeholders a condition that holds for at least every entry containing a
/// term (an index lookup), to which the ranking is narrowed.
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

/// Relevance in 0..=1 from an integer score.
pub(crate) fn relevance(score: i64, query: &SearchQuery) -> f64 {
    score as f64 / f64::from(query.max_score())
}
