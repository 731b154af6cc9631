//! The input contract: `mappings/record.schema.json` (JSON Schema 2020-12), checked with the
//! `jsonschema` crate before any mapping.
//!
//! Findings are rewritten into [`Issue`]s that carry the JSON Pointer of the offending input and a
//! message built from the *schema* (allowed values, patterns, limits), never from the instance:
//! the crate's own messages quote the offending value, which may be a name or a passport number.
//! A property *name* the schema does not define is record data too (`"Jane Doe 1980-02-03": 1`):
//! it is never quoted, and the refusal points at the object that holds it.

use std::collections::HashSet;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::error::Issue;

pub struct RecordSchema {
    validator: Validator,
    /// Every property name the schema defines, anywhere: the only names a refusal may quote.
    names: HashSet<String>,
}

impl RecordSchema {
    pub fn compile(schema: &Value) -> Result<Self, String> {
        // The `regex` crate's engine (linear time, no backtracking wrapper) where every pattern
        // compiles with it; a schema of a mapping override that needs look-around or
        // back-references falls back to fancy-regex, jsonschema's default.
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(schema)
            .or_else(|_| jsonschema::options().with_draft(jsonschema::Draft::Draft202012).build(schema))
            .map_err(|e| format!("record schema does not compile: {}", e.masked()))?;
        let mut names = HashSet::new();
        collect_names(schema, &mut names);
        Ok(RecordSchema { validator, names })
    }

    /// The longest prefix of the JSON Pointer `pointer` made of property names the schema
    /// defines and array indexes: what a refusal may show of a path read from the input
    /// (`/person/<unknown>/x` becomes `/person`).
    pub fn known_prefix<'a>(&self, pointer: &'a str) -> &'a str {
        let mut end = 0;
        for seg in pointer.split('/').skip(1) {
            let index = !seg.is_empty() && seg.len() <= 6 && seg.bytes().all(|b| b.is_ascii_digit());
            let name = !seg.contains('~') && self.names.contains(seg);
            if !(index || name) {
                break;
            }
            end += 1 + seg.len();
        }
        &pointer[..end]
    }

    /// Every violation of the schema, each with its input path. Empty when valid.
    pub fn check(&self, record: &Value) -> Vec<Issue> {
        if self.validator.is_valid(record) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for e in self.validator.iter_errors(record) {
            describe(&e, &self.names, &mut out);
        }
        out.dedup();
        out
    }
}

fn short_list(options: &Value) -> String {
    match options {
        Value::Array(a) => a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn type_name(kind: &TypeKind) -> String {
    match kind {
        TypeKind::Single(t) => t.to_string(),
        TypeKind::Multiple(ts) => ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(" or "),
    }
}

/// Appends the issues for one schema error. `oneOf`/`anyOf` failures are resolved to the branch
/// that came closest, so `{"quantity": "5", "unit": "kg"}` is reported as a wrong type at
/// `/value/quantity`, not as "matches no branch".
fn describe(e: &ValidationError<'_>, names: &HashSet<String>, out: &mut Vec<Issue>) {
    let path = e.instance_path().as_str().to_owned();
    let issue = |code: &'static str, text: String| Issue::new(code, text).at(path.clone());
    match e.kind() {
        ValidationErrorKind::Required { property } => {
            let p = property.as_str().unwrap_or("?");
            let full = format!("{}/{}", path, p);
            out.push(Issue::new("required", format!("required property '{p}' is missing")).at(full));
        }
        ValidationErrorKind::AdditionalProperties { unexpected } | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            // A name the schema defines (in another place) is structure and may be quoted; any
            // other is caller text, possibly a name or a date: said to exist, at its object.
            for name in unexpected {
                let text = if names.contains(name.as_str()) {
                    format!("property '{name}' is not allowed here")
                } else {
                    "a property the schema does not define is not allowed here".to_owned()
                };
                let issue = Issue::new("structure", text);
                out.push(if path.is_empty() { issue } else { issue.at(path.clone()) });
            }
        }
        ValidationErrorKind::Enum { options } => out.push(issue("code-invalid", format!("value is not one of {}", short_list(options)))),
        ValidationErrorKind::Constant { expected_value } => out.push(issue("value", format!("value must be {expected_value}"))),
        ValidationErrorKind::Type { kind } => out.push(issue("structure", format!("wrong JSON type: expected {}", type_name(kind)))),
        ValidationErrorKind::Pattern { pattern } => out.push(issue("value", format!("value does not match the pattern {pattern}"))),
        ValidationErrorKind::MinLength { limit } => out.push(issue("value", format!("value is shorter than {limit} character(s)"))),
        ValidationErrorKind::MaxLength { limit } => out.push(issue("too-long", format!("value is longer than {limit} characters"))),
        ValidationErrorKind::MinItems { limit } => out.push(issue("required", format!("at least {limit} item(s) required"))),
        ValidationErrorKind::MaxItems { limit } => out.push(issue("too-long", format!("at most {limit} item(s) allowed"))),
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
            out.push(issue("value", format!("value is below the minimum {limit}")))
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
            out.push(issue("value", format!("value is above the maximum {limit}")))
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => match closest_branch(context) {
            Some(branch) if !branch.is_empty() && !all_shallow(branch, &path) => {
                for sub in branch {
                    describe(sub, names, out);
                }
            }
            _ => out.push(issue("structure", alternatives_text(e.schema_path().as_str()))),
        },
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            out.push(issue("structure", "value matches more than one allowed shape".to_owned()))
        }
        other => out.push(issue("invalid", format!("value fails the schema keyword '{}'", other.keyword()))),
    }
}

