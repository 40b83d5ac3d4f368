//! The agent form's inputs, shared by "new" and "edit".

use leptos::prelude::*;
use model::agents::{AgentSpec, AgentTool, DESCRIPTION_MAX, NAME_MAX, PROMPT_MAX, SLUG_MAX};
use model::providers::ProviderView;

use crate::components::{Field, TextArea, field_error};
use crate::error::AppError;
use crate::i18n::t;

#[component]
pub fn AgentFields(
    spec: Option<AgentSpec>,
    providers: Vec<ProviderView>,
    /// The attached skills, `(id, name)`.
    #[prop(optional)]
    skills: Vec<(String, String)>,
    /// The attached MCP servers, `(id, name)`.
    #[prop(optional)]
    servers: Vec<(String, String)>,
    /// The tools those bring, with their policies.
    #[prop(optional)]
    tools: Vec<AgentTool>,
    #[prop(into)] err: Signal<Option<AppError>>,
) -> impl IntoView {
    let t = t();
    let s = spec.unwrap_or_else(|| AgentSpec {
        name: String::new(),
        slug: String::new(),
        description: String::new(),
        provider_id: providers.first().map(|p| p.id.clone()).unwrap_or_default(),
        model: providers.first().and_then(|p| p.models.first().cloned()).unwrap_or_default(),
        fallback_models: Vec::new(),
        system_prompt: String::new(),
        temperature: None,
        max_output_tokens: model::agents::DEFAULT_MAX_OUTPUT_TOKENS,
        max_turns: model::agents::DEFAULT_MAX_TURNS,
        context_rule: Default::default(),
        tool_policies: Default::default(),
        skills: Vec::new(),
        mcp_servers: Vec::new(),
    });
    // Each connection's models (as "Test connection" found them): the model box suggests
    // those of the connection chosen. Without JavaScript it suggests every connection's.
    let by_provider: std::sync::Arc<Vec<(String, Vec<String>)>> =
        std::sync::Arc::new(providers.iter().map(|p| (p.id.clone(), p.models.clone())).collect());
    let chosen = RwSignal::new(s.provider_id.clone());
    let model = RwSignal::new(s.model.clone());
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let suggestions = {
        let by_provider = by_provider.clone();
        move || {
            let chosen = chosen.get();
            let mut models: Vec<String> = by_provider
                .iter()
                .filter(|(id, _)| !hydrated.get() || *id == chosen)
                .flat_map(|(_, m)| m.iter().cloned())
                .collect();
            models.sort();
            models.dedup();
            models
        }
    };
    // Another connection: its first model, unless it has the model already in the box.
    let pick_provider = move |ev: leptos::ev::Event| {
        let id = event_target_value(&ev);
        if let Some((_, models)) = by_provider.iter().find(|(p, _)| *p == id)
            && let Some(first) = models.first()
            && !model.with(|m| models.contains(m))
        {
            model.set(first.clone());
        }
        chosen.set(id);
    };
    let policies = RwSignal::new(
        s.tool_policies.iter().map(|(k, v)| format!("{k}={}", v.as_str())).collect::<Vec<_>>().join("\n"),
    );
    let provider_err = field_error(err, "provider_id");
    let selected = s.provider_id.clone();
    view! {
        <fieldset class="fieldset">
            <legend>{t.agent_section_identity}</legend>
            <Field name="form[name]" label=t.field_agent_name value=s.name.clone() required=true maxlength=NAME_MAX error=field_error(err, "name") />
            <Field name="form[slug]" label=t.field_slug help=t.field_slug_help value=s.slug.clone() maxlength=SLUG_MAX error=field_error(err, "slug") />
            <TextArea name="form[description]" label=t.field_description value=s.description.clone() rows=2 maxlength=DESCRIPTION_MAX error=field_error(err, "description") />
        </fieldset>
        <fieldset class="fieldset">
            <legend>{t.agent_section_model}</legend>
            <div class="field" class:has-error=move || provider_err.get().is_some()>
                <label for="f-provider_id">{t.field_provider}</label>
                <select id="f-provider_id" name="form[provider_id]" required=true aria-describedby="f-provider_id-error" on:change=pick_provider>
                    <option value="" selected=selected.is_empty()>{t.field_provider_pick}</option>
                    {providers
                        .into_iter()
                        .map(|p| {
                            let is = p.id == selected;
                            view! { <option value=p.id.clone() selected=is>{p.name.clone()}</option> }
                        })
                        .collect_view()}
                </select>
                <p class="field-error" id="f-provider_id-error" role="alert">{move || provider_err.get()}</p>
            </div>
            <div class="field" class:has-error=move || field_error(err, "model").get().is_some()>
                <label for="f-model">{t.field_model}</label>
                <input
                    id="f-model"
                    name="form[model]"
                    list="model-options"
                    value=s.model.clone()
                    prop:value=move || model.get()
                    on:input=move |ev| model.set(event_target_value(&ev))
                    required=true
                    maxlength=model::agents::MODEL_MAX
                    autocomplete="off"
                    aria-describedby="f-model-help"
                />
                <p class="help" id="f-model-help">{t.field_model_help}</p>
                <p class="field-error" role="alert">{move || field_error(err, "model").get()}</p>
                <datalist id="model-options">
                    {move || suggestions().into_iter().map(|m| view! { <option value=m></option> }).collect_view()}
                </datalist>
            </div>
            <TextArea name="form[fallback_models]" label=t.field_fallback_models help=t.field_fallback_models_help value=s.fallback_models.join("\n") rows=2 mono=true error=field_error(err, "fallback_models") />
            <div class="field-row">
                <Field name="form[temperature]" label=t.field_temperature help=t.field_temperature_help kind="number" value=s.temperature.map(|v| v.to_string()).unwrap_or_default() error=field_error(err, "temperature") step="any" />
                <Field name="form[max_output_tokens]" label=t.field_max_output_tokens kind="number" value=s.max_output_tokens.to_string() error=field_error(err, "max_output_tokens") />
                <Field name="form[max_turns]" label=t.field_max_turns help=t.field_max_turns_help kind="number" value=s.max_turns.to_string() error=field_error(err, "max_turns") />
            </div>
            <div class="field" class:has-error=move || field_error(err, "context_rule").get().is_some()>
                <label for="f-context_rule">{t.field_context_rule}</label>
                <select id="f-context_rule" name="form[context_rule]" aria-describedby="f-context_rule-help">
                    {model::agents::ContextRule::ALL
                        .into_iter()
                        .map(|r| {
                            let label = match r {
                                model::agents::ContextRule::Summarize => t.context_rule_summarize,
                                model::agents::ContextRule::DropOldest => t.context_rule_drop_oldest,
                                model::agents::ContextRule::Refuse => t.context_rule_refuse,
                            };
                            view! { <option value=r.as_str() selected=r == s.context_rule>{label}</option> }
                        })
                        .collect_view()}
                </select>
                <p class="help" id="f-context_rule-help">{t.field_context_rule_help}</p>
                <p class="field-error" role="alert">{move || field_error(err, "context_rule").get()}</p>
            </div>
        </fieldset>
        <fieldset class="fieldset">
            <legend>{t.agent_section_behaviour}</legend>
            <TextArea name="form[system_prompt]" label=t.field_system_prompt value=s.system_prompt.clone() rows=10 maxlength=PROMPT_MAX error=field_error(err, "system_prompt") />
        </fieldset>
        <fieldset class="fieldset">
            <legend>{t.agent_section_tools}</legend>
            {(s.skills.is_empty() && s.mcp_servers.is_empty()).then(|| view! { <p class="muted">{t.agent_tools_empty}</p> })}
            {(!skills.is_empty()).then(|| view! {
                <div class="field">
                    <span class="label">{t.nav_skills}</span>
                    <ul class="chips" aria-label=t.nav_skills>
                        {skills.into_iter().map(|(id, name)| view! {
                            <li><a class="chip mono" href=format!("/skills/{id}")>{name}</a></li>
                        }).collect_view()}
                    </ul>
                    <p class="help">{t.agent_skills_help}</p>
                </div>
            })}
            {(!servers.is_empty()).then(|| view! {
                <div class="field">
                    <span class="label">{t.nav_mcp}</span>
                    <ul class="chips" aria-label=t.nav_mcp>
                        {servers.into_iter().map(|(id, name)| view! {
                            <li><a class="chip" href=format!("/mcp/{id}")>{name}</a></li>
                        }).collect_view()}
                    </ul>
                    <p class="help">{t.agent_mcp_help}</p>
                </div>
            })}
            {(!tools.is_empty()).then(|| view! { <ToolTable tools policies hydrated /> })}
            <PolicyText policies error=field_error(err, "tool_policies") />
        </fieldset>
    }
}

