use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;

use super::api::{Register, get_registration_open};
use crate::components::{ErrorAlert, Field, action_error, field_error};
use crate::i18n::t;

#[component]
pub fn RegisterPage() -> impl IntoView {
    let t = t();
    let action = ServerAction::<Register>::new();
    let err = action_error(action);
    let open = crate::data::load(|| (), |_| get_registration_open());
    let pending = action.pending();
    // Field problems are shown beside their fields; the alert is for everything else.
    let general = Signal::derive(move || err.get().filter(|e| e.fields.is_empty()));
    view! {
        <Title text=t.register_title />
        <section class="auth-card" aria-labelledby="register-title">
            <h1 id="register-title">{t.register_title}</h1>
            <p class="lead">{t.register_lead}</p>
            <Suspense fallback=|| ()>
                {move || {
                    open.get()
                        .and_then(Result::ok)
                        .filter(|o| !o)
                        .map(|_| view! { <div class="alert alert-warn" role="status">{t.register_closed}</div> })
                }}
            </Suspense>
            <ErrorAlert error=general />
            <ActionForm action=action attr:class="form" attr:novalidate=true>
                <Field name="email" label=t.field_email kind="email" autocomplete="email" required=true error=field_error(err, "email") />
                <Field name="password" label=t.field_password kind="password" autocomplete="new-password" help=t.field_password_help required=true maxlength=model::accounts::PASSWORD_MAX error=field_error(err, "password") />
                <Field name="display_name" label=t.field_display_name autocomplete="name" help=t.field_display_name_help maxlength=model::accounts::DISPLAY_NAME_MAX error=field_error(err, "display_name") />
                <button type="submit" class="btn btn-primary btn-block" disabled=pending>
                    {move || if pending.get() { t.register_submitting } else { t.register_submit }}
                </button>
            </ActionForm>
            <p class="auth-switch">
                {t.register_have_account} " " <A href="/login">{t.register_login_link}</A>
            </p>
        </section>
    }
}
