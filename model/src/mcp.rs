//! MCP servers: what a form sends, the rules it must meet, the exact command line an owner
//! approves before a stdio server may run, and what a browser sees (never an env value or
//! a header value).

use serde::{Deserialize, Serialize};

use crate::fields::{FieldError, FieldErrors, char_len};

pub const NAME_MAX: usize = 100;
pub const COMMAND_MAX: usize = 1024;
pub const ARGS_MAX: usize = 64;
pub const ARG_MAX: usize = 4096;
pub const ENV_MAX: usize = 50;
pub const ENV_VALUE_MAX: usize = 4096;
/// The largest `mcpServers` document accepted for import, in bytes.
pub const IMPORT_MAX: usize = 256 * 1024;
/// The most servers one import may create.
pub const IMPORT_ENTRIES_MAX: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A local command speaking MCP on stdin/stdout.
    Stdio,
    /// A remote server speaking MCP's Streamable HTTP.
    Http,
}

impl Transport {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        match raw.trim() {
            "stdio" => Ok(Self::Stdio),
            "http" => Ok(Self::Http),
            "" => Err(FieldError::new("transport", "required")),
            _ => Err(FieldError::new("transport", "invalid")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
        }
    }
}

/// The raw form. Arguments are one per line (no shell: each line is one argument, as is);
/// env and headers are `NAME=value` and `Name: value` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct McpForm {
    pub name: String,
    pub transport: String,
    pub command: String,
    pub args: String,
    pub env: String,
    pub url: String,
    pub headers: String,
    /// A checkbox: `on` when an administrator trusts the server's read-only hints.
    pub trust_read_only: Option<String>,
}

/// A validated server definition. `env: None` / `headers: None` keep what is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct McpDraft {
    pub name: String,
    pub transport: Transport,
    pub command: String,
    pub args: Vec<String>,
    pub env: Option<Vec<(String, String)>>,
    pub url: String,
    pub headers: Option<Vec<(String, String)>>,
    /// The server's tools marked read-only default to allow (see [`McpView::trust_read_only`]).
    pub trust_read_only: bool,
}

impl std::fmt::Debug for McpDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpDraft")
            .field("name", &self.name)
            .field("transport", &self.transport)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("url", &self.url)
            .field("trust_read_only", &self.trust_read_only)
            .finish_non_exhaustive()
    }
}

fn env_name_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 128
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl McpForm {
    pub fn parse(&self) -> Result<McpDraft, FieldErrors> {
        let mut errs = FieldErrors::default();
        let name = self.name.trim();
        if name.is_empty() {
            errs.push(FieldError::new("name", "required"));
        } else if char_len(name) > NAME_MAX {
            errs.push(FieldError::with_limit("name", "too_long", NAME_MAX as u64));
        } else if name.chars().any(char::is_control) {
            errs.push(FieldError::new("name", "control_chars"));
        }
        let transport = errs.take(Transport::parse(&self.transport));
        let command = self.command.trim().to_owned();
        let args: Vec<String> = self
            .args
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let mut env = Vec::new();
        for line in self.env.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once('=') {
                Some((k, v)) if env_name_ok(k.trim()) && char_len(v) <= ENV_VALUE_MAX && !v.contains('\0') => {
                    env.push((k.trim().to_owned(), v.to_owned()));
                }
                _ => {
                    errs.push(FieldError::new("env", "invalid_env"));
                    break;
                }
            }
        }
        if env.len() > ENV_MAX {
            errs.push(FieldError::with_limit("env", "too_many", ENV_MAX as u64));
        }
        let mut url = String::new();
        let mut headers = Vec::new();
        match transport {
            Some(Transport::Stdio) => {
                if command.is_empty() {
                    errs.push(FieldError::new("command", "required"));
                } else if char_len(&command) > COMMAND_MAX {
                    errs.push(FieldError::with_limit("command", "too_long", COMMAND_MAX as u64));
                } else if command.chars().any(|c| c.is_control()) {
                    errs.push(FieldError::new("command", "control_chars"));
                }
                if args.len() > ARGS_MAX {
                    errs.push(FieldError::with_limit("args", "too_many", ARGS_MAX as u64));
                } else if args.iter().any(|a| char_len(a) > ARG_MAX || a.contains('\0')) {
                    errs.push(FieldError::with_limit("args", "too_long", ARG_MAX as u64));
                }
            }
            Some(Transport::Http) => {
                if let Some(u) = errs.take(crate::providers::parse_base_url("url", &self.url)) {
                    url = u;
                }
                headers = errs.take(crate::providers::parse_headers("headers", &self.headers)).unwrap_or_default();
            }
            None => {}
        }
        match transport {
            Some(transport) if errs.is_empty() => Ok(McpDraft {
                name: name.to_owned(),
                transport,
                command: if transport == Transport::Stdio { command } else { String::new() },
                args: if transport == Transport::Stdio { args } else { Vec::new() },
                env: (!env.is_empty()).then_some(env),
                url,
                headers: (!headers.is_empty()).then_some(headers),
                trust_read_only: self.trust_read_only.as_deref().is_some_and(|v| matches!(v, "on" | "true" | "1")),
            }),
            _ => Err(errs),
        }
    }
}

