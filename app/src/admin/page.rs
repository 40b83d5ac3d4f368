use leptos::prelude::*;
use leptos_meta::Title;

use super::api::{SetRegistration, SetUserDisabled, get_admin_overview};
use crate::components::{ErrorAlert, LoadError, PageHeader, Skeleton, action_error};
use crate::i18n::t;

#[component]
pub fn AdminPage() -> impl IntoView {
    let t = t();
    let registration = ServerAction::<SetRegistration>::new();
    let disable = ServerAction::<SetUserDisabled>::new();
    let overview =
        crate::data::load(move || (registration.version().get(), disable.version().get()), |_| get_admin_overview());
    let reg_err = action_error(registration);
    let dis_err = action_error(disable);
    let content = move || {
        overview.get().map(|r| match r {
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| overview.refetch()) /> }.into_any(),
            Ok(o) => {
                let open = o.registration_open;
                let me = o.me.clone();
                let others = o.users.iter().filter(|u| u.id != me).count();
                view! {
                    <section class="card" aria-labelledby="reg-title">
                        <h2 id="reg-title">{t.registration_title}</h2>
                        <p data-testid="registration-state">
                            {if open { t.registration_open_state } else { t.registration_closed_state }}
                        </p>
                        <ErrorAlert error=reg_err />
                        <ActionForm action=registration>
                            <input type="hidden" name="open" value=if open { "false" } else { "true" } />
                            <button type="submit" class="btn btn-secondary">
                                {if open { t.registration_close } else { t.registration_open }}
                            </button>
                        </ActionForm>
                    </section>
                    <section class="card" aria-labelledby="sandbox-title">
                        <h2 id="sandbox-title">{t.sandbox_title}</h2>
                        {match o.sandbox_problem.clone() {
                            None => view! {
                                <p data-testid="sandbox-state"><span class="badge badge-on">{t.sandbox_ready}</span></p>
                            }.into_any(),
                            Some(why) => view! {
                                <div data-testid="sandbox-state" class="alert alert-warn" role="status">
                                    <strong>{t.sandbox_unavailable}</strong>
                                    " " {why}
                                </div>
                            }.into_any(),
                        }}
                        <p class="muted">{t.sandbox_help}</p>
                    </section>
                    <section class="card" aria-labelledby="users-title">
                        <h2 id="users-title">{t.users_title}</h2>
                        <ErrorAlert error=dis_err />
                        {(others == 0).then(|| view! { <p class="empty">{t.users_empty}</p> })}
                        <div class="table-wrap">
                            <table class="users-table">
                                <thead>
                                    <tr>
                                        <th scope="col">{t.col_name}</th>
                                        <th scope="col">{t.col_email}</th>
                                        <th scope="col">{t.col_role}</th>
                                        <th scope="col">{t.col_status}</th>
                                        <th scope="col">{t.col_actions}</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {o.users.into_iter().map(|u| {
                                        let is_me = u.id == me;
                                        view! {
                                            <tr>
                                                <td>{u.display_name.clone()} {is_me.then(|| view! { <span class="muted">" (" {t.you} ")"</span> })}</td>
                                                <td class="email">{u.email.clone()}</td>
                                                <td>{if u.is_admin { t.role_admin } else { t.role_member }}</td>
                                                <td>
                                                    <span class=if u.disabled { "badge badge-off" } else { "badge badge-on" }>
                                                        {if u.disabled { t.status_disabled } else { t.status_active }}
                                                    </span>
                                                </td>
                                                <td>
                                                    {(!is_me).then(|| view! {
                                                        <ActionForm action=disable>
                                                            <input type="hidden" name="user_id" value=u.id.clone() />
                                                            <input type="hidden" name="disabled" value=if u.disabled { "false" } else { "true" } />
                                                            <button type="submit" class="btn btn-small btn-secondary" aria-label=format!("{} {}", if u.disabled { t.user_enable } else { t.user_disable }, u.email)>
                                                                {if u.disabled { t.user_enable } else { t.user_disable }}
                                                            </button>
                                                        </ActionForm>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    </section>
                }
                .into_any()
            }
        })
    };
    view! {
        <Title text=t.admin_title />
        <PageHeader title=t.admin_title lead=t.admin_lead />
        <div class="stack wide">
            <Transition fallback=|| view! { <div class="card"><Skeleton lines=5 /></div> }>{content}</Transition>
        </div>
    }
}
