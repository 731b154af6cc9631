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

/// The admin API key of every gateway the tests start (`MHG_ADMIN_KEY` for a spawned `mhg serve`,
/// a configured client for an in-process one). Authentication stays on in the tests, as it is on
/// by default.
pub const TEST_ADMIN_KEY: &str = "mhg_test-admin-key-not-a-secret-0123456789";

/// An HTTP client for tests (with the gateway's TLS provider installed), sending the test admin
/// key on every request.
pub fn http() -> reqwest::Client {
    mhg::relay::install_tls();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-api-key", reqwest::header::HeaderValue::from_static(TEST_ADMIN_KEY));
    reqwest::Client::builder().default_headers(h).build().expect("client")
}

/// A client sending no credentials.
pub fn anonymous_http() -> reqwest::Client {
    mhg::relay::install_tls();
    reqwest::Client::new()
}

/// The guard of an in-process test gateway: authentication on, the test admin key known.
pub fn test_guard() -> std::sync::Arc<mhg::http::Guard> {
    let cfg = mhg::auth::AuthConfig {
        keys_file: std::path::PathBuf::from("/nonexistent/keys.json"),
        clients: vec![test_client("test-admin", TEST_ADMIN_KEY, &["admin"])],
        ..Default::default()
    };
    let auth = mhg::auth::Auth::from_config(&cfg).expect("auth");
    std::sync::Arc::new(mhg::http::Guard::new(std::sync::Arc::new(auth), 0, 0, 0, std::time::Duration::ZERO))
}

pub fn test_client(name: &str, key: &str, scopes: &[&str]) -> mhg::auth::ClientConfig {
    mhg::auth::ClientConfig {
        name: name.into(),
        key_sha256: Some(mhg::auth::sha256_hex(key.as_bytes())),
        cert_sha256: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        destinations: None,
        programmes: None,
    }
}
