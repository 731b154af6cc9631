//! Primitives and values: a primitive's lexical form ([`primitive`]), `fixed[x]` and
//! `pattern[x]` (reported at the deepest property that differs), `maxLength`, `minValue[x]` and
//! `maxValue[x]` (dates relative to the caller's today for `minValueDuration` /
//! `maxValueDuration`), relative canonicals, and a primitive's `_element`.
//!
//! No I/O; no clock: "today" is [`Walk::today`], given by the caller. Findings never quote
//! the value.

use serde_json::Value;

use super::{Host, Item, Walk};
use crate::validate::profile::Severity;
use crate::validate::profile::json::SmallGet;
use crate::validate::profile::json::{matches_pattern, same};
use crate::validate::profile::primitive::{self, has_scheme};
use crate::validate::profile::xhtml;

impl Walk<'_> {
    pub(super) fn primitive(&mut self, it: &Item<'_, '_>) {
        let Item { prof, eid, value, shadow, ty, scope, .. } = *it;
        let e = prof.elem(eid);
        if let Some(v) = value {
            if let Some(msg) = primitive::check(ty, v) {
                self.report(
                    Severity::Error,
                    if v.is_string() || v.is_number() || v.is_boolean() { "value" } else { "structure" },
                    msg,
                );
                return;
            }
            if ty == "xhtml" {
                for (severity, code, text) in v.as_str().map(xhtml::check).unwrap_or_default() {
                    self.report(severity, code, text);
                }
            }
            if ty == "decimal" && primitive::decimal_beyond_range(&v.to_string()) {
                // HL7's Type_Specific_Checks_DT_Decimal_Range (a warning).
                self.report(
                    Severity::Warning,
                    "value",
                    "the value is outside the range of commonly supported decimals (over 18 digits, or an exponent over 4)",
                );
            }
            if let Some(s) = v.as_str() {
                let extended = shadow.and_then(|sh| sh.sget("extension")).is_some();
                self.lexical_warnings(ty, s, extended);
            }
            if let Some(f) = &e.fixed {
                if !same(v, f) {
                    self.report(Severity::Error, "value", "value is not the fixed value of the profile");
                }
            }
            if let Some(p) = &e.pattern {
                if !same(v, p) {
                    self.report(Severity::Error, "value", "value does not match the pattern of the profile");
                }
            }
            if let Some(max) = e.max_length {
                if v.as_str().is_some_and(|s| s.chars().count() > max) {
                    self.report(Severity::Error, "too-long", format!("value is longer than {max} characters"));
                }
            }
            self.min_max(e.min_value.as_ref(), e.max_value.as_ref(), v, ty);
            // An error, as HL7's validator has it (TYPE_SPECIFIC_CHECKS_CANONICAL_ABSOLUTE),
            // though R4's own 2019 examples use relative canonicals (`Library/x`, 98 of them).
            if ty == "canonical" && v.as_str().is_some_and(|c| !c.starts_with('#') && !has_scheme(c)) {
                self.report(
                    Severity::Error,
                    "value",
                    "a canonical URL should be absolute (a relative one resolves only against an unstated server), unless it names a contained resource (#id)",
                );
            }
            // TYPE_SPECIFIC_CHECKS_DT_URL_EXAMPLE: with example URLs disallowed, one that names
            // no loaded definition resolves to nothing.
            if !self.v.example_urls_allowed() && matches!(ty, "uri" | "url" | "canonical") {
                if let Some(u) = v.as_str().filter(|u| super::extension::is_example_url(u) && self.v.resolve(u).is_none()) {
                    self.report(Severity::Error, "invalid", format!("example URLs are not allowed in this context ({u})"));
                }
            }
            // SECURITY_STRING_CONTENT_ERROR (HL7's `-security-checks`).
            if self.v.security_checks() && ty != "xhtml" && v.as_str().is_some_and(contains_html_tags) {
                self.report(
                    Severity::Error,
                    "invalid",
                    "the string value contains text that looks like embedded HTML tags, which are not allowed for security reasons in this context",
                );
            }
            // Java binds strings and URIs too (a value in the value set as a bare code).
            if matches!(ty, "code" | "string" | "uri") {
                if let Some(code) = v.as_str() {
                    self.binding(prof, eid, None, code, false);
                }
            }
        }
        if let Some(sh) = shadow {
            match sh.as_object() {
                None => self.report(Severity::Error, "structure", "a primitive's _element must be an object"),
                Some(m) if m.is_empty() => self.report(Severity::Error, "structure", "a primitive's _element must not be empty"),
                Some(m) => {
                    if m.sget("value").is_some() {
                        // HL7's ILLEGAL_PROPERTY: a primitive's value is never in its _element.
                        self.report(Severity::Error, "invalid", "the property 'value' is invalid in a primitive's _element");
                    }
                    if value.is_none() && m.sget("extension").is_none() {
                        self.report(
                            Severity::Error,
                            "invariant",
                            "constraint ele-1 failed: All FHIR elements must have a @value or children",
                        );
                    }
                    let (cp, pid) = self.children(prof, eid, ty);
                    // The walk's pointer names the value, not its `_element`.
                    let ptr_ok = std::mem::replace(&mut self.ptr_ok, false);
                    self.object(&cp, pid, m, scope, Host { path: &e.base_path, ty }, true);
                    self.ptr_ok = ptr_ok;
                    // HL7's FHIR_RESOURCE_ID_CANT_BE_EXTENDED: a resource's id is a key, not data.
                    // At the id itself, naming each extension, as HL7's validator reports it.
                    if e.base_path == "Resource.id" {
                        for x in m.sget("extension").and_then(Value::as_array).into_iter().flatten() {
                            let url = x.sget("url").and_then(Value::as_str).unwrap_or_default();
                            self.report(Severity::Error, "business-rule", format!("extensions are not allowed on Resource.id ('{url}')"));
                        }
                    }
                }
            }
        } else if value.is_none() {
            self.report(Severity::Error, "structure", "null in an array needs an _element with content");
        }
    }

    /// What HL7's validator says of a lexically valid value beyond its type's grammar: white
    /// space only (Type_Specific_Checks_DT_Primitive_WS, a warning unless extensions carry the
    /// meaning), a string's surrounding white space (Type_Specific_Checks_DT_String_WS, a
    /// warning) and its 1 MB limit (Type_Specific_Checks_DT_String_Length, an error), white
    /// space in base64 (TYPE_SPECIFIC_CHECKS_DT_BASE64_NO_WS_WARNING, a warning in R4),
    /// unterminated bi-directional controls (UNICODE_BIDI_CONTROLS_CHARS_MATCH, a warning), and
    /// a year outside 1800 to eighty years from now (Type_Specific_Checks_DT_DateTime_Reasonable,
    /// a warning).
    fn lexical_warnings(&mut self, ty: &str, s: &str, extended: bool) {
        if !s.is_empty() && s.chars().all(char::is_whitespace) {
            if !extended {
                self.report(Severity::Warning, "invalid", "primitive types should not only be white space");
            }
            return;
        }
        if primitive::bidi_unterminated(s) {
            self.report(
                Severity::Warning,
                "invalid",
                "the value has unterminated bi-directional control characters (see CVE-2021-42574)",
            );
        }
        match ty {
            "string" => {
                if s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
                    self.report(Severity::Warning, "invalid", "value should not start or finish with white space");
                }
                // UTF-16 units never outnumber UTF-8 bytes: count them only for a long string.
                if s.len() > 1_048_576 && s.encode_utf16().count() > 1_048_576 {
                    self.report(
                        Severity::Error,
                        "too-long",
                        "value is longer than the permitted maximum length of 1 MB (1048576 characters)",
                    );
                }
            }
            // HL7's TYPE_SPECIFIC_CHECKS_DT_MARKDOWN_HTML (a warning by default, an error
            // with noHtmlInMarkdown).
            "markdown" if primitive::markdown_has_html(s) => self.report(
                if self.v.no_html_in_markdown() { Severity::Error } else { Severity::Warning },
                "invalid",
                "the markdown contains what appears to be an embedded HTML tag, which will (or should) be escaped when rendered",
            ),
            "base64Binary" if s.contains(char::is_whitespace) => {
                self.report(Severity::Warning, "invalid", "base64 encoded values should not contain white space (RFC 4648)")
            }
            "date" | "dateTime" | "instant" => {
                let (this_year, _, _) = crate::calendar::civil_from_days(self.today);
                let year: Option<i64> = s.get(..4).and_then(|y| y.parse().ok());
                if year.is_some_and(|y| y < 1800 || y > this_year + 80) {
                    self.report(
                        Severity::Warning,
                        "invalid",
                        "the year is outside the range of reasonable years: check for a data entry error",
                    );
                }
            }
            _ => {}
        }
    }

    fn min_max(&mut self, min: Option<&Value>, max: Option<&Value>, v: &Value, ty: &str) {
        let as_f = |x: &Value| -> Option<f64> { x.as_f64().or_else(|| x.to_string().parse().ok()) };
        if primitive::is_numeric(ty) {
            if let (Some(m), Some(x)) = (min.and_then(as_f), as_f(v)) {
                if x < m {
                    self.report(Severity::Error, "value", "value is below the minimum allowed by the profile");
                }
            }
            if let (Some(m), Some(x)) = (max.and_then(as_f), as_f(v)) {
                if x > m {
                    self.report(Severity::Error, "value", "value is above the maximum allowed by the profile");
                }
            }
        } else if let (Some(s), true) = (v.as_str(), matches!(ty, "date" | "dateTime" | "instant" | "time")) {
            // `minValueDuration` / `maxValueDuration`: relative to now (now - min, now + max).
            let today = self.today;
            let relative = |d: Option<&Value>, sign: i64| d.filter(|d| d.is_object()).and_then(|d| relative_date(d, sign, today));
            if let Some(m) = relative(min, -1) {
                if s.get(..10).unwrap_or(s) < m.as_str() {
                    self.report(Severity::Error, "value", "value is before the minimum allowed by the profile");
                }
            }
            if let Some(m) = relative(max, 1) {
                if s.get(..10).unwrap_or(s) > m.as_str() {
                    self.report(Severity::Error, "value", "value is after the maximum allowed by the profile");
                }
            }
            if min.and_then(Value::as_str).is_some_and(|m| s < m) {
                self.report(Severity::Error, "value", "value is before the minimum allowed by the profile");
            }
            if max.and_then(Value::as_str).is_some_and(|m| s > m) {
                self.report(Severity::Error, "value", "value is after the maximum allowed by the profile");
            }
        }
    }

    /// Reports where a value departs from a `fixed[x]`: extra properties and differing ones
    /// at their own paths.
    pub(super) fn fixed_mismatch(&mut self, v: &Value, f: &Value) {
        match (v, f) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, xv) in x {
                    match y.get(k) {
                        None => {
                            let len = self.push(k, None);
                            self.report(
                                Severity::Error,
                                "value",
                                format!("{k} is present but not allowed by the fixed value of the profile"),
                            );
                            self.path.truncate(len);
                        }
                        Some(fv) if !same(xv, fv) => {
                            let len = self.push(k, None);
                            if xv.is_object() {
                                self.fixed_mismatch(xv, fv)
                            } else {
                                self.report(Severity::Error, "value", "value is not the fixed value of the profile")
                            }
                            self.path.truncate(len);
                        }
                        Some(_) => {}
                    }
                }
                for k in y.keys().filter(|k| !x.contains_key(*k)) {
                    self.report(Severity::Error, "value", format!("{k} of the fixed value of the profile is missing"));
                }
            }
            _ => self.report(Severity::Error, "value", "value is not the fixed value of the profile"),
        }
    }

    /// Reports where a value departs from a `pattern[x]`: at the deepest property that differs,
    /// as the HL7 validator does (`telecom[0].system`, not `telecom[0]`).
    pub(super) fn pattern_mismatch(&mut self, v: &Value, p: &Value) {
        match (v, p) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, pv) in y {
                    match x.get(k) {
                        Some(xv) if matches_pattern(xv, pv) => {}
                        Some(xv) => {
                            let many = xv.as_array().filter(|a| a.len() == 1);
                            let len = self.push(k, many.map(|_| 0));
                            match (many, pv.as_array().filter(|a| a.len() == 1)) {
                                (Some(a), Some(b)) => self.pattern_mismatch(&a[0], &b[0]),
                                (None, _) if !xv.is_array() => self.pattern_mismatch(xv, pv),
                                _ => self.report(Severity::Error, "value", "value does not match the pattern of the profile"),
                            }
                            self.path.truncate(len);
                        }
                        None => {
                            self.report(
                                Severity::Error,
                                "value",
                                format!("value does not match the pattern of the profile: {k} is missing"),
                            );
                        }
                    }
                }
            }
            _ => self.report(Severity::Error, "value", "value does not match the pattern of the profile"),
        }
    }
}

