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

#[path = "backlog/mod.rs"]
mod backlog;

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).expect("usage: records N");
    let templates = backlog::templates();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    for i in 0..n {
        serde_json::to_writer(&mut out, &backlog::record(&templates, i)).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
}