/// The branch with the fewest errors at the level of the alternative itself (missing or
/// unexpected properties, wrong type): the shape the caller evidently meant.
fn closest_branch<'a>(context: &'a [Vec<ValidationError<'static>>]) -> Option<&'a Vec<ValidationError<'static>>> {
    context.iter().min_by_key(|errs| {
        let shape = errs
            .iter()
            .filter(|e| {
                matches!(
                    e.kind(),
                    ValidationErrorKind::Required { .. }
                        | ValidationErrorKind::AdditionalProperties { .. }
                        | ValidationErrorKind::Type { .. }
                )
            })
            .count();
        (shape, errs.len())
    })
}

/// True when every error of a branch is about the alternative as a whole (e.g. both date forms
/// failing their pattern): then a summary says more than the branch's details.
fn all_shallow(branch: &[ValidationError<'static>], path: &str) -> bool {
    branch.iter().all(|e| {
        e.instance_path().as_str() == path && matches!(e.kind(), ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Type { .. })
    })
}

fn alternatives_text(schema_path: &str) -> String {
    if schema_path.contains("/names/") {
        "a name needs 'family' or 'given'".to_owned()
    } else if schema_path.contains("collected") {
        "value is neither a dateTime with time zone nor a full date (YYYY-MM-DD)".to_owned()
    } else if schema_path.contains("/value/") {
        "value must be one of {coded}, {quantity, unit[, comparator]}, {titer}, {text}".to_owned()
    } else {
        "value matches none of the allowed shapes".to_owned()
    }
}

/// The keys of every `properties` object in `schema`.
fn collect_names(schema: &Value, out: &mut HashSet<String>) {
    match schema {
        Value::Object(m) => {
            if let Some(Value::Object(props)) = m.get("properties") {
                out.extend(props.keys().cloned());
            }
            m.values().for_each(|v| collect_names(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_names(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> RecordSchema {
        RecordSchema::compile(&json!({
            "type": "object", "additionalProperties": false,
            "properties": {"person": {"type": "object", "additionalProperties": false,
                "properties": {"names": {"type": "array", "items": {"type": "object", "additionalProperties": false, "properties": {"family": {"type": "string"}}}}}}},
            "$defs": {"other": {"properties": {"recordId": {}}}}
        }))
        .expect("compiles")
    }

    #[test]
    fn unknown_property_names_are_not_quoted() {
        let s = schema();
        let issues = s.check(&json!({"person": {"Jane Doe 1980-02-03": 1, "recordId": "x", "names": [{"family": "a", "Doe": 1}]}}));
        let shown: Vec<(Option<&str>, &str)> = issues.iter().map(|i| (i.input_path.as_deref(), i.text.as_str())).collect();
        assert!(
            shown.contains(&(Some("/person"), "a property the schema does not define is not allowed here")),
            "{shown:?}"
        );
        assert!(shown.contains(&(Some("/person"), "property 'recordId' is not allowed here")), "{shown:?}");
        assert!(
            shown.contains(&(Some("/person/names/0"), "a property the schema does not define is not allowed here")),
            "{shown:?}"
        );
        assert!(!format!("{issues:?}").contains("Jane") && !format!("{issues:?}").contains("Doe"), "{issues:?}");
        let root = s.check(&json!({"Jane": 1}));
        assert_eq!(root[0].input_path, None);
    }

    #[test]
    fn known_prefix_stops_at_the_first_unknown_segment() {
        let s = schema();
        assert_eq!(s.known_prefix("/person/names/12/family"), "/person/names/12/family");
        assert_eq!(s.known_prefix("/person/Jane Doe/names"), "/person");
        assert_eq!(s.known_prefix("/Jane"), "");
        assert_eq!(s.known_prefix(""), "");
        assert_eq!(s.known_prefix("/person/1980020312"), "/person");
    }
}
