//! Large Bundle generator for `mhg validate` at scale (issue 17).
//!
//! ```text
//! bundle N    one transaction Bundle of N entries (JSON) on stdout
//! ```
//! Built as `benches/validate.rs` builds its 100,000-entry Bundle: the 22 entries of golden
//! Bundle 04 (`tests/golden/expected/04-ca-ime-ukr-cyrillic-maiden.json`), then copies of its
//! non-Patient entries in turn, each with a fresh `urn:uuid` fullUrl (a resource that has an id
//! takes the same fresh uuid), so their references still point at the one Patient. Deterministic:
//! the same N gives the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a tool: a failure should stop it loudly

use std::io::Write;

use serde_json::{Value, json};

fn main() {
    let size: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).expect("usage: bundle N");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/expected/04-ca-ime-ukr-cyrillic-maiden.json");
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(path).expect("golden")).expect("json");
    let entries = bundle["entry"].as_array().expect("entries").clone();
    let mut all: Vec<Value> = entries.iter().take(size).cloned().collect();
    let mut n = 0u64;
    while all.len() < size {
        for e in entries.iter().filter(|e| e["resource"]["resourceType"] != "Patient") {
            if all.len() >= size {
                break;
            }
            let mut e = e.clone();
            n += 1;
            let uuid = format!("00000000-0000-4000-8000-{n:012x}");
            e["fullUrl"] = json!(format!("urn:uuid:{uuid}"));
            if e["resource"].get("id").is_some() {
                e["resource"]["id"] = json!(uuid);
            }
            all.push(e);
        }
    }
    bundle["entry"] = Value::Array(all);
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    serde_json::to_writer(&mut out, &bundle).expect("write");
    out.write_all(b"\n").expect("write");
    out.flush().expect("flush");
}
