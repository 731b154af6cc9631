//! Input the gateway must refuse clearly (issue 11): an empty batch, a key twice in one object,
//! integers the store cannot hold, unknown property names (record data), impossible dates, and
//! numbers FHIR's decimal cannot carry. Each is refused on every route and in the CLI, naming
//! the field by JSON Pointer and quoting nothing from the record.

// The helpers below are test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::*;
use mhg::error::RejectKind;
use mhg::http::{AppState, Guard, RelayState, router};
use mhg::ingest::semantic::Day;
use mhg::relay::{DestinationConfig, DestinationKind};

fn base() -> Value {
    read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"))
}

fn today() -> Day {
    Day::from_ymd(2026, 12, 1)
}

fn app(relay: Option<RelayState>) -> axum::Router {
    router(AppState { pipeline: pipeline(), max_body_bytes: 1024 * 1024, max_records: 100, relay, guard: Arc::new(Guard::open()) })
}

/// A router whose `POST /records` has a store (SQLite in `dir`) to accept into.
async fn app_with_store(dir: &tempfile::TempDir) -> axum::Router {
    let store = mhg::queue::Store::open(&format!("sqlite://{}", dir.path().join("mhg.db").display())).await.expect("store");
    let out = DestinationConfig { path: Some(dir.path().join("out")), ..DestinationConfig::new("out", DestinationKind::Directory) };
    app(Some(RelayState {
        store: store.clone(),
        committer: mhg::queue::commit::Committer::start(store),
        destinations: Arc::new(vec![out]),
        wake: Arc::new(tokio::sync::Notify::new()),
    }))
}

async fn call(app: &axum::Router, path: &str, ct: &str, body: impl Into<Body>) -> (u16, Value) {
    let req = Request::post(path).header("content-type", ct).body(body.into()).expect("request");
    let resp = app.clone().oneshot(req).await.expect("answers");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn locations(oo: &Value) -> Vec<String> {
    oo["issue"].as_array().into_iter().flatten().filter_map(|i| i["location"][0].as_str().map(str::to_owned)).collect()
}

fn reason(oo: &Value) -> &str {
    oo["issue"][0]["details"]["coding"][0]["code"].as_str().unwrap_or_default()
}

fn mhg_cli(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mhg"))
        .current_dir(root())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    child.stdin.take().expect("stdin").write_all(stdin).expect("writes");
    let out = child.wait_with_output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_empty_batch_is_a_400_on_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with_store = app_with_store(&dir).await;
    let without = app(None);
    for body in ["", "\n\n  \r\n", "[]", " [ \n ] "] {
        for (app, path) in [(&without, "/fhir/$convert"), (&with_store, "/records")] {
            for ct in ["application/fhir+json", "application/fhir+ndjson"] {
                let (s, oo) = call(app, path, ct, body).await;
                assert_eq!(s, 400, "{path} {body:?}: {oo}");
                assert_eq!(oo["resourceType"], "OperationOutcome");
                assert_eq!(oo["issue"][0]["code"], "required", "{oo}");
                assert!(oo["issue"][0]["details"]["text"].as_str().is_some_and(|t| t.contains("no record")), "{oo}");
            }
        }
    }
}

#[test]
fn mhg_convert_refuses_an_empty_input_with_exit_1() {
    for input in [&b""[..], b"[]", b"\n\n"] {
        let (code, stdout, stderr) = mhg_cli(&["convert", "-"], input);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stdout.is_empty());
        let oo: Value = serde_json::from_str(stderr.lines().next().expect("an outcome line")).expect("OperationOutcome");
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert_eq!(oo["issue"][0]["code"], "required");
    }
}

/// Record 30 with `"sex"` written twice in `person` (the second value otherwise wins), and with
/// an object under an unknown key (record text) holding a key twice.
fn with_duplicates() -> (String, String) {
    let text = serde_json::to_string(&base()).expect("serialises");
    let known = text.replacen("\"sex\":\"F\"", "\"sex\":\"F\",\"sex\":\"M\"", 1);
    assert_ne!(known, text, "the fixture has sex F");
    let unknown = text.replacen("\"person\":{", "\"person\":{\"Jane Doe 1980-02-03\":{\"Doe\":1,\"Doe\":2},", 1);
    (known, unknown)
}

