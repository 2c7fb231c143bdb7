//! The searchable text of a case: its custom text fields (HTML made plain) and steps.

use serde_json::Value;

use crate::model::Case;

/// The case's `custom_*` fields in key order, one line per text: strings (HTML made plain), and
/// the string parts of list items (steps: `text1` step, `text2` data, `text3` expected...).
/// Numbers, booleans and nulls (dropdowns, checkboxes, empty fields) add nothing.
pub fn case_text(case: &Case) -> String {
    let mut lines = Vec::new();
    for (key, value) in &case.fields {
        if key.starts_with("custom_") {
            push_texts(value, &mut lines);
        }
    }
    lines.join("\n")
}

fn push_texts(value: &Value, lines: &mut Vec<String>) {
    match value {
        Value::String(html) => {
            let text = html_to_text(html);
            if !text.is_empty() {
                lines.push(text);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| push_texts(item, lines)),
        Value::Object(parts) => {
            let mut keys: Vec<&String> = parts.keys().collect();
            keys.sort();
            for key in keys {
                if let Some(Value::String(_)) = parts.get(key) {
                    push_texts(&parts[key], lines);
                }
            }
        }
        _ => {}
    }
}

/// Tags removed (block tags end a line), entities decoded, each line's whitespace collapsed,
/// blank lines dropped. A `<` not followed by a letter, `/` or `!` is text.
pub fn html_to_text(html: &str) -> String {
    let mut plain = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        plain.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let opens_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        match after.find('>').filter(|_| opens_tag) {
            Some(end) => {
                if is_line_break(&after[..end]) {
                    plain.push('\n');
                }
                rest = &after[end + 1..];
            }
            None => {
                plain.push('<');
                rest = after;
            }
        }
    }
    plain.push_str(rest);
    decode_entities(&plain)
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_line_break(tag: &str) -> bool {
    let name: String = tag
        .trim_start_matches('/')
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    matches!(
        name.as_str(),
        "br" | "p"
            | "div"
            | "li"
            | "ul"
            | "ol"
            | "tr"
            | "table"
            | "pre"
            | "blockquote"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
    )
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let decoded = after
            .find(';')
            .filter(|end| *end <= 10)
            .and_then(|end| entity(&after[..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn html_becomes_plain_lines() {
        assert_eq!(
            html_to_text("<p>Sign in with e-mail &amp; <b>password</b>.</p><p>Then&nbsp;wait</p>"),
            "Sign in with e-mail & password.\nThen wait"
        );
        assert_eq!(html_to_text("a<br/>b<BR>c"), "a\nb\nc");
        assert_eq!(
            html_to_text("<ul><li>one</li><li>two &#8211; &#x41;</li></ul>"),
            "one\ntwo – A"
        );
        assert_eq!(
            html_to_text("1 < 2 & 3 > 2 &bogus;"),
            "1 < 2 & 3 > 2 &bogus;"
        );
        assert_eq!(html_to_text("  "), "");
    }

    #[test]
    fn custom_texts_and_steps_are_read_in_key_order_and_the_rest_ignored() {
        let case: Case = serde_json::from_value(json!({
            "id": 1, "name": "n", "state_id": 4, "custom_priority": 2,
            "custom_steps": [{"text3": "<p>Expected</p>", "text1": "<p>Do</p>", "text2": null}],
            "custom_description": "<p>What</p>",
            "custom_platforms": [3, 4],
            "custom_notes": null
        }))
        .unwrap();
        assert_eq!(case_text(&case), "What\nDo\nExpected");
    }
}