/// Reads an `mcpServers` document as other MCP clients keep it (Claude Desktop, Cursor, …):
/// `{"mcpServers": {"name": {"command", "args", "env"}, "other": {"url", "headers"}}}`,
/// where `serverUrl` may stand for `url` and `type` may say `stdio`, `http` or
/// `streamable-http` (without it, a `command` means stdio and a URL means HTTP). Every
/// entry becomes the form a person would have filled in and meets the same rules
/// ([`McpForm::parse`]); every problem is named `mcpServers.<name>.<field>`. Other keys
/// (`disabled`, `cwd`, `autoApprove`, …) are ignored: an import approves and allows
/// nothing. Returns `(name as written, draft)`, by name.
pub fn parse_import(doc: &serde_json::Value) -> Result<Vec<(String, McpDraft)>, FieldErrors> {
    let one = |e: FieldError| FieldErrors(vec![e]);
    let servers = match doc.get("mcpServers") {
        None | Some(serde_json::Value::Null) => return Err(one(FieldError::new("mcpServers", "required"))),
        Some(serde_json::Value::Object(m)) if m.is_empty() => {
            return Err(one(FieldError::new("mcpServers", "required")));
        }
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return Err(one(FieldError::new("mcpServers", "invalid"))),
    };
    if servers.len() > IMPORT_ENTRIES_MAX {
        return Err(one(FieldError::with_limit("mcpServers", "too_many", IMPORT_ENTRIES_MAX as u64)));
    }
    let mut errs = FieldErrors::default();
    let mut out = Vec::new();
    for (name, entry) in servers {
        let prefix = format!("mcpServers.{name}");
        let named = |e: FieldError| FieldError { field: format!("{prefix}.{}", e.field), ..e };
        match import_form(name, entry).map(|(form, url_key)| (form.parse(), url_key)) {
            Ok((Ok(draft), _)) => out.push((name.clone(), draft)),
            Ok((Err(fields), url_key)) => errs.0.extend(fields.0.into_iter().map(|mut e| {
                // Name the keys as the document has them.
                e.field = match e.field.as_str() {
                    "transport" => "type".into(),
                    "url" => url_key.into(),
                    _ => e.field,
                };
                named(e)
            })),
            Err(e) if e.field.is_empty() => errs.push(FieldError { field: prefix, ..e }),
            Err(e) => errs.push(named(e)),
        }
    }
    errs.into_result().map(|()| out)
}

