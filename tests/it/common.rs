//! Shared by the test modules: the pipeline (loaded once), fixture paths, JSON comparison.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use mhg::pipeline::Pipeline;
use serde_json::Value;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn pipeline() -> Arc<Pipeline> {
    static P: OnceLock<Arc<Pipeline>> = OnceLock::new();
    P.get_or_init(|| {
        let r = root();
        Arc::new(Pipeline::load(&r.join("mappings"), &[], &r.join("conformance"), 32).expect("pipeline loads"))
    })
    .clone()
}

pub fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/golden/records"))
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

pub fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("readable")).expect("json")
}

/// Differences between two JSON values, as paths (objects compared by meaning: key order is
/// irrelevant; arrays and number text are significant).
pub fn json_diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => json_diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: only in actual")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: only in expected"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!("{path}: {} items, expected {}", x.len(), y.len()));
            }
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                json_diff(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

/// An HTTP client for tests (with the gateway's TLS provider installed).
pub fn http() -> reqwest::Client {
    mhg::relay::install_tls();
    reqwest::Client::new()
}