#[tokio::test]
async fn a_key_twice_is_refused_naming_its_object() {
    let (known, unknown) = with_duplicates();
    let dir = tempfile::tempdir().expect("tempdir");
    let with_store = app_with_store(&dir).await;
    let without = app(None);
    for (app, path) in [(&without, "/fhir/$convert"), (&with_store, "/records")] {
        let (s, oo) = call(app, path, "application/fhir+json", known.clone()).await;
        assert_eq!(s, 400, "{oo}");
        assert_eq!(locations(&oo), ["/person"], "{oo}");
        assert!(oo["issue"][0]["details"]["text"].as_str().is_some_and(|t| t.contains("duplicate property")), "{oo}");
        let (s, oo) = call(app, path, "application/fhir+json", unknown.clone()).await;
        assert_eq!(s, 400, "{oo}");
        assert_eq!(locations(&oo), ["/person"], "cut before the unknown key: {oo}");
        assert!(!oo.to_string().contains("Jane") && !oo.to_string().contains("Doe"), "{oo}");
    }
    // In a batch, the record with the duplicate is named by its line.
    let good = serde_json::to_string(&base()).expect("serialises");
    let (s, oo) = call(&without, "/fhir/$convert", "application/fhir+ndjson", format!("{good}\n{known}\n")).await;
    assert_eq!(s, 400, "{oo}");
    assert_eq!(oo["issue"].as_array().map(Vec::len), Some(1), "{oo}");
    assert!(oo["issue"][0]["details"]["text"].as_str().is_some_and(|t| t.starts_with("line 2")), "{oo}");
    // And in an array.
    let out = pipeline().convert_bytes(format!("[{good},{known}]").as_bytes(), None);
    assert!(out[0].result.is_ok());
    let r = out[1].result.as_ref().expect_err("refused");
    assert_eq!((r.kind, r.issues[0].input_path.as_deref()), (RejectKind::Malformed, Some("/person")));
}

#[tokio::test]
async fn a_key_twice_is_refused_by_validate() {
    let patient = r#"{"resourceType":"Patient","name":[{"family":"Doe","given":["Jane"],"family":"Roe"}]}"#;
    let (s, oo) = call(&app(None), "/fhir/$validate", "application/fhir+json", patient).await;
    assert_eq!(s, 400, "{oo}");
    assert_eq!(locations(&oo), ["/name/0"], "{oo}");
    assert!(!oo.to_string().contains("Doe") && !oo.to_string().contains("family"), "{oo}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("patient.json");
    std::fs::write(&file, patient).expect("writes");
    let (code, stdout, stderr) = mhg_cli(&["validate", file.to_str().expect("path")], b"");
    assert_eq!(code, Some(1), "{stderr}");
    let oo: Value = serde_json::from_str(stdout.lines().next().expect("an outcome")).expect("OperationOutcome");
    assert_eq!(locations(&oo), ["/name/0"], "{oo}");
    assert!(!oo.to_string().contains("Doe"), "{oo}");
}

#[test]
fn record_version_is_read_as_the_schema_reads_it() {
    let p = pipeline();
    let mut r = base();
    for v in ["1.0", "1e0", "2.000"] {
        r["recordVersion"] = serde_json::from_str(v).expect("number");
        let m = p.convert_value_at(&r, today()).unwrap_or_else(|e| panic!("{v}: {}", e.to_operation_outcome()));
        assert!(
            m.bundle["identifier"]["value"].as_str().is_some_and(|id| id.ends_with(&format!("@{}", &v[..1]))),
            "{v}"
        );
    }
    r["recordVersion"] = json!(4_294_967_295u64);
    assert!(p.convert_value_at(&r, today()).is_ok(), "the schema's maximum is held");
    for v in ["4294967296", "1e30", "1.5"] {
        r["recordVersion"] = serde_json::from_str(v).expect("number");
        let e = p.convert_value_at(&r, today()).expect_err(v);
        assert_eq!(e.kind, RejectKind::Schema, "{v}");
        assert!(e.issues.iter().all(|i| i.input_path.as_deref() == Some("/recordVersion")), "{v}: {e:?}");
    }
    // The other integers of the schema, too.
    let mut r = base();
    r["vaccinations"][0]["doseNumber"] = serde_json::from_str("1.0").expect("number");
    r["vaccinations"][0]["seriesDoses"] = serde_json::from_str("2e0").expect("number");
    assert!(p.convert_value_at(&r, today()).is_ok());
}

#[test]
fn every_integer_of_the_schema_is_bounded_by_its_rust_type() {
    // recordVersion is a u32; sequence, doseNumber and seriesDoses are u8 (maxima 9 and 20).
    let schema = read_json(&root().join("mappings/record.schema.json"));
    assert_eq!(schema["properties"]["recordVersion"]["maximum"], json!(u32::MAX));
    let mut found = Vec::new();
    fn walk(v: &Value, path: &str, out: &mut Vec<(String, Option<u64>)>) {
        match v {
            Value::Object(m) => {
                if m.get("type") == Some(&json!("integer")) {
                    out.push((path.to_owned(), m.get("maximum").and_then(Value::as_u64)));
                }
                m.iter().for_each(|(k, c)| walk(c, &format!("{path}/{k}"), out));
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, path, out)),
            _ => {}
        }
    }
    walk(&schema, "", &mut found);
    assert_eq!(found.len(), 4, "{found:?}");
    for (path, max) in found {
        let limit = if path.ends_with("recordVersion") { u64::from(u32::MAX) } else { u64::from(u8::MAX) };
        assert!(max.is_some_and(|m| m <= limit), "{path}: maximum {max:?} beyond the Rust type");
    }
}

