//! Small building blocks every page uses: form fields with their error, the error alert,
//! skeletons and empty states.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::error::AppError;
use crate::i18n::t;

/// The last result of an action as an error, if it failed.
pub fn action_error<S>(action: ServerAction<S>) -> Signal<Option<AppError>>
where
    S: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(Result::err))
}

/// True once the last run of an action succeeded.
pub fn action_ok<S>(action: ServerAction<S>) -> Signal<bool>
where
    S: leptos::server_fn::ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    Signal::derive(move || matches!(action.value().get(), Some(Ok(_))))
}

/// The translated message for one field of an error, if that field has one.
pub fn field_error(err: Signal<Option<AppError>>, field: &'static str) -> Signal<Option<String>> {
    Signal::derive(move || err.get().and_then(|e| e.field(field).map(|f| t().field_message(f))))
}

/// `aria-describedby` for a field: its help text, and its error while there is one.
fn described_by(
    help_id: &str,
    has_help: bool,
    err_id: &str,
    error: Signal<Option<String>>,
) -> impl Fn() -> String + Send + Sync + 'static {
    let (h, e) = (help_id.to_owned(), err_id.to_owned());
    move || {
        let mut v = Vec::new();
        if has_help {
            v.push(h.clone());
        }
        if error.get().is_some() {
            v.push(e.clone());
        }
        v.join(" ")
    }
}

/// The element id of the input posted as `name`: `f-base_url` for `form[base_url]` (a
/// field of the struct a server function takes) as for a plain `base_url`.
pub fn field_id(name: &str) -> String {
    let key = name.strip_suffix(']').and_then(|n| n.rsplit_once('[')).map_or(name, |(_, k)| k);
    format!("f-{key}")
}

/// A labelled input with its help text and error, wired for screen readers. A form that
/// posts one struct names its fields `form[field]`.
#[component]
pub fn Field(
    name: &'static str,
    label: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: &'static str,
    #[prop(optional)] help: &'static str,
    #[prop(optional, into)] value: Option<String>,
    #[prop(optional)] required: bool,
    #[prop(optional)] maxlength: Option<usize>,
    /// For number inputs: the step (`"0.1"`); whole numbers when absent.
    #[prop(optional)]
    step: Option<&'static str>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let id = field_id(name);
    let help_id = format!("{id}-help");
    let err_id = format!("{id}-error");
    let describedby = described_by(&help_id, !help.is_empty(), &err_id, error);
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=autocomplete
                value=value
                required=required
                maxlength=maxlength
                step=step
                aria-invalid=move || if error.get().is_some() { "true" } else { "false" }
                aria-describedby=describedby
            />
            {(!help.is_empty()).then(|| view! { <p class="help" id=help_id>{help}</p> })}
            <p class="field-error" id=err_id role="alert">{move || error.get()}</p>
        </div>
    }
}

/// A labelled multi-line input with its help text and error.
#[component]
pub fn TextArea(
    name: &'static str,
    label: &'static str,
    #[prop(optional, into)] help: String,
    #[prop(optional, into)] value: String,
    #[prop(default = 4)] rows: u32,
    #[prop(optional)] maxlength: Option<usize>,
    #[prop(optional)] mono: bool,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let id = field_id(name);
    let help_id = format!("{id}-help");
    let err_id = format!("{id}-error");
    let has_help = !help.is_empty();
    let describedby = described_by(&help_id, has_help, &err_id, error);
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id.clone()>{label}</label>
            <textarea
                id=id
                name=name
                rows=rows
                maxlength=maxlength
                class:mono=mono
                aria-invalid=move || if error.get().is_some() { "true" } else { "false" }
                aria-describedby=describedby
            >
                {value}
            </textarea>
            {has_help.then(|| view! { <p class="help" id=help_id>{help}</p> })}
            <p class="field-error" id=err_id role="alert">{move || error.get()}</p>
        </div>
    }
}

/// The headline, hint and request id of an error, announced to screen readers.
#[component]
pub fn ErrorAlert(#[prop(into)] error: Signal<Option<AppError>>) -> impl IntoView {
    move || {
        error.get().map(|e| {
            let (msg, hint) = t().error_text(&e);
            view! {
                <div class="alert alert-error" role="alert" data-code=e.code.as_str()>
                    <strong>{msg}</strong>
                    {hint.map(|h| view! { <p>{h}</p> })}
                </div>
            }
        })
    }
}

/// The errors of an imported document: problems with its entries listed by entry and field
/// under `title`; anything else (the document itself) as one alert.
#[component]
pub fn ImportErrors(#[prop(into)] error: Signal<Option<AppError>>, title: &'static str) -> impl IntoView {
    let about_entries = move |e: &AppError| !e.fields.is_empty() && e.field("document").is_none();
    let general = Signal::derive(move || error.get().filter(|e| !about_entries(e)));
    let problems = move || {
        error.get().filter(about_entries).map(|e| {
            view! {
                <div class="alert alert-error" role="alert" data-testid="import-problems">
                    <strong>{title}</strong>
                    <ul>
                        {e.fields.0.iter().map(|f| view! { <li><span class="mono">{f.field.clone()}</span> ": " {t().field_message(f)}</li> }).collect_view()}
                    </ul>
                </div>
            }
        })
    };
    view! {
        <ErrorAlert error=general />
        {problems}
    }
}

