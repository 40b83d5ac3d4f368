//! `AppError`: the one error every server function returns and every view shows. It has a
//! stable machine-readable `code` (with its HTTP status), a message, a hint, and per-field
//! errors for forms. Internal failures reach the user only as a generic message with the
//! request id; their chain is logged on the server.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use model::{FieldError, FieldErrors};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    BadRequest,
    Unauthenticated,
    Forbidden,
    AgentNotFound,
    ProviderNotFound,
    SkillNotFound,
    /// A file of a skill version.
    SkillFileNotFound,
    McpServerNotFound,
    /// A conversation, or a message of one.
    ConversationNotFound,
    ApiKeyNotFound,
    UserNotFound,
    /// A conversation's share link that is wrong or revoked.
    ShareNotFound,
    /// A file attached to a chat message.
    AttachmentNotFound,
    RunNotFound,
    SpecNotFound,
    /// The run (or the answer it writes) has already ended: nothing to stop or answer.
    RunEnded,
    RegistrationClosed,
    AccountDisabled,
    RateLimited,
    PayloadTooLarge,
    /// The agent was saved elsewhere since the editor opened it; nothing was written.
    AgentChanged,
    /// The spec was saved elsewhere since the editor opened it; nothing was written.
    SpecChanged,
    /// Agents use the skill or server, so it cannot be deleted.
    InUse,
    /// The MCP server's command line waits for its owner's approval.
    NotApproved,
    /// A model provider or MCP server failed or could not be reached.
    UpstreamFailed,
    /// The server cannot reach its database (or another part it needs) for now.
    Unavailable,
    Internal,
    /// Client side only: the request never got an answer.
    Network,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            Self::ValidationFailed => 422,
            Self::BadRequest => 400,
            Self::Unauthenticated => 401,
            Self::Forbidden | Self::RegistrationClosed | Self::AccountDisabled => 403,
            Self::AgentNotFound
            | Self::ProviderNotFound
            | Self::SkillNotFound
            | Self::SkillFileNotFound
            | Self::McpServerNotFound
            | Self::ConversationNotFound
            | Self::ApiKeyNotFound
            | Self::UserNotFound
            | Self::ShareNotFound
            | Self::AttachmentNotFound
            | Self::RunNotFound
            | Self::SpecNotFound => 404,
            Self::AgentChanged | Self::SpecChanged | Self::InUse | Self::NotApproved | Self::RunEnded => 409,
            Self::PayloadTooLarge => 413,
            Self::RateLimited => 429,
            Self::Internal => 500,
            Self::UpstreamFailed => 502,
            Self::Unavailable => 503,
            Self::Network => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "validation_failed",
            Self::BadRequest => "bad_request",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::AgentNotFound => "agent_not_found",
            Self::ProviderNotFound => "provider_not_found",
            Self::SkillNotFound => "skill_not_found",
            Self::SkillFileNotFound => "skill_file_not_found",
            Self::McpServerNotFound => "mcp_server_not_found",
            Self::ConversationNotFound => "conversation_not_found",
            Self::ApiKeyNotFound => "api_key_not_found",
            Self::UserNotFound => "user_not_found",
            Self::ShareNotFound => "share_not_found",
            Self::AttachmentNotFound => "attachment_not_found",
            Self::RunNotFound => "run_not_found",
            Self::SpecNotFound => "spec_not_found",
            Self::SpecChanged => "spec_changed",
            Self::RunEnded => "run_ended",
            Self::AgentChanged => "agent_changed",
            Self::InUse => "in_use",
            Self::NotApproved => "not_approved",
            Self::RegistrationClosed => "registration_closed",
            Self::AccountDisabled => "account_disabled",
            Self::RateLimited => "rate_limited",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UpstreamFailed => "upstream_failed",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
            Self::Network => "network",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(default, skip_serializing_if = "FieldErrors::is_empty")]
    pub fields: FieldErrors,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let e = Self {
            code,
            message: message.into(),
            hint: None,
            fields: FieldErrors::default(),
            request_id: None,
            retry_after_secs: None,
        };
        #[cfg(feature = "ssr")]
        let e = crate::ssr::stamp(e);
        e
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn invalid(fields: FieldErrors) -> Self {
        let message = fields.0.iter().map(FieldError::message).collect::<Vec<_>>().join("; ");
        let mut e = Self::new(ErrorCode::ValidationFailed, message);
        e.fields = fields;
        e
    }

    /// The error for one field, if any.
    pub fn field(&self, name: &str) -> Option<&FieldError> {
        self.fields.get(name)
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The arguments could not be read: name what was wrong.
            ServerFnErrorErr::Args(m) | ServerFnErrorErr::Deserialization(m) => {
                let mut e = Self::new(ErrorCode::BadRequest, format!("the request could not be read: {m}"));
                if let Some(field) = missing_field(&m) {
                    e.fields.push(FieldError::new(&field, "required"));
                }
                e
            }
            ServerFnErrorErr::Request(m) | ServerFnErrorErr::Response(m) => {
                Self::new(ErrorCode::Network, format!("the server could not be reached: {m}"))
                    .with_hint("Check your connection and try again.")
            }
            ServerFnErrorErr::MissingArg(m) => {
                let mut e = Self::new(ErrorCode::BadRequest, format!("missing argument: {m}"));
                e.fields.push(FieldError::new(&m, "required"));
                e
            }
            other => Self::new(ErrorCode::Internal, other.to_string()),
        }
    }
}

