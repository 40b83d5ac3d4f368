//! Agents: what a form sends, the spec every version stores, the field-by-field diff
//! between versions, and the export document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::fields::{FieldError, FieldErrors, char_len};

pub const NAME_MAX: usize = 100;
pub const SLUG_MAX: usize = 64;
pub const DESCRIPTION_MAX: usize = 1_000;
pub const PROMPT_MAX: usize = 100_000;
pub const MODEL_MAX: usize = 200;
pub const FALLBACKS_MAX: usize = 10;
pub const MAX_OUTPUT_TOKENS_MAX: u32 = 1_000_000;
pub const MAX_TURNS_MAX: u32 = 200;
pub const TEMPERATURE_MAX: f64 = 2.0;
pub const TOOL_NAME_MAX: usize = 200;
pub const TOOLS_MAX: usize = 500;
pub const ATTACHMENTS_MAX: usize = 50;
/// The largest export document accepted for import, in bytes.
pub const DOCUMENT_MAX: usize = 512 * 1024;
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 4_096;
pub const DEFAULT_MAX_TURNS: u32 = 20;
/// The export format's name and version, checked on import.
pub const EXPORT_FORMAT: &str = "agentry.agent/v1";

/// The form's fields in the order a person reads them; errors are reported in this order.
pub const FIELDS: [&str; 14] = [
    "name",
    "slug",
    "description",
    "provider_id",
    "model",
    "fallback_models",
    "system_prompt",
    "temperature",
    "max_output_tokens",
    "max_turns",
    "context_rule",
    "tool_policies",
    "skills",
    "mcp_servers",
];

/// What the agent may do with a tool without asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ToolPolicy {
    Allow,
    Ask,
    Deny,
}

impl ToolPolicy {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "allow" => Some(Self::Allow),
            "ask" => Some(Self::Ask),
            "deny" => Some(Self::Deny),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Ask => "ask",
            Self::Deny => "deny",
        }
    }
}

/// What a run does when a conversation no longer fits the model's context window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextRule {
    /// The oldest messages are summarised by the model, and the summary goes in their place.
    #[default]
    Summarize,
    /// The oldest messages are left out.
    DropOldest,
    /// The answer fails with a message naming the window; nothing is left out.
    Refuse,
}

impl ContextRule {
    pub const ALL: [Self; 3] = [Self::Summarize, Self::DropOldest, Self::Refuse];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summarize => "summarize",
            Self::DropOldest => "drop_oldest",
            Self::Refuse => "refuse",
        }
    }
}

/// Everything one version of an agent is. Stored as JSON per version; fields added later
/// get `#[serde(default)]` so old versions still read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    pub name: String,
    pub slug: String,
    #[serde(default)]
    pub description: String,
    /// The provider connection's id.
    pub provider_id: String,
    pub model: String,
    #[serde(default)]
    pub fallback_models: Vec<String>,
    #[serde(default)]
    pub system_prompt: String,
    /// `None`: the provider's default.
    #[serde(default)]
    pub temperature: Option<f64>,
    pub max_output_tokens: u32,
    pub max_turns: u32,
    /// When a conversation outgrows the model's context window.
    #[serde(default)]
    pub context_rule: ContextRule,
    /// Per tool (`server/tool` or `skill`), when it differs from the default.
    #[serde(default)]
    pub tool_policies: BTreeMap<String, ToolPolicy>,
    /// Attached skills' ids, in order.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Attached MCP servers' ids, in order.
    #[serde(default)]
    pub mcp_servers: Vec<String>,
}

/// The raw form. Fallback models are one per line; tool policies are `tool=policy` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentForm {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub provider_id: String,
    pub model: String,
    pub fallback_models: String,
    pub system_prompt: String,
    pub temperature: String,
    pub max_output_tokens: String,
    pub max_turns: String,
    pub context_rule: String,
    pub tool_policies: String,
    pub skills: Vec<String>,
    pub mcp_servers: Vec<String>,
}

