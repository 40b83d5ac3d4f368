//! The browser half of Agentry: hydrates the page the server rendered.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Readable panics in the console while developing; release builds abort on panic and
    // skip the formatting machinery this pulls in.
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    // Waits for the current page's code (a lazy route) before hydrating it.
    leptos::mount::hydrate_lazy(app::App);
}
