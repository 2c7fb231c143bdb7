//! The test catalog (Postman requests and Testmo cases) and searches across it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{bounded_text, required_text, ValidationError};

/// Where a catalog entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Postman,
    Testmo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Postman => "postman",
            Source::Testmo => "testmo",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "postman" => Ok(Source::Postman),
            "testmo" => Ok(Source::Testmo),
            other => Err(ValidationError::new(
                "source",
                format!("`{other}` is not one of postman, testmo"),
            )),
        }
    }
}

pub const NAME_MAX: usize = 500;
pub const URL_MAX: usize = 2_048;
pub const TEXT_MAX: usize = 16_384;

/// One entry of the catalog, as imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub source: Source,
    #[schema(min_length = 1, max_length = 500)]
    pub name: String,
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 16384)]
    pub text: String,
}

impl CatalogEntry {
    pub fn validate(self) -> Result<Self, ValidationError> {
        Ok(Self {
            source: self.source,
            name: required_text("name", &self.name, NAME_MAX)?,
            url: required_text("url", &self.url, URL_MAX)?,
            text: bounded_text("text", self.text.trim(), TEXT_MAX)?.to_owned(),
        })
    }

    /// The lower-cased text a search matches against: name and text. Computed here, not in SQL, so
    /// that both backends fold case the same way.
    pub fn search_name(&self) -> String {
        self.name.to_lowercase()
    }

    pub fn search_text(&self) -> String {
        self.text.to_lowercase()
    }
}

/// The entries an upstream catalog (Postman, Testmo) yields in one sync, and how many of its
/// items did not fit the catalog as they were.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogEntries {
    /// Each passes [`CatalogEntry::validate`] unchanged; URLs are distinct.
    pub entries: Vec<CatalogEntry>,
    pub skipped: SkipCounts,
    pub truncated: TruncateCounts,
}

/// Items left out, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkipCounts {
    pub no_name: usize,
    pub no_url: usize,
    pub url_too_long: usize,
    pub duplicate_url: usize,
}

impl SkipCounts {
    pub fn total(&self) -> usize {
        self.no_name + self.no_url + self.url_too_long + self.duplicate_url
    }
}

/// Entries kept with a shortened field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TruncateCounts {
    pub names: usize,
    pub texts: usize,
}

/// One search hit, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    pub source: Source,
    pub name: String,
    pub url: String,
    pub relevance: f64,
}

pub const QUERY_MAX_CHARS: usize = 200;
pub const QUERY_MAX_TERMS: usize = 8;
pub const LIMIT_MAX: u32 = 100;
pub const LIMIT_DEFAULT: u32 = 10;

/// Points a term scores when it is found in an entry's name, and in its text.
pub const NAME_POINTS: u32 = 3;
pub const TEXT_POINTS: u32 = 1;

/// A validated search: lower-cased distinct terms, an optional source, a limit in 1..=100.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SearchQuery {
    terms: Vec<String>,
    source: Option<Source>,
    limit: u32,
}