/// `my-agent` from `My Agent!`: lowercase ASCII letters, digits and single dashes.
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_end_matches('-').chars().take(SLUG_MAX).collect();
    out.trim_end_matches('-').to_owned()
}

fn text(errs: &mut FieldErrors, field: &str, raw: &str, max: usize, required: bool) -> String {
    let v = raw.trim();
    if required && v.is_empty() {
        errs.push(FieldError::new(field, "required"));
    } else if char_len(v) > max {
        errs.push(FieldError::with_limit(field, "too_long", max as u64));
    } else if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        errs.push(FieldError::new(field, "control_chars"));
    }
    v.to_owned()
}

fn number(errs: &mut FieldErrors, field: &str, raw: &str, default: u32, max: u32) -> u32 {
    let v = raw.trim();
    if v.is_empty() {
        return default;
    }
    match v.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => n,
        _ => {
            errs.push(FieldError::with_limit(field, "out_of_range", u64::from(max)));
            default
        }
    }
}

/// Checks a slug typed by a person (or derived from the name).
pub fn check_slug(field: &str, slug: &str) -> Result<(), FieldError> {
    if slug.is_empty() {
        Err(FieldError::new(field, "required"))
    } else if slug.len() > SLUG_MAX {
        Err(FieldError::with_limit(field, "too_long", SLUG_MAX as u64))
    } else if !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || slug.starts_with('-')
        || slug.ends_with('-')
    {
        Err(FieldError::new(field, "invalid_slug"))
    } else {
        Ok(())
    }
}

impl AgentSpec {
    /// The rules every spec meets, however it arrived (form, import, rollback).
    pub fn check(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::default();
        let mut t = |field: &str, v: &str, max: usize, required: bool| {
            text(&mut errs, field, v, max, required);
        };
        t("name", &self.name, NAME_MAX, true);
        t("description", &self.description, DESCRIPTION_MAX, false);
        t("system_prompt", &self.system_prompt, PROMPT_MAX, false);
        t("model", &self.model, MODEL_MAX, true);
        if let Err(e) = check_slug("slug", &self.slug) {
            errs.push(e);
        }
        if self.provider_id.trim().is_empty() {
            errs.push(FieldError::new("provider_id", "required"));
        }
        if self.fallback_models.len() > FALLBACKS_MAX {
            errs.push(FieldError::with_limit("fallback_models", "too_many", FALLBACKS_MAX as u64));
        } else if self.fallback_models.iter().any(|m| m.trim().is_empty() || char_len(m) > MODEL_MAX) {
            errs.push(FieldError::with_limit("fallback_models", "too_long", MODEL_MAX as u64));
        }
        if let Some(temp) = self.temperature
            && !(0.0..=TEMPERATURE_MAX).contains(&temp)
        {
            errs.push(FieldError::with_limit("temperature", "out_of_range", TEMPERATURE_MAX as u64));
        }
        if !(1..=MAX_OUTPUT_TOKENS_MAX).contains(&self.max_output_tokens) {
            errs.push(FieldError::with_limit("max_output_tokens", "out_of_range", u64::from(MAX_OUTPUT_TOKENS_MAX)));
        }
        if !(1..=MAX_TURNS_MAX).contains(&self.max_turns) {
            errs.push(FieldError::with_limit("max_turns", "out_of_range", u64::from(MAX_TURNS_MAX)));
        }
        if self.tool_policies.len() > TOOLS_MAX {
            errs.push(FieldError::with_limit("tool_policies", "too_many", TOOLS_MAX as u64));
        } else if self.tool_policies.keys().any(|k| k.is_empty() || char_len(k) > TOOL_NAME_MAX) {
            errs.push(FieldError::new("tool_policies", "invalid_policy"));
        }
        if self.skills.len() > ATTACHMENTS_MAX {
            errs.push(FieldError::with_limit("skills", "too_many", ATTACHMENTS_MAX as u64));
        }
        if self.mcp_servers.len() > ATTACHMENTS_MAX {
            errs.push(FieldError::with_limit("mcp_servers", "too_many", ATTACHMENTS_MAX as u64));
        }
        errs.into_result()
    }
}

