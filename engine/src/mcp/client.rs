//! Talking to MCP servers through `rmcp`: a stdio child with nothing inherited (its own
//! process group, a cleared environment, stderr kept as a tail) or Streamable HTTP through
//! the SSRF-guarded client.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::mcp::ToolInfo;
use process_wrap::tokio::{CommandWrap, ProcessGroup};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use tokio::io::AsyncReadExt;

pub type McpClient = RunningService<RoleClient, ClientConfig>;

/// The `PATH` a stdio server gets: the system's directories, nothing from our environment.
pub const CHILD_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

fn client_config() -> ClientConfig {
    ClientConfig::new(ClientCapabilities::default(), Implementation::new("agentry", env!("CARGO_PKG_VERSION")))
        // The newest version servers of the initialize era all speak.
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

/// The last bytes a child wrote to stderr. The pipe is drained all the time, or a chatty
/// child would block once the pipe fills.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<VecDeque<u8>>>);

impl StderrTail {
    const MAX: usize = 4 * 1024;

    fn push(&self, b: &[u8]) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        t.extend(b);
        let excess = t.len().saturating_sub(Self::MAX);
        t.drain(..excess);
    }

    pub fn text(&self) -> String {
        let t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&t.iter().copied().collect::<Vec<u8>>()).into_owned()
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let part = c.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        cur = c.source();
    }
    s
}

/// Starts `command args…` with only `env` (plus `PATH` and `HOME`) and completes the MCP
/// handshake within `timeout`. Dropping the client kills the whole process group.
pub async fn connect_stdio(
    command: &str,
    args: &[String],
    env: &[(String, String)],
    home: &std::path::Path,
    timeout: Duration,
) -> Result<(McpClient, StderrTail), (String, StderrTail)> {
    let tail = StderrTail::default();
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args).env_clear().env("PATH", CHILD_PATH).env("HOME", home).current_dir(home).kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut wrapped = CommandWrap::from(cmd);
    wrapped.wrap(ProcessGroup::leader());
    let (transport, stderr) = TokioChildProcess::builder(wrapped)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("cannot start {command}: {e}"), tail.clone()))?;
    if let Some(mut err) = stderr {
        let tail = tail.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tail.push(&buf[..n]);
            }
        });
    }
    match tokio::time::timeout(timeout, client_config().serve(transport)).await {
        Ok(Ok(client)) => Ok((client, tail)),
        Ok(Err(e)) => Err((format!("the MCP handshake failed: {}", chain(&e)), tail)),
        Err(_) => Err((format!("no MCP handshake within {} s", timeout.as_secs()), tail)),
    }
}

/// Connects over Streamable HTTP with `http` (the guarded client) and `headers`.
pub async fn connect_http(
    url: &str,
    headers: &[(String, String)],
    http: reqwest::Client,
    timeout: Duration,
) -> Result<McpClient, String> {
    let mut custom = HashMap::new();
    for (k, v) in headers {
        let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|e| format!("header {k}: {e}"))?;
        let mut value = http::HeaderValue::from_str(v).map_err(|e| format!("header {k}: {e}"))?;
        value.set_sensitive(true);
        custom.insert(name, value);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(custom);
    let transport = StreamableHttpClientTransport::with_client(http, config);
    match tokio::time::timeout(timeout, client_config().serve(transport)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(format!("the MCP handshake failed: {}", chain(&e))),
        Err(_) => Err(format!("no MCP handshake within {} s", timeout.as_secs())),
    }
}

/// Every tool the server lists, sorted by name.
pub async fn list_tools(client: &McpClient, timeout: Duration) -> Result<Vec<ToolInfo>, String> {
    let tools = tokio::time::timeout(timeout, client.list_all_tools())
        .await
        .map_err(|_| format!("no tool list within {} s", timeout.as_secs()))?
        .map_err(|e| format!("listing tools failed: {}", chain(&e)))?;
    let mut out: Vec<ToolInfo> = tools
        .into_iter()
        .map(|t| ToolInfo {
            read_only: t.annotations.as_ref().and_then(|a| a.read_only_hint).unwrap_or(false),
            name: t.name.into_owned(),
            description: t.description.map(|d| d.into_owned()).unwrap_or_default(),
            schema: serde_json::Value::Object((*t.input_schema).clone()).to_string(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Calls a tool with JSON-object arguments within `timeout` (dropping the call tells the
/// server it was cancelled). The result as MCP JSON (`content`, `isError`, …).
pub async fn call_tool(
    client: &McpClient,
    name: &str,
    arguments: serde_json::Value,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    let serde_json::Value::Object(args) = arguments else { return Err("arguments must be a JSON object".into()) };
    let params = rmcp::model::CallToolRequestParams::new(name.to_owned()).with_arguments(args);
    let result = tokio::time::timeout(timeout, client.call_tool(params))
        .await
        .map_err(|_| format!("{name} did not answer within {} s", timeout.as_secs()))?
        .map_err(|e| format!("{name} failed: {}", chain(&e)))?;
    serde_json::to_value(&result).map_err(|e| e.to_string())
}

/// Closes the session (stdio: stdin closed, then TERM, then KILL to the group).
pub async fn shutdown(mut client: McpClient) {
    let _ = client.close_with_timeout(Duration::from_secs(8)).await;
}
