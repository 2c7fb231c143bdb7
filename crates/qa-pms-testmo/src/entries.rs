//! Cases as catalog entries, fitted to the catalog's limits.
//!
//! - **name**: the case name; longer than [`NAME_MAX`] characters: cut, ending in `…`.
//! - **url**: the case in Testmo's repository view, as Testmo's own links have it:
//!   `{base}/repositories/{project}?group_id={folder}&case_id={case}` (without `group_id` for a
//!   case outside any folder). It changes when a case moves to another folder.
//! - **text**: [`crate::text::case_text`]; longer than [`TEXT_MAX`] characters: cut.
//!
//! Left out, and counted in [`SkipCounts`]: cases without a name, URLs over [`URL_MAX`]
//! characters (only with an absurd base URL), and a case seen twice (a page boundary shifted
//! while paging).

use std::collections::HashSet;

pub use qa_pms_core::catalog::{CatalogEntries, SkipCounts, TruncateCounts};
use qa_pms_core::catalog::{NAME_MAX, TEXT_MAX, URL_MAX};
use qa_pms_core::{CatalogEntry, Source};
use reqwest::Url;

use crate::model::Case;
use crate::text::case_text;

/// The web URL of a case: `{web}/repositories/{project}?group_id={folder}&case_id={id}`.
pub fn case_url(web: &Url, project_id: u64, case: &Case) -> Url {
    let mut url = web.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty()
            .extend(["repositories", &project_id.to_string()]);
    }
    {
        let mut query = url.query_pairs_mut();
        if let Some(folder) = case.folder_id {
            query.append_pair("group_id", &folder.to_string());
        }
        query.append_pair("case_id", &case.id.to_string());
    }
    url
}

/// Adds the cases of one project to `into`.
pub fn add_cases(
    into: &mut CatalogEntries,
    seen: &mut HashSet<String>,
    web: &Url,
    project_id: u64,
    cases: Vec<Case>,
) {
    for case in cases {
        let name = case.name.as_deref().unwrap_or("").trim();
        if name.is_empty() {
            into.skipped.no_name += 1;
            continue;
        }
        let url = case_url(web, project_id, &case).to_string();
        if url.chars().count() > URL_MAX {
            into.skipped.url_too_long += 1;
            continue;
        }
        if !seen.insert(url.clone()) {
            into.skipped.duplicate_url += 1;
            continue;
        }
        let (name, name_cut) = bound(name, NAME_MAX, "…");
        let (text, text_cut) = bound(&case_text(&case), TEXT_MAX, "");
        into.truncated.names += usize::from(name_cut);
        into.truncated.texts += usize::from(text_cut);
        into.entries.push(CatalogEntry {
            source: Source::Testmo,
            name,
            url,
            text,
        });
    }
}

/// `text` trimmed and, past `max` characters, cut so that with `mark` it has at most `max`;
/// and whether it was cut.
fn bound(text: &str, max: usize, mark: &str) -> (String, bool) {
    let text = text.trim();
    if text.chars().count() <= max {
        return (text.to_owned(), false);
    }
    let keep: String = text.chars().take(max - mark.chars().count()).collect();
    (format!("{}{mark}", keep.trim_end()), true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn case(value: serde_json::Value) -> Case {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_url_opens_the_case_in_its_folder_of_the_repository() {
        let web = Url::parse("https://acme.testmo.net/").unwrap();
        let in_folder = case(json!({"id": 42, "folder_id": 7, "name": "n"}));
        assert_eq!(
            case_url(&web, 3, &in_folder).as_str(),
            "https://acme.testmo.net/repositories/3?group_id=7&case_id=42"
        );
        let loose = case(json!({"id": 43, "folder_id": null, "name": "n"}));
        assert_eq!(
            case_url(&web, 3, &loose).as_str(),
            "https://acme.testmo.net/repositories/3?case_id=43"
        );
    }

    #[test]
    fn nameless_and_repeated_cases_are_skipped_and_long_fields_cut() {
        let web = Url::parse("https://acme.testmo.net").unwrap();
        let long = case(json!({
            "id": 1, "name": "n".repeat(NAME_MAX + 5),
            "custom_description": "d".repeat(TEXT_MAX + 5)
        }));
        let cases = vec![
            long.clone(),
            long,
            case(json!({"id": 2, "name": "  "})),
            case(json!({"id": 3})),
        ];
        let mut entries = CatalogEntries::default();
        add_cases(&mut entries, &mut HashSet::new(), &web, 1, cases);

        assert_eq!(
            entries.skipped,
            SkipCounts {
                no_name: 2,
                no_url: 0,
                url_too_long: 0,
                duplicate_url: 1
            }
        );
        assert_eq!(entries.truncated, TruncateCounts { names: 1, texts: 1 });
        let entry = &entries.entries[0];
        assert_eq!(entry.name.chars().count(), NAME_MAX);
        assert!(entry.name.ends_with('…'));
        assert_eq!(entry.text.chars().count(), TEXT_MAX);
        assert_eq!(entry.clone().validate().unwrap(), *entry);
    }
}
