//! One `Settings` struct: defaults, then an optional `agentry.toml`, then `AGENTRY_`
//! environment variables, with `__` for nesting (`AGENTRY_AUTH__ACCESS_TTL_SECS=600`).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// Directory for the SQLite file, generated keys and blobs.
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…`; empty means `sqlite:<data_dir>/agentry.db`.
    pub database_url: String,
    /// The origin browsers use to reach Agentry (`https://agentry.example.com`). Server
    /// functions accept only this Origin; cookies get `Secure` and responses HSTS when it
    /// is https. Empty: requests must name the server by an IP address, a loopback name
    /// (`localhost`) or the bound address in `Host` (anything else is a DNS-rebinding
    /// attempt and gets 421), and the request's own Host is taken as the origin.
    pub public_origin: String,
    /// Address blocks (CIDR) of reverse proxies in front of Agentry. Only a request from
    /// one of them has its client address taken from `Forwarded` / `X-Forwarded-For`;
    /// everyone else is known by the socket's address. Empty: headers are never trusted.
    pub trusted_proxies: Vec<String>,
    /// The header those proxies write the client's address into: `x-forwarded-for` or
    /// `forwarded`. Only that one is read: a proxy passes the other through as the client
    /// sent it.
    pub proxy_header: ProxyHeader,
    /// `pretty` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// Whether people may register themselves; an admin can change it at run time. The
    /// first account can always be created.
    pub registration_open: bool,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    /// Origins allowed to make cross-origin requests to `/v1` (CORS). Empty: none.
    pub cors_origins: Vec<String>,
    /// Address blocks (CIDR, `10.1.2.0/24`) that members' provider and MCP connections may
    /// reach although they are private. Admin connections reach any address anyway.
    pub allow_private_networks: Vec<String>,
    /// Whether members (not only admins) may add MCP servers that run a local command. Such
    /// a server runs with this server's user rights (no sandbox yet), so the default is no.
    pub mcp_stdio_for_members: bool,
    /// The model table, by model id (as the agent names it and the provider answers):
    /// prices in USD per million tokens (a model not listed costs 0), context windows and
    /// whether a model reads images.
    pub pricing: std::collections::BTreeMap<String, Price>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest upload (a skill's zip or folder), in bytes.
    pub max_upload_bytes: usize,
    /// Seconds to let in-flight requests finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// SQLite only: `full` (a commit is on disk before anyone is told it succeeded, power
    /// loss included) or `normal` (faster writes; a power loss may lose the last commits).
    pub sqlite_synchronous: crate::infra::store::Durability,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyHeader {
    XForwardedFor,
    Forwarded,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Lifetime of the JWT access token, in seconds.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token (and so of an idle session), in seconds.
    pub refresh_ttl_secs: u64,
    /// A refresh token presented again within this many seconds of its rotation is taken
    /// as two tabs racing, not as theft: it gets a fresh access token but no new refresh
    /// token. After that window, reuse revokes the whole session family.
    pub refresh_reuse_grace_secs: u64,
    /// JWT signing key (base64, ≥ 32 bytes). Empty: generated into `<data_dir>/jwt.key`.
    #[serde(skip_serializing)]
    pub jwt_secret: Option<SecretString>,
    /// Key that encrypts stored secrets (base64, 32 bytes). Empty: generated into
    /// `<data_dir>/secrets.key`.
    #[serde(skip_serializing)]
    pub secrets_key: Option<SecretString>,
    /// Argon2id memory cost in KiB (OWASP: 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Requests per minute per signed-in user (or per address when anonymous) to server
    /// functions and `/v1`. 0 turns the limit off.
    pub requests_per_minute: u32,
    /// Failed logins allowed per account, and per address, in `login_window_secs`.
    pub login_failures: u32,
    /// Window for counting failed logins, in seconds.
    pub login_window_secs: u64,
    /// Messages one conversation may hold (questions and answers, every branch); past it a
    /// new message is refused with an error naming the limit (start a new conversation).
    pub messages_per_conversation: u32,
    /// Seconds a run waits for someone to allow or decline a tool call; then it ends as
    /// stopped, saying why.
    pub approval_timeout_secs: u64,
    /// Bytes of files (every skill version's, and chat attachments) one user may keep; an
    /// upload past it is refused, naming the quota and what is used.
    pub storage_per_user_bytes: u64,
    /// The largest file that may be attached to a chat message, in bytes.
    pub attachment_max_bytes: u64,
    /// Files one chat message may carry.
    pub attachments_per_message: u32,
    /// Wall-clock seconds one run (a chat or API answer) may take from start to end,
    /// waiting for approvals included; past it the run ends as incomplete, saying why.
    pub run_wall_secs: u64,
    /// Tool calls one run may make in all; the call past it ends the run as incomplete.
    pub run_tool_calls: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:3000".into(),
            data_dir: PathBuf::from("./data"),
            database_url: String::new(),
            public_origin: String::new(),
            trusted_proxies: Vec::new(),
            proxy_header: ProxyHeader::XForwardedFor,
            log_format: LogFormat::Pretty,
            registration_open: true,
            auth: AuthSettings::default(),
            limits: LimitSettings::default(),
            cors_origins: Vec::new(),
            allow_private_networks: Vec::new(),
            mcp_stdio_for_members: false,
            pricing: Default::default(),
            max_body_bytes: 2 * 1024 * 1024,
            max_upload_bytes: 25 * 1024 * 1024,
            shutdown_grace_secs: 20,
            sqlite_synchronous: crate::infra::store::Durability::Full,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            refresh_reuse_grace_secs: 10,
            jwt_secret: None,
            secrets_key: None,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            requests_per_minute: 100,
            login_failures: 5,
            login_window_secs: 15 * 60,
            messages_per_conversation: 10_000,
            approval_timeout_secs: 24 * 3600,
            storage_per_user_bytes: 1024 * 1024 * 1024,
            attachment_max_bytes: 5 * 1024 * 1024,
            attachments_per_message: 5,
            run_wall_secs: 2 * 24 * 3600,
            run_tool_calls: 500,
        }
    }
}

