//! Atlassian Document Format (Jira's rich text) to plain text and back.
//!
//! Going to text keeps what a reader sees: text nodes, `hardBreak` as a line break, mentions,
//! emoji and statuses by their `attrs.text`, links by their URL. Each block that holds inline
//! content (paragraph, heading, code block...) becomes one line; table rows become one line with
//! cells separated by " | ". Going back, each line becomes a paragraph.

use chrono::DateTime;
use serde_json::{json, Value};

/// The plain text of an ADF document. A JSON string (as webhooks, which use REST v2 shapes, send
/// descriptions) is taken as it is.
pub fn to_plain_text(doc: &Value) -> String {
    if let Some(text) = doc.as_str() {
        return text.trim().to_owned();
    }
    let mut lines = Vec::new();
    collect_lines(doc, &mut lines);
    lines.join("\n").trim().to_owned()
}

/// An ADF document with one paragraph per line of `text`.
pub fn from_plain_text(text: &str) -> Value {
    let paragraphs: Vec<Value> = text
        .lines()
        .map(|line| {
            // ADF forbids empty text nodes: an empty line is an empty paragraph.
            let content: Vec<Value> = if line.is_empty() {
                Vec::new()
            } else {
                vec![json!({ "type": "text", "text": line })]
            };
            json!({ "type": "paragraph", "content": content })
        })
        .collect();
    json!({ "type": "doc", "version": 1, "content": paragraphs })
}

fn node_type(node: &Value) -> &str {
    node.get("type").and_then(Value::as_str).unwrap_or("")
}

fn children(node: &Value) -> &[Value] {
    node.get("content")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn is_inline(node: &Value) -> bool {
    matches!(
        node_type(node),
        "text" | "hardBreak" | "mention" | "emoji" | "inlineCard" | "status" | "date"
    )
}

fn collect_lines(node: &Value, lines: &mut Vec<String>) {
    if node_type(node) == "tableRow" {
        let cells: Vec<String> = children(node)
            .iter()
            .map(|cell| {
                let mut cell_lines = Vec::new();
                collect_lines(cell, &mut cell_lines);
                cell_lines.join(" ").trim().to_owned()
            })
            .collect();
        lines.push(cells.join(" | "));
        return;
    }
    let content = children(node);
    if content.iter().any(is_inline) || matches!(node_type(node), "paragraph" | "heading") {
        let mut line = String::new();
        for child in content {
            push_inline(child, &mut line);
        }
        lines.push(line);
    } else {
        for child in content {
            collect_lines(child, lines);
        }
    }
}

fn push_inline(node: &Value, out: &mut String) {
    let attr = |name: &str| {
        node.get("attrs")
            .and_then(|attrs| attrs.get(name))
            .and_then(Value::as_str)
    };
    match node_type(node) {
        "text" => out.push_str(node.get("text").and_then(Value::as_str).unwrap_or("")),
        "hardBreak" => out.push('\n'),
        "mention" | "emoji" | "status" => {
            if let Some(text) = attr("text").or_else(|| attr("shortName")) {
                out.push_str(text);
            }
        }
        "inlineCard" => out.push_str(attr("url").unwrap_or("")),
        "date" => {
            let day = attr("timestamp")
                .and_then(|ms| ms.parse::<i64>().ok())
                .and_then(DateTime::from_timestamp_millis)
                .map(|at| at.format("%Y-%m-%d").to_string());
            out.push_str(day.as_deref().unwrap_or(""));
        }
        _ => {
            for child in children(node) {
                push_inline(child, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_hard_breaks_mentions_and_lists_become_lines() {
        let doc = json!({"type": "doc", "version": 1, "content": [
            {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Steps"}]},
            {"type": "paragraph", "content": [
                {"type": "text", "text": "Open the page", "marks": [{"type": "strong"}]},
                {"type": "hardBreak"},
                {"type": "text", "text": "then ask "},
                {"type": "mention", "attrs": {"id": "abc", "text": "@Jane Doe"}},
                {"type": "text", "text": " "},
                {"type": "emoji", "attrs": {"shortName": ":smile:", "text": "😄"}}
            ]},
            {"type": "bulletList", "content": [
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "one"}]}]},
                {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": "two"}]}]}
            ]},
            {"type": "codeBlock", "content": [{"type": "text", "text": "let x = 1;\nlet y = 2;"}]},
            {"type": "blockquote", "content": [{"type": "paragraph", "content": [
                {"type": "inlineCard", "attrs": {"url": "https://example.com"}}
            ]}]}
        ]});
        assert_eq!(
            to_plain_text(&doc),
            "Steps\nOpen the page\nthen ask @Jane Doe 😄\none\ntwo\nlet x = 1;\nlet y = 2;\nhttps://example.com"
        );
    }

    #[test]
    fn table_rows_become_lines_of_cells() {
        let cell = |t: &str| json!({"type": "tableCell", "content": [{"type": "paragraph", "content": [{"type": "text", "text": t}]}]});
        let doc = json!({"type": "doc", "content": [{"type": "table", "content": [
            {"type": "tableRow", "content": [cell("a"), cell("b")]},
            {"type": "tableRow", "content": [cell("c"), cell("d")]}
        ]}]});
        assert_eq!(to_plain_text(&doc), "a | b\nc | d");
    }

    #[test]
    fn plain_text_survives_a_round_trip_through_adf() {
        let text = "first line\n\nthird line";
        let doc = from_plain_text(text);
        assert_eq!(doc["content"].as_array().map(Vec::len), Some(3));
        assert_eq!(doc["content"][1]["content"], json!([]));
        assert_eq!(to_plain_text(&doc), text);
    }

    #[test]
    fn an_empty_document_or_a_plain_string_is_read_as_text() {
        assert_eq!(to_plain_text(&json!({"type": "doc", "content": []})), "");
        assert_eq!(to_plain_text(&json!("  wiki *text*  ")), "wiki *text*");
    }
}
