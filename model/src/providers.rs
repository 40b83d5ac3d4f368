//! Provider connections: what a form sends, the rules it must meet, and what a browser
//! may see (never a key or a header value).

use serde::{Deserialize, Serialize};

use crate::fields::{FieldError, FieldErrors, char_len};

pub const NAME_MAX: usize = 100;
pub const URL_MAX: usize = 2048;
pub const API_KEY_MAX: usize = 4096;
pub const HEADERS_MAX: usize = 20;
pub const HEADER_VALUE_MAX: usize = 4096;
pub const MODELS_MAX: usize = 500;
pub const MODEL_MAX: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Anthropic's Messages API.
    Anthropic,
    /// Any server speaking OpenAI's Chat Completions (OpenAI, Ollama, vLLM, llama.cpp, OpenRouter…).
    Openai,
}

impl ProviderKind {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        match raw.trim() {
            "anthropic" => Ok(Self::Anthropic),
            "openai" => Ok(Self::Openai),
            "" => Err(FieldError::new(field, "required")),
            _ => Err(FieldError::new(field, "invalid")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Openai => "openai",
        }
    }
}

/// A validated create or update request. `api_key: None` keeps the stored key; headers
/// likewise. A changed URL drops both unless they are given again, so a stored key never
/// travels to an address its owner did not enter it for.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderDraft {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    pub api_key: Option<String>,
    pub headers: Option<Vec<(String, String)>>,
    pub models: Vec<String>,
    pub shared: bool,
}

impl std::fmt::Debug for ProviderDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderDraft")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("models", &self.models)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// The raw form, as strings. Headers are `Name: value` lines; models are one per line
/// or comma-separated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderForm {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    pub api_key: String,
    pub headers: String,
    pub models: String,
    pub shared: Option<String>,
}

