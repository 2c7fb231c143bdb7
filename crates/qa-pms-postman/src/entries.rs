//! Flattening collections into catalog entries, and fitting them to the catalog's limits.
//!
//! - **name**: the collection name, the folder names and the request name joined with
//!   [`SEPARATOR`] (`Shop API / Orders / Refunds / Create refund`). Longer than
//!   [`NAME_MAX`] characters: its start is cut and replaced by `…`, so the request name stays.
//! - **url**: the request URL as Postman shows it (`raw`, variables like `{{baseUrl}}` kept).
//!   The catalog keys entries by (source, url), and several requests often share a URL (a GET and
//!   a POST on `/orders`, or one endpoint tried with different bodies). Every request sharing a
//!   URL with another gets `#<item id>` appended (the item id Postman keeps stable across edits),
//!   and `#<collection uid>/<item id>` if that is still shared (a fork holds the same item ids).
//!   URLs that stay equal after that are kept once.
//! - **text**: `METHOD url`, the request's and the item's descriptions, then the body: raw text,
//!   `key=value` lines of urlencoded and form data (disabled ones left out), the GraphQL query and
//!   variables, a file's path. Longer than [`TEXT_MAX`] characters: cut.
//!
//! Left out, and counted in [`SkipCounts`]: requests without a name or a URL, URLs longer than
//! [`URL_MAX`] characters (a cut URL would name something else), and the repeated URLs above.

use std::collections::{HashMap, HashSet};

pub use qa_pms_core::catalog::{CatalogEntries, SkipCounts, TruncateCounts};
use qa_pms_core::catalog::{NAME_MAX, TEXT_MAX, URL_MAX};
use qa_pms_core::{CatalogEntry, Source};
use serde_json::Value;

use crate::model::{Collection, Item, Request};

/// Between the collection, folder and request names of an entry's name.
pub const SEPARATOR: &str = " / ";

/// A request found in a collection, before it is fitted to the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundRequest {
    pub collection_uid: String,
    pub item_id: Option<String>,
    /// The collection name, then the folder names.
    pub path: Vec<String>,
    pub name: String,
    pub url: Option<String>,
    pub text: String,
}

/// Every request of the collection, folders walked depth first in their order.
pub fn requests_of(collection: &Collection, collection_uid: &str) -> Vec<FoundRequest> {
    let mut found = Vec::new();
    let mut path = Vec::new();
    push_segment(&mut path, Some(&collection.info.name));
    walk(&collection.item, collection_uid, &mut path, &mut found);
    found
}

fn walk(items: &[Item], uid: &str, path: &mut Vec<String>, found: &mut Vec<FoundRequest>) {
    for item in items {
        if let Some(children) = &item.item {
            let pushed = push_segment(path, item.name.as_deref());
            walk(children, uid, path, found);
            if pushed {
                path.pop();
            }
        } else if let Some(request) = &item.request {
            found.push(found_request(item, request, uid, path));
        }
    }
}

fn push_segment(path: &mut Vec<String>, name: Option<&str>) -> bool {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => {
            path.push(name.to_owned());
            true
        }
        None => false,
    }
}

fn found_request(item: &Item, request: &Request, uid: &str, path: &[String]) -> FoundRequest {
    let (method, url, description, body) = match request {
        Request::Url(url) => ("GET".to_owned(), Some(url.trim().to_owned()), None, None),
        Request::Full(object) => (
            object
                .method
                .as_deref()
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .unwrap_or("GET")
                .to_uppercase(),
            object.url.as_ref().and_then(|u| u.text()),
            object.description.as_ref().and_then(|d| d.text()),
            object.body.as_ref().and_then(body_text),
        ),
        Request::Other(_) => ("GET".to_owned(), None, None, None),
    };
    let url = url.filter(|u| !u.is_empty());
    let mut lines = vec![match &url {
        Some(url) => format!("{method} {url}"),
        None => method,
    }];
    lines.extend(description.map(str::to_owned));
    if let Some(item_description) = item.description.as_ref().and_then(|d| d.text()) {
        if description != Some(item_description) {
            lines.push(item_description.to_owned());
        }
    }
    lines.extend(body);
    FoundRequest {
        collection_uid: uid.to_owned(),
        item_id: item.id.clone().filter(|id| !id.is_empty()),
        path: path.to_vec(),
        name: item.name.as_deref().unwrap_or("").trim().to_owned(),
        url,
        text: lines.join("\n"),
    }
}

