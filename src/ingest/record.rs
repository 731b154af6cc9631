//! The typed form of one migration health record (`mappings/record.schema.json`, version 1.0).
//!
//! Records are checked against the JSON Schema *before* they are deserialised into these types, so
//! every field here is already known to be well formed; the types exist to make the mapping code
//! read like the schema. Code-valued fields stay `String`s on purpose: their meaning lives in the
//! ConceptMaps under `mappings/`, not in Rust enums.
//!
//! Patient data lives here. `Debug` is written by hand so that nothing but identifiers of the
//! record itself (never of the person) can reach a log line through `{:?}`.

use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    pub schema_version: String,
    pub record_id: String,
    /// The schema's `maximum` is `u32::MAX`: every version it allows fits.
    #[serde(deserialize_with = "integer")]
    pub record_version: u32,
    pub source_system: String,
    pub person: Person,
    pub assessment: Assessment,
    #[serde(default)]
    pub results: Vec<TestResult>,
    #[serde(default)]
    pub vaccinations: Vec<Vaccination>,
    pub provenance: Option<RecordProvenance>,
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("record_id", &self.record_id)
            .field("record_version", &self.record_version)
            .field("results", &self.results.len())
            .field("vaccinations", &self.vaccinations.len())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Person {
    pub person_id: String,
    #[serde(default)]
    pub identifiers: Vec<PersonIdentifier>,
    pub names: Vec<Name>,
    pub sex: String,
    pub birth_date: String,
    pub birth_date_estimated: Option<bool>,
    pub birth_country: Option<String>,
    #[serde(default)]
    pub nationalities: Vec<String>,
    #[serde(default)]
    pub languages: Vec<Language>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub destination_address: Option<Address>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonIdentifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub issuer: Option<String>,
    pub expires: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Name {
    #[serde(rename = "use")]
    pub name_use: String,
    pub family: Option<String>,
    #[serde(default)]
    pub given: Vec<String>,
    pub script: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Language {
    pub code: String,
    pub preferred: Option<bool>,
    pub interpreter_needed: Option<bool>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Address {
    #[serde(default)]
    pub lines: Vec<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assessment {
    pub assessment_id: String,
    pub programme: String,
    pub kind: String,
    pub destination_country: String,
    pub site: Site,
    pub physician: Option<Physician>,
    pub exam_date: String,
    pub valid_until: Option<String>,
    pub tb_classification: Option<String>,
    #[serde(default)]
    pub other_classifications: Vec<Classification>,
    pub fit_to_travel: Option<bool>,
    pub note: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Site {
    pub code: String,
    pub name: String,
    pub country: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Physician {
    pub id: String,
    pub name: String,
    pub licence: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Classification {
    pub condition: String,
    pub class: String,
    pub note: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestResult {
    pub result_id: String,
    pub test: String,
    pub method: Option<String>,
    pub specimen: Option<String>,
    #[serde(default, deserialize_with = "opt_integer")]
    pub sequence: Option<u8>,
    pub collected: Option<String>,
    pub resulted: Option<String>,
    pub status: String,
    pub value: ResultValue,
    #[serde(default)]
    pub components: Vec<Component>,
    #[serde(default)]
    pub findings: Vec<String>,
    pub laboratory: Option<String>,
    pub note: Option<String>,
}

/// One of the four value shapes of the schema's `oneOf`.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub enum ResultValue {
    Coded { coded: String },
    Quantity { quantity: Number, unit: String, comparator: Option<String> },
    Titer { titer: String },
    Text { text: String },
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Component {
    pub name: String,
    pub quantity: Number,
    pub unit: String,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vaccination {
    pub vaccination_id: String,
    pub vaccine: String,
    pub date: Option<String>,
    pub status: String,
    pub not_done_reason: Option<String>,
    pub source: String,
    #[serde(default, deserialize_with = "opt_integer")]
    pub dose_number: Option<u8>,
    #[serde(default, deserialize_with = "opt_integer")]
    pub series_doses: Option<u8>,
    pub lot: Option<String>,
    pub expiry: Option<String>,
    pub manufacturer: Option<String>,
    pub route: Option<String>,
    pub body_site: Option<String>,
    pub country: Option<String>,
    pub note: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordProvenance {
    pub entered_by: Option<String>,
    pub attested_by: Option<String>,
    pub created: String,
    pub updated: Option<String>,
    pub consent: Option<Consent>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Consent {
    pub status: String,
    pub date: Option<String>,
    pub scope: Option<String>,
}

/// The schema's `integer` is any number with no fraction, `1.0` and `1e0` too; serde's integer
/// types take only `1`. Reads the number's text exactly (no float rounding).
fn integer<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
    let n = Number::deserialize(d)?;
    integral(n.as_str()).and_then(|v| T::try_from(v).ok()).ok_or_else(|| serde::de::Error::custom("not an integer the record model holds"))
}

fn opt_integer<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
    match Option::<Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => integral(n.as_str())
            .and_then(|v| T::try_from(v).ok())
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("not an integer the record model holds")),
    }
}

/// The value of a JSON number's text when it is a whole number from 0 to `u64::MAX`.
fn integral(text: &str) -> Option<u64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let (mantissa, exp) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Some(0);
    }
    if negative {
        return None;
    }
    // Position of the decimal point within `significant`.
    let point = i64::try_from(int.len()).ok()? + exp - i64::try_from(digits.len() - significant.len()).ok()?;
    if !(1..=20).contains(&point) {
        return None;
    }
    let point = point as usize;
    let whole = if point >= significant.len() {
        format!("{significant}{}", "0".repeat(point - significant.len()))
    } else if significant[point..].bytes().all(|b| b == b'0') {
        significant[..point].to_owned()
    } else {
        return None;
    };
    whole.parse().ok()
}

impl Record {
    /// Puts back the exact text of every decimal of `value` (the record this was read from).
    /// serde_json hands a number such as `-0` to a `Number` field through an integer, as `0`;
    /// the README promises that decimals keep their text.
    pub fn keep_number_text(&mut self, value: &Value) {
        // Restores only what differs (`-0`), so the usual record allocates nothing here.
        fn restore(into: &mut Number, from: Option<&Value>) {
            if let Some(Value::Number(n)) = from {
                if n.as_str() != into.as_str() {
                    *into = n.clone();
                }
            }
        }
        let Some(results) = value.get("results").and_then(Value::as_array) else { return };
        for (r, src) in self.results.iter_mut().zip(results) {
            if let ResultValue::Quantity { quantity, .. } = &mut r.value {
                restore(quantity, src.get("value").and_then(|v| v.get("quantity")));
            }
            let components = src.get("components").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            for (c, csrc) in r.components.iter_mut().zip(components) {
                restore(&mut c.quantity, csrc.get("quantity"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_the_schema_reads_them() {
        for (text, want) in [
            ("1", Some(1)),
            ("1.0", Some(1)),
            ("1.000", Some(1)),
            ("1e0", Some(1)),
            ("1E+2", Some(100)),
            ("12.5e1", Some(125)),
            ("0.001e3", Some(1)),
            ("1500e-2", Some(15)),
            ("-0", Some(0)),
            ("-0.0", Some(0)),
            ("0e99999999", Some(0)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", None),
            ("1e400", None),
            ("1.5", None),
            ("15e-1", None),
            ("-1", None),
            ("1e-400", None),
        ] {
            assert_eq!(integral(text), want, "{text}");
        }
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Ints {
        #[serde(deserialize_with = "integer")]
        a: u32,
        #[serde(default, deserialize_with = "opt_integer")]
        b: Option<u8>,
    }

    #[test]
    fn integer_fields_take_whole_decimals() {
        let v: Value = serde_json::from_str(r#"{"a": 1.0, "b": 2e0}"#).expect("json");
        assert_eq!(Ints::deserialize(&v).ok(), Some(Ints { a: 1, b: Some(2) }));
        let v: Value = serde_json::from_str(r#"{"a": 4294967295}"#).expect("json");
        assert_eq!(Ints::deserialize(&v).ok(), Some(Ints { a: u32::MAX, b: None }));
        let v: Value = serde_json::from_str(r#"{"a": 4294967296}"#).expect("json");
        assert!(Ints::deserialize(&v).is_err());
        let v: Value = serde_json::from_str(r#"{"a": 1, "b": 256}"#).expect("json");
        assert!(Ints::deserialize(&v).is_err());
    }
}
