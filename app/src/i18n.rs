//! The translation layer. Every string a person reads comes from a `Strings` table; a new
//! language is one more `const` table (the compiler refuses a table with a key missing),
//! plus its code in `model::accounts::LOCALES`. Placeholders are `{n}` (a number) and
//! `{name}`.

use leptos::prelude::*;
use model::FieldError;

use crate::error::{AppError, ErrorCode};

macro_rules! strings {
    ($($key:ident = $en:literal,)*) => {
        /// All user-facing text, one field per message.
        pub struct Strings { $(pub $key: &'static str,)* }
        /// English, the reference language.
        pub const EN: Strings = Strings { $($key: $en,)* };
    };
}

strings! {
    app_name = "Agentry",
    tagline = "Your team's AI agents, self-hosted.",
    skip_to_content = "Skip to content",
    nav_label = "Main",
    nav_home = "Home",
    nav_agents = "Agents",
    nav_skills = "Skills",
    nav_mcp = "MCP servers",
    nav_chat = "Chat",
    nav_builds = "Builds",
    nav_usage = "Usage",
    nav_providers = "Providers",
    nav_settings = "Settings",
    nav_admin = "Administration",
    menu = "Menu",
    user_menu = "Account menu",
    sign_out = "Sign out",
    signed_in_as = "Signed in as",
    theme = "Theme",
    theme_light = "Light",
    theme_dark = "Dark",
    theme_system = "System",
    theme_toggle = "Switch theme",
    loading = "Loading…",
    retry = "Try again",
    // Auth
    login_title = "Sign in",
    login_lead = "Welcome back. Sign in to your agents.",
    login_submit = "Sign in",
    login_submitting = "Signing in…",
    login_no_account = "New here?",
    login_register_link = "Create an account",
    register_title = "Create your account",
    register_lead = "The first account on a server becomes its administrator.",
    register_submit = "Create account",
    register_submitting = "Creating…",
    register_have_account = "Already have an account?",
    register_login_link = "Sign in",
    register_closed = "Registration is closed on this server. Ask an administrator for an account.",
    field_email = "Email",
    field_password = "Password",
    field_password_help = "At least 8 characters. A few words are easier to remember than symbols.",
    field_display_name = "Display name",
    field_display_name_help = "How you appear to others. Optional; defaults to your email's name.",
    // Home
    home_greeting = "Welcome, {name}",
    home_lead = "Define agents, give them skills and tools, chat with them and hand them long jobs.",
    home_start = "Where to start",
    // Sections
    agents_lead = "Agents pair a model with a system prompt, tools and skills.",
    skills_lead = "Skills are folders of instructions and files an agent loads when it needs them.",
    mcp_lead = "MCP servers give agents tools: local commands or remote services.",
    chat_lead = "Talk to your agents, with every token and tool call live.",
    chat_all = "All conversations",
    chat_conversations = "Conversations",
    chat_search = "Search titles and messages",
    chat_none_yet = "No conversations yet. Start one above.",
    chat_no_match = "No conversation matches your search.",
    chat_no_agents_title = "No agents to talk to yet",
    chat_no_agents_body = "Create an agent first: a model, a system prompt and its tools.",
    chat_new = "New conversation",
    chat_agent = "Agent",
    chat_message = "Message",
    chat_placeholder = "Write a message… (Enter sends, Shift+Enter for a new line)",
    chat_send = "Send",
    chat_sending = "Sending…",
    chat_start = "Start a conversation",
    chat_rename = "Rename",
    chat_title = "Title",
    save = "Save",
    delete = "Delete",
    chat_delete = "Delete conversation",
    chat_delete_confirm = "Delete this conversation and all its messages?",
    chat_messages = "Messages",
    chat_earlier = "Show earlier messages",
    chat_empty = "No messages yet.",
    chat_versions = "Versions",
    chat_prev_version = "Previous version",
    chat_next_version = "Next version",
    chat_edit = "Edit",
    chat_edit_send = "Save and send",
    chat_stopped = "Stopped.",
    chat_incomplete = "This answer is incomplete.",
    chat_interrupted = "Interrupted: the server stopped while this answer was written.",
    chat_failed = "No answer came.",
    chat_stop = "Stop",
    chat_regenerate = "Regenerate",
    chat_thinking = "Thinking",
    chat_tokens = "{in} in / {out} out",
    chat_with_agent = "Start a chat",
    copy = "Copy",
    copied = "Copied",
    tool_writing = "preparing",
    tool_asking = "needs your approval",
    tool_running = "running",
    tool_done = "done",
    tool_failed = "failed",
    tool_denied = "denied",
    tool_input = "Input",
    tool_result = "Result",
    tool_ask_question = "This tool may change things. Let the agent run it?",
    tool_allow = "Allow",
    tool_deny = "Deny",
    builds_lead = "Hand an agent a spec and let it build in a sandbox, with logs and artifacts.",
    usage_lead = "Tokens and cost per agent, model and day, with monthly budgets.",
    coming_soon = "Coming soon",
    coming_soon_body = "This part of Agentry is being built. It will appear here without any set-up on your side.",
    // Settings
    settings_title = "Settings",
    profile_title = "Profile",
    profile_lead = "Your name and language.",
    field_locale = "Language",
    locale_auto = "Same as my browser",
    profile_submit = "Save profile",
    profile_saved = "Profile saved.",
    password_title = "Password",
    password_lead = "Changing your password signs you out everywhere else.",
    field_current_password = "Current password",
    field_new_password = "New password",
    password_submit = "Change password",
    password_saved = "Password changed. Other sessions were signed out.",
    saving = "Saving…",
    appearance_title = "Appearance",
    // Admin
    admin_title = "Administration",
    admin_lead = "Users and sign-up on this server.",
    registration_title = "Registration",
    registration_open_state = "Anyone who can reach this server may create an account.",
    registration_closed_state = "Only existing users can sign in. New accounts cannot be created.",
    registration_close = "Close registration",
    registration_open = "Open registration",
    users_title = "Users",
    users_empty = "No other users yet.",
    col_name = "Name",
    col_email = "Email",
    col_role = "Role",
    col_status = "Status",
    col_actions = "Actions",
    role_admin = "Admin",
    role_member = "Member",
    status_active = "Active",
    status_disabled = "Disabled",
    user_disable = "Disable",
    user_enable = "Enable",
    you = "you",
    // Providers
    providers_title = "Model providers",
    providers_lead = "Connections to Anthropic, OpenAI and OpenAI-compatible servers (Ollama, vLLM, llama.cpp, OpenRouter). Keys are encrypted and never shown again.",
    providers_add = "Add connection",
    providers_empty_title = "No connections yet",
    providers_empty_body = "Add a model provider so your agents have a model to talk to.",
    provider_new_title = "New connection",
    provider_new_lead = "Where Agentry sends your agents' model requests.",
    provider_shared = "Shared",
    provider_personal = "Personal",
    provider_models_n = "{n} models",
    provider_no_key = "no key",
    field_provider_name = "Name",
    field_provider_kind = "API",
    kind_anthropic = "Anthropic Messages",
    kind_openai = "OpenAI-compatible (Chat Completions)",
    field_base_url = "Base URL",
    field_base_url_help = "OpenAI-compatible: include /v1 (https://api.openai.com/v1, http://localhost:11434/v1). Anthropic: https://api.anthropic.com.",
    field_api_key = "API key",
    field_api_key_help = "Stored encrypted. Never shown again, only its last four characters.",
    field_api_key_keep = "Leave empty to keep the stored key ({hint}). Changing the base URL removes it.",
    field_headers = "Extra headers",
    field_headers_help = "One per line, as Name: value. Values are stored encrypted.",
    field_headers_keep = "Stored: {names}. Leave empty to keep them.",
    field_models = "Models",
    field_models_help = "One per line. \"Test connection\" fills this from the provider.",
    field_shared = "Share with everyone on this server",
    provider_create = "Add connection",
    provider_creating = "Adding…",
    provider_save = "Save changes",
    provider_edit_title = "Connection details",
    provider_saved = "Connection saved.",
    provider_test = "Test connection",
    provider_testing = "Testing…",
    provider_test_ok = "Connected in {n} ms.",
    provider_test_models = "Models found:",
    provider_test_saved = "The model list was updated.",
    provider_delete = "Delete connection",
    provider_delete_confirm = "Delete for good",
    provider_delete_warning = "Agents using this connection will stop working until you pick another.",
    provider_readonly = "Shared by an administrator. You may use it and test it, not change it.",
    back_to_providers = "All connections",
    danger_zone = "Danger zone",
    // Agents
    agents_title = "Agents",
    agents_new = "New agent",
    agents_import = "Import",
    agents_search = "Search agents",
    search_button = "Search",
    agents_empty_title = "No agents yet",
    agents_empty_body = "An agent pairs a model with a system prompt, tools and skills. Create one, or import one a colleague exported.",
    agents_no_match = "No agent matches this search.",
    pages = "Pages",
    page_of = "Page {n} of {total}",
    page_prev = "← Previous",
    page_next = "Next →",
    agents_need_provider = "Add a model provider first: an agent needs a connection to talk to a model.",
    agents_add_provider = "Add a provider",
    agent_new_title = "New agent",
    agent_new_lead = "Pick a model, write its instructions. Every save keeps a version you can return to.",
    agent_create = "Create agent",
    agent_creating = "Creating…",
    agent_save = "Save new version",
    agent_saved = "Saved as a new version.",
    agent_version = "version {n}",
    agent_history = "History",
    agent_export = "Export JSON",
    agent_duplicate = "Duplicate",
    agent_delete = "Delete agent",
    agent_delete_warning = "The agent and all its versions are deleted for good.",
    agent_section_identity = "Identity",
    agent_section_model = "Model",
    agent_section_behaviour = "Behaviour",
    agent_section_tools = "Tools",
    agent_skills_help = "The agent sees each skill's name and description, and loads one when it needs it. Attach or detach skills on a skill's page.",
    agent_tools_empty = "This agent has no skills or MCP servers attached yet: it answers with the model alone.",
    field_agent_name = "Name",
    field_slug = "Slug",
    field_slug_help = "Used in URLs and as the model name in the OpenAI-compatible API. Derived from the name when empty.",
    field_description = "Description",
    field_provider = "Provider connection",
    field_provider_pick = "Choose a connection…",
    field_model = "Model",
    field_model_help = "The provider's model id, like claude-sonnet-4-5 or gpt-4.1.",
    field_fallback_models = "Fallback models",
    field_fallback_models_help = "One per line, tried in order when the model fails before answering.",
    field_system_prompt = "System prompt",
    field_temperature = "Temperature",
    field_temperature_help = "0 to 2. Empty uses the provider's default.",
    field_max_output_tokens = "Max output tokens",
    field_max_turns = "Max turns",
    field_max_turns_help = "Model calls per answer, tool use included.",
    field_tool_policies = "Tool policies",
    field_tool_policies_help = "One per line, as tool=allow, ask or deny. Tools not listed: ask when they write or execute, allow when read-only.",
    history_title = "History",
    history_lead = "Every save is a version. Restoring one saves a new version equal to it; nothing is lost.",
    history_current = "current",
    history_restored = "restored from version {n}",
    history_created = "Created.",
    history_no_changes = "No field changed.",
    history_restore = "Restore this version",
    history_field = "Field",
    history_before = "Before",
    history_after = "After",
    history_by = "by {name}",
    back_to_agent = "Back to the agent",
    back_to_agents = "All agents",
    import_title = "Import an agent",
    import_lead = "Paste a document exported from Agentry. The provider connection is found by name among yours and the shared ones; nothing is created unless everything checks out.",
    field_document = "Export document (JSON)",
    import_submit = "Import agent",
    import_problems = "The document has these problems:",
    // Skills
    skills_empty_title = "No skills yet",
    skills_empty_body = "Upload a folder or a zip with a SKILL.md (front matter: name and description) and any files it needs.",
    skill_upload_title = "Upload a skill",
    skill_upload_lead = "A zip, or a folder. SKILL.md must start with front matter giving its name and description. Uploading a skill with a name you already have makes its next version.",
    field_skill_zip = "Zip file",
    field_skill_folder = "Or a folder",
    skill_upload_limits = "Up to 200 files and 20 MiB. Links, absolute paths and archives that unpack far larger than they are are refused.",
    skill_upload = "Upload skill",
    skill_uploading = "Uploading…",
    skill_files_n = "{n} files",
    skill_files = "Files",
    skill_versions = "Versions",
    skill_reupload_hint = "To make a new version, upload the skill again with the same name.",
    skill_used_by = "Used by",
    skill_used_by_none = "No agent uses this skill yet.",
    skill_attach_to = "Attach to",
    skill_attach = "Attach",
    skill_detach = "Detach",
    skill_delete = "Delete skill",
    skill_delete_rule = "A skill attached to an agent cannot be deleted: detach it first. Deleting removes every version and file.",
    back_to_skills = "All skills",
    skills_search = "Search skills",
    skills_no_match = "No skill matches.",
    // MCP servers
    mcp_add = "Add server",
    mcp_search = "Search servers",
    mcp_empty_title = "No MCP servers yet",
    mcp_empty_body = "Add a local command (stdio) or a remote server (Streamable HTTP), connect it to see its tools, then attach it to agents.",
    mcp_no_match = "No server matches.",
    mcp_new_title = "Add an MCP server",
    mcp_new_lead = "A local command that speaks MCP on stdin and stdout, or a remote server that speaks Streamable HTTP.",
    mcp_new_approval_note = "A local command never runs until you approve its exact command line on the next page.",
    field_mcp_name = "Name",
    field_transport = "Kind",
    transport_stdio = "Local command (stdio)",
    transport_http = "Remote (Streamable HTTP)",
    field_command = "Command",
    field_command_help = "The program to run, such as npx or /usr/local/bin/my-server. No shell is involved.",
    field_args = "Arguments",
    field_args_help = "One per line, exactly as passed: no quoting needed.",
    field_env = "Environment",
    field_env_help = "NAME=value, one per line. Values are stored encrypted and never shown again. The server gets only these, PATH and HOME: nothing of Agentry's own environment.",
    field_url = "URL",
    field_url_help = "The server's Streamable HTTP endpoint, such as https://mcp.example.com/mcp.",
    mcp_create = "Add server",
    mcp_creating = "Adding…",
    mcp_status_connected = "Connected",
    mcp_status_failed = "Failed",
    mcp_status_never = "Never connected",
    mcp_needs_approval = "Needs approval",
    mcp_tools_changed = "tools changed",
    mcp_tools_n = "{n} tools",
    mcp_approve_title = "Approve the command line",
    mcp_approve_body = "This server runs the command below on the Agentry server. It never runs until you approve exactly this line; editing the command, its arguments or its environment withdraws the approval.",
    mcp_approve = "Approve and allow to run",
    mcp_connect_title = "Status",
    mcp_connect = "Connect and list tools",
    mcp_connecting = "Connecting…",
    mcp_connect_needs_approval = "Approve the command line above before connecting.",
    mcp_last_error = "Last error",
    mcp_stderr = "Standard error (last lines)",
    mcp_tools = "Tools",
    mcp_tools_none = "No tools yet. Connect to list them.",
    mcp_read_only = "read-only",
    mcp_may_write = "may write",
    mcp_schema = "Input schema",
    mcp_changed_title = "The server's tools changed",
    mcp_changed_body = "The server now offers a different list of tools (+ new, − gone, ~ changed). Agents keep the approved list until you approve the new one.",
    mcp_approve_tools = "Approve the new list",
    mcp_used_by_none = "No agent uses this server yet.",
    mcp_edit_title = "Edit server",
    mcp_save = "Save server",
    mcp_saved = "Server saved.",
    mcp_delete = "Delete server",
    mcp_delete_rule = "A server attached to an agent cannot be deleted: detach it first.",
    back_to_mcp = "All MCP servers",
    providers_search = "Search connections",
    providers_no_match = "No connection matches.",
    // The agent editor's tools
    agent_mcp_help = "Attach or detach servers on a server's page.",
    agent_tools_title = "Tools the agent may call",
    agent_tools_help = "allow runs the tool, ask waits for your answer in the chat, deny refuses it. Tools that may write or execute default to ask. Change a policy below as server/tool=policy (or tool=policy for every server).",
    tool_col_tool = "Tool",
    tool_col_from = "From",
    tool_col_policy = "Policy",
    tool_from_skills = "Skills",
    tool_policy_default = "(default)",
    // 404
    not_found_title = "Page not found",
    not_found_body = "There is nothing at this address. It may have moved, or the link may be wrong.",
    not_found_home = "Go home",
    // Field rules
    rule_required = "This field is required.",
    rule_too_short = "Use at least {n} characters.",
    rule_too_long = "Use at most {n} characters.",
    rule_invalid_email = "Enter an email address like name@example.com.",
    rule_control_chars = "Remove control characters.",
    rule_taken = "An account with this email already exists. Sign in instead?",
    rule_wrong_password = "The password is not correct.",
    rule_same_as_email = "Choose a password that is not your email.",
    rule_invalid = "This value is not valid.",
    rule_invalid_url = "Enter an http:// or https:// address, without a user name or password.",
    rule_invalid_header = "Write one header per line, as Name: value.",
    rule_invalid_env = "Write one variable per line, as NAME=value (letters, digits and _, not starting with a digit; values up to 4096 characters).",
    rule_too_many = "Use at most {n} entries.",
    rule_name_taken = "You already have one with this name. Choose another.",
    rule_out_of_range = "Use a whole number from 1 to {n}.",
    rule_out_of_range_temperature = "Use a number from 0 to {n}, or leave it empty for the provider's default.",
    rule_invalid_slug = "Use lowercase letters, digits and single dashes, like code-reviewer.",
    rule_provider_not_found = "No connection with that name is available to you. Add it under Providers first.",
    rule_not_found = "Not found. It may have been deleted.",
    rule_invalid_policy = "Write one tool per line, as tool=allow, tool=ask or tool=deny.",
    rule_too_large = "This is larger than {n} bytes.",
    rule_unsupported_format = "This is not an Agentry agent export (format agentry.agent/v1).",
    rule_invalid_json = "This is not valid JSON.",
    rule_private_address = "This address is on a private network. Only an administrator's connection may reach it.",
    // Error codes
    err_validation_failed = "Some fields need attention.",
    err_bad_request = "The request could not be read.",
    err_unauthenticated = "You are not signed in, or your session ended.",
    err_unauthenticated_hint = "Sign in again to continue.",
    err_wrong_credentials = "Email or password is incorrect.",
    err_forbidden = "You are not allowed to do this.",
    err_not_found = "Not found.",
    err_registration_closed = "Registration is closed on this server.",
    err_registration_closed_hint = "Ask an administrator to create an account for you or to open registration.",
    err_account_disabled = "This account is disabled.",
    err_account_disabled_hint = "Ask an administrator to enable it again.",
    err_rate_limited = "Too many attempts.",
    err_rate_limited_hint = "Wait {n} seconds, then try again.",
    err_payload_too_large = "That is too large to send.",
    err_upstream_failed = "The other server failed.",
    err_internal = "Something went wrong on the server.",
    err_internal_hint = "Try again. If it keeps failing, give an administrator this request id:",
    err_network = "The server could not be reached.",
    err_network_hint = "Check your connection and try again.",
}

/// The table for a locale code; unknown codes fall back to English.
pub fn strings(locale: &str) -> &'static Strings {
    // English is the only table so far; a new one adds an arm here.
    let _ = locale;
    &EN
}

/// The best supported locale for an `Accept-Language` header.
pub fn negotiate(accept_language: &str) -> &'static str {
    accept_language
        .split(',')
        .filter_map(|part| part.split(';').next())
        .map(|tag| tag.trim().split('-').next().unwrap_or("").to_ascii_lowercase())
        .find_map(|lang| model::accounts::LOCALES.iter().copied().find(|l| *l == lang))
        .unwrap_or("en")
}

