//! `mhg validate` on NDJSON and `POST /fhir/$validate` with `application/fhir+ndjson`: one
//! OperationOutcome per non-blank line, naming the file (command line) and, in each issue, the
//! line (`operationoutcome-issue-line`); and `$validate`'s `mode` parameter.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::*;
use mhg::http::{AppState, router};

const LINE: &str = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line";

fn ndjson() -> String {
    [
        json!({"resourceType": "Patient", "gender": "female"}).to_string(),
        String::new(),
        json!({"resourceType": "Patient", "gender": "x"}).to_string(),
        "not json".to_owned(),
    ]
    .join("\n")
        + "\n"
}

fn has_error(oo: &Value) -> bool {
    oo["issue"].as_array().unwrap().iter().any(|i| i["severity"] == "error")
}

/// The line every issue of an outcome names (they agree).
fn line_of(oo: &Value) -> i64 {
    let lines: Vec<i64> = oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["extension"].as_array().unwrap().iter().find(|e| e["url"] == LINE).unwrap()["valueInteger"].as_i64().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] == w[1]), "{oo}");
    lines[0]
}

#[test]
fn the_command_validates_each_line_of_an_ndjson_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("patients.ndjson");
    std::fs::write(&file, ndjson()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mhg"))
        .current_dir(root())
        .args(["validate", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let outcomes: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(outcomes.len(), 3, "a blank line is skipped: {outcomes:#?}");
    assert!(outcomes.iter().all(|o| o["extension"][0]["valueString"] == file.to_str().unwrap()));
    assert_eq!(outcomes.iter().map(line_of).collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(outcomes.iter().map(has_error).collect::<Vec<_>>(), [false, true, true]);
    // --ndjson reads any file so; --mode update needs ids.
    let plain = dir.path().join("one.txt");
    std::fs::write(&plain, json!({"resourceType": "Patient"}).to_string()).unwrap();
    let run = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_mhg")).current_dir(root()).args(args).output().unwrap();
    let out = run(&["validate", "--ndjson", plain.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(run(&["validate", "--mode", "update", plain.to_str().unwrap()]).status.code(), Some(1));
}

async fn post(uri: &str, ct: &str, body: String) -> (StatusCode, String, String) {
    let app = router(AppState { pipeline: pipeline(), max_body_bytes: 64 * 1024, max_records: 100, relay: None, guard: test_guard() });
    let req = Request::post(uri).header("content-type", ct).header("x-api-key", TEST_ADMIN_KEY).body(Body::from(body)).unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let s = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (s, ct, String::from_utf8_lossy(&b).into_owned())
}

#[tokio::test]
async fn the_route_answers_ndjson_with_one_outcome_a_line() {
    let (s, ct, body) = post("/fhir/$validate", "application/fhir+ndjson", ndjson()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(ct, "application/fhir+ndjson");
    let outcomes: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(outcomes.iter().map(line_of).collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(outcomes.iter().map(has_error).collect::<Vec<_>>(), [false, true, true]);
    let (s, _, _) = post("/fhir/$validate?profile=http://example.org/none", "application/fhir+ndjson", ndjson()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn validate_takes_mode_as_the_operation_defines_it() {
    let patient = json!({"resourceType": "Patient", "gender": "female"});
    let oo = |b: &str| serde_json::from_str::<Value>(b).unwrap();
    let (s, _, b) = post("/fhir/$validate?mode=update", "application/fhir+json", patient.to_string()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(has_error(&oo(&b)), "update needs an id: {b}");
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient}, {"name": "mode", "valueCode": "create"}]});
    let (_, _, b) = post("/fhir/$validate", "application/fhir+json", params.to_string()).await;
    assert!(!has_error(&oo(&b)), "{b}");
    let delete = json!({"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]});
    let (s, _, b) = post("/fhir/Patient/$validate", "application/fhir+json", delete.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        post("/fhir/$validate?mode=patch", "application/fhir+json", patient.to_string()).await.0,
        StatusCode::BAD_REQUEST
    );
}
