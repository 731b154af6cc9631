//! Record generator for batch measurements (used by `scripts/batch`).
//!
//! ```text
//! records N    N records as NDJSON on stdout
//! ```
//! The records are the golden input records (`tests/golden/records/*.json`, every kind the
//! gateway meets: adults and children, TB classes, vaccinations, labour migrants, large
//! records, and one that is refused), taken in turn, each with unique ids
//! (`<recordId>-B<i>`, likewise the person and the assessment), so no two records are the same.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a tool: a failure should stop it loudly

use std::io::Write;

use serde_json::Value;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).expect("usage: records N");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/records");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden records")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let templates: Vec<Value> = files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json")).collect();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    for i in 0..n {
        let mut r = templates[i % templates.len()].clone();
        suffix(&mut r["recordId"], i);
        suffix(&mut r["person"]["personId"], i);
        suffix(&mut r["assessment"]["assessmentId"], i);
        serde_json::to_writer(&mut out, &r).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
}

/// `id` -> `id-B<i>`, kept within the record schema's 64 characters.
fn suffix(v: &mut Value, i: usize) {
    if let Some(s) = v.as_str() {
        let mut id: String = s.chars().take(52).collect();
        id.push_str(&format!("-B{i}"));
        *v = Value::String(id);
    }
}
