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
        tool_policies: Default::default(),
        skills: Vec::new(),
        mcp_servers: Vec::new(),
    });
    // Every model any visible connection lists, as suggestions for the model boxes.
    let mut models: Vec<String> = providers.iter().flat_map(|p| p.models.iter().cloned()).collect();
    models.sort();
    models.dedup();
    let policies = s.tool_policies.iter().map(|(k, v)| format!("{k}={}", v.as_str())).collect::<Vec<_>>().join("\n");
    let provider_err = field_error(err, "provider_id");
    let selected = s.provider_id.clone();
    view! {
        <fieldset class="fieldset">
            <legend>{t.agent_section_identity}</legend>
            <Field name="name" label=t.field_agent_name value=s.name.clone() required=true maxlength=NAME_MAX error=field_error(err, "name") />
            <Field name="slug" label=t.field_slug help=t.field_slug_help value=s.slug.clone() maxlength=SLUG_MAX error=field_error(err, "slug") />
            <TextArea name="description" label=t.field_description value=s.description.clone() rows=2 maxlength=DESCRIPTION_MAX error=field_error(err, "description") />
        </fieldset>
        <fieldset class="fieldset">
            <legend>{t.agent_section_model}</legend>
            <div class="field" class:has-error=move || provider_err.get().is_some()>
                <label for="f-provider_id">{t.field_provider}</label>
                <select id="f-provider_id" name="provider_id" required=true aria-describedby="f-provider_id-error">
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
                <input id="f-model" name="model" list="model-options" value=s.model.clone() required=true maxlength=model::agents::MODEL_MAX aria-describedby="f-model-help" />
                <p class="help" id="f-model-help">{t.field_model_help}</p>
                <p class="field-error" role="alert">{move || field_error(err, "model").get()}</p>
                <datalist id="model-options">
                    {models.into_iter().map(|m| view! { <option value=m></option> }).collect_view()}
                </datalist>
            </div>
            <TextArea name="fallback_models" label=t.field_fallback_models help=t.field_fallback_models_help value=s.fallback_models.join("\n") rows=2 mono=true error=field_error(err, "fallback_models") />
            <div class="field-row">
                <Field name="temperature" label=t.field_temperature help=t.field_temperature_help kind="number" value=s.temperature.map(|v| v.to_string()).unwrap_or_default() error=field_error(err, "temperature") step="any" />
                <Field name="max_output_tokens" label=t.field_max_output_tokens kind="number" value=s.max_output_tokens.to_string() error=field_error(err, "max_output_tokens") />
                <Field name="max_turns" label=t.field_max_turns help=t.field_max_turns_help kind="number" value=s.max_turns.to_string() error=field_error(err, "max_turns") />
            </div>
        </fieldset>
        <fieldset class="fieldset">
            <legend>{t.agent_section_behaviour}</legend>
            <TextArea name="system_prompt" label=t.field_system_prompt value=s.system_prompt.clone() rows=10 maxlength=PROMPT_MAX error=field_error(err, "system_prompt") />
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
            {(!tools.is_empty()).then(|| view! { <ToolTable tools /> })}
            <TextArea name="tool_policies" label=t.field_tool_policies help=t.field_tool_policies_help value=policies rows=3 mono=true error=field_error(err, "tool_policies") />
        </fieldset>
    }
}

/// The tools an agent may call: where each comes from and the policy that applies.
#[component]
fn ToolTable(tools: Vec<AgentTool>) -> impl IntoView {
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
                            let class = match tool.policy {
                                model::agents::ToolPolicy::Allow => "badge badge-on",
                                model::agents::ToolPolicy::Ask => "badge badge-warn",
                                model::agents::ToolPolicy::Deny => "badge badge-off",
                            };
                            let from = if tool.source.is_empty() { t.tool_from_skills.to_owned() } else { tool.source.clone() };
                            view! {
                                <tr data-tool=tool.key.clone()>
                                    <td>
                                        <span class="mono">{tool.key.clone()}</span>
                                        <p class="muted small">{tool.description.clone()}</p>
                                    </td>
                                    <td>{from}</td>
                                    <td>
                                        <span class=class>{tool.policy.as_str()}</span>
                                        {(!tool.explicit).then(|| view! { " " <span class="muted small">{t.tool_policy_default}</span> })}
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
