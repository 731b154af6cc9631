//! Snapshot generation for profiles that ship only a differential (placeholder: the base
//! snapshot with differential elements applied is built in a later step).

use serde_json::Value;

use super::Validator;

pub(super) fn generate(v: &Validator, sd: &Value, depth: usize) -> Option<Vec<Value>> {
    let base = sd["baseDefinition"].as_str()?;
    v.snapshot_elements(base, depth)
}