/// The policies as `tool=policy` lines: what the form sends. The table's menus write it
/// once the page is live; without JavaScript it is edited by hand.
#[component]
fn PolicyText(policies: RwSignal<String>, error: Signal<Option<String>>) -> impl IntoView {
    let t = t();
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for="f-tool_policies">{t.field_tool_policies}</label>
            <textarea
                id="f-tool_policies"
                name="form[tool_policies]"
                rows=3
                class="mono"
                prop:value=move || policies.get()
                on:input=move |ev| policies.set(event_target_value(&ev))
                aria-invalid=move || if error.get().is_some() { "true" } else { "false" }
                aria-describedby="f-tool_policies-help f-tool_policies-error"
            >
                {policies.get_untracked()}
            </textarea>
            <p class="help" id="f-tool_policies-help">{t.field_tool_policies_help}</p>
            <p class="field-error" id="f-tool_policies-error" role="alert">{move || error.get()}</p>
        </div>
    }
}

/// The policy `text` (`tool=policy` lines) gives `key`, or "" when it gives none.
pub fn policy_of(text: &str, key: &str) -> String {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

/// `text` with `key`'s line set to `policy` ("" removes it: the default applies), every
/// other line kept as it was.
pub fn with_policy(text: &str, key: &str, policy: &str) -> String {
    let mut found = false;
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let is_key = line.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if !is_key {
            lines.push(line.to_owned());
        } else if !found {
            found = true;
            if !policy.is_empty() {
                lines.push(format!("{key}={policy}"));
            }
        }
    }
    if !found && !policy.is_empty() {
        lines.retain(|l| !l.trim().is_empty());
        lines.push(format!("{key}={policy}"));
    }
    lines.join("\n")
}

