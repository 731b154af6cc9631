//! Checks the JSON Schema cannot express, run after it: calendar validity of dates (the schema's
//! patterns accept `2026-02-31`) and names that say nothing (`"family": ""`, `"given": []`).
//! Like the schema check, findings carry the input path and no input value.
//!
//! Numbers are checked too: FHIR R4's decimal is `xs:decimal` or `xs:double`, so a number with
//! an exponent that no double can hold (`1e400`, or `1e-400`, which is not zero) is refused
//! rather than sent as something else. (Decimal text is otherwise kept as written; an exponent
//! is written in serde_json's form, `1E5` as `1e+5`: the same value and precision.)
//!
//! [`plausibility`]: dates that cannot be true (a birth date in the future, an exam or a
//! vaccination before birth, a certificate valid until before its exam). It compares with
//! "today", which the caller passes in: nothing here reads the clock. A partial date stands for
//! every day it could be, and only a comparison false for all of them is refused; a date within
//! a day of today is not "in the future" (time zones). What is merely unlikely (an age over 120,
//! an exam date ahead of today) is not refused: the pipeline has no channel for warnings.
//!
//! Also here: [`prune_empty`]. FHIR has no empty strings, and an empty optional string in a
//! record says nothing, so it is treated as absent rather than refused.

use std::fmt::Write as _;

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

const DATE_FIELDS: &[&str] =
    &["birthDate", "expires", "examDate", "validUntil", "collected", "resulted", "date", "expiry", "created", "updated"];

