//! Account input: email, password, display name, and the session user the UI shows.

use crate::fields::{FieldError, char_len};
use serde::{Deserialize, Serialize};

pub const EMAIL_MAX: usize = 254;
pub const PASSWORD_MIN: usize = 8;
/// Argon2 cost grows with input; a cap keeps a login from being a CPU weapon.
pub const PASSWORD_MAX: usize = 128;
pub const DISPLAY_NAME_MAX: usize = 80;
/// Locales the UI has strings for. An empty locale means "from the browser".
pub const LOCALES: &[&str] = &["en"];

/// `""` (follow the browser) or one of [`LOCALES`].
pub fn parse_locale(field: &str, raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    if s.is_empty() || LOCALES.contains(&s) { Ok(s.to_owned()) } else { Err(FieldError::new(field, "invalid")) }
}

/// A syntactically plausible, lower-cased email address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim().to_lowercase();
        if s.is_empty() {
            return Err(FieldError::new(field, "required"));
        }
        if char_len(&s) > EMAIL_MAX {
            return Err(FieldError::with_limit(field, "too_long", EMAIL_MAX as u64));
        }
        let valid = match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            }
            None => false,
        };
        if valid { Ok(Self(s)) } else { Err(FieldError::new(field, "invalid_email")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that meets the policy: 8–128 characters, and not the email itself.
/// No composition rules (NIST SP 800-63B): length is what matters.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

impl NewPassword {
    pub fn parse(field: &str, raw: &str, email: Option<&str>) -> Result<Self, FieldError> {
        let n = char_len(raw);
        if n == 0 {
            return Err(FieldError::new(field, "required"));
        }
        if n < PASSWORD_MIN {
            return Err(FieldError::with_limit(field, "too_short", PASSWORD_MIN as u64));
        }
        if n > PASSWORD_MAX {
            return Err(FieldError::with_limit(field, "too_long", PASSWORD_MAX as u64));
        }
        if email.is_some_and(|e| e.eq_ignore_ascii_case(raw.trim())) {
            return Err(FieldError::new(field, "same_as_email"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A password typed to sign in: only bounded, never policy-checked (old accounts stay usable).
pub fn login_password(field: &str, raw: &str) -> Result<(), FieldError> {
    if raw.is_empty() {
        Err(FieldError::new(field, "required"))
    } else if char_len(raw) > PASSWORD_MAX {
        Err(FieldError::with_limit(field, "too_long", PASSWORD_MAX as u64))
    } else {
        Ok(())
    }
}

/// The name shown in the header and to admins: trimmed, 1–80 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(FieldError::new(field, "required"));
        }
        if char_len(s) > DISPLAY_NAME_MAX {
            return Err(FieldError::with_limit(field, "too_long", DISPLAY_NAME_MAX as u64));
        }
        if s.chars().any(char::is_control) {
            return Err(FieldError::new(field, "control_chars"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part of an email before the `@`, used as a first display name.
    pub fn from_email(email: &Email) -> Self {
        let local = email.as_str().split('@').next().unwrap_or("user");
        let s: String = local.chars().take(DISPLAY_NAME_MAX).collect();
        Self(if s.is_empty() { "user".into() } else { s })
    }
}

/// The signed-in user as the UI sees it. Never carries a hash or a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub locale: String,
}

/// A row of the admin's user list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lowercased() {
        assert_eq!(Email::parse("email", "  Ann@Example.COM ").map(|e| e.0), Ok("ann@example.com".into()));
    }

    #[test]
    fn bad_emails_name_the_field() {
        for raw in ["", "ann", "ann@", "@x.io", "a b@x.io", "ann@localhost", "a@@x.io"] {
            let err = Email::parse("email", raw).expect_err(raw);
            assert_eq!(err.field, "email");
        }
    }

    #[test]
    fn password_policy_reports_the_limit() {
        let e = NewPassword::parse("password", "short", None).expect_err("short");
        assert_eq!((e.rule.as_str(), e.limit), ("too_short", Some(8)));
        let long = "x".repeat(129);
        let e = NewPassword::parse("password", &long, None).expect_err("long");
        assert_eq!((e.rule.as_str(), e.limit), ("too_long", Some(128)));
        assert!(NewPassword::parse("password", "ann@x.io", Some("ann@x.io")).is_err());
        assert!(NewPassword::parse("password", "correct horse", None).is_ok());
    }

    #[test]
    fn display_name_rejects_control_chars_and_length() {
        assert!(DisplayName::parse("display_name", "Ann\u{0007}").is_err());
        assert!(DisplayName::parse("display_name", &"a".repeat(81)).is_err());
        assert_eq!(DisplayName::parse("display_name", " Ann ").map(|d| d.0), Ok("Ann".into()));
    }
}
