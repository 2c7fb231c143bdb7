//! Types mirroring the Postman API's JSON (only the parts we read). Collection v2.1 allows a
//! string or an object in several places (a request, a URL, a description); those are untagged
//! enums whose last variant takes anything else, so that one odd item cannot fail a whole
//! collection.

use serde::Deserialize;
use serde_json::Value;

/// `GET /collections`: one page with `meta` when paged, everything without it.
#[derive(Debug, Clone, Deserialize)]
pub struct CollectionList {
    pub collections: Vec<CollectionSummary>,
    #[serde(default)]
    pub meta: Option<PageMeta>,
}

/// One entry of `GET /collections`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionSummary {
    pub id: String,
    /// `{owner}-{id}`: what [`crate::PostmanClient::collection`] takes.
    pub uid: String,
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `meta` of a paged `GET /collections` (Postman sends these as numbers, possibly `2.0`).
#[derive(Debug, Clone, Deserialize)]
pub struct PageMeta {
    #[serde(default)]
    pub total: Option<f64>,
    #[serde(default)]
    pub offset: Option<f64>,
    #[serde(default)]
    pub limit: Option<f64>,
}

/// `GET /collections/{uid}`.
#[derive(Debug, Clone, Deserialize)]
pub struct CollectionResponse {
    pub collection: Collection,
}

/// A collection in Postman Collection v2.1 format.
#[derive(Debug, Clone, Deserialize)]
pub struct Collection {
    pub info: Info,
    #[serde(default)]
    pub item: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Info {
    #[serde(default, rename = "_postman_id")]
    pub postman_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub uid: Option<String>,
    #[serde(default)]
    pub description: Option<Description>,
}

/// A folder (it has `item`) or a request (it has `request`).
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<Description>,
    #[serde(default)]
    pub item: Option<Vec<Item>>,
    #[serde(default)]
    pub request: Option<Request>,
}

/// A request: a URL string (a GET), or an object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Request {
    Url(String),
    Full(Box<RequestObject>),
    Other(Value),
}

#[derive(Debug, Clone, Deserialize)]
pub struct RequestObject {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub url: Option<RequestUrl>,
    #[serde(default)]
    pub description: Option<Description>,
    /// `{"mode": "raw" | "urlencoded" | "formdata" | "graphql" | "file", ...}`, read loosely.
    #[serde(default)]
    pub body: Option<Value>,
}

/// A URL: a string, or an object with `raw` and/or its parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RequestUrl {
    Raw(String),
    Parts(UrlParts),
    Other(Value),
}

#[derive(Debug, Clone, Deserialize)]
pub struct UrlParts {
    #[serde(default)]
    pub raw: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    /// A string, or an array of labels.
    #[serde(default)]
    pub host: Option<Value>,
    #[serde(default)]
    pub port: Option<Value>,
    /// A string, or an array of segments (strings or `{"value": ...}`).
    #[serde(default)]
    pub path: Option<Value>,
    /// `[{"key", "value", "disabled"}]`
    #[serde(default)]
    pub query: Option<Vec<Value>>,
}

/// A description: a string, or `{"content", "type"}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Description {
    Text(String),
    Object {
        #[serde(default)]
        content: Option<Value>,
    },
    Other(Value),
}

impl Description {
    /// The text, if there is any.
    pub fn text(&self) -> Option<&str> {
        let text = match self {
            Description::Text(text) => text.as_str(),
            Description::Object { content } => content.as_ref()?.as_str()?,
            Description::Other(_) => return None,
        };
        Some(text.trim()).filter(|t| !t.is_empty())
    }
}

impl RequestUrl {
    /// The URL as Postman shows it: `raw`, or else rebuilt from its parts.
    pub fn text(&self) -> Option<String> {
        let text = match self {
            RequestUrl::Raw(raw) => raw.trim().to_owned(),
            RequestUrl::Parts(parts) => match parts.raw.as_deref().map(str::trim) {
                Some(raw) if !raw.is_empty() => raw.to_owned(),
                _ => parts.rebuilt(),
            },
            RequestUrl::Other(_) => return None,
        };
        Some(text).filter(|t| !t.is_empty())
    }
}