/// The searchable text of a request body, by its mode.
fn body_text(body: &Value) -> Option<String> {
    if body["disabled"] == Value::Bool(true) {
        return None;
    }
    let text = match body["mode"].as_str()? {
        "raw" => body["raw"].as_str()?.trim().to_owned(),
        mode @ ("urlencoded" | "formdata") => body[mode]
            .as_array()?
            .iter()
            .filter(|param| param["disabled"] != Value::Bool(true))
            .filter_map(|param| {
                let key = param["key"].as_str()?;
                let value = param["value"]
                    .as_str()
                    .or_else(|| param["src"].as_str())
                    .unwrap_or("");
                Some(format!("{key}={value}"))
            })
            .collect::<Vec<_>>()
            .join("\n"),
        "graphql" => {
            let graphql = &body["graphql"];
            let variables = match &graphql["variables"] {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            [graphql["query"].as_str().unwrap_or(""), variables.as_str()]
                .iter()
                .map(|part| part.trim())
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        }
        "file" => body["file"]["src"].as_str()?.trim().to_owned(),
        _ => return None,
    };
    Some(text).filter(|t| !t.is_empty())
}

/// Turns found requests into catalog entries, as the module documentation says.
pub fn fit(found: Vec<FoundRequest>) -> CatalogEntries {
    let mut result = CatalogEntries::default();
    let mut candidates = Vec::with_capacity(found.len());
    for request in found {
        if request.name.trim().is_empty() {
            result.skipped.no_name += 1;
            continue;
        }
        let Some(url) = request.url.clone() else {
            result.skipped.no_url += 1;
            continue;
        };
        candidates.push((url, request));
    }
    disambiguate(&mut candidates);

    let mut seen = HashSet::new();
    for (url, request) in candidates {
        if url.chars().count() > URL_MAX {
            result.skipped.url_too_long += 1;
            continue;
        }
        if !seen.insert(url.clone()) {
            result.skipped.duplicate_url += 1;
            continue;
        }
        let mut segments = request.path;
        segments.push(request.name);
        let (name, name_cut) = keep_end(&segments.join(SEPARATOR), NAME_MAX);
        let (text, text_cut) = keep_start(&request.text, TEXT_MAX);
        result.truncated.names += usize::from(name_cut);
        result.truncated.texts += usize::from(text_cut);
        result.entries.push(CatalogEntry {
            source: Source::Postman,
            name,
            url,
            text,
        });
    }
    result
}

/// Appends `#<item id>`, then `#<collection uid>/<item id>`, to URLs still shared.
fn disambiguate(candidates: &mut [(String, FoundRequest)]) {
    let fragments: [fn(&FoundRequest) -> Option<String>; 2] = [
        |r| r.item_id.clone(),
        |r| Some(format!("{}/{}", r.collection_uid, r.item_id.as_deref()?)),
    ];
    for fragment in fragments {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for (url, _) in candidates.iter() {
            *counts.entry(url.as_str()).or_default() += 1;
        }
        let shared: HashSet<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(url, _)| url.to_owned())
            .collect();
        for (url, request) in candidates.iter_mut() {
            if shared.contains(url.as_str()) {
                if let (Some(base), Some(fragment)) = (request.url.as_deref(), fragment(request)) {
                    *url = format!("{base}#{fragment}");
                }
            }
        }
    }
}

/// `text` trimmed and, past `max` characters, its last `max - 1` after `…`; and whether it was cut.
fn keep_end(text: &str, max: usize) -> (String, bool) {
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        return (text.to_owned(), false);
    }
    let tail: String = text.chars().skip(count - (max - 1)).collect();
    (format!("…{}", tail.trim_start()), true)
}

