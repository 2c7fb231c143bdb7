//! Plain text to and from Atlassian Document Format (ADF), the shape of v3 rich-text fields.

use serde_json::{json, Value};

/// One paragraph per line; an empty line becomes an empty paragraph.
pub(crate) fn from_text(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .map(|line| {
            if line.is_empty() {
                json!({"type": "paragraph", "content": []})
            } else {
                json!({"type": "paragraph", "content": [{"type": "text", "text": line}]})
            }
        })
        .collect();
    json!({"type": "doc", "version": 1, "content": paragraphs})
}

/// The text of an ADF document, one line per top-level block; `None` if `doc` is not a document.
pub(crate) fn to_text(doc: &Value) -> Option<String> {
    if doc.get("type").and_then(Value::as_str) != Some("doc") {
        return None;
    }
    let blocks = doc.get("content").and_then(Value::as_array)?;
    let lines: Vec<String> = blocks
        .iter()
        .map(|block| {
            let mut line = String::new();
            collect_text(block, &mut line);
            line
        })
        .collect();
    Some(lines.join("\n"))
}

fn collect_text(node: &Value, out: &mut String) {
    match node.get("type").and_then(Value::as_str) {
        Some("text") => out.push_str(node.get("text").and_then(Value::as_str).unwrap_or("")),
        Some("hardBreak") => out.push('\n'),
        _ => {
            for child in node
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                collect_text(child, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_through_adf() {
        let text = "first line\n\nthird line";
        let doc = from_text(text);
        assert_eq!(doc["content"].as_array().map(Vec::len), Some(3));
        assert_eq!(to_text(&doc).as_deref(), Some(text));
    }

    #[test]
    fn a_string_is_not_a_document() {
        assert_eq!(to_text(&json!("plain")), None);
    }
}