/// A success notice, shown once an action succeeded.
#[component]
pub fn SuccessNote(#[prop(into)] show: Signal<bool>, text: &'static str) -> impl IntoView {
    move || show.get().then(|| view! { <div class="alert alert-ok" role="status">{text}</div> })
}

/// A grey block the size of the content it stands for, while that content loads.
#[component]
pub fn Skeleton(#[prop(default = 3)] lines: usize) -> impl IntoView {
    view! {
        <div class="skeleton" aria-busy="true" aria-label=t().loading>
            {(0..lines).map(|_| view! { <div class="skeleton-line"></div> }).collect_view()}
        </div>
    }
}

/// An error in place of content that failed to load (each bad field of the request
/// named), with a way to try again.
#[component]
pub fn LoadError(error: AppError, on_retry: Callback<()>) -> impl IntoView {
    let t = t();
    let (msg, hint) = t.error_text(&error);
    let fields = (!error.fields.is_empty()).then(|| {
        view! {
            <ul>
                {error
                    .fields
                    .0
                    .iter()
                    .map(|f| view! { <li><code>{f.field.clone()}</code> ": " {t.field_message(f)}</li> })
                    .collect_view()}
            </ul>
        }
    });
    view! {
        <div class="alert alert-error" role="alert" data-code=error.code.as_str()>
            <strong>{msg}</strong>
            {hint.map(|h| view! { <p>{h}</p> })}
            {fields}
            <button type="button" class="btn btn-secondary" on:click=move |_| on_retry.run(())>
                {t.retry}
            </button>
        </div>
    }
}

/// How a list page shows its list: a skeleton while it loads, the error with a retry,
/// `empty` when there is nothing at all, `no_match` when the search or filters match
/// nothing, else the search box (when `search` names its placeholder), `items` and the
/// pager. Every list page shows its list through this.
#[component]
pub fn ListBody<T, F, V>(
    list: crate::data::Data<Result<model::Page<T>, AppError>>,
    /// The list's address: its search box and pager link there.
    base: &'static str,
    #[prop(optional)] search: &'static str,
    #[prop(into)] q: Signal<String>,
    /// Filters other than the search, as encoded query parameters (empty: none).
    #[prop(optional, into)]
    filters: Signal<String>,
    #[prop(into)] empty: ViewFn,
    no_match: &'static str,
    items: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(Vec<T>) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let show = move |p: model::Page<T>| match p {
        p if p.total == 0 && q.with(String::is_empty) && filters.with(String::is_empty) => empty.run().into_any(),
        p => {
            let search_box =
                (!search.is_empty()).then(|| view! { <SearchBox action=base placeholder=search value=q /> });
            if p.items.is_empty() {
                return view! { {search_box} <p class="empty">{no_match}</p> }.into_any();
            }
            let (page, pages) = (p.page, p.pages());
            view! {
                {search_box}
                {items(p.items)}
                <Pager base q=q.get_untracked() extra=filters.get_untracked() page pages />
            }
            .into_any()
        }
    };
    view! { <Loaded res=list lines=4 show /> }
}

/// One thing loading: a skeleton of `lines` while `res` loads, the error with a retry,
/// else `show` of what came. Every page that opens something shows it through this.
#[component]
pub fn Loaded<T, F, V>(
    res: crate::data::Data<Result<T, AppError>>,
    #[prop(default = 6)] lines: usize,
    show: F,
) -> impl IntoView
where
    T: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let body = move || {
        let show = show.clone();
        res.get().map(move |r| match r {
            Err(e) => view! { <LoadError error=e on_retry=Callback::new(move |_| res.refetch()) /> }.into_any(),
            Ok(v) => view! { {show(v)} }.into_any(),
        })
    };
    view! { <Transition fallback=move || view! { <div class="card"><Skeleton lines /></div> }>{body}</Transition> }
}

/// The "nothing here yet" state of a list: what it is for and what to do next.
#[component]
pub fn EmptyState(icon: &'static str, title: &'static str, body: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="empty-state">
            <span class="empty-icon" aria-hidden="true">{icon}</span>
            <h2>{title}</h2>
            <p>{body}</p>
            {children()}
        </div>
    }
}

/// A page header: title, one line of lead text, and any actions beside them.
#[component]
pub fn PageHeader(
    title: &'static str,
    lead: &'static str,
    /// Links or buttons beside the title (a list's "add" and "import").
    #[prop(optional)]
    children: Option<Children>,
) -> impl IntoView {
    match children {
        None => view! {
            <header class="page-header">
                <h1>{title}</h1>
                <p class="lead">{lead}</p>
            </header>
        }
        .into_any(),
        Some(actions) => view! {
            <header class="page-header with-actions">
                <div>
                    <h1>{title}</h1>
                    <p class="lead">{lead}</p>
                </div>
                <div class="row-actions">{actions()}</div>
            </header>
        }
        .into_any(),
    }
}

