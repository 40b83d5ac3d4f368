//! Validation failures as data: which field, which rule, and the limit involved.

use serde::{Deserialize, Serialize};

/// One problem with one input field. `rule` is a stable machine-readable key
/// (`too_long`, `required`, …) the UI translates; `limit` carries the number the rule
/// names, so a message can say "at most 100 characters".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub rule: String,
    pub limit: Option<u64>,
}

impl FieldError {
    pub fn new(field: &str, rule: &str) -> Self {
        Self { field: field.to_owned(), rule: rule.to_owned(), limit: None }
    }

    pub fn with_limit(field: &str, rule: &str, limit: u64) -> Self {
        Self { field: field.to_owned(), rule: rule.to_owned(), limit: Some(limit) }
    }

    /// An English sentence for logs, API clients and the fallback UI.
    pub fn message(&self) -> String {
        let n = self.limit.unwrap_or_default();
        match self.rule.as_str() {
            "required" => format!("{} is required", self.field),
            "too_short" => format!("{} must be at least {n} characters", self.field),
            "too_long" => format!("{} must be at most {n} characters", self.field),
            "invalid_email" => format!("{} is not a valid email address", self.field),
            "control_chars" => format!("{} must not contain control characters", self.field),
            "taken" => format!("{} is already taken", self.field),
            "mismatch" => format!("{} does not match", self.field),
            "wrong_password" => format!("{} is incorrect", self.field),
            "same_as_email" => format!("{} must not be the same as the email", self.field),
            "invalid" => format!("{} is not valid", self.field),
            "invalid_url" => format!("{} must be an http:// or https:// URL without credentials", self.field),
            "invalid_header" => format!("{} must be lines of `Name: value`", self.field),
            "too_many" => format!("{} may have at most {n} entries", self.field),
            "private_address" => format!("{} is a private address only admin connections may reach", self.field),
            "admin_only" => format!("{} may be set only by an administrator", self.field),
            "unsupported" => format!("{} is not supported", self.field),
            other => format!("{}: {other}", self.field),
        }
    }
}

/// All the problems found in one submitted form, in field order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    /// The first error for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }

    /// Collects the error of a parse into `self` and returns the parsed value, if any.
    pub fn take<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// `Ok(())` when there are no errors.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// Counts characters (not bytes): limits are about what a person typed.
/// One page of a list, with how many there are in all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

impl<T> Page<T> {
    /// How many pages there are (at least one).
    pub fn pages(&self) -> u32 {
        (self.total.max(0) as u32).div_ceil(self.per_page.max(1)).max(1)
    }
}

pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `2026-11-22 14:03 UTC` from Unix milliseconds. Computed, not localised, so the server's
/// render and the browser's hydration always agree.
pub fn format_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60)
}

/// `2026-11-22`: the UTC date `days` days after 1970-01-01.
pub fn format_day(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Year, month and day of the day `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::{format_day, format_utc};

    #[test]
    fn times_format_as_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(1_795_327_255_722), "2026-11-22 06:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(format_day(20_779), "2026-11-22");
    }
}
