//! The generated backlog both `examples/records.rs` (for `scripts/batch`) and
//! `benches/mapping.rs` (`varied/...`) use: the golden input records
//! (`tests/golden/records/*.json`) taken in turn, each with unique ids (`<recordId>-B<i>`,
//! likewise the person and the assessment), so no two records are the same.

use serde_json::Value;

/// The golden records, in file-name order.
pub fn templates() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/records");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden records")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")).collect()
}

/// Record `i` of the backlog.
pub fn record(templates: &[Value], i: usize) -> Value {
    let mut r = templates[i % templates.len()].clone();
    suffix(&mut r["recordId"], i);
    suffix(&mut r["person"]["personId"], i);
    suffix(&mut r["assessment"]["assessmentId"], i);
    r
}

/// `id` -> `id-B<i>`, kept within the record schema's 64 characters.
fn suffix(v: &mut Value, i: usize) {
    if let Some(s) = v.as_str() {
        let mut id: String = s.chars().take(52).collect();
        id.push_str(&format!("-B{i}"));
        *v = Value::String(id);
    }
}
