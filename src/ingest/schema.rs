//! The input contract: `mappings/record.schema.json` (JSON Schema 2020-12), checked with the
//! `jsonschema` crate before any mapping.
//!
//! Findings are rewritten into [`Issue`]s that carry the JSON Pointer of the offending input and a
//! message built from the *schema* (allowed values, patterns, limits), never from the instance:
//! the crate's own messages quote the offending value, which may be a name or a passport number.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::error::Issue;

pub struct RecordSchema {
    validator: Validator,
}

impl RecordSchema {
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .build(schema)
            .map_err(|e| format!("record schema does not compile: {}", e.masked()))?;
        Ok(RecordSchema { validator })
    }

    /// Every violation of the schema, each with its input path. Empty when valid.
    pub fn check(&self, record: &Value) -> Vec<Issue> {
        if self.validator.is_valid(record) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for e in self.validator.iter_errors(record) {
            describe(&e, &mut out);
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
fn describe(e: &ValidationError<'_>, out: &mut Vec<Issue>) {
    let path = e.instance_path().as_str().to_owned();
    let issue = |code: &'static str, text: String| Issue::new(code, text).at(path.clone());
    match e.kind() {
        ValidationErrorKind::Required { property } => {
            let p = property.as_str().unwrap_or("?");
            let full = format!("{}/{}", path, p);
            out.push(Issue::new("required", format!("required property '{p}' is missing")).at(full));
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for name in unexpected {
                // A property *name* is structure, but cap it: it is still caller-supplied text.
                let shown: String = name.chars().take(64).collect();
                out.push(
                    Issue::new("structure", format!("property '{shown}' is not allowed here"))
                        .at(format!("{}/{}", path, escape_pointer(name))),
                );
            }
        }
        ValidationErrorKind::Enum { options } => {
            out.push(issue("code-invalid", format!("value is not one of {}", short_list(options))))
        }
        ValidationErrorKind::Constant { expected_value } => {
            out.push(issue("value", format!("value must be {expected_value}")))
        }
        ValidationErrorKind::Type { kind } => {
            out.push(issue("structure", format!("wrong JSON type: expected {}", type_name(kind))))
        }
        ValidationErrorKind::Pattern { pattern } => {
            out.push(issue("value", format!("value does not match the pattern {pattern}")))
        }
        ValidationErrorKind::MinLength { limit } => {
            out.push(issue("value", format!("value is shorter than {limit} character(s)")))
        }
        ValidationErrorKind::MaxLength { limit } => {
            out.push(issue("too-long", format!("value is longer than {limit} characters")))
        }
        ValidationErrorKind::MinItems { limit } => {
            out.push(issue("required", format!("at least {limit} item(s) required")))
        }
        ValidationErrorKind::MaxItems { limit } => {
            out.push(issue("too-long", format!("at most {limit} item(s) allowed")))
        }
        ValidationErrorKind::Minimum { limit } | ValidationErrorKind::ExclusiveMinimum { limit } => {
            out.push(issue("value", format!("value is below the minimum {limit}")))
        }
        ValidationErrorKind::Maximum { limit } | ValidationErrorKind::ExclusiveMaximum { limit } => {
            out.push(issue("value", format!("value is above the maximum {limit}")))
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            match closest_branch(context) {
                Some(branch) if !branch.is_empty() && !all_shallow(branch, &path) => {
                    for sub in branch {
                        describe(sub, out);
                    }
                }
                _ => out.push(issue("structure", alternatives_text(e.schema_path().as_str()))),
            }
        }
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
        e.instance_path().as_str() == path
            && matches!(e.kind(), ValidationErrorKind::Pattern { .. } | ValidationErrorKind::Type { .. })
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

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}