/// One `mcpServers` entry as the form a person would have sent, and the key its URL came
/// under. What a form cannot say (a line break inside an argument or a value, an empty
/// argument, a name with `=` or `:` in it) is refused rather than bent into something else.
fn import_form(name: &str, entry: &serde_json::Value) -> Result<(McpForm, &'static str), FieldError> {
    use serde_json::Value;
    let Value::Object(entry) = entry else { return Err(FieldError::new("", "invalid")) };
    let text = |key: &str| match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(key, "invalid")),
    };
    let one_line = |s: &str| !s.contains(['\n', '\r']);
    let pairs = |key: &str, rule: &str, sep: &str, name_ok: &dyn Fn(&str) -> bool| -> Result<String, FieldError> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(v) if name_ok(k) && one_line(v) => Ok(format!("{k}{sep}{v}\n")),
                    _ => Err(FieldError::new(key, rule)),
                })
                .collect(),
            Some(_) => Err(FieldError::new(key, rule)),
        }
    };
    let command = text("command")?;
    let (url_key, url) = match (text("url")?, text("serverUrl")?) {
        (Some(u), _) => ("url", Some(u)),
        (None, Some(u)) => ("serverUrl", Some(u)),
        (None, None) => ("url", None),
    };
    let transport = match text("type")?.as_deref() {
        Some("stdio") => "stdio",
        Some("http" | "streamable-http" | "streamableHttp") => "http",
        Some(_) => return Err(FieldError::new("type", "unsupported")),
        None if command.is_some() => "stdio",
        None if url.is_some() => "http",
        None => return Err(FieldError::new("command", "required")),
    };
    let args = match entry.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() && one_line(s) => Ok(s.clone()),
                _ => Err(FieldError::new("args", "invalid")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(FieldError::new("args", "invalid")),
    };
    let form = McpForm {
        name: name.to_owned(),
        transport: transport.into(),
        command: command.unwrap_or_default(),
        args: args.join("\n"),
        env: pairs("env", "invalid_env", "=", &env_name_ok)?,
        url: url.unwrap_or_default(),
        headers: pairs("headers", "invalid_header", ": ", &|k| !k.contains([':', '\n', '\r']))?,
        trust_read_only: None,
    };
    Ok((form, url_key))
}

/// The command line as the owner approves it: each part quoted when it needs to be, so
/// what is shown is exactly what will run (no shell is involved), and the environment as
/// `(name, mark)`: each name with what stands for its value (a fingerprint, never the
/// value), so that a changed value changes the line and withdraws its approval.
pub fn command_line(command: &str, args: &[String], env: &[(String, String)]) -> String {
    let quote = |s: &str| {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+%".contains(&b)) {
            s.to_owned()
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    let mut parts: Vec<String> = env.iter().map(|(n, mark)| format!("{n}={mark}")).collect();
    parts.push(quote(command));
    parts.extend(args.iter().map(|a| quote(a)));
    parts.join(" ")
}

/// A tool as a server describes it: name, description and its input JSON schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The input schema, as JSON text.
    pub schema: String,
    /// The server says the tool only reads (MCP `readOnlyHint`); otherwise it may write.
    /// A claim of the server's, not a fact: it decides nothing unless an administrator
    /// trusts the server ([`McpView::trust_read_only`]).
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    NeverConnected,
    Connected,
    Failed,
}

/// A server as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpView {
    pub id: String,
    pub name: String,
    pub transport: Transport,
    /// stdio: the command line to approve (env values as fingerprints, never shown).
    pub command_line: String,
    pub command: String,
    pub args: Vec<String>,
    pub url: String,
    pub env_names: Vec<String>,
    pub header_names: Vec<String>,
    /// stdio: whether this exact command line is approved to run.
    pub approved: bool,
    /// An administrator trusts this server's read-only hints: its tools marked read-only
    /// run without asking unless an agent's policy says otherwise. Without it every tool
    /// of the server asks first, whatever it claims. Counts only while the owner is an
    /// administrator.
    #[serde(default)]
    pub trust_read_only: bool,
    pub status: Status,
    pub last_error: String,
    pub stderr_tail: String,
    /// The pinned tools (approved).
    pub tools: Vec<ToolInfo>,
    /// Tools seen at the last connect that differ from the pinned ones: awaiting approval.
    pub changed_tools: Option<Vec<ToolInfo>>,
    /// The owner's agents it is attached to, `(id, name)`.
    #[serde(default)]
    pub used_by: Vec<(String, String)>,
    pub updated_at: i64,
}