/// The current locale code, provided by `App`.
#[derive(Clone, Copy, Debug)]
pub struct Locale(pub &'static str);

/// The strings for the current locale.
pub fn t() -> &'static Strings {
    strings(use_context::<Locale>().map_or("en", |l| l.0))
}

impl Strings {
    /// Replaces `{n}` with a number.
    pub fn n(&self, text: &str, n: u64) -> String {
        text.replace("{n}", &n.to_string())
    }

    /// The label of an agent field, for history and import reports.
    pub fn agent_field_label(&self, field: &str) -> &'static str {
        match field {
            "name" => self.field_agent_name,
            "slug" => self.field_slug,
            "description" => self.field_description,
            "provider_id" | "provider" => self.field_provider,
            "model" => self.field_model,
            "fallback_models" => self.field_fallback_models,
            "system_prompt" => self.field_system_prompt,
            "temperature" => self.field_temperature,
            "max_output_tokens" => self.field_max_output_tokens,
            "max_turns" => self.field_max_turns,
            "tool_policies" => self.field_tool_policies,
            "skills" => self.nav_skills,
            "mcp_servers" => self.nav_mcp,
            _ => "",
        }
    }

    pub fn field_message(&self, e: &FieldError) -> String {
        let text = match e.rule.as_str() {
            "required" => self.rule_required,
            "too_short" => self.rule_too_short,
            "too_long" => self.rule_too_long,
            "invalid_email" => self.rule_invalid_email,
            "control_chars" => self.rule_control_chars,
            "taken" if e.field == "email" => self.rule_taken,
            "taken" => self.rule_name_taken,
            "private_address" => self.rule_private_address,
            "out_of_range" if e.field == "temperature" => self.rule_out_of_range_temperature,
            "out_of_range" => self.rule_out_of_range,
            "invalid_slug" => self.rule_invalid_slug,
            "not_found" if e.field == "provider_id" || e.field == "provider" => self.rule_provider_not_found,
            "not_found" => self.rule_not_found,
            "invalid_policy" => self.rule_invalid_policy,
            "too_large" => self.rule_too_large,
            "unsupported_format" => self.rule_unsupported_format,
            "invalid_json" => self.rule_invalid_json,
            "wrong_password" => self.rule_wrong_password,
            "same_as_email" => self.rule_same_as_email,
            "invalid_url" => self.rule_invalid_url,
            "invalid_header" => self.rule_invalid_header,
            "invalid_env" => self.rule_invalid_env,
            "too_many" => self.rule_too_many,
            _ => self.rule_invalid,
        };
        self.n(text, e.limit.unwrap_or_default())
    }

    /// Headline and hint for an error, in this language.
    pub fn error_text(&self, e: &AppError) -> (String, Option<String>) {
        let wrong_credentials = e.code == ErrorCode::Unauthenticated && e.field("password").is_some();
        let (msg, hint) = match e.code {
            _ if wrong_credentials => (self.err_wrong_credentials, None),
            ErrorCode::ValidationFailed => return (self.err_validation_failed.to_owned(), e.hint.clone()),
            ErrorCode::Conflict => return (e.message.clone(), e.hint.clone()),
            ErrorCode::BadRequest => (self.err_bad_request, None),
            ErrorCode::Unauthenticated => (self.err_unauthenticated, Some(self.err_unauthenticated_hint)),
            ErrorCode::Forbidden if e.hint.is_some() => return (e.message.clone(), e.hint.clone()),
            ErrorCode::Forbidden => (self.err_forbidden, None),
            ErrorCode::NotFound => (self.err_not_found, None),
            ErrorCode::RegistrationClosed => (self.err_registration_closed, Some(self.err_registration_closed_hint)),
            ErrorCode::AccountDisabled => (self.err_account_disabled, Some(self.err_account_disabled_hint)),
            ErrorCode::RateLimited => (self.err_rate_limited, Some(self.err_rate_limited_hint)),
            ErrorCode::PayloadTooLarge => (self.err_payload_too_large, None),
            // The detail (what the provider said, which address was refused) is the message.
            ErrorCode::UpstreamFailed => return (e.message.clone(), e.hint.clone()),
            ErrorCode::Internal => (self.err_internal, Some(self.err_internal_hint)),
            ErrorCode::Network => (self.err_network, Some(self.err_network_hint)),
        };
        let hint = hint.map(|h| {
            let h = self.n(h, e.retry_after_secs.unwrap_or(60));
            match (&e.request_id, e.code) {
                (Some(id), ErrorCode::Internal) => format!("{h} {id}"),
                _ => h,
            }
        });
        (msg.to_owned(), hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_falls_back_to_english() {
        assert_eq!(negotiate("fr-CH, fr;q=0.9, en;q=0.8"), "en");
        assert_eq!(negotiate(""), "en");
    }

    #[test]
    fn field_messages_carry_the_limit() {
        let e = FieldError::with_limit("password", "too_short", 8);
        assert_eq!(EN.field_message(&e), "Use at least 8 characters.");
    }
}