/// The tools an agent may call: where each comes from, and a menu setting its policy (it
/// writes the policy text below, which the form sends).
#[component]
fn ToolTable(tools: Vec<AgentTool>, policies: RwSignal<String>, hydrated: RwSignal<bool>) -> impl IntoView {
    let t = t();
    view! {
        <div class="field">
            <span class="label" id="tools-label">{t.agent_tools_title}</span>
            <div class="table-wrap">
                <table class="tools" aria-labelledby="tools-label">
                    <thead>
                        <tr><th scope="col">{t.tool_col_tool}</th><th scope="col">{t.tool_col_from}</th><th scope="col">{t.tool_col_policy}</th></tr>
                    </thead>
                    <tbody>
                        {tools.into_iter().map(|tool| {
                            let from = if tool.source.is_empty() { t.tool_from_skills.to_owned() } else { tool.source.clone() };
                            // What applies when no line names the tool, as the server worked it out.
                            let default = (!tool.explicit).then_some(tool.policy);
                            let key = tool.key.clone();
                            let current = {
                                let key = key.clone();
                                move || policy_of(&policies.get(), &key)
                            };
                            let set = {
                                let key = key.clone();
                                move |ev: leptos::ev::Event| {
                                    let v = event_target_value(&ev);
                                    policies.update(|p| *p = with_policy(p, &key, &v));
                                }
                            };
                            let shown = {
                                let current = current.clone();
                                move || {
                                    model::agents::ToolPolicy::parse(&current()).or(default)
                                }
                            };
                            let badge = Signal::derive(move || match shown() {
                                Some(model::agents::ToolPolicy::Allow) => ("badge badge-on", "allow"),
                                Some(model::agents::ToolPolicy::Ask) => ("badge badge-warn", "ask"),
                                Some(model::agents::ToolPolicy::Deny) => ("badge badge-off", "deny"),
                                None => ("badge", "—"),
                            });
                            let label = t.tool_policy_for.replace("{name}", &key);
                            view! {
                                <tr data-tool=key.clone()>
                                    <td>
                                        <span class="mono">{key.clone()}</span>
                                        <p class="muted small">{tool.description.clone()}</p>
                                    </td>
                                    <td>{from}</td>
                                    <td class="policy-cell">
                                        <span class=move || badge.get().0 data-testid="tool-policy">{move || badge.get().1}</span>
                                        <select
                                            aria-label=label
                                            prop:value=current.clone()
                                            on:change=set
                                            disabled=move || !hydrated.get()
                                        >
                                            <option value="" selected=current().is_empty()>{t.tool_policy_default}</option>
                                            {["allow", "ask", "deny"].into_iter().map(|p| {
                                                let is = current() == p;
                                                view! { <option value=p selected=is>{p}</option> }
                                            }).collect_view()}
                                        </select>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <p class="help">{t.agent_tools_help}</p>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::{policy_of, with_policy};

    #[test]
    fn a_menu_sets_replaces_or_removes_only_its_own_line() {
        let text = "fx/add=allow\nbare_tool=ask\nfx/write_note=deny";
        assert_eq!(policy_of(text, "fx/write_note"), "deny");
        assert_eq!(policy_of(text, "fx/other"), "");
        assert_eq!(with_policy(text, "fx/write_note", "ask"), "fx/add=allow\nbare_tool=ask\nfx/write_note=ask");
        assert_eq!(with_policy(text, "fx/add", ""), "bare_tool=ask\nfx/write_note=deny");
        assert_eq!(with_policy(text, "fx/new", "deny"), format!("{text}\nfx/new=deny"));
        assert_eq!(with_policy("", "fx/new", "allow"), "fx/new=allow");
        assert_eq!(with_policy("a=allow\na=deny", "a", "ask"), "a=ask", "a repeated line becomes one");
    }
}
