use leptos::prelude::*;
use leptos_meta::Title;

use super::api::{ChangePassword, CreateApiKey, RevokeApiKey, list_api_keys, take_new_api_key};
use crate::components::{
    ErrorAlert, Field, LoadError, PageHeader, Skeleton, SuccessNote, action_error, action_ok, field_error,
};
use crate::i18n::t;
use crate::shell::layout::use_session;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let t = t();
    view! {
        <Title text=t.settings_title />
        <PageHeader title=t.settings_title lead="" />
        <div class="stack">
            <ProfileSection />
            <PasswordSection />
            <ApiKeysSection />
        </div>
    }
}

#[component]
fn ProfileSection() -> impl IntoView {
    let t = t();
    let session = use_session();
    let action = session.update_profile;
    let err = action_error(action);
    let general = Signal::derive(move || err.get().filter(|e| e.fields.is_empty()));
    let pending = action.pending();
    let form = move || {
        session.me.get().map(|r| match r {
            Ok(Some(me)) => {
                let locale = me.locale.clone();
                view! {
                    <ActionForm action=action attr:class="form">
                        <Field name="display_name" label=t.field_display_name autocomplete="name" value=me.display_name.clone() required=true maxlength=model::accounts::DISPLAY_NAME_MAX error=field_error(err, "display_name") />
                        <div class="field">
                            <label for="f-locale">{t.field_locale}</label>
                            <select id="f-locale" name="locale">
                                <option value="" selected=locale.is_empty()>{t.locale_auto}</option>
                                <option value="en" selected=locale == "en">"English"</option>
                            </select>
                        </div>
                        <button type="submit" class="btn btn-primary" disabled=pending>
                            {move || if pending.get() { t.saving } else { t.profile_submit }}
                        </button>
                    </ActionForm>
                }
                .into_any()
            }
            Ok(None) => ().into_any(),
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| session.me.refetch()) /> }.into_any(),
        })
    };
    view! {
        <section class="card" aria-labelledby="profile-title">
            <h2 id="profile-title">{t.profile_title}</h2>
            <p class="muted">{t.profile_lead}</p>
            <SuccessNote show=action_ok(action) text=t.profile_saved />
            <ErrorAlert error=general />
            <Transition fallback=|| view! { <Skeleton lines=3 /> }>{form}</Transition>
        </section>
    }
}

#[component]
fn PasswordSection() -> impl IntoView {
    let t = t();
    let action = ServerAction::<ChangePassword>::new();
    let err = action_error(action);
    let general = Signal::derive(move || err.get().filter(|e| e.fields.is_empty()));
    let pending = action.pending();
    view! {
        <section class="card" aria-labelledby="password-title">
            <h2 id="password-title">{t.password_title}</h2>
            <p class="muted">{t.password_lead}</p>
            <SuccessNote show=action_ok(action) text=t.password_saved />
            <ErrorAlert error=general />
            <ActionForm action=action attr:class="form">
                <Field name="current_password" label=t.field_current_password kind="password" autocomplete="current-password" required=true error=field_error(err, "current_password") />
                <Field name="new_password" label=t.field_new_password kind="password" autocomplete="new-password" help=t.field_password_help required=true maxlength=model::accounts::PASSWORD_MAX error=field_error(err, "new_password") />
                <button type="submit" class="btn btn-primary" disabled=pending>
                    {move || if pending.get() { t.saving } else { t.password_submit }}
                </button>
            </ActionForm>
        </section>
    }
}

/// Personal API keys for the OpenAI-compatible API: create (shown once), list, revoke.
#[component]
fn ApiKeysSection() -> impl IntoView {
    let t = t();
    let create = ServerAction::<CreateApiKey>::new();
    let revoke = ServerAction::<RevokeApiKey>::new();
    let err = action_error(create);
    let revoke_err = action_error(revoke);
    let keys = crate::data::load(move || (create.version().get(), revoke.version().get()), |_| list_api_keys());
    // Without JavaScript the form's answer is a redirect: the key waits in a cookie.
    let flashed = crate::data::load(|| (), |_| take_new_api_key());
    let created = move || {
        let key = create
            .value()
            .get()
            .and_then(Result::ok)
            .map(|k| k.key)
            .or_else(|| flashed.get().and_then(Result::ok).flatten());
        key.map(|key| {
            view! {
                <div class="alert alert-ok" role="status">
                    <strong>{t.key_created}</strong>
                    <p>{t.key_created_once}</p>
                    <code class="key-once" data-testid="new-key">{key}</code>
                </div>
            }
        })
    };
    let list = move || {
        keys.get().map(|r| match r {
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| keys.refetch()) /> }.into_any(),
            Ok(v) if v.is_empty() => view! { <p class="muted">{t.keys_none}</p> }.into_any(),
            Ok(v) => view! {
                <ul class="plain-list" aria-label=t.keys_title>
                    {v.into_iter().map(|k| view! {
                        <li class="key-row" data-testid="api-key">
                            <span><strong>{k.name}</strong> " " <code>{k.prefix} "…"</code></span>
                            <span class="small muted">
                                {t.key_created_at.replace("{at}", &model::format_utc(k.created_at))}
                                " · "
                                {k.last_used_at.map_or_else(|| t.key_never_used.to_owned(), |at| t.key_last_used.replace("{at}", &model::format_utc(at)))}
                            </span>
                            <ActionForm action=revoke attr:class="inline">
                                <input type="hidden" name="id" value=k.id />
                                <button type="submit" class="btn btn-danger-outline btn-small">{t.key_revoke}</button>
                            </ActionForm>
                        </li>
                    }).collect_view()}
                </ul>
            }
            .into_any(),
        })
    };
    view! {
        <section class="card" aria-labelledby="keys-title">
            <h2 id="keys-title">{t.keys_title}</h2>
            <p class="muted">{t.keys_lead}</p>
            <Transition fallback=|| ()>{created}</Transition>
            <ErrorAlert error=revoke_err />
            <Transition fallback=|| view! { <Skeleton lines=2 /> }>{list}</Transition>
            <ActionForm action=create attr:class="form">
                <Field name="name" label=t.field_key_name required=true maxlength=model::api_keys::NAME_MAX error=field_error(err, "name") />
                <button type="submit" class="btn btn-primary">{t.key_create}</button>
            </ActionForm>
        </section>
    }
}
