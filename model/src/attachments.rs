//! Files a person attaches to a message: images, which a vision model sees, and text or
//! code files, which the model reads with their names. What a file is comes from its
//! content, checked against its name: a name and a content that disagree are refused.

use serde::{Deserialize, Serialize};

/// What an attachment is to the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    Image,
    Text,
}

impl AttachmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Text => "text",
        }
    }

    pub fn parse(raw: &str) -> Self {
        if raw == "image" { Self::Image } else { Self::Text }
    }
}

/// An attachment as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentView {
    pub id: String,
    pub name: String,
    pub media_type: String,
    pub kind: AttachmentKind,
    pub size: u64,
}

/// Why a file cannot be attached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentProblem {
    #[error("nothing was attached")]
    Empty,
    #[error("at most {0} files may go with one message")]
    TooMany(u64),
    #[error("`{name}` is {size} bytes, and a file may be at most {limit} bytes")]
    TooLarge { name: String, size: u64, limit: u64 },
    #[error("`{name}` does not hold what its name says: {why}")]
    Mismatch { name: String, why: String },
    #[error("`{name}` is neither an image (PNG, JPEG, GIF, WebP) nor text, so it cannot be attached")]
    Unsupported { name: String },
    #[error("{model} reads text only (the model table says so), so it cannot be sent images")]
    TextOnly { model: String },
}

impl AttachmentProblem {
    /// The rule a field error names.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Empty => "required",
            Self::TooMany(_) => "too_many",
            Self::TooLarge { .. } => "too_large",
            Self::Mismatch { .. } => "mismatch",
            Self::Unsupported { .. } => "unsupported_file",
            Self::TextOnly { .. } => "text_only_model",
        }
    }

    /// The limit a field error names.
    pub fn limit(&self) -> Option<u64> {
        match self {
            Self::TooMany(n) => Some(*n),
            Self::TooLarge { limit, .. } => Some(*limit),
            _ => None,
        }
    }
}

const IMAGES: [(&str, &[&str], &str); 4] = [
    ("image/png", &["png"], "a PNG image"),
    ("image/jpeg", &["jpg", "jpeg"], "a JPEG image"),
    ("image/gif", &["gif"], "a GIF image"),
    ("image/webp", &["webp"], "a WebP image"),
];

/// Names that say "text" (any other name is judged by its content alone).
const TEXT: [&str; 52] = [
    "txt", "md", "markdown", "csv", "tsv", "json", "jsonl", "yaml", "yml", "toml", "ini", "cfg", "conf", "xml", "html",
    "htm", "css", "scss", "svg", "js", "mjs", "cjs", "ts", "tsx", "jsx", "rs", "py", "rb", "go", "java", "kt", "c",
    "h", "cc", "cpp", "hpp", "cs", "php", "swift", "sh", "bash", "zsh", "sql", "log", "r", "lua", "pl", "tex", "diff",
    "patch", "env", "rst",
];

/// The image format the content is, by its first bytes.
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| !s.contains('\0'))
}

/// A file's name as stored and shown: its last path part, without control characters, at
/// most 200 characters; `file` when nothing is left.
pub fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let name = name.trim();
    if name.is_empty() || name == "." || name == ".." { "file".to_owned() } else { name.to_owned() }
}

/// What `bytes` named `name` is: its kind and media type, when its content is what its
/// name says (or, for a name that says nothing, what the content shows).
pub fn classify(name: &str, bytes: &[u8]) -> Result<(AttachmentKind, &'static str), AttachmentProblem> {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let mismatch = |why: &str| AttachmentProblem::Mismatch { name: name.to_owned(), why: why.to_owned() };
    let found = image_type(bytes);
    if let Some((media, _, what)) = IMAGES.iter().find(|(_, exts, _)| exts.contains(&ext.as_str())) {
        return match found {
            Some(m) if m == *media => Ok((AttachmentKind::Image, media)),
            Some(_) => Err(mismatch(&format!("it is an image, but not {what}"))),
            None => Err(mismatch(&format!("it is not {what}"))),
        };
    }
    if TEXT.contains(&ext.as_str()) {
        return match found {
            Some(_) => Err(mismatch("it is an image, not text")),
            None if is_text(bytes) => Ok((AttachmentKind::Text, "text/plain")),
            None => Err(mismatch("it is not UTF-8 text")),
        };
    }
    match found {
        Some(m) => Ok((AttachmentKind::Image, m)),
        None if is_text(bytes) => Ok((AttachmentKind::Text, "text/plain")),
        None => Err(AttachmentProblem::Unsupported { name: name.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn a_file_is_what_its_content_says_and_its_name_agrees() {
        assert_eq!(classify("a.png", PNG), Ok((AttachmentKind::Image, "image/png")));
        assert_eq!(classify("a.PNG", PNG).map(|k| k.1), Ok("image/png"));
        assert_eq!(classify("notes.md", b"# Notes\n").map(|k| k.0), Ok(AttachmentKind::Text));
        assert_eq!(classify("Makefile", b"all:\n\ttrue\n").map(|k| k.0), Ok(AttachmentKind::Text));
        assert_eq!(classify("shot", PNG).map(|k| k.1), Ok("image/png"));
        let rule = |r: Result<_, AttachmentProblem>| r.err().map(|e| e.rule());
        assert_eq!(rule(classify("cat.png", b"just some text")), Some("mismatch"));
        assert_eq!(rule(classify("cat.jpg", PNG)), Some("mismatch"));
        assert_eq!(rule(classify("notes.txt", PNG)), Some("mismatch"));
        assert_eq!(rule(classify("data.json", &[0xFF, 0xFE, 0x00, 0x01])), Some("mismatch"));
        assert_eq!(rule(classify("report.pdf", b"%PDF-1.7\n\x00\x01\xFF")), Some("unsupported_file"));
        let e = classify("cat.png", b"text").expect_err("mismatch");
        assert!(e.to_string().contains("`cat.png`") && e.to_string().contains("not a PNG image"), "{e}");
    }

    #[test]
    fn names_are_cleaned_to_their_last_part() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\me\\a\u{0}b.txt"), "ab.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(""), "file");
    }
}
