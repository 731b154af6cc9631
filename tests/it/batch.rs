//! `mhg convert --jobs N` (issue 17): the output of N threads is byte for byte the output of one,
//! in input order, with refused records reported on stderr with their lines while the others
//! are written.

use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// NDJSON of every golden record in turn, `n` records with unique ids, with a malformed line,
/// a refused record (an unknown sex code), blank lines and CRLF line ends among them.
fn batch(n: usize) -> (Vec<u8>, usize, usize) {
    let dir = root().join("tests/golden/records");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    let templates: Vec<Value> = files.iter().map(|p| read_json(p)).collect();
    let mut out = Vec::new();
    let (mut malformed_line, mut refused_line) = (0, 0);
    let mut line = 0;
    for i in 0..n {
        let mut r = templates[i % templates.len()].clone();
        for ptr in ["/recordId", "/person/personId", "/assessment/assessmentId"] {
            let id = r.pointer_mut(ptr).unwrap();
            *id = Value::from(format!("{}-B{i}", id.as_str().unwrap()));
        }
        if i == n / 3 {
            r["person"]["sex"] = "Q".into();
            refused_line = line + 1;
        }
        out.extend_from_slice(serde_json::to_string(&r).unwrap().as_bytes());
        out.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
        line += 1;
        if i == n / 2 {
            out.extend_from_slice(b"{\"recordId\": \n\n");
            malformed_line = line + 1;
            line += 2;
        }
    }
    (out, malformed_line, refused_line)
}

fn convert(input: &std::path::Path, jobs: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mhg")).current_dir(root()).args(["convert", "--jobs", jobs]).arg(input).output().expect("runs")
}

#[test]
fn jobs_2_output_is_byte_identical_to_jobs_1() {
    let dir = tempfile::tempdir().unwrap();
    // More records than one chunk of two threads holds (64 a thread), so chunks follow chunks.
    let (bytes, malformed_line, refused_line) = batch(200);
    let path = dir.path().join("batch.ndjson");
    std::fs::write(&path, &bytes).unwrap();
    let one = convert(&path, "1");
    let two = convert(&path, "2");
    assert_eq!(one.status.code(), Some(1), "a refused record and a malformed line: exit 1");
    assert_eq!(two.status.code(), Some(1));
    assert!(one.stdout == two.stdout, "stdout differs between --jobs 1 and --jobs 2");
    assert_eq!(String::from_utf8_lossy(&one.stderr), String::from_utf8_lossy(&two.stderr));
    // In input order: each Bundle is its record's, the refused and the malformed missing.
    let ids: Vec<String> = String::from_utf8(two.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["identifier"]["value"].as_str().unwrap().to_owned())
        .collect();
    let converted: Vec<usize> = ids.iter().map(|id| id.split("-B").last().unwrap().split('@').next().unwrap().parse().unwrap()).collect();
    let mut sorted = converted.clone();
    sorted.sort();
    assert_eq!(converted, sorted, "output in input order");
    assert!(!converted.contains(&(200 / 3)), "the refused record is not written");
    // Refusals name their lines.
    let err = String::from_utf8(two.stderr).unwrap();
    let outcomes: Vec<Value> = err.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let diagnostics: Vec<&str> = outcomes.iter().filter_map(|o| o["issue"][0]["diagnostics"].as_str()).collect();
    assert!(diagnostics.iter().any(|d| d.contains(&format!("line {refused_line}"))), "{diagnostics:?}");
    assert!(diagnostics.iter().any(|d| d.contains(&format!("line {malformed_line}"))), "{diagnostics:?}");
}

#[test]
fn jobs_0_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one.json");
    std::fs::write(&path, b"{}").unwrap();
    assert_eq!(convert(&path, "0").status.code(), Some(2));
}