#[tokio::test]
async fn unknown_property_names_are_not_quoted() {
    let mut r = base();
    r["person"]["Jane Doe 1980-02-03"] = json!(1);
    r["assessment"]["recordId"] = json!("x");
    r["Zyxw Canary"] = json!(true);
    let e = pipeline().convert_value_at(&r, today()).expect_err("refused");
    let oo = e.to_operation_outcome();
    assert!(!oo.to_string().contains("Jane") && !oo.to_string().contains("Zyxw"), "{oo}");
    let mut locs = locations(&oo);
    locs.sort();
    assert_eq!(locs, ["/assessment", "/person"], "{oo}");
    assert!(
        oo.to_string().contains("property 'recordId' is not allowed here"),
        "a schema name may be quoted: {oo}"
    );
    let (s, body) = call(&app(None), "/fhir/$convert", "application/json", r.to_string()).await;
    assert_eq!(s, 422);
    assert!(!body.to_string().contains("Jane"), "{body}");
}

#[tokio::test]
async fn impossible_dates_are_refused_naming_the_field() {
    let p = pipeline();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/person/birthDate", json!("2027-01-05"), "/person/birthDate"),
        ("/vaccinations/2/date", json!("1987"), "/vaccinations/2/date"),
        ("/vaccinations/0/date", json!("2027-03"), "/vaccinations/0/date"),
        ("/assessment/validUntil", json!("2026-10-01"), "/assessment/validUntil"),
        ("/assessment/examDate", json!("1988-03-13"), "/assessment/examDate"),
        ("/results/0/collected", json!("1987-01-01T10:00:00Z"), "/results/0/collected"),
    ];
    for (ptr, value, at) in cases {
        let mut r = base();
        *r.pointer_mut(ptr).expect("pointer") = value;
        let e = p.convert_value_at(&r, today()).expect_err(ptr);
        assert_eq!(e.kind, RejectKind::Implausible, "{ptr}: {e:?}");
        assert_eq!(e.http_status(), 422);
        assert!(e.issues.iter().any(|i| i.input_path.as_deref() == Some(at)), "{ptr}: {e:?}");
        assert!(e.issues.iter().all(|i| i.input_path.is_some()), "{ptr}: {e:?}");
    }
    // Over HTTP too, coded `implausible`.
    let mut r = base();
    r["person"]["birthDate"] = json!("2999");
    let (s, oo) = call(&app(None), "/fhir/$convert", "application/json", r.to_string()).await;
    assert_eq!((s, reason(&oo)), (422, "implausible"), "{oo}");
    assert_eq!(locations(&oo), ["/person/birthDate"]);
}

