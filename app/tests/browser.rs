//! Client-side behaviour in a real headless Chromium (wasm-bindgen-test).
#![cfg(target_arch = "wasm32")]

use app::components::{ErrorAlert, Field};
use app::error::{AppError, ErrorCode};
use leptos::prelude::*;
use model::{FieldError, FieldErrors};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn container() -> web_sys::HtmlElement {
    let doc = document();
    let div = doc.create_element("div").expect("div");
    doc.body().expect("body").append_child(&div).expect("append");
    wasm_bindgen::JsCast::unchecked_into(div)
}

#[wasm_bindgen_test]
async fn a_field_shows_its_error_and_marks_the_input_invalid() {
    let root = container();
    let error = RwSignal::new(None::<String>);
    let _handle = leptos::mount::mount_to(root.clone(), move || {
        view! { <Field name="email" label="Email" kind="email" error=error /> }
    });
    let input = root.query_selector("input").expect("query").expect("input");
    assert_eq!(input.get_attribute("aria-invalid").as_deref(), Some("false"));

    error.set(Some("Enter an email address like name@example.com.".into()));
    leptos::task::tick().await;
    assert_eq!(input.get_attribute("aria-invalid").as_deref(), Some("true"));
    let msg = root.query_selector(".field-error").expect("query").expect("error");
    assert_eq!(msg.text_content().as_deref(), Some("Enter an email address like name@example.com."));
    assert!(input.get_attribute("aria-describedby").unwrap_or_default().contains("f-email-error"));

    error.set(None);
    leptos::task::tick().await;
    assert_eq!(input.get_attribute("aria-invalid").as_deref(), Some("false"));
}

#[wasm_bindgen_test]
async fn an_error_alert_translates_the_code_and_shows_the_wait() {
    let root = container();
    let error = RwSignal::new(None::<AppError>);
    let _handle = leptos::mount::mount_to(root.clone(), move || view! { <ErrorAlert error=error /> });
    assert!(root.query_selector("[role=alert]").expect("query").is_none(), "nothing when there is no error");

    let mut e = AppError::new(ErrorCode::RateLimited, "Too many requests.");
    e.retry_after_secs = Some(42);
    error.set(Some(e));
    leptos::task::tick().await;
    let alert = root.query_selector("[role=alert]").expect("query").expect("alert");
    let text = alert.text_content().unwrap_or_default();
    assert!(text.contains("Too many attempts.") && text.contains("Wait 42 seconds"), "{text}");

    error.set(Some(AppError::invalid(FieldErrors(vec![FieldError::with_limit("password", "too_short", 8)]))));
    leptos::task::tick().await;
    let alert = root.query_selector("[role=alert]").expect("query").expect("alert");
    assert_eq!(alert.get_attribute("data-code").as_deref(), Some("validation_failed"));
}

#[wasm_bindgen_test]
fn validation_rules_are_the_same_in_the_browser() {
    let e = model::accounts::NewPassword::parse("password", "short", None).expect_err("short");
    assert_eq!(app::i18n::EN.field_message(&e), "Use at least 8 characters.");
    assert!(model::accounts::Email::parse("email", "ann@example.com").is_ok());
}