impl AgentForm {
    pub fn parse(&self) -> Result<AgentSpec, FieldErrors> {
        let mut errs = FieldErrors::default();
        let temperature = match self.temperature.trim() {
            "" => None,
            raw => match raw.parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    errs.push(FieldError::with_limit("temperature", "out_of_range", TEMPERATURE_MAX as u64));
                    None
                }
            },
        };
        let mut tool_policies = BTreeMap::new();
        for line in self.tool_policies.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.rsplit_once('=').and_then(|(k, v)| Some((k.trim(), ToolPolicy::parse(v.trim())?))) {
                Some((k, p)) if !k.is_empty() => {
                    tool_policies.insert(k.to_owned(), p);
                }
                _ => {
                    errs.push(FieldError::new("tool_policies", "invalid_policy"));
                    break;
                }
            }
        }
        let dedup = |v: &[String]| {
            let mut out: Vec<String> = Vec::new();
            for s in v.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
            out
        };
        let fallbacks: Vec<String> = self.fallback_models.lines().map(str::to_owned).collect();
        let slug = if self.slug.trim().is_empty() { slugify(&self.name) } else { self.slug.trim().to_owned() };
        let spec = AgentSpec {
            name: self.name.trim().to_owned(),
            slug,
            description: self.description.trim().to_owned(),
            provider_id: self.provider_id.trim().to_owned(),
            model: self.model.trim().to_owned(),
            fallback_models: dedup(&fallbacks),
            // The prompt keeps its inner layout; only the ends are trimmed.
            system_prompt: self.system_prompt.trim().to_owned(),
            temperature,
            max_output_tokens: number(
                &mut errs,
                "max_output_tokens",
                &self.max_output_tokens,
                DEFAULT_MAX_OUTPUT_TOKENS,
                MAX_OUTPUT_TOKENS_MAX,
            ),
            max_turns: number(&mut errs, "max_turns", &self.max_turns, DEFAULT_MAX_TURNS, MAX_TURNS_MAX),
            context_rule: match self.context_rule.trim() {
                "" => ContextRule::default(),
                raw => ContextRule::parse(raw).unwrap_or_else(|| {
                    errs.push(FieldError::new("context_rule", "invalid"));
                    ContextRule::default()
                }),
            },
            tool_policies,
            skills: dedup(&self.skills),
            mcp_servers: dedup(&self.mcp_servers),
        };
        // Report each field once: the number parsers above already named theirs.
        let mut all = errs;
        if let Err(more) = spec.check() {
            for e in more.0 {
                if all.get(&e.field).is_none() {
                    all.push(e);
                }
            }
        }
        all.0.sort_by_key(|e| FIELDS.iter().position(|f| *f == e.field).unwrap_or(usize::MAX));
        all.into_result().map(|()| spec)
    }
}

/// An agent as its owner sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentView {
    pub id: String,
    pub version: i64,
    pub spec: AgentSpec,
    /// The provider connection's name, or empty when it no longer exists.
    pub provider_name: String,
    /// The attached skills, `(id, name)`, in order.
    #[serde(default)]
    pub skill_names: Vec<(String, String)>,
    /// The attached MCP servers, `(id, name)`, in order.
    #[serde(default)]
    pub mcp_names: Vec<(String, String)>,
    /// Every tool the skills and MCP servers bring, with the policy that applies.
    #[serde(default)]
    pub tools: Vec<AgentTool>,
    pub updated_at: i64,
}