#[test]
fn possible_dates_are_accepted() {
    let p = pipeline();
    let cases: Vec<(&str, Value)> = vec![
        // Partial dates stand for every day they could be.
        ("/vaccinations/2/date", json!("1988-03")),
        ("/person/birthDate", json!("2026")),
        // A day ahead is a time zone, not the future.
        ("/vaccinations/0/date", json!("2026-12-02")),
        // Unlikely is not impossible (no warnings channel: accepted as is).
        ("/person/birthDate", json!("1900")),
        ("/assessment/examDate", json!("2027-03-01")),
        ("/assessment/validUntil", json!("2026-10-02")),
    ];
    for (ptr, value) in cases {
        let mut r = base();
        *r.pointer_mut(ptr).expect("pointer") = value.clone();
        if ptr == "/person/birthDate" && value == "2026" {
            // Born in 2026: nothing before it can have happened to the person.
            r["vaccinations"][2]["date"] = json!("2026-10-01");
        }
        if let Err(e) = p.convert_value_at(&r, today()) {
            panic!("{ptr} = {value}: {}", e.to_operation_outcome());
        }
    }
    // An estimated birth date is not compared with the other dates.
    let mut r = base();
    r["person"]["birthDateEstimated"] = json!(true);
    r["person"]["birthDate"] = json!("1990");
    assert!(p.convert_value_at(&r, today()).is_ok());
}

#[test]
fn every_golden_fixture_is_plausible_today() {
    let p = pipeline();
    for f in fixtures() {
        let r = read_json(&f);
        if let Err(e) = p.convert_value_at(&r, today()) {
            panic!("{}: {}", f.display(), e.to_operation_outcome());
        }
    }
}

#[test]
fn numbers_keep_their_text_or_are_refused() {
    let p = pipeline();
    let text = serde_json::to_string(&base()).expect("serialises");
    assert!(text.contains("\"quantity\":61.5,"), "the fixture's weight");
    for kept in ["-0", "-0.0", "61.500"] {
        let rec: Value = serde_json::from_str(&text.replacen("\"quantity\":61.5,", &format!("\"quantity\":{kept},"), 1)).expect("json");
        let m = p.convert_value_at(&rec, today()).unwrap_or_else(|e| panic!("{kept}: {}", e.to_operation_outcome()));
        let out = m.bundle.to_string();
        assert!(out.contains(&format!("\"value\":{kept},")), "{kept} reaches the Bundle as written");
    }
    for refused in ["1e400", "-1E+400", "1e-400"] {
        let rec: Value = serde_json::from_str(&text.replacen("\"quantity\":61.5,", &format!("\"quantity\":{refused},"), 1)).expect("json");
        let e = p.convert_value_at(&rec, today()).expect_err(refused);
        assert_eq!(e.http_status(), 422, "{refused}");
        assert_eq!(
            e.issues.iter().map(|i| i.input_path.as_deref()).collect::<Vec<_>>(),
            [Some("/results/1/value/quantity")],
            "{refused}"
        );
    }
}

/// What is possible but unlikely is accepted with a warning that names the field: in the 202 of
/// `POST /records` (an OperationOutcome of severity warning), as a count header on `$convert`,
/// and on stderr from `mhg convert` (exit 0, the Bundle written).
#[tokio::test]
async fn unlikely_values_are_accepted_with_a_warning_naming_the_field() {
    let mut r = base();
    r["person"]["birthDate"] = json!("1899-01-01");
    r["person"].as_object_mut().expect("person").remove("birthDateEstimated");
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app_with_store(&dir).await;
    let (s, body) = call(&app, "/records", "application/json", r.to_string()).await;
    assert_eq!(s, 202, "{body}");
    let w = &body["warnings"];
    assert_eq!(w["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(w["issue"][0]["severity"], "warning");
    assert_eq!(locations(w), ["/person/birthDate"]);
    assert_eq!(reason(w), "unlikely");
    assert!(!w.to_string().contains("1899"), "no record values: {w}");
    // A record with nothing unlikely has no warnings.
    let mut plain = base();
    plain["recordId"] = json!("HOSTILE-PLAIN-1");
    let (s, plain) = call(&app, "/records", "application/json", plain.to_string()).await;
    assert_eq!(s, 202, "{plain}");
    assert!(plain.get("warnings").is_none(), "{plain}");

    let req = Request::post("/fhir/$convert").header("content-type", "application/json").body(Body::from(r.to_string())).expect("request");
    let resp = app.clone().oneshot(req).await.expect("answers");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers().get("x-mhg-warnings").and_then(|v| v.to_str().ok()), Some("1"));

    let (code, stdout, stderr) = mhg_cli(&["convert", "-"], r.to_string().as_bytes());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"Bundle\""));
    let oo: Value = serde_json::from_str(stderr.lines().next().expect("a warning line")).expect("an OperationOutcome");
    assert_eq!(oo["issue"][0]["severity"], "warning");
    assert_eq!(locations(&oo), ["/person/birthDate"]);
}
