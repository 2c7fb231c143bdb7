//! axum's `Json`, `Path` and `Query` extractors, with rejections in the API's error envelope, and
//! the request headers the cache and the conditional writes read (`Cache-Control`, `If-Match`).

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header::{CACHE_CONTROL, IF_MATCH};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use qa_pms_core::cache::{etag_of, CacheMode};

use crate::error::ApiError;

#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `If-Match` (RFC 9110 §13.1.1) on PATCH, PUT and DELETE: absent, `*` (any current version), or
/// the entity tags of the versions the client is willing to overwrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    Absent,
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    /// Parses the header's values; `None` if one is not a list of quoted entity tags.
    fn parse<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Option<Self> {
        let mut tags = Vec::new();
        let mut any = false;
        for value in values {
            for tag in value.to_str().ok()?.split(',').map(str::trim) {
                if tag == "*" {
                    any = true;
                    continue;
                }
                let opaque = tag.strip_prefix("W/").unwrap_or(tag);
                if opaque.len() < 2 || !opaque.starts_with('"') || !opaque.ends_with('"') {
                    return None;
                }
                tags.push(tag.to_owned());
            }
        }
        Some(match (any, tags.is_empty()) {
            (true, _) => IfMatch::Any,
            (false, true) => IfMatch::Absent,
            (false, false) => IfMatch::Tags(tags),
        })
    }

    /// Whether a current representation tagged `etag` satisfies the condition (strong
    /// comparison: a weak tag never matches).
    fn admits(&self, etag: &str) -> bool {
        match self {
            IfMatch::Absent | IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|tag| tag == etag),
        }
    }

    /// The current version a conditional write must find unchanged when it writes, read by
    /// `current` (only when there is a condition): `None` without `If-Match`, 412 when the
    /// resource does not exist or its ETag (that of the JSON a GET answers) is not named.
    pub async fn check<V, E, Fut>(&self, current: Fut) -> Result<Option<V>, ApiError>
    where
        V: serde::Serialize,
        E: Into<ApiError>,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        if *self == IfMatch::Absent {
            return Ok(None);
        }
        let current = match current.await.map_err(Into::into) {
            Ok(current) => current,
            Err(ApiError::NotFound(what)) => {
                return Err(ApiError::PreconditionFailed(format!(
                    "If-Match: the {what} does not exist"
                )))
            }
            Err(e) => return Err(e),
        };
        let json = serde_json::to_vec(&current).map_err(|e| ApiError::Internal(e.to_string()))?;
        if !self.admits(&etag_of(&json)) {
            return Err(ApiError::PreconditionFailed(
                "If-Match names no current version: GET the resource again and reapply the change"
                    .into(),
            ));
        }
        Ok(Some(current))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        IfMatch::parse(parts.headers.get_all(IF_MATCH).iter()).ok_or_else(|| {
            ApiError::BadRequest("If-Match must be * or a list of quoted entity tags".into())
        })
    }
}

/// What the request's `Cache-Control` asks of a cached GET (RFC 9111 §5.2.1): `no-store`
/// bypasses the cache; `no-cache` or `max-age=0` reloads from the source and stores the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestCache(pub CacheMode);

impl RequestCache {
    fn parse<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Self {
        let mut mode = CacheMode::Normal;
        for value in values {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
                match directive.as_str() {
                    "no-store" => return RequestCache(CacheMode::NoStore),
                    "no-cache" | "max-age=0" => mode = CacheMode::Reload,
                    _ => {}
                }
            }
        }
        RequestCache(mode)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestCache {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestCache::parse(
            parts.headers.get_all(CACHE_CONTROL).iter(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_match(values: &[&str]) -> Option<IfMatch> {
        let values: Vec<HeaderValue> = values
            .iter()
            .map(|v| HeaderValue::from_str(v).unwrap())
            .collect();
        IfMatch::parse(values.iter())
    }

    #[test]
    fn if_match_reads_lists_stars_and_refuses_bare_words() {
        assert_eq!(if_match(&[]), Some(IfMatch::Absent));
        assert_eq!(if_match(&["*"]), Some(IfMatch::Any));
        assert_eq!(
            if_match(&["\"a\", W/\"b\"", "\"c\""]),
            Some(IfMatch::Tags(vec![
                "\"a\"".into(),
                "W/\"b\"".into(),
                "\"c\"".into()
            ]))
        );
        assert_eq!(if_match(&["abc"]), None);
        assert_eq!(if_match(&["\""]), None);
    }

    #[test]
    fn if_match_compares_strongly() {
        let tags = if_match(&["\"a\", W/\"b\""]).unwrap();
        assert!(tags.admits("\"a\""));
        assert!(!tags.admits("\"b\""), "a weak tag never matches");
        assert!(!tags.admits("\"c\""));
        assert!(IfMatch::Any.admits("\"c\""));
    }

    #[test]
    fn cache_control_no_store_wins_over_no_cache() {
        let parse = |v: &[&str]| {
            let values: Vec<HeaderValue> = v
                .iter()
                .map(|v| HeaderValue::from_str(v).unwrap())
                .collect();
            RequestCache::parse(values.iter()).0
        };
        assert_eq!(parse(&[]), CacheMode::Normal);
        assert_eq!(parse(&["max-age=60"]), CacheMode::Normal);
        assert_eq!(parse(&["No-Cache"]), CacheMode::Reload);
        assert_eq!(parse(&["max-age=0"]), CacheMode::Reload);
        assert_eq!(parse(&["no-cache", "no-store"]), CacheMode::NoStore);
    }
}