/// serde's "missing field `x`" names the field; keep it as data.
fn missing_field(m: &str) -> Option<String> {
    let start = m.find("missing field `")? + "missing field `".len();
    let rest = &m[start..];
    Some(rest[..rest.find('`')?].to_owned())
}

#[cfg(feature = "ssr")]
mod from_engine {
    use super::{AppError, ErrorCode};
    use engine::agents::AgentError;
    use engine::mcp::McpError;
    use engine::providers::ProviderError;
    use engine::skills::SkillError;

    impl From<SkillError> for AppError {
        fn from(e: SkillError) -> Self {
            match e {
                SkillError::Refused(p) => {
                    let mut e = AppError::new(ErrorCode::ValidationFailed, format!("The upload was refused: {p}."))
                        .with_hint(format!("The upload was refused: {p}."));
                    e.fields.push(model::FieldError::new("upload", "refused"));
                    e
                }
                SkillError::NotFound => AppError::new(ErrorCode::SkillNotFound, "Skill not found."),
                SkillError::FileNotFound => AppError::new(ErrorCode::SkillFileNotFound, "File not found."),
                SkillError::InUse(names) => AppError::new(
                    ErrorCode::InUse,
                    format!("This skill is attached to {}, so it cannot be deleted.", names.join(", ")),
                )
                .with_hint("Detach it from those agents first."),
                SkillError::Quota { upload, used, quota } => {
                    let mib = |b: u64| b.div_ceil(1024 * 1024);
                    let mut e = AppError::new(
                        ErrorCode::ValidationFailed,
                        format!(
                            "This upload ({} MiB) would pass your storage quota of {} MiB ({} MiB used).",
                            mib(upload),
                            mib(quota),
                            mib(used)
                        ),
                    )
                    .with_hint("Delete old versions of your skills, or skills you no longer use, to make room.");
                    e.fields.push(model::FieldError::with_limit("upload", "quota", mib(quota)));
                    e
                }
                SkillError::Blobs(_) | SkillError::Store(_) => crate::ssr::internal(&e),
            }
        }
    }

    impl From<engine::runs::RunError> for AppError {
        fn from(e: engine::runs::RunError) -> Self {
            use engine::runs::RunError;
            match e {
                RunError::Invalid(f) => AppError::invalid(f),
                RunError::NotFound => AppError::new(ErrorCode::RunNotFound, "Run not found."),
                RunError::Ended => AppError::new(ErrorCode::RunEnded, "This run has already ended; nothing changed.")
                    .with_hint("Reload the page to see how it ended."),
                RunError::Store(_) => crate::ssr::internal(&e),
            }
        }
    }