/// A tool an agent may call: where it comes from and what the runtime does with a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTool {
    /// The MCP server's name, or empty for the skills' own tools.
    pub source: String,
    /// What `tool_policies` calls it: `server/tool`, or the bare name for skills' tools.
    pub key: String,
    pub description: String,
    /// Marked as only reading: by Agentry for the skills' own tools, by the server for an
    /// MCP tool (`readOnlyHint`, a claim that counts only on a server an administrator
    /// trusts; see [`effective_policy`]).
    pub read_only: bool,
    pub policy: ToolPolicy,
    /// The policy comes from `tool_policies` (not the default).
    pub explicit: bool,
}

/// The tools skills bring (by progressive disclosure): both only read the skill's files.
pub const SKILL_TOOLS: [(&str, &str); 2] = [
    ("load_skill", "Reads an attached skill's SKILL.md."),
    ("read_skill_file", "Reads one file of an attached skill."),
];

/// The policy for tool `key` (`server/tool`; `bare` is the tool's own name): the policy
/// for `key`, else for `bare`, else allow for a tool known to only read and ask for the
/// rest. `known_read_only` must never rest on an MCP server's word alone: annotations are
/// hints an untrusted server sets as it likes (a `delete_everything` may claim to only
/// read). It holds for the skills' own tools (Agentry's code, reading the agent's attached
/// skills) and for a server's tools marked read-only when an administrator trusts that
/// server's hints.
pub fn effective_policy(
    policies: &BTreeMap<String, ToolPolicy>,
    key: &str,
    bare: &str,
    known_read_only: bool,
) -> (ToolPolicy, bool) {
    match policies.get(key).or_else(|| policies.get(bare)) {
        Some(p) => (*p, true),
        None if known_read_only => (ToolPolicy::Allow, false),
        None => (ToolPolicy::Ask, false),
    }
}

/// One row of the agents list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentSummary {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub model: String,
    pub version: i64,
    pub updated_at: i64,
}

/// A page of the agents list.
pub type AgentPage = crate::fields::Page<AgentSummary>;

/// One changed field between two versions, as text for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// One entry of an agent's history: who saved what, when, and what changed from the
/// version before it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    pub version: i64,
    pub author: String,
    pub created_at: i64,
    pub changes: Vec<FieldChange>,
    /// Set when this version restored an older one.
    pub restored_from: Option<i64>,
}

fn lines(v: &[String]) -> String {
    v.join("\n")
}

/// The fields that differ between two specs, in form order. Attachments and the provider
/// compare as given (ids); the caller may swap in names.
pub fn diff(before: &AgentSpec, after: &AgentSpec) -> Vec<FieldChange> {
    let temp = |t: Option<f64>| t.map(|v| v.to_string()).unwrap_or_default();
    let policies = |p: &BTreeMap<String, ToolPolicy>| {
        p.iter().map(|(k, v)| format!("{k}={}", v.as_str())).collect::<Vec<_>>().join("\n")
    };
    let pairs = [
        ("name", before.name.clone(), after.name.clone()),
        ("slug", before.slug.clone(), after.slug.clone()),
        ("description", before.description.clone(), after.description.clone()),
        ("provider_id", before.provider_id.clone(), after.provider_id.clone()),
        ("model", before.model.clone(), after.model.clone()),
        ("fallback_models", lines(&before.fallback_models), lines(&after.fallback_models)),
        ("system_prompt", before.system_prompt.clone(), after.system_prompt.clone()),
        ("temperature", temp(before.temperature), temp(after.temperature)),
        ("max_output_tokens", before.max_output_tokens.to_string(), after.max_output_tokens.to_string()),
        ("max_turns", before.max_turns.to_string(), after.max_turns.to_string()),
        ("context_rule", before.context_rule.as_str().to_owned(), after.context_rule.as_str().to_owned()),
        ("tool_policies", policies(&before.tool_policies), policies(&after.tool_policies)),
        ("skills", lines(&before.skills), lines(&after.skills)),
        ("mcp_servers", lines(&before.mcp_servers), lines(&after.mcp_servers)),
    ];
    pairs
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(field, before, after)| FieldChange { field: field.to_owned(), before, after })
        .collect()
}