/// `http(s)://host[:port][/path]`, no credentials, no whitespace; trailing `/` dropped.
pub fn parse_base_url(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim().trim_end_matches('/');
    if s.is_empty() {
        return Err(FieldError::new(field, "required"));
    }
    if char_len(s) > URL_MAX {
        return Err(FieldError::with_limit(field, "too_long", URL_MAX as u64));
    }
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or(FieldError::new(field, "invalid_url"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(FieldError::new(field, "invalid_url"));
    }
    Ok(s.to_owned())
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `Name: value` lines (blank lines skipped) into header pairs: token names, no control
/// characters, bounded values and count.
pub fn parse_headers(field: &str, raw: &str) -> Result<Vec<(String, String)>, FieldError> {
    let mut headers = Vec::new();
    for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once(':') {
            Some((k, v))
                if is_token(k.trim()) && char_len(v.trim()) <= HEADER_VALUE_MAX && !v.chars().any(char::is_control) =>
            {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            _ => return Err(FieldError::new(field, "invalid_header")),
        }
    }
    if headers.len() > HEADERS_MAX {
        return Err(FieldError::with_limit(field, "too_many", HEADERS_MAX as u64));
    }
    Ok(headers)
}

impl ProviderForm {
    pub fn parse(&self) -> Result<ProviderDraft, FieldErrors> {
        let mut errs = FieldErrors::default();
        let name = self.name.trim();
        if name.is_empty() {
            errs.push(FieldError::new("name", "required"));
        } else if char_len(name) > NAME_MAX {
            errs.push(FieldError::with_limit("name", "too_long", NAME_MAX as u64));
        } else if name.chars().any(char::is_control) {
            errs.push(FieldError::new("name", "control_chars"));
        }
        let kind = errs.take(ProviderKind::parse("kind", &self.kind));
        let base_url = errs.take(parse_base_url("base_url", &self.base_url));
        let key = self.api_key.trim();
        if char_len(key) > API_KEY_MAX {
            errs.push(FieldError::with_limit("api_key", "too_long", API_KEY_MAX as u64));
        } else if key.chars().any(|c| c.is_control()) {
            errs.push(FieldError::new("api_key", "control_chars"));
        }
        let headers = errs.take(parse_headers("headers", &self.headers)).unwrap_or_default();
        let models: Vec<String> =
            self.models.split(['\n', ',']).map(str::trim).filter(|m| !m.is_empty()).map(str::to_owned).collect();
        if models.len() > MODELS_MAX {
            errs.push(FieldError::with_limit("models", "too_many", MODELS_MAX as u64));
        } else if models.iter().any(|m| char_len(m) > MODEL_MAX || m.chars().any(char::is_control)) {
            errs.push(FieldError::with_limit("models", "too_long", MODEL_MAX as u64));
        }
        match (kind, base_url) {
            (Some(kind), Some(base_url)) if errs.is_empty() => {
                let mut unique = Vec::with_capacity(models.len());
                for m in models {
                    if !unique.contains(&m) {
                        unique.push(m);
                    }
                }
                Ok(ProviderDraft {
                    name: name.to_owned(),
                    kind,
                    base_url,
                    api_key: (!key.is_empty()).then(|| key.to_owned()),
                    headers: (!headers.is_empty()).then_some(headers),
                    models: unique,
                    shared: self.shared.as_deref().is_some_and(|v| matches!(v, "on" | "true" | "1")),
                })
            }
            _ => Err(errs),
        }
    }
}

/// A connection as a browser may see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderView {
    pub id: String,
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: String,
    /// `••••abcd`, or empty when no key is stored.
    pub api_key_hint: String,
    pub header_names: Vec<String>,
    pub models: Vec<String>,
    pub shared: bool,
    /// Whether the viewer may edit or delete it.
    pub editable: bool,
    pub updated_at: i64,
}

/// What "test connection" found: the provider's models, and how long it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderProbe {
    pub models: Vec<String>,
    pub latency_ms: u64,
    /// Whether the list was saved into the connection (only when the viewer may edit it).
    pub saved: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> ProviderForm {
        ProviderForm {
            name: "Local Ollama".into(),
            kind: "openai".into(),
            base_url: "http://127.0.0.1:11434/v1/".into(),
            api_key: String::new(),
            headers: "X-Team: blue\n".into(),
            models: "llama3, qwen2\nllama3".into(),
            shared: Some("on".into()),
        }
    }

    #[test]
    fn a_good_form_parses_and_normalises() {
        let d = form().parse().expect("valid");
        assert_eq!(d.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(d.models, ["llama3", "qwen2"]);
        assert_eq!(d.headers, Some(vec![("X-Team".into(), "blue".into())]));
        assert!(d.api_key.is_none() && d.shared);
    }

    #[test]
    fn every_bad_field_is_named_with_its_limit() {
        let f = ProviderForm {
            name: "n".repeat(101),
            kind: "gemini".into(),
            base_url: "ftp://x".into(),
            api_key: "k".repeat(4097),
            headers: "no colon here".into(),
            models: (0..501).map(|i| format!("m{i}")).collect::<Vec<_>>().join(","),
            shared: None,
        };
        let errs = f.parse().expect_err("invalid");
        let fields: Vec<_> = errs.0.iter().map(|e| (e.field.as_str(), e.rule.as_str())).collect();
        assert_eq!(
            fields,
            [
                ("name", "too_long"),
                ("kind", "invalid"),
                ("base_url", "invalid_url"),
                ("api_key", "too_long"),
                ("headers", "invalid_header"),
                ("models", "too_many")
            ]
        );
        assert_eq!(errs.get("name").and_then(|e| e.limit), Some(100));
    }

    #[test]
    fn urls_with_credentials_or_spaces_are_refused() {
        for bad in ["http://user:pw@host", "https://", "http://a b", "javascript:alert(1)", "//host"] {
            assert!(parse_base_url("base_url", bad).is_err(), "{bad}");
        }
    }
}
