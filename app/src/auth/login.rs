use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::api::Login;
use crate::components::{ErrorAlert, Field, action_error, field_error};
use crate::i18n::t;

#[component]
pub fn LoginPage() -> impl IntoView {
    let t = t();
    let action = ServerAction::<Login>::new();
    let err = action_error(action);
    let next = move || use_query_map().read().get("next").unwrap_or_default();
    // The alert already says "email or password is incorrect"; no second message under the field.
    let general = Signal::derive(move || err.get());
    let pending = action.pending();
    view! {
        <Title text=t.login_title />
        <section class="auth-card" aria-labelledby="login-title">
            <h1 id="login-title">{t.login_title}</h1>
            <p class="lead">{t.login_lead}</p>
            <ErrorAlert error=general />
            <ActionForm action=action attr:class="form" attr:novalidate=true>
                <input type="hidden" name="next" value=next />
                <Field name="email" label=t.field_email kind="email" autocomplete="username" required=true error=field_error(err, "email") />
                <Field name="password" label=t.field_password kind="password" autocomplete="current-password" required=true error=Signal::derive(move || None::<String>) />
                <button type="submit" class="btn btn-primary btn-block" disabled=pending>
                    {move || if pending.get() { t.login_submitting } else { t.login_submit }}
                </button>
            </ActionForm>
            <p class="auth-switch">
                {t.login_no_account} " " <A href="/register">{t.login_register_link}</A>
            </p>
        </section>
    }
}
