//! Stage 3, **validate**: every Bundle the gateway produces is checked before anyone sees it.
//!
//! The gate is the official FHIR R4 JSON Schema (`conformance/fhir-r4/fhir.schema.json`):
//! structure, JSON types, primitive formats and enumerated codes of every resource; then the
//! profile validator ([`profile`]) checks each entry against base R4 and its `meta.profile`s
//! (snapshots, slicing, bindings, invariants) with the definitions of [`packages`].
//!
//! Invariant: no I/O after construction, no logging; findings name output paths as FHIRPath
//! (`Bundle.entry[3].resource.status`) and never quote values.

pub mod document;
pub mod fhirpath;
pub mod packages;
pub mod profile;
pub mod txops;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use serde_json::{Value, json};

use crate::error::Issue;

pub struct R4Schema {
    bundle: Validator,
}

impl R4Schema {
    /// Compiles the R4 JSON schema for `Bundle` (with every resource reachable from it).
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let mut root = schema.clone();
        // Validate against the Bundle definition, with all other definitions reachable.
        if let Some(obj) = root.as_object_mut() {
            obj.remove("oneOf");
            obj.remove("discriminator");
            obj.insert("$ref".into(), json!("#/definitions/Bundle"));
        }
        // Every pattern of the R4 schema is a plain regular expression: the `regex` crate's
        // engine answers them without fancy-regex's wrapper (-1.5% of a produced record's
        // instructions; issue 17).
        let bundle = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft6)
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&root)
            .map_err(|e| format!("FHIR R4 JSON schema does not compile: {}", e.masked()))?;
        Ok(R4Schema { bundle })
    }

    /// Findings for a Bundle, each with the FHIRPath of the element.
    pub fn check_bundle(&self, bundle: &Value) -> Vec<Issue> {
        if self.bundle.is_valid(bundle) {
            return Vec::new();
        }
        let mut out: Vec<Issue> = self
            .bundle
            .iter_errors(bundle)
            .map(|e| {
                let expr = pointer_to_fhirpath("Bundle", e.instance_path().as_str());
                let text = match e.kind() {
                    ValidationErrorKind::Required { property } => format!("required element {property} is missing"),
                    ValidationErrorKind::AdditionalProperties { unexpected } => {
                        format!("unknown element(s): {}", unexpected.join(", "))
                    }
                    ValidationErrorKind::Enum { .. } => "code is not in the required value set".to_owned(),
                    ValidationErrorKind::Pattern { .. } => "value is not a valid FHIR primitive of its type".to_owned(),
                    ValidationErrorKind::Type { .. } => "wrong JSON type".to_owned(),
                    other => format!("fails FHIR R4 JSON schema keyword '{}'", other.keyword()),
                };
                Issue::new("structure", format!("produced FHIR is invalid: {text}")).expr(expr)
            })
            .collect();
        out.dedup();
        out
    }
}

/// `/entry/3/resource/code/coding/0` -> `Bundle.entry[3].resource.code.coding[0]`.
pub fn pointer_to_fhirpath(root: &str, pointer: &str) -> String {
    let mut out = root.to_owned();
    for seg in pointer.split('/').skip(1) {
        if seg.chars().all(|c| c.is_ascii_digit()) && !seg.is_empty() {
            out.push('[');
            out.push_str(seg);
            out.push(']');
        } else {
            out.push('.');
            out.push_str(seg);
        }
    }
    out
}
