//! Skills in the Agent Skills layout: a folder with `SKILL.md` (YAML front matter `name`
//! and `description`) and any other files. The limits an upload must meet, the strict
//! rule for paths inside it, and what a browser sees.

use serde::{Deserialize, Serialize};

/// The most files one skill may have.
pub const MAX_FILES: usize = 200;
/// The most entries a zip may list (directories and skipped junk included).
pub const MAX_ENTRIES: usize = 400;
/// The largest single file, uncompressed.
pub const MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;
/// The largest skill, all files uncompressed.
pub const MAX_TOTAL_BYTES: u64 = 20 * 1024 * 1024;
/// Zip entries above `RATIO_FLOOR` bytes may not expand more than this many times.
pub const MAX_RATIO: u64 = 100;
pub const RATIO_FLOOR: u64 = 64 * 1024;
pub const PATH_MAX: usize = 255;
pub const DEPTH_MAX: usize = 8;
pub const NAME_MAX: usize = 64;
pub const DESCRIPTION_MAX: usize = 1024;
pub const SKILL_MD_MAX: u64 = 256 * 1024;
pub const FRONT_MATTER_MAX: usize = 16 * 1024;

/// Why an upload was refused. Each says what to change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum UploadProblem {
    #[error("`{path}` is not a safe relative path ({why})")]
    BadPath { path: String, why: String },
    #[error("`{0}` is a symbolic link or special file; only regular files are accepted")]
    Symlink(String),
    #[error("more than {0} files")]
    TooManyFiles(usize),
    #[error("`{path}` is larger than {limit} bytes")]
    FileTooLarge { path: String, limit: u64 },
    #[error("the files add up to more than {0} bytes")]
    TooLarge(u64),
    #[error("`{path}` expands {ratio} times when unpacked (at most {limit} allowed): a zip bomb?")]
    Ratio { path: String, ratio: u64, limit: u64 },
    #[error("`{0}` appears twice (names differing only by case count as the same)")]
    Duplicate(String),
    #[error("the archive could not be read: {0}")]
    BadArchive(String),
    #[error("`{0}` is encrypted or compressed with a method other than deflate")]
    Unsupported(String),
    #[error("there is no SKILL.md at the top of the skill")]
    NoSkillMd,
    #[error("SKILL.md: {0}")]
    FrontMatter(String),
    #[error("nothing was uploaded")]
    Empty,
}

/// A path inside a skill: UTF-8, relative, `/`-separated, no empty, `.` or `..` parts,
/// no backslash, colon, NUL or control characters, bounded length and depth.
pub fn clean_path(raw: &[u8]) -> Result<String, UploadProblem> {
    let shown = String::from_utf8_lossy(raw).chars().take(80).collect::<String>();
    let bad = |why: &str| UploadProblem::BadPath { path: shown.clone(), why: why.to_owned() };
    let s = std::str::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
    if s.is_empty() || s.len() > PATH_MAX {
        return Err(bad("empty or too long"));
    }
    if s.starts_with('/') {
        return Err(bad("absolute"));
    }
    if s.contains('\0') {
        return Err(bad("NUL byte"));
    }
    if s.contains('\\') || s.contains(':') {
        return Err(bad("backslash or colon"));
    }
    let mut depth = 0;
    for part in s.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(bad("empty, . or .. part"));
        }
        if part.chars().any(char::is_control) {
            return Err(bad("control character"));
        }
        depth += 1;
    }
    if depth > DEPTH_MAX {
        return Err(bad("too deep"));
    }
    Ok(s.to_owned())
}

/// `pdf-tools`: lowercase letters, digits and single dashes, 1–64 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_MAX
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// `(yaml, body)` of a `---` fenced front matter at the top of the text.
pub fn split_front_matter(src: &str) -> Option<(&str, &str)> {
    let s = src.strip_prefix('\u{feff}').unwrap_or(src);
    let rest = s.strip_prefix("---\n").or_else(|| s.strip_prefix("---\r\n"))?;
    let mut pos = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end_matches(['\r', '\n']) == "---" {
            return Some((&rest[..pos], &rest[pos + line.len()..]));
        }
        pos += line.len();
    }
    None
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillFile {
    pub path: String,
    pub size: u64,
}

/// One row of the skills list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub files: i64,
    pub updated_at: i64,
}

/// A skill's page: its current version's files and rendered SKILL.md, its versions, and
/// the agents that use it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub files: Vec<SkillFile>,
    /// SKILL.md as sanitized HTML (no scripts, no event attributes, no `javascript:`).
    pub html: String,
    /// `(version, created_at)`, newest first.
    pub versions: Vec<(i64, i64)>,
    /// The owner's agents that have this skill attached: `(id, name)`.
    pub used_by: Vec<(String, String)>,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        assert_eq!(clean_path(b"scripts/run.py").as_deref(), Ok("scripts/run.py"));
        for bad in [
            &b"../etc/passwd"[..],
            b"/etc/passwd",
            b"a/../../b",
            b"a//b",
            b"./a",
            b"a\\b",
            b"C:/x",
            b"a\0b",
            b"a\nb",
            b"\xff\xfe",
            b"",
            b"a/b/c/d/e/f/g/h/i",
        ] {
            assert!(clean_path(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn names_follow_the_agent_skills_rule() {
        assert!(valid_name("pdf-tools"));
        for bad in ["", "PDF", "-a", "a-", "a--b", "a_b", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn front_matter_is_split_from_the_body() {
        let (y, b) = split_front_matter("---\nname: x\n---\n# Hi\n").expect("fenced");
        assert_eq!((y, b), ("name: x\n", "# Hi\n"));
        assert!(split_front_matter("# no front matter").is_none());
    }
}