    impl From<engine::chat::ChatError> for AppError {
        fn from(e: engine::chat::ChatError) -> Self {
            use engine::chat::ChatError;
            match e {
                ChatError::Invalid(f) => AppError::invalid(f),
                ChatError::ShareNotFound => AppError::new(ErrorCode::ShareNotFound, "Share link not found."),
                ChatError::NotFound => {
                    AppError::new(ErrorCode::ConversationNotFound, "Conversation or message not found.")
                }
                ChatError::NotRunning => AppError::new(ErrorCode::RunEnded, "This answer is not running any more.")
                    .with_hint("Reload the conversation to see how it ended."),
                ChatError::AttachmentNotFound => AppError::new(ErrorCode::AttachmentNotFound, "Attachment not found."),
                ChatError::Attachment(p) => {
                    let mut e = AppError::new(ErrorCode::ValidationFailed, format!("The file was refused: {p}."))
                        .with_hint(format!("The file was refused: {p}."));
                    e.fields.push(match p.limit() {
                        Some(n) => model::FieldError::with_limit("files", p.rule(), n),
                        None => model::FieldError::new("files", p.rule()),
                    });
                    e
                }
                ChatError::Quota { upload, used, quota } => {
                    let mib = |b: u64| b.div_ceil(1024 * 1024);
                    let text = format!(
                        "These files ({} MiB) would pass your storage quota of {} MiB ({} MiB used).",
                        mib(upload),
                        mib(quota),
                        mib(used)
                    );
                    let mut e = AppError::new(ErrorCode::ValidationFailed, text.clone()).with_hint(text);
                    e.fields.push(model::FieldError::with_limit("files", "quota", mib(quota)));
                    e
                }
                ChatError::Agent(a) => a.into(),
                ChatError::Store(_) | ChatError::Blobs(_) => crate::ssr::internal(&e),
            }
        }
    }

    impl From<engine::api_keys::ApiKeyError> for AppError {
        fn from(e: engine::api_keys::ApiKeyError) -> Self {
            use engine::api_keys::ApiKeyError;
            match e {
                ApiKeyError::Invalid(f) => AppError::invalid(f),
                ApiKeyError::NotFound => AppError::new(ErrorCode::ApiKeyNotFound, "API key not found."),
                ApiKeyError::Store(_) => crate::ssr::internal(&e),
            }
        }
    }

    impl From<McpError> for AppError {
        fn from(e: McpError) -> Self {
            match e {
                McpError::Invalid(f) => AppError::invalid(f),
                McpError::NotFound => AppError::new(ErrorCode::McpServerNotFound, "MCP server not found."),
                McpError::NotApproved => {
                    AppError::new(ErrorCode::NotApproved, "This command line has not been approved to run.")
                        .with_hint("Read the command line on this page and approve it first. Editing the command, its arguments or its environment withdraws the approval.")
                }
                McpError::StdioAdminOnly => AppError::new(
                    ErrorCode::Forbidden,
                    "Only an administrator may add servers that run a command on this machine.",
                )
                .with_hint("Add a Streamable HTTP server instead, or ask an administrator."),
                McpError::BadDocument(m) => {
                    let mut e =
                        AppError::new(ErrorCode::ValidationFailed, format!("The document could not be read: {m}"))
                            .with_hint(format!("The document could not be read: {m}"));
                    e.fields.push(model::FieldError::new("document", "invalid_json"));
                    e
                }
                McpError::TrustAdminOnly => {
                    let mut e = AppError::new(
                        ErrorCode::Forbidden,
                        "Only an administrator may trust a server's read-only hints (trust_read_only).",
                    )
                    .with_hint("Leave it unticked: an agent's tool policies can still allow single tools.");
                    e.fields.push(model::FieldError::new("trust_read_only", "admin_only"));
                    e
                }
                McpError::Connect(m) => AppError::new(ErrorCode::UpstreamFailed, format!("Could not connect: {m}"))
                    .with_hint("Check the address and headers, then connect again."),
                McpError::InUse(names) => AppError::new(
                    ErrorCode::InUse,
                    format!("This server is attached to {}, so it cannot be deleted.", names.join(", ")),
                )
                .with_hint("Detach it from those agents first."),
                McpError::Secret(_) | McpError::Store(_) => crate::ssr::internal(&e),
            }
        }
    }