impl UrlParts {
    /// `protocol://host:port/path?query` from the parts present (disabled query keys left out).
    fn rebuilt(&self) -> String {
        let mut url = String::new();
        if let Some(protocol) = self.protocol.as_deref().filter(|p| !p.is_empty()) {
            url.push_str(protocol);
            url.push_str("://");
        }
        url.push_str(&joined(self.host.as_ref(), "."));
        match &self.port {
            Some(Value::String(port)) if !port.is_empty() => url.push_str(&format!(":{port}")),
            Some(Value::Number(port)) => url.push_str(&format!(":{port}")),
            _ => {}
        }
        let path = joined(self.path.as_ref(), "/");
        if !path.is_empty() {
            if !url.is_empty() && !path.starts_with('/') {
                url.push('/');
            }
            url.push_str(&path);
        }
        let query: Vec<String> = self
            .query
            .iter()
            .flatten()
            .filter(|q| q["disabled"] != Value::Bool(true))
            .filter_map(|q| {
                let key = q["key"].as_str()?;
                Some(match q["value"].as_str() {
                    Some(value) => format!("{key}={value}"),
                    None => key.to_owned(),
                })
            })
            .collect();
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        url
    }
}

/// A string as is, or the strings (or `{"value"}` objects) of an array joined with `separator`.
fn joined(value: Option<&Value>, separator: &str) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.as_str().or_else(|| part["value"].as_str()))
            .collect::<Vec<_>>()
            .join(separator),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn url(value: Value) -> Option<String> {
        serde_json::from_value::<RequestUrl>(value).ok()?.text()
    }

    #[test]
    fn a_url_is_its_raw_text_or_rebuilt_from_its_parts() {
        assert_eq!(
            url(json!(" {{baseUrl}}/a ")).as_deref(),
            Some("{{baseUrl}}/a")
        );
        assert_eq!(
            url(json!({"raw": "{{baseUrl}}/b", "host": ["x"]})).as_deref(),
            Some("{{baseUrl}}/b")
        );
        let parts = json!({
            "protocol": "https", "host": ["api", "example", "test"], "port": "8443",
            "path": ["v1", {"type": "string", "value": "items"}],
            "query": [{"key": "a", "value": "1"}, {"key": "b", "value": "2", "disabled": true}, {"key": "c"}]
        });
        assert_eq!(
            url(parts).as_deref(),
            Some("https://api.example.test:8443/v1/items?a=1&c")
        );
        assert_eq!(
            url(json!({"host": "{{baseUrl}}", "path": "/x"})).as_deref(),
            Some("{{baseUrl}}/x")
        );
        assert_eq!(url(json!(42)), None);
        assert_eq!(url(json!({})), None);
    }

    #[test]
    fn descriptions_are_strings_or_objects_with_content() {
        let text = |v: Value| {
            serde_json::from_value::<Description>(v)
                .ok()
                .and_then(|d| d.text().map(str::to_owned))
        };
        assert_eq!(text(json!("Hello ")).as_deref(), Some("Hello"));
        assert_eq!(
            text(json!({"content": "Hi", "type": "text/markdown"})).as_deref(),
            Some("Hi")
        );
        assert_eq!(text(json!({"type": "text/plain"})), None);
        assert_eq!(text(json!("  ")), None);
        assert_eq!(text(json!(7)), None);
    }

    #[test]
    fn an_odd_request_does_not_fail_its_collection() {
        let collection: Collection = serde_json::from_value(json!({
            "info": {"name": "C"},
            "item": [
                {"name": "a", "request": 42},
                {"name": "b", "request": {"method": "GET", "url": ["?"], "body": "x"}}
            ]
        }))
        .unwrap();
        assert!(matches!(
            collection.item[0].request,
            Some(Request::Other(_))
        ));
        assert!(matches!(collection.item[1].request, Some(Request::Full(_))));
    }
}