/// The tools of `before` that are gone or different in `after`, and the new ones, by name.
pub fn tool_changes(before: &[ToolInfo], after: &[ToolInfo]) -> Vec<String> {
    let mut out = Vec::new();
    for t in after {
        match before.iter().find(|b| b.name == t.name) {
            None => out.push(format!("+ {}", t.name)),
            Some(b) if b != t => out.push(format!("~ {}", t.name)),
            _ => {}
        }
    }
    out.extend(before.iter().filter(|b| !after.iter().any(|t| t.name == b.name)).map(|b| format!("- {}", b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stdio_form_parses_one_argument_per_line() {
        let f = McpForm {
            name: "Everything".into(),
            transport: "stdio".into(),
            command: "npx".into(),
            args: "-y\n@modelcontextprotocol/server-everything\n".into(),
            env: "API_TOKEN=abc=def\n".into(),
            ..Default::default()
        };
        let d = f.parse().expect("valid");
        assert_eq!(d.args, ["-y", "@modelcontextprotocol/server-everything"]);
        assert_eq!(d.env, Some(vec![("API_TOKEN".into(), "abc=def".into())]));
        assert!(!format!("{d:?}").contains("abc=def"));
    }

    #[test]
    fn bad_fields_are_named() {
        let f = McpForm {
            name: String::new(),
            transport: "http".into(),
            url: "ftp://x".into(),
            env: "1BAD=x".into(),
            ..Default::default()
        };
        let errs = f.parse().expect_err("invalid");
        let got: Vec<_> = errs.0.iter().map(|e| (e.field.as_str(), e.rule.as_str())).collect();
        assert_eq!(got, [("name", "required"), ("env", "invalid_env"), ("url", "invalid_url")]);
        let f = McpForm { name: "x".into(), transport: "stdio".into(), ..Default::default() };
        assert_eq!(f.parse().expect_err("no command").0[0].field, "command");
    }

    #[test]
    fn an_mcp_servers_document_reads_as_the_forms_would() {
        let doc = serde_json::json!({ "mcpServers": {
            "files": { "command": "npx", "args": ["-y", "@scope/server", "a b"], "env": { "TOKEN": "x=y" } },
            "remote": { "serverUrl": "https://mcp.example.com/mcp", "headers": { "Authorization": "Bearer t" } },
            "typed": { "type": "streamable-http", "url": "https://two.example.com/mcp", "disabled": false },
        }});
        let got = parse_import(&doc).expect("valid");
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["files", "remote", "typed"]);
        let files = &got[0].1;
        assert_eq!((files.transport, files.command.as_str()), (Transport::Stdio, "npx"));
        assert_eq!(files.args, ["-y", "@scope/server", "a b"]);
        assert_eq!(files.env, Some(vec![("TOKEN".into(), "x=y".into())]));
        assert!(!files.trust_read_only);
        let remote = &got[1].1;
        assert_eq!((remote.transport, remote.url.as_str()), (Transport::Http, "https://mcp.example.com/mcp"));
        assert_eq!(remote.headers, Some(vec![("Authorization".into(), "Bearer t".into())]));
        assert_eq!(got[2].1.transport, Transport::Http);
    }

    #[test]
    fn every_bad_import_entry_is_named_with_its_field() {
        let doc = serde_json::json!({ "mcpServers": {
            "foo": { "args": ["x"] },
            "bar": { "command": "node", "args": ["one\ntwo"] },
            "baz": { "serverUrl": "ftp://x" },
            "qux": { "type": "sse", "url": "https://x.example.com/sse" },
            "env": { "command": "node", "env": { "A=B": "c" } },
            "ok": { "command": "node" },
        }});
        let errs = parse_import(&doc).expect_err("invalid");
        let got: Vec<_> = errs.0.iter().map(|e| (e.field.as_str(), e.rule.as_str())).collect();
        assert_eq!(
            got,
            [
                ("mcpServers.bar.args", "invalid"),
                ("mcpServers.baz.serverUrl", "invalid_url"),
                ("mcpServers.env.env", "invalid_env"),
                ("mcpServers.foo.command", "required"),
                ("mcpServers.qux.type", "unsupported"),
            ]
        );
        let many: serde_json::Map<String, serde_json::Value> =
            (0..=IMPORT_ENTRIES_MAX).map(|i| (format!("s{i}"), serde_json::json!({ "command": "x" }))).collect();
        let errs = parse_import(&serde_json::json!({ "mcpServers": many })).expect_err("too many");
        assert_eq!(errs.0, [FieldError::with_limit("mcpServers", "too_many", IMPORT_ENTRIES_MAX as u64)]);
        assert_eq!(parse_import(&serde_json::json!({})).expect_err("none").0[0].field, "mcpServers");
    }

    #[test]
    fn the_approved_command_line_shows_exactly_what_runs() {
        let env = [("TOKEN".into(), "<hmac:1a2b3c4d>".into())];
        let line = command_line("npx", &["-y".into(), "a b".into(), "it's".into()], &env);
        assert_eq!(line, "TOKEN=<hmac:1a2b3c4d> npx -y 'a b' 'it'\\''s'");
    }
}