/// `today` (days since 1970-01-01) shifted by a UCUM duration (`a`, `mo`, `wk`, `d`), as
/// `YYYY-MM-DD`.
fn relative_date(d: &Value, sign: i64, today: i64) -> Option<String> {
    let n: f64 = d.sget("value")?.to_string().parse().ok()?;
    let days_per = match d.sget("code").and_then(Value::as_str)? {
        "a" => 365.25,
        "mo" => 30.4375,
        "wk" => 7.0,
        "d" => 1.0,
        _ => return None,
    };
    // Clamped: a definition may say anything, the arithmetic must not overflow.
    let shift = (n * days_per).clamp(-1e8, 1e8) as i64;
    let (year, month, day) = crate::calendar::civil_from_days(today + sign * shift);
    Some(format!("{year:04}-{month:02}-{day:02}"))
}

/// HL7's HTMLUtilities.containsHtmlTags, as it decides: a `<` followed by a tag name (a
/// letter, then letters, digits or `_`, then the end or white space) and its `>`, looked at
/// only where another `<` follows.
fn contains_html_tags(input: &str) -> bool {
    let mut rest = input;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let next = rest.find('<');
        if let (Some(end), Some(next)) = (rest.find('>'), next) {
            if end < next && looks_like_tag(&rest[..end]) {
                return true;
            }
        }
        if next.is_none() {
            break;
        }
    }
    false
}