impl Settings {
    /// Defaults, then `agentry.toml` in the working directory (or `AGENTRY_CONFIG`), then
    /// the environment.
    pub fn load() -> Result<Self, Box<figment::Error>> {
        let file = std::env::var("AGENTRY_CONFIG").unwrap_or_else(|_| "agentry.toml".into());
        Self::figment(Toml::file(file)).extract().map_err(Box::new)
    }

    fn figment(file: impl figment::Provider) -> Figment {
        Figment::from(Serialized::defaults(Settings::default()))
            .merge(file)
            .merge(Env::prefixed("AGENTRY_").split("__").ignore(&["config"]))
    }

    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}/agentry.db?mode=rwc", self.data_dir.display())
        } else {
            self.database_url.clone()
        }
    }

    /// True when browsers reach us over https: cookies get `Secure`, responses HSTS.
    pub fn is_https(&self) -> bool {
        self.public_origin.starts_with("https://")
    }
}

#[cfg(test)]
// figment::Jail's closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agentry.toml", "bind = \"0.0.0.0:8080\"\n[auth]\naccess_ttl_secs = 60\n")?;
            jail.set_env("AGENTRY_AUTH__ACCESS_TTL_SECS", "120");
            jail.set_env("AGENTRY_LIMITS__REQUESTS_PER_MINUTE", "7");
            let s = Settings::load().map_err(|e| e.to_string())?;
            assert_eq!(s.bind, "0.0.0.0:8080");
            assert_eq!(s.auth.access_ttl_secs, 120);
            assert_eq!(s.limits.requests_per_minute, 7);
            assert_eq!(s.data_dir, PathBuf::from("./data"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_an_error_naming_them() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("agentry.toml", "bnd = \"x\"\n")?;
            let err = Settings::load().expect_err("unknown key");
            assert!(err.to_string().contains("bnd"), "{err}");
            Ok(())
        });
    }
}

/// What Agentry knows of a model: its price in USD per million tokens, how many tokens
/// its context window holds, and whether it reads images.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// Tokens of input and output together; 0: not known ([`DEFAULT_CONTEXT_WINDOW`]).
    pub context_window: u64,
    /// false: the model reads text only, and images for it are refused before sending.
    pub vision: bool,
}

impl Default for Price {
    fn default() -> Self {
        Self { input_per_mtok: 0.0, output_per_mtok: 0.0, context_window: 0, vision: true }
    }
}

/// The context window assumed for a model the table does not give one for.
pub const DEFAULT_CONTEXT_WINDOW: u64 = 128_000;

impl Settings {
    /// Whether `model` reads images, by the model table (a model not in it is assumed to).
    pub fn vision(&self, model: &str) -> bool {
        self.pricing.get(model).is_none_or(|p| p.vision)
    }

    /// The context window of `model` by the model table.
    pub fn context_window(&self, model: &str) -> u64 {
        self.pricing.get(model).map(|p| p.context_window).filter(|w| *w > 0).unwrap_or(DEFAULT_CONTEXT_WINDOW)
    }
}
