//! A second opinion: the golden Bundles checked by an independent validator (medplum, with the
//! official R4 definitions and the IPS 2.0.0 profiles; `tests/peers/README.md`). The harness is
//! installed by `tests/peers/setup.sh` (npm registry); no Bundle may have an error.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;

#[test]
fn golden_bundles_pass_an_independent_validator() {
    let peers = root().join("tests/peers");
    let setup = Command::new("bash").arg(peers.join("setup.sh")).status().expect("bash runs");
    assert!(setup.success(), "tests/peers/setup.sh failed: node and npm are needed for this test");
    let p = pipeline();
    let mut input = String::new();
    let mut names = Vec::new();
    for f in fixtures() {
        input.push_str(&p.convert_value(&read_json(&f)).expect("converts").bundle.to_string());
        input.push('\n');
        names.push(f.file_name().unwrap().to_string_lossy().into_owned());
    }
    let mut child = Command::new("node")
        .arg(peers.join("medplum/validate.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "validator could not run");
    let mut problems = Vec::new();
    let mut checked = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).expect("verdict line");
        let i = v["index"].as_u64().unwrap() as usize;
        checked += v["checked"].as_array().map(Vec::len).unwrap_or(0);
        for e in v["errors"].as_array().into_iter().flatten() {
            problems.push(format!("{}: {} {}", names[i], e["path"], e["message"]));
        }
    }
    assert!(checked > 100, "profiles were applied ({checked} resource/profile checks)");
    assert!(problems.is_empty(), "independent validator errors:\n{}", problems.join("\n"));
}