fn looks_like_tag(content: &str) -> bool {
    let mut chars = content.chars();
    if !chars.next().is_some_and(char::is_alphabetic) {
        return false;
    }
    for c in chars {
        if c.is_whitespace() {
            return true;
        }
        if !(c.is_alphanumeric() || c == '_') {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::calendar::days_from_civil;

    #[test]
    fn durations_count_from_the_given_today() {
        let today = days_from_civil(2024, 3, 1);
        // A year is 365.25 days, truncated: 365 days before 2024-03-01 (after 29 February).
        assert_eq!(relative_date(&json!({"value": 1, "code": "a"}), -1, today).as_deref(), Some("2023-03-02"));
        // 18 years are 6574 days, one short of the calendar's 18 years here (five leap days).
        assert_eq!(relative_date(&json!({"value": 18, "code": "a"}), -1, today).as_deref(), Some("2006-03-02"));
        assert_eq!(relative_date(&json!({"value": 2, "code": "wk"}), 1, today).as_deref(), Some("2024-03-15"));
        assert_eq!(relative_date(&json!({"value": 1.5, "code": "mo"}), 1, today).as_deref(), Some("2024-04-15"));
        assert_eq!(relative_date(&json!({"value": 0, "code": "d"}), 1, today).as_deref(), Some("2024-03-01"));
        // Units other than a, mo, wk, d (and values that are not numbers) are not understood.
        assert_eq!(relative_date(&json!({"value": 3, "code": "h"}), 1, today), None);
        assert_eq!(relative_date(&json!({"value": "3", "code": "d"}), 1, today), None);
        // Any size is clamped, never an overflow.
        assert!(relative_date(&json!({"value": 1e300, "code": "a"}), 1, today).is_some());
    }
}

#[cfg(test)]
mod security_tests {
    use super::contains_html_tags;

    #[test]
    fn html_tags_as_hl7_s_validator_finds_them() {
        assert!(contains_html_tags("<b>bold</b>"));
        assert!(contains_html_tags("a <script src=x>run</script>"));
        assert!(!contains_html_tags("1 < 2 and 3 > 2"));
        assert!(!contains_html_tags("<3 x>"));
        // Java looks at a tag only where another `<` follows it.
        assert!(!contains_html_tags("<b>bold"));
        assert!(!contains_html_tags("plain"));
    }
}