fn walk(v: &Value, path: &mut String, out: &mut Vec<Issue>) {
    match v {
        Value::String(s) if has_control(s) => {
            out.push(Issue::new("value", "text contains control characters, which FHIR strings may not hold").at(path.clone()));
        }
        Value::Number(n) if !decimal_ok(n.as_str()) => {
            out.push(
                Issue::new("value", "number cannot be a FHIR decimal: its exponent is beyond what a decimal can hold").at(path.clone()),
            );
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
                let _ = write!(path, "{i}");
                walk(child, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Whether `s` holds a control character (Unicode category Cc: U+0000 to U+001F, U+007F to
/// U+009F) other than tab, carriage return and line feed. By bytes: a C1 control is `C2 80`
/// to `C2 9F` in UTF-8, and `C2` starts no other character of the range.
fn has_control(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().enumerate().any(|(i, &x)| {
        (x < 0x20 && !matches!(x, b'\t' | b'\r' | b'\n'))
            || x == 0x7f
            || (x == 0xc2 && b.get(i + 1).is_some_and(|y| (0x80..=0x9f).contains(y)))
    })
}

/// False for a number whose exponent puts it beyond a double: infinite, or zero although its
/// digits are not all zero. Numbers without an exponent are decimals of any size.
pub fn decimal_ok(text: &str) -> bool {
    let Some(e) = text.find(['e', 'E']) else {
        return true;
    };
    let Ok(f) = text.parse::<f64>() else {
        return false;
    };
    f.is_finite() && (f != 0.0 || !text[..e].bytes().any(|b| (b'1'..=b'9').contains(&b)))
}

/// A day, counted from 1970-01-01 in the proleptic Gregorian calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub i64);

impl Day {
    pub fn from_ymd(y: i64, m: u32, d: u32) -> Day {
        Day(crate::calendar::days_from_civil(y, i64::from(m), i64::from(d)))
    }

    /// The UTC day of a Unix time.
    pub fn from_unix_secs(secs: i64) -> Day {
        Day(secs.div_euclid(86_400))
    }

    fn plus(self, days: i64) -> Day {
        Day(self.0 + days)
    }
}

/// The first and last day a date, a partial date (`YYYY`, `YYYY-MM`) or the date of a dateTime
/// can stand for. A dateTime's local date is widened by a day on each side (its offset).
pub fn day_range(s: &str) -> Option<(Day, Day)> {
    let (date, has_time) = match s.split_once('T') {
        Some((d, _)) => (d, true),
        None => (s, false),
    };
    let mut parts = date.split('-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: Option<u32> = parts.next().map(str::parse).transpose().ok()?;
    let d: Option<u32> = parts.next().map(str::parse).transpose().ok()?;
    let (first, last) = match (m, d) {
        (None, _) => (Day::from_ymd(y, 1, 1), Day::from_ymd(y, 12, 31)),
        (Some(m), None) => (Day::from_ymd(y, m, 1), Day::from_ymd(y, m, days_in_month(u32::try_from(y).ok()?, m))),
        (Some(m), Some(d)) => (Day::from_ymd(y, m, d), Day::from_ymd(y, m, d)),
    };
    Some(if has_time { (first.plus(-1), last.plus(1)) } else { (first, last) })
}

fn range_at(record: &Value, pointer: &str) -> Option<(Day, Day)> {
    record.pointer(pointer).and_then(Value::as_str).and_then(day_range)
}

/// Findings (refusals) for dates that cannot be true, for a record that passed the schema and
/// [`check`]. `today` is the caller's. Entries marked `entered-in-error` (and cancelled results)
/// are not checked: they are kept as records of a mistake.
pub fn plausibility(record: &Value, today: Day) -> Vec<Issue> {
    let mut out = Vec::new();
    let future = today.plus(1);
    let refuse = |out: &mut Vec<Issue>, at: String, text: &str| out.push(Issue::new("value", text).at(at));
    let birth = range_at(record, "/person/birthDate");
    let unborn = birth.is_some_and(|(first, _)| first > future);
    if unborn {
        refuse(&mut out, "/person/birthDate".into(), "birth date is in the future");
    }
    // An estimated birth date may be years off, and one in the future is the one error to
    // report: nothing is compared with either.
    let estimated = record.pointer("/person/birthDateEstimated") == Some(&Value::Bool(true));
    let born = birth.filter(|_| !estimated && !unborn).map(|(first, _)| first);
    let before_birth = |r: Option<(Day, Day)>| matches!((born, r), (Some(b), Some((_, last))) if last < b);
    let exam = range_at(record, "/assessment/examDate");
    if before_birth(exam) {
        refuse(&mut out, "/assessment/examDate".into(), "exam date is before the birth date");
    }
    if let (Some((exam_first, _)), Some((_, until_last))) = (exam, range_at(record, "/assessment/validUntil")) {
        if until_last < exam_first {
            refuse(&mut out, "/assessment/validUntil".into(), "valid-until date is before the exam date");
        }
    }
    let entries = |key: &str| record.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default().iter().enumerate();
    for (i, v) in entries("vaccinations") {
        if v["status"] == "entered-in-error" {
            continue;
        }
        let date = v.get("date").and_then(Value::as_str).and_then(day_range);
        if before_birth(date) {
            refuse(&mut out, format!("/vaccinations/{i}/date"), "vaccination date is before the birth date");
        }
        if date.is_some_and(|(first, _)| first > future) {
            refuse(&mut out, format!("/vaccinations/{i}/date"), "vaccination date is in the future");
        }
    }
    for (i, r) in entries("results") {
        if r["status"] == "entered-in-error" || r["status"] == "cancelled" {
            continue;
        }
        let collected = r.get("collected").and_then(Value::as_str).and_then(day_range);
        if before_birth(collected) {
            refuse(&mut out, format!("/results/{i}/collected"), "specimen collected before the birth date");
        }
        if collected.is_some_and(|(first, _)| first > future) {
            refuse(&mut out, format!("/results/{i}/collected"), "collection date is in the future");
        }
    }
    out
}

/// The oldest age at an exam that is taken without a warning.
const UNLIKELY_AGE_YEARS: i64 = 120;

/// Warnings (not refusals) for what is possible but unlikely, so that a person looks at it: an
/// age over 120 at the exam, an exam dated ahead of today, a certificate valid for more than five
/// years. Compared as [`plausibility`] compares: a partial date warns only if every day it could
/// stand for is unlikely; an estimated birth date is not compared.
pub fn unlikely(record: &Value, today: Day) -> Vec<Issue> {
    let mut out = Vec::new();
    let warn = |out: &mut Vec<Issue>, at: &str, text: &str| out.push(Issue::new("value", text).at(at));
    let estimated = record.pointer("/person/birthDateEstimated") == Some(&Value::Bool(true));
    let birth = range_at(record, "/person/birthDate").filter(|_| !estimated);
    let exam = range_at(record, "/assessment/examDate");
    if let (Some((_, born_last)), Some((exam_first, _))) = (birth, exam) {
        // 365.2425 days a year, on the whole Gregorian cycle.
        if (exam_first.0 - born_last.0) * 10_000 > UNLIKELY_AGE_YEARS * 3_652_425 {
            warn(&mut out, "/person/birthDate", "the person would be over 120 years old at the exam");
        }
    }
    if exam.is_some_and(|(first, _)| first > today.plus(1)) {
        warn(&mut out, "/assessment/examDate", "the exam date is ahead of today");
    }
    if let (Some((_, exam_last)), Some((until_first, _))) = (exam, range_at(record, "/assessment/validUntil")) {
        if until_first.0 - exam_last.0 > 5 * 366 {
            warn(&mut out, "/assessment/validUntil", "the assessment would be valid for more than five years");
        }
    }
    out
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
    fn control_characters_by_bytes_are_those_by_chars() {
        let by_chars = |s: &str| s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'));
        for c in (0u32..0x800).chain([0x2028, 0xfeff, 0x1f600]).filter_map(char::from_u32) {
            for s in [c.to_string(), format!("a{c}"), format!("{c}z"), format!("\u{e9}{c}\u{a0}")] {
                assert_eq!(has_control(&s), by_chars(&s), "U+{:04X}", c as u32);
            }
        }
    }

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

    #[test]
    fn days() {
        assert_eq!(Day::from_ymd(1970, 1, 1), Day(0));
        assert_eq!(Day::from_ymd(2000, 3, 1), Day(11_017));
        assert_eq!(Day::from_ymd(1969, 12, 31), Day(-1));
        assert_eq!(Day::from_unix_secs(1_796_083_200), Day::from_ymd(2026, 12, 1));
        assert_eq!(day_range("2024-02"), Some((Day::from_ymd(2024, 2, 1), Day::from_ymd(2024, 2, 29))));
        assert_eq!(day_range("1979"), Some((Day::from_ymd(1979, 1, 1), Day::from_ymd(1979, 12, 31))));
        assert_eq!(day_range("2026-10-05T08:15+07:00"), Some((Day::from_ymd(2026, 10, 4), Day::from_ymd(2026, 10, 6))));
    }

    #[test]
    fn decimals() {
        for ok in ["0", "-0", "61.50", "1e2", "1E+308", "-1.5e-300", "0e999", "0.0E-999", "123456789012345678901234567890"] {
            assert!(decimal_ok(ok), "{ok}");
        }
        for bad in ["1e400", "-1e+400", "1e-400", "2.5E-999"] {
            assert!(!decimal_ok(bad), "{bad}");
        }
    }

    fn implausible(patch: serde_json::Value) -> Vec<String> {
        let mut r = serde_json::json!({
            "person": {"birthDate": "1990-05-21", "birthDateEstimated": false},
            "assessment": {"examDate": "2026-10-05", "validUntil": "2027-04-05"},
            "vaccinations": [{"status": "completed", "date": "1998"}],
            "results": [{"status": "final", "collected": "2026-10-05T08:15+07:00"}]
        });
        for (ptr, v) in patch.as_object().into_iter().flatten() {
            *r.pointer_mut(ptr).expect("pointer") = v.clone();
        }
        let today = Day::from_ymd(2026, 12, 1);
        plausibility(&r, today).into_iter().map(|i| format!("{} {}", i.input_path.unwrap_or_default(), i.text)).collect()
    }

    #[test]
    fn plausible_and_not() {
        let none: Vec<String> = Vec::new();
        assert_eq!(implausible(serde_json::json!({})), none);
        let tomorrow = implausible(serde_json::json!({"/person/birthDate": "2026-12-02"}));
        assert!(
            !tomorrow.iter().any(|f| f.starts_with("/person/birthDate")),
            "a day ahead is a time zone: {tomorrow:?}"
        );
        assert_eq!(
            implausible(serde_json::json!({"/person/birthDate": "2026-12-03"})),
            ["/person/birthDate birth date is in the future",]
        );
        assert_eq!(
            implausible(serde_json::json!({"/person/birthDate": "1999-12-03", "/assessment/examDate": "2027-01-01"})),
            ["/vaccinations/0/date vaccination date is before the birth date",]
        );
        assert_eq!(
            implausible(serde_json::json!({"/assessment/examDate": "1990-05-20"})),
            ["/assessment/examDate exam date is before the birth date",]
        );
        assert_eq!(
            implausible(serde_json::json!({"/assessment/validUntil": "2026-10-04"})),
            ["/assessment/validUntil valid-until date is before the exam date",]
        );
        assert_eq!(implausible(serde_json::json!({"/assessment/validUntil": "2026-10-05"})), none);
        // Partial dates: refused only when every day they could be is impossible.
        assert_eq!(implausible(serde_json::json!({"/vaccinations/0/date": "1990"})), none);
        assert_eq!(implausible(serde_json::json!({"/vaccinations/0/date": "1990-05"})), none);
        assert_eq!(
            implausible(serde_json::json!({"/vaccinations/0/date": "1990-04"})),
            ["/vaccinations/0/date vaccination date is before the birth date",]
        );
        assert_eq!(
            implausible(serde_json::json!({"/person/birthDate": "1990", "/vaccinations/0/date": "1990-01-01"})),
            none
        );
        assert_eq!(implausible(serde_json::json!({"/vaccinations/0/date": "2026-12"})), none);
        assert_eq!(
            implausible(serde_json::json!({"/vaccinations/0/date": "2027"})),
            ["/vaccinations/0/date vaccination date is in the future",]
        );
        assert_eq!(
            implausible(serde_json::json!({"/results/0/collected": "2026-12-04"})),
            ["/results/0/collected collection date is in the future",]
        );
        // Entries kept as mistakes, and estimated birth dates, are not compared.
        assert_eq!(
            implausible(serde_json::json!({"/vaccinations/0/date": "1980", "/vaccinations/0/status": "entered-in-error"})),
            none
        );
        assert_eq!(
            implausible(serde_json::json!({"/results/0/collected": "1980-01-01", "/results/0/status": "cancelled"})),
            none
        );
        assert_eq!(
            implausible(serde_json::json!({"/vaccinations/0/date": "1980", "/person/birthDateEstimated": true})),
            none
        );
    }

    #[test]
    fn unlikely_but_possible_dates_warn() {
        let today = Day::from_ymd(2026, 12, 1);
        let rec = |birth: &str, exam: &str, until: &str| serde_json::json!({"person": {"birthDate": birth}, "assessment": {"examDate": exam, "validUntil": until}});
        let at = |v: &Value| unlikely(v, today).into_iter().filter_map(|i| i.input_path).collect::<Vec<_>>();
        assert!(at(&rec("1980-02-03", "2026-10-01", "2027-10-01")).is_empty());
        assert_eq!(at(&rec("1900-01-01", "2026-10-01", "2027-10-01")), ["/person/birthDate"]);
        // 1906 could be the end of 1906: not over 120 on every reading.
        assert!(at(&rec("1906", "2026-10-01", "2027-10-01")).is_empty());
        assert_eq!(at(&rec("1980", "2027-03-01", "2027-10-01")), ["/assessment/examDate"]);
        assert_eq!(at(&rec("1980", "2026-10-01", "2033-10-01")), ["/assessment/validUntil"]);
        let mut est = rec("1900-01-01", "2026-10-01", "2027-10-01");
        est["person"]["birthDateEstimated"] = Value::Bool(true);
        assert!(at(&est).is_empty(), "an estimated birth date is not compared");
    }
}
