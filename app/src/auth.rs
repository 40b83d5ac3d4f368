//! Signing up, in and out.

pub mod api;
mod login;
mod register;

pub use login::LoginPage;
pub use register::RegisterPage;