/// The portable form of an agent: no ids, no secrets. The provider connection, skills
/// and MCP servers are named; import finds the importer's own (or shared) ones by name.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentExport {
    pub format: String,
    pub name: String,
    pub slug: String,
    #[serde(default)]
    pub description: String,
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub fallback_models: Vec<String>,
    #[serde(default)]
    pub system_prompt: String,
    #[serde(default)]
    pub temperature: Option<f64>,
    pub max_output_tokens: u32,
    pub max_turns: u32,
    #[serde(default)]
    pub context_rule: ContextRule,
    #[serde(default)]
    pub tool_policies: BTreeMap<String, ToolPolicy>,
    #[serde(default)]
    pub skills: Vec<String>,
    #[serde(default)]
    pub mcp_servers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> AgentForm {
        AgentForm {
            name: "Code Reviewer".into(),
            provider_id: "p1".into(),
            model: "fake-large".into(),
            fallback_models: "fake-small\n\nfake-small\n".into(),
            system_prompt: "  You review code.\n\nBe kind.  ".into(),
            temperature: "0.2".into(),
            tool_policies: "fs/write = deny\nsearch=allow".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_form_parses_with_defaults_and_a_derived_slug() {
        let s = form().parse().expect("valid");
        assert_eq!(s.slug, "code-reviewer");
        assert_eq!(s.fallback_models, ["fake-small"]);
        assert_eq!(s.system_prompt, "You review code.\n\nBe kind.");
        assert_eq!((s.max_output_tokens, s.max_turns, s.temperature), (4096, 20, Some(0.2)));
        assert_eq!(s.tool_policies.get("fs/write"), Some(&ToolPolicy::Deny));
    }

    #[test]
    fn every_bad_field_is_named_once_with_its_limit() {
        let f = AgentForm {
            name: "n".repeat(101),
            slug: "Not A Slug".into(),
            provider_id: String::new(),
            model: String::new(),
            system_prompt: "p".repeat(100_001),
            temperature: "2.5".into(),
            max_output_tokens: "0".into(),
            max_turns: "many".into(),
            tool_policies: "x=maybe".into(),
            ..Default::default()
        };
        let errs = f.parse().expect_err("invalid");
        let got: Vec<_> = errs.0.iter().map(|e| (e.field.as_str(), e.rule.as_str(), e.limit)).collect();
        assert_eq!(
            got,
            [
                ("name", "too_long", Some(100)),
                ("slug", "invalid_slug", None),
                ("provider_id", "required", None),
                ("model", "required", None),
                ("system_prompt", "too_long", Some(100_000)),
                ("temperature", "out_of_range", Some(2)),
                ("max_output_tokens", "out_of_range", Some(1_000_000)),
                ("max_turns", "out_of_range", Some(200)),
                ("tool_policies", "invalid_policy", None),
            ]
        );
    }

    #[test]
    fn slugs_are_lowercase_dashed_ascii() {
        assert_eq!(slugify("  My Agent!! v2 "), "my-agent-v2");
        assert_eq!(slugify("Ünïcode ünd"), "n-code-nd");
        assert_eq!(slugify(&"a".repeat(80)).len(), SLUG_MAX);
    }

    #[test]
    fn diff_names_exactly_the_changed_fields() {
        let a = form().parse().expect("a");
        let mut b = a.clone();
        b.system_prompt = "Be brief.".into();
        b.temperature = None;
        let d = diff(&a, &b);
        assert_eq!(d.iter().map(|c| c.field.as_str()).collect::<Vec<_>>(), ["system_prompt", "temperature"]);
        assert_eq!(d[1].before, "0.2");
        assert!(diff(&a, &a).is_empty());
    }
}
