//! App specs: what a build is asked to make, written by a person (or an agent, or the
//! wizard) in Markdown. Every save appends a version; a build names the version it built.

use serde::{Deserialize, Serialize};

use crate::{FieldError, FieldErrors, Page};

/// The most characters in a spec's name.
pub const NAME_MAX: usize = 200;
/// The most bytes in a spec's text.
pub const BODY_MAX: usize = 1024 * 1024;
/// How much of the text a card shows.
pub const PREVIEW_CHARS: usize = 240;

/// A spec as a form sends it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecForm {
    pub name: String,
    pub body: String,
}

impl SpecForm {
    /// The form, its name trimmed and its line ends made `\n`; each problem named.
    pub fn parse(&self) -> Result<SpecForm, FieldErrors> {
        let mut errs = FieldErrors::default();
        let name = self.name.trim();
        if name.is_empty() {
            errs.push(FieldError::new("name", "required"));
        } else if name.chars().count() > NAME_MAX {
            errs.push(FieldError::with_limit("name", "too_long", NAME_MAX as u64));
        } else if name.chars().any(char::is_control) {
            errs.push(FieldError::new("name", "control_chars"));
        }
        let body = self.body.replace("\r\n", "\n");
        if body.trim().is_empty() {
            errs.push(FieldError::new("body", "required"));
        } else if body.len() > BODY_MAX {
            errs.push(FieldError::with_limit("body", "too_large", BODY_MAX as u64));
        }
        errs.into_result()?;
        Ok(SpecForm { name: name.to_owned(), body })
    }
}

/// The first characters of a spec's text, on one line, for its card.
pub fn preview(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = flat.chars().take(PREVIEW_CHARS).collect();
    if flat.chars().count() > PREVIEW_CHARS {
        out.push('…');
    }
    out
}

/// Lines in a text, as an editor counts them.
pub fn line_count(body: &str) -> i64 {
    if body.is_empty() { 0 } else { body.lines().count() as i64 }
}

/// A spec on the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecSummary {
    pub id: String,
    pub name: String,
    pub preview: String,
    pub size: i64,
    pub lines: i64,
    pub version: i64,
    pub updated_at: i64,
}

pub type SpecPage = Page<SpecSummary>;

/// One saved version of a spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecVersion {
    pub version: i64,
    pub name: String,
    pub size: i64,
    pub created_at: i64,
}

/// A spec, whole: the version asked for (the newest by default) and the list of versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecView {
    pub id: String,
    pub name: String,
    pub body: String,
    /// The version shown.
    pub version: i64,
    /// The newest version.
    pub latest: i64,
    pub size: i64,
    pub lines: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub versions: Vec<SpecVersion>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_is_checked_field_by_field() {
        let ok =
            SpecForm { name: "  Todo app ".into(), body: "# Todo\r\n\r\n- add items\r\n".into() }.parse().expect("ok");
        assert_eq!(ok, SpecForm { name: "Todo app".into(), body: "# Todo\n\n- add items\n".into() });
        let errs = SpecForm { name: " ".into(), body: "\n".into() }.parse().expect_err("empty");
        assert_eq!(errs.get("name").map(|e| e.rule.as_str()), Some("required"));
        assert_eq!(errs.get("body").map(|e| e.rule.as_str()), Some("required"));
        let big = SpecForm { name: "x".repeat(NAME_MAX + 1), body: "y".repeat(BODY_MAX + 1) }.parse().expect_err("big");
        assert_eq!(errs_limit(&big, "name"), Some(("too_long", NAME_MAX as u64)));
        assert_eq!(errs_limit(&big, "body"), Some(("too_large", BODY_MAX as u64)));
        assert!(SpecForm { name: "x".into(), body: "y".repeat(BODY_MAX) }.parse().is_ok());
    }

    fn errs_limit<'a>(errs: &'a FieldErrors, field: &str) -> Option<(&'a str, u64)> {
        errs.get(field).and_then(|e| Some((e.rule.as_str(), e.limit?)))
    }

    #[test]
    fn previews_are_one_line_and_cut() {
        assert_eq!(preview("# Title\n\nSome   text\n"), "# Title Some text");
        let long = "word ".repeat(100);
        let p = preview(&long);
        assert_eq!(p.chars().count(), PREVIEW_CHARS + 1);
        assert!(p.ends_with('…'));
        assert_eq!(line_count(""), 0);
        assert_eq!(line_count("a\nb\n"), 2);
    }
}
