//! The catalog search query, written once for both backends (only the placeholders differ).
//!
//! Each term scores `NAME_POINTS` when it is in an entry's lower-cased name and `TEXT_POINTS`
//! when it is in its lower-cased text; entries are ranked by score, then name, source and url in
//! byte order, so that both backends return the same list.

use qa_pms_core::catalog::{NAME_POINTS, TEXT_POINTS};
use qa_pms_core::SearchQuery;

/// Builds the SQL. Binds, in order: one LIKE pattern per term, then the source if any, then the
/// limit. `placeholder(n)` renders the n-th (1-based) placeholder; `collate` is appended to text
/// columns in ORDER BY so that both backends sort bytes.
pub(crate) fn search_sql(
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

/// Relevance in 0..=1 from an integer score.
pub(crate) fn relevance(score: i64, query: &SearchQuery) -> f64 {
    score as f64 / f64::from(query.max_score())
}