impl SearchQuery {
    pub fn new(
        query: &str,
        source: Option<Source>,
        limit: Option<u32>,
    ) -> Result<Self, ValidationError> {
        if query.chars().count() > QUERY_MAX_CHARS {
            return Err(ValidationError::new(
                "query",
                format!("must be at most {QUERY_MAX_CHARS} characters"),
            ));
        }
        if query.contains('\0') {
            return Err(ValidationError::new(
                "query",
                "must not contain NUL (U+0000) characters",
            ));
        }
        let mut terms: Vec<String> = Vec::new();
        for term in query.split_whitespace().map(str::to_lowercase) {
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        if terms.is_empty() {
            return Err(ValidationError::new("query", "must contain a search term"));
        }
        if terms.len() > QUERY_MAX_TERMS {
            return Err(ValidationError::new(
                "query",
                format!("must have at most {QUERY_MAX_TERMS} distinct terms"),
            ));
        }
        let limit = limit.unwrap_or(LIMIT_DEFAULT);
        if !(1..=LIMIT_MAX).contains(&limit) {
            return Err(ValidationError::new(
                "limit",
                format!("must be between 1 and {LIMIT_MAX}"),
            ));
        }
        Ok(Self {
            terms,
            source,
            limit,
        })
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    pub fn source(&self) -> Option<Source> {
        self.source
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The highest score an entry can reach; relevance is score / max_score.
    pub fn max_score(&self) -> u32 {
        (NAME_POINTS + TEXT_POINTS) * self.terms.len() as u32
    }

    /// The cache key: normalised terms in query order, then every parameter that changes the result.
    /// `"Login  API"` and `"login api"` share a key; `"api login"` does not (same hits, but the key
    /// stays a plain function of the query).
    pub fn cache_key(&self) -> String {
        format!(
            "{}|source={}|limit={}",
            self.terms.join(" "),
            self.source.map_or("all", Source::as_str),
            self.limit
        )
    }

    /// The query a [`Self::cache_key`] was made from (the key of a cache being warmed); `None`
    /// for a string no query has as its key.
    pub fn from_cache_key(key: &str) -> Option<Self> {
        let mut parts = key.rsplitn(3, '|');
        let limit = parts.next()?.strip_prefix("limit=")?.parse().ok()?;
        let source = match parts.next()?.strip_prefix("source=")? {
            "all" => None,
            source => Some(source.parse().ok()?),
        };
        let query = Self::new(parts.next()?, source, Some(limit)).ok()?;
        (query.cache_key() == key).then_some(query)
    }

    /// A term as a LIKE pattern, with the LIKE wildcards `%`, `_` and the escape `\` escaped.
    pub fn like_pattern(term: &str) -> String {
        let mut pattern = String::with_capacity(term.len() + 2);
        pattern.push('%');
        for c in term.chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        pattern
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cache_key_gives_back_its_query() {
        for (query, source, limit) in [
            ("Login  API", None, None),
            ("a|b c", Some(super::Source::Postman), Some(7)),
        ] {
            let query = super::SearchQuery::new(query, source, limit).unwrap();
            let key = query.cache_key();
            assert_eq!(
                super::SearchQuery::from_cache_key(&key)
                    .unwrap()
                    .cache_key(),
                key
            );
        }
        for key in [
            "",
            "x",
            "x|source=all",
            "x|source=nope|limit=1",
            "X|source=all|limit=20",
        ] {
            assert!(super::SearchQuery::from_cache_key(key).is_none(), "{key}");
        }
    }

    use super::*;

    #[test]
    fn queries_that_differ_in_case_and_spacing_share_a_cache_key() {
        let a = SearchQuery::new("Login  API", None, None).unwrap();
        let b = SearchQuery::new(" login api ", None, Some(10)).unwrap();
        assert_eq!(a.cache_key(), b.cache_key());
    }

    #[test]
    fn every_parameter_changes_the_cache_key() {
        let base = SearchQuery::new("login", None, None).unwrap();
        let by_source = SearchQuery::new("login", Some(Source::Postman), None).unwrap();
        let by_limit = SearchQuery::new("login", None, Some(11)).unwrap();
        assert_ne!(base.cache_key(), by_source.cache_key());
        assert_ne!(base.cache_key(), by_limit.cache_key());
    }

    #[test]
    fn limits_outside_one_to_a_hundred_are_rejected() {
        assert!(SearchQuery::new("x", None, Some(0)).is_err());
        assert!(SearchQuery::new("x", None, Some(101)).is_err());
        assert!(SearchQuery::new("x", None, Some(100)).is_ok());
    }

    #[test]
    fn blank_long_and_wordy_queries_are_rejected() {
        assert!(SearchQuery::new("   ", None, None).is_err());
        assert!(SearchQuery::new(&"a".repeat(201), None, None).is_err());
        assert!(SearchQuery::new("a b c d e f g h i", None, None).is_err());
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(SearchQuery::like_pattern("50%_a\\"), "%50\\%\\_a\\\\%");
    }
}
