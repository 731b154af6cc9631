//! `mhg convert`, run as a user runs it.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::common::*;

fn mhg() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mhg"));
    c.current_dir(root());
    c
}

fn fixture(name: &str) -> String {
    root().join("tests/golden/records").join(name).display().to_string()
}

#[test]
fn converts_files_to_ndjson() {
    let out = mhg()
        .args(["convert", &fixture("30-shared-adult-refugee-clear.json"), &fixture("32-shared-labour-minimal.json")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["identifier"]["value"], "R-0001@1");
}

#[test]
fn reads_stdin_arrays_and_ndjson() {
    let a: Value = read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"));
    let b: Value = read_json(&root().join("tests/golden/records/32-shared-labour-minimal.json"));
    for input in [format!("[{a},{b}]"), format!("{a}\n{b}\n")] {
        let mut child = mhg().args(["convert", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("spawns");
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    }
}

#[test]
fn refused_records_exit_1_with_an_outcome_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = read_json(&root().join("tests/golden/records/32-shared-labour-minimal.json"));
    bad["person"]["sex"] = "Q".into();
    let good = read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"));
    let path = dir.path().join("batch.ndjson");
    std::fs::write(&path, format!("{good}\n{bad}\n")).unwrap();
    let out = mhg().args(["convert", path.to_str().unwrap()]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1, "the good record is still converted");
    let err = String::from_utf8(out.stderr).unwrap();
    let oo: Value = serde_json::from_str(err.lines().next().unwrap()).expect("an OperationOutcome line");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["location"][0], "/person/sex");
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("batch.ndjson"));
    assert!(oo["issue"][0]["diagnostics"].as_str().unwrap().contains("line 2"));
}

#[test]
fn missing_file_is_refused_not_fatal() {
    let out = mhg().args(["convert", "/nonexistent/x.json", &fixture("32-shared-labour-minimal.json")]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
}

#[test]
fn writes_one_file_per_record_with_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = mhg()
        .args([
            "convert",
            "--out",
            dir.path().to_str().unwrap(),
            &fixture("19-au-emedical-hkg-hani-amended-v1.json"),
            &fixture("20-au-emedical-hkg-hani-amended-v2.json"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut names: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    // `<sourceSystem>~<recordId>.v<version>.json`: the whole identity (issue 11).
    assert_eq!(names, vec!["emedical-export-hk~GR-19.v1.json", "emedical-export-hk~GR-19.v2.json"]);
    let v = read_json(&dir.path().join("emedical-export-hk~GR-19.v2.json"));
    assert_eq!(v["resourceType"], "Bundle");
}

#[test]
fn usage_errors_exit_2() {
    let out = mhg().args(["convert", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = mhg().args(["--config", "/nonexistent.toml", "convert"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mhg.toml");
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:0\"\ncolour = \"blue\"\n").unwrap();
    let out = mhg().args(["--config", cfg.to_str().unwrap(), "serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("mhg.toml") && err.contains("colour"), "{err}");
}
