//! Checks the JSON Schema cannot express, run after it: calendar validity of dates (the schema's
//! patterns accept `2026-02-31`) and names that say nothing (`"family": ""`, `"given": []`).
//! Like the schema check, findings carry the input path and no input value.
//!
//! Also here: [`prune_empty`]. FHIR has no empty strings, and an empty optional string in a
//! record says nothing, so it is treated as absent rather than refused.

use serde_json::Value;

use crate::error::Issue;

/// Days in a month, with the Gregorian leap-year rule.
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// True for a real calendar date or partial date (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, optionally
/// followed by a time). Shape is the schema's job; this only checks the day exists.
pub fn calendar_ok(s: &str) -> bool {
    let date = s.split('T').next().unwrap_or(s);
    let mut parts = date.split('-');
    let (Some(y), m, d) = (parts.next(), parts.next(), parts.next()) else { return false };
    let Ok(y) = y.parse::<u32>() else { return false };
    match (m.map(str::parse::<u32>), d.map(str::parse::<u32>)) {
        (None, None) => true,
        (Some(Ok(m)), None) => (1..=12).contains(&m),
        (Some(Ok(m)), Some(Ok(d))) => d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

const DATE_FIELDS: &[&str] = &[
    "birthDate", "expires", "examDate", "validUntil", "collected", "resulted", "date", "expiry", "created", "updated",
];

fn walk(v: &Value, path: &mut String, out: &mut Vec<Issue>) {
    match v {
        Value::String(s) if s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n')) => {
            out.push(Issue::new("value", "text contains control characters, which FHIR strings may not hold").at(path.clone()));
        }
        Value::Object(m) => {
            for (k, child) in m {
                let len = path.len();
                path.push('/');
                path.push_str(k);
                if let (true, Some(s)) = (DATE_FIELDS.contains(&k.as_str()), child.as_str()) {
                    if !calendar_ok(s) {
                        out.push(Issue::new("value", "not a calendar date (no such day)").at(path.clone()));
                    }
                }
                walk(child, path, out);
                path.truncate(len);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                walk(child, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Removes members whose value is `""` and `""` items of string arrays, everywhere. Required
/// fields cannot be empty after the schema (their `minLength` or pattern), except names, which
/// [`check`] covers.
pub fn prune_empty(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| x.as_str() != Some(""));
            m.values_mut().for_each(prune_empty);
        }
        Value::Array(a) => {
            a.retain(|x| x.as_str() != Some(""));
            a.iter_mut().for_each(prune_empty);
        }
        _ => {}
    }
}

/// Every finding for a record that already passed the schema.
pub fn check(record: &Value) -> Vec<Issue> {
    let mut out = Vec::new();
    walk(record, &mut String::new(), &mut out);
    if let Some(names) = record.pointer("/person/names").and_then(Value::as_array) {
        for (i, n) in names.iter().enumerate() {
            let family = n.get("family").and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty());
            let given = n
                .get("given")
                .and_then(Value::as_array)
                .is_some_and(|g| g.iter().any(|s| s.as_str().is_some_and(|s| !s.trim().is_empty())));
            if !family && !given {
                out.push(Issue::new("required", "a name needs a non-blank 'family' or 'given'").at(format!("/person/names/{i}")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert!(calendar_ok("2024-02-29"));
        assert!(!calendar_ok("2023-02-29"));
        assert!(!calendar_ok("2026-02-31"));
        assert!(calendar_ok("1900-02-28"));
        assert!(!calendar_ok("1900-02-29"));
        assert!(calendar_ok("2000-02-29"));
        assert!(calendar_ok("2016"));
        assert!(calendar_ok("2016-02"));
        assert!(calendar_ok("2026-04-30T10:00:00Z"));
        assert!(!calendar_ok("2026-04-31T10:00:00Z"));
    }
}