/// The `:id` of the page's route: what a detail page opens.
pub fn route_id() -> Memo<String> {
    let params = leptos_router::hooks::use_params_map();
    Memo::new(move |_| params.read().get("id").unwrap_or_default())
}

/// `q` and `page` of a list page's address (page from 1).
pub fn list_query() -> (Memo<String>, Memo<u32>) {
    let query = leptos_router::hooks::use_query_map();
    let q = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let page = Memo::new(move |_| query.read().get("page").and_then(|p| p.parse::<u32>().ok()).unwrap_or(1).max(1));
    (q, page)
}

/// A list's search box: a GET form back to `action` (so it works without JavaScript).
#[component]
pub fn SearchBox(
    action: &'static str,
    placeholder: &'static str,
    #[prop(into)] value: Signal<String>,
) -> impl IntoView {
    let t = t();
    let id = format!("search-{}", action.trim_start_matches('/').replace('/', "-"));
    view! {
        <leptos_router::components::Form method="GET" action=action attr:class="search" attr:role="search">
            <label for=id.clone() class="visually-hidden">{placeholder}</label>
            <input id=id type="search" name="q" placeholder=placeholder value=value maxlength="200" />
            <button type="submit" class="btn btn-secondary">{t.search_button}</button>
        </leptos_router::components::Form>
    }
}

/// Links to the pages before and after `page` of a list at `base`, keeping the search
/// and any `extra` query parameters (the list's filters, already encoded).
#[component]
pub fn Pager(base: &'static str, q: String, #[prop(optional)] extra: String, page: u32, pages: u32) -> impl IntoView {
    use leptos_router::components::A;
    let t = t();
    let link = move |n: u32| {
        let mut query = Vec::new();
        if !q.is_empty() {
            query.push(format!("q={}", encode(&q)));
        }
        if !extra.is_empty() {
            query.push(extra.clone());
        }
        query.push(format!("page={n}"));
        format!("{base}?{}", query.join("&"))
    };
    (pages > 1).then(|| {
        view! {
            <nav class="pager" aria-label=t.pages>
                {(page > 1).then(|| view! { <A href=link(page - 1)>{t.page_prev}</A> })}
                <span class="muted">{t.page_of.replace("{n}", &page.to_string()).replace("{total}", &pages.to_string())}</span>
                {(page < pages).then(|| view! { <A href=link(page + 1)>{t.page_next}</A> })}
            </nav>
        }
    })
}

/// Percent-encodes a query value (letters, digits and `-_.~` stay).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The agents a skill or MCP server is attached to, each with a detach button, and a form
/// to attach it to one more of the user's agents. `form` wraps the given fields in the
/// page's own attach `ActionForm` with the item's hidden id. The page creates `agents`
/// at its top, outside any `Transition`: a resource created inside a `Transition`'s
/// content while the server renders can leave the render waiting forever.
#[component]
pub fn UsedByCard<F>(
    used_by: Vec<(String, String)>,
    agents: crate::data::Data<Result<model::agents::AgentPage, AppError>>,
    none: &'static str,
    error: Signal<Option<AppError>>,
    form: F,
) -> impl IntoView
where
    F: Fn(AnyView) -> AnyView + Clone + Send + Sync + 'static,
{
    let t = t();
    let attached: Vec<String> = used_by.iter().map(|(a, _)| a.clone()).collect();
    let attach_form = {
        let form = form.clone();
        move || {
            let (form, attached) = (form.clone(), attached.clone());
            agents.get().map(move |r| {
                let free: Vec<_> =
                    r.map(|p| p.items).unwrap_or_default().into_iter().filter(|a| !attached.contains(&a.id)).collect();
                (!free.is_empty()).then(|| {
                    form(
                        view! {
                            <label for="f-agent_id">{t.skill_attach_to}</label>
                            <select id="f-agent_id" name="agent_id">
                                {free.into_iter().map(|a| view! { <option value=a.id.clone()>{a.name.clone()}</option> }).collect_view()}
                            </select>
                            <button type="submit" class="btn btn-secondary btn-small">{t.skill_attach}</button>
                        }
                        .into_any(),
                    )
                })
            })
        }
    };
    let list = if used_by.is_empty() {
        view! { <p class="muted">{none}</p> }.into_any()
    } else {
        view! {
            <ul class="plain-list">
                {used_by
                    .into_iter()
                    .map(|(aid, name)| {
                        let label = format!("{} {name}", t.skill_detach);
                        let detach = form(
                            view! {
                                <input type="hidden" name="agent_id" value=aid.clone() />
                                <input type="hidden" name="detach" value="true" />
                                <button type="submit" class="btn btn-small btn-secondary" aria-label=label>{t.skill_detach}</button>
                            }
                            .into_any(),
                        );
                        view! { <li><A href=format!("/agents/{aid}")>{name}</A>{detach}</li> }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <section class="card" aria-labelledby="used-title">
            <h2 id="used-title">{t.skill_used_by}</h2>
            <ErrorAlert error />
            {list}
            <Transition fallback=|| ()>{attach_form}</Transition>
        </section>
    }
}