    impl From<AgentError> for AppError {
        fn from(e: AgentError) -> Self {
            match e {
                AgentError::Invalid(f) => AppError::invalid(f),
                AgentError::NotFound => AppError::new(ErrorCode::AgentNotFound, "Agent not found."),
                AgentError::Conflict { current } => AppError::new(
                    ErrorCode::AgentChanged,
                    format!("This agent was saved elsewhere since you opened it (it is now version {current})."),
                )
                .with_hint("Nothing was saved. Copy your changes, reload the page and apply them again."),
                AgentError::BadDocument(m) => {
                    let mut e =
                        AppError::new(ErrorCode::ValidationFailed, format!("The document could not be read: {m}"))
                            .with_hint(format!("The document could not be read: {m}"));
                    e.fields.push(model::FieldError::new("document", "invalid_json"));
                    e
                }
                AgentError::Store(_) => crate::ssr::internal(&e),
            }
        }
    }
    use engine::specs::SpecError;

    impl From<SpecError> for AppError {
        fn from(e: SpecError) -> Self {
            match e {
                SpecError::Invalid(f) => AppError::invalid(f),
                SpecError::NotFound => AppError::new(ErrorCode::SpecNotFound, "Spec not found."),
                SpecError::Conflict { current } => AppError::new(
                    ErrorCode::SpecChanged,
                    format!("This spec was saved elsewhere since you opened it (it is now version {current})."),
                )
                .with_hint("Nothing was saved. Copy your text, reload the page and apply your changes again."),
                SpecError::Store(_) => crate::ssr::internal(&e),
            }
        }
    }
    use engine::{AccountError, AuthError};

    impl From<ProviderError> for AppError {
        fn from(e: ProviderError) -> Self {
            match e {
                ProviderError::Invalid(f) => AppError::invalid(f),
                ProviderError::NotFound => AppError::new(ErrorCode::ProviderNotFound, "Provider connection not found."),
                ProviderError::AdminOnly => {
                    AppError::new(ErrorCode::Forbidden, "Only an administrator may change a shared connection.")
                }
                ProviderError::Unreachable(m) => {
                    AppError::new(ErrorCode::UpstreamFailed, format!("Cannot reach the provider: {m}"))
                        .with_hint("Check the base URL. Members' connections may only reach public addresses.")
                }
                ProviderError::Upstream(m) => {
                    AppError::new(ErrorCode::UpstreamFailed, format!("The provider refused: {m}"))
                        .with_hint("Check the API key, the headers and the base URL.")
                }
                ProviderError::Secret(_) | ProviderError::Store(_) => crate::ssr::internal(&e),
            }
        }
    }

    impl From<AccountError> for AppError {
        fn from(e: AccountError) -> Self {
            match e {
                AccountError::Invalid(f) => AppError::invalid(f),
                AccountError::RegistrationClosed => {
                    AppError::new(ErrorCode::RegistrationClosed, "Registration is closed on this server.")
                        .with_hint("Ask an administrator to create an account for you or to open registration.")
                }
                AccountError::WrongCredentials => {
                    let mut e = AppError::new(ErrorCode::Unauthenticated, "Email or password is incorrect.");
                    e.fields.push(model::FieldError::new("password", "wrong_password"));
                    e
                }
                AccountError::Disabled => AppError::new(ErrorCode::AccountDisabled, "This account is disabled.")
                    .with_hint("Ask an administrator to enable it again."),
                AccountError::TooManyAttempts(wait) => {
                    let mut e = AppError::new(ErrorCode::RateLimited, "Too many failed sign-in attempts.")
                        .with_hint(format!("Wait {} seconds, then try again.", wait.secs()));
                    e.retry_after_secs = Some(wait.secs());
                    crate::ssr::set_retry_after(wait.secs());
                    e
                }
                AccountError::AdminOnly => AppError::new(ErrorCode::Forbidden, "Only an administrator may do this."),
                AccountError::NotFound => AppError::new(ErrorCode::UserNotFound, "User not found."),
                AccountError::Auth(a) => a.into(),
                AccountError::Hash(_) | AccountError::Store(_) => crate::ssr::internal(&e),
            }
        }
    }

    impl From<AuthError> for AppError {
        fn from(e: AuthError) -> Self {
            match e {
                AuthError::Store(_) => crate::ssr::internal(&e),
                AuthError::Disabled => AppError::new(ErrorCode::AccountDisabled, "This account is disabled."),
                _ => AppError::new(ErrorCode::Unauthenticated, "You are not signed in.").with_hint("Sign in again."),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_field_is_named() {
        let e = AppError::from_server_fn_error(ServerFnErrorErr::Args("missing field `email`".into()));
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert_eq!(e.field("email").map(|f| f.rule.as_str()), Some("required"));
    }
}