/// `text` trimmed and cut to its first `max` characters; and whether it was cut.
fn keep_start(text: &str, max: usize) -> (String, bool) {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((end, _)) => (text[..end].trim_end().to_owned(), true),
        None => (text.to_owned(), false),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn found(name: &str, url: Option<&str>, id: &str) -> FoundRequest {
        FoundRequest {
            collection_uid: "1-c".into(),
            item_id: Some(id.into()),
            path: vec!["C".into()],
            name: name.into(),
            url: url.map(str::to_owned),
            text: String::new(),
        }
    }

    #[test]
    fn shared_urls_get_the_item_id_and_unique_ones_stay_bare() {
        let result = fit(vec![
            found("a", Some("{{u}}/orders"), "i1"),
            found("b", Some("{{u}}/orders"), "i2"),
            found("c", Some("{{u}}/health"), "i3"),
        ]);
        let urls: Vec<&str> = result.entries.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(urls, ["{{u}}/orders#i1", "{{u}}/orders#i2", "{{u}}/health"]);
    }

    #[test]
    fn a_fork_with_the_same_item_ids_gets_the_collection_uid_too() {
        let mut fork = found("a", Some("{{u}}/x"), "i1");
        fork.collection_uid = "1-fork".into();
        let result = fit(vec![found("a", Some("{{u}}/x"), "i1"), fork]);
        let urls: Vec<&str> = result.entries.iter().map(|e| e.url.as_str()).collect();
        assert_eq!(urls, ["{{u}}/x#1-c/i1", "{{u}}/x#1-fork/i1"]);
    }

    #[test]
    fn what_cannot_fit_is_skipped_and_counted() {
        let mut same = found("d", Some("{{u}}/same"), "i9");
        same.item_id = None;
        let mut again = same.clone();
        again.name = "e".into();
        let long = format!("https://x.test/{}", "a".repeat(URL_MAX));
        let result = fit(vec![
            found(" ", Some("{{u}}/a"), "i1"),
            found("b", None, "i2"),
            found("c", Some(&long), "i3"),
            same,
            again,
        ]);
        assert_eq!(
            result.skipped,
            SkipCounts {
                no_name: 1,
                no_url: 1,
                url_too_long: 1,
                duplicate_url: 1
            }
        );
        assert_eq!(result.entries.len(), 1);
    }

    #[test]
    fn long_names_keep_their_end_and_long_texts_their_start_and_both_still_validate() {
        let mut request = found(&"r".repeat(20), Some("{{u}}/a"), "i1");
        request.path = vec!["é".repeat(NAME_MAX)];
        request.text = format!("{}tail", "x".repeat(TEXT_MAX));
        let result = fit(vec![request]);
        let entry = &result.entries[0];
        assert_eq!(entry.name.chars().count(), NAME_MAX);
        assert!(entry.name.starts_with('…') && entry.name.ends_with(&"r".repeat(20)));
        assert_eq!(entry.text.chars().count(), TEXT_MAX);
        assert_eq!(result.truncated, TruncateCounts { names: 1, texts: 1 });
        assert_eq!(entry.clone().validate().unwrap(), *entry);
    }

    #[test]
    fn bodies_of_every_mode_become_text() {
        let text = |body: Value| body_text(&body);
        assert_eq!(
            text(json!({"mode": "raw", "raw": " {\"a\": 1} "})).as_deref(),
            Some("{\"a\": 1}")
        );
        let form = json!({"mode": "formdata", "formdata": [
            {"key": "k", "value": "v", "type": "text"},
            {"key": "off", "value": "x", "disabled": true},
            {"key": "f", "type": "file", "src": "/tmp/a.png"}
        ]});
        assert_eq!(text(form).as_deref(), Some("k=v\nf=/tmp/a.png"));
        let graphql =
            json!({"mode": "graphql", "graphql": {"query": "{ a }", "variables": {"x": 1}}});
        assert_eq!(text(graphql).as_deref(), Some("{ a }\n{\"x\":1}"));
        assert_eq!(
            text(json!({"mode": "file", "file": {"src": "a.bin"}})).as_deref(),
            Some("a.bin")
        );
        assert_eq!(
            text(json!({"mode": "raw", "raw": "x", "disabled": true})),
            None
        );
        assert_eq!(text(json!({"mode": "binary"})), None);
    }

    #[test]
    fn folders_nest_into_the_name_and_empty_items_are_ignored() {
        let collection: Collection = serde_json::from_value(json!({
            "info": {"name": "Shop"},
            "item": [
                {"name": "A", "item": [
                    {"name": "B", "item": [
                        {"id": "r1", "name": "Deep", "request": "https://x.test/deep"}
                    ]},
                    {"name": "", "item": [{"id": "r2", "name": "Unnamed folder", "request": {"url": "u"}}]}
                ]},
                {"name": "Nothing"}
            ]
        }))
        .unwrap();
        let found = requests_of(&collection, "1-c");
        let names: Vec<String> = found
            .iter()
            .map(|f| {
                [f.path.clone(), vec![f.name.clone()]]
                    .concat()
                    .join(SEPARATOR)
            })
            .collect();
        assert_eq!(names, ["Shop / A / B / Deep", "Shop / A / Unnamed folder"]);
        assert_eq!(found[0].text, "GET https://x.test/deep");
    }
}
