//! The terminology operations the gateway serves over what it has loaded: `$lookup`,
//! `$validate-code` (CodeSystem and ValueSet), `$expand` (filter, count, offset) and
//! `ConceptMap/$translate` over its own mappings, with Parameters in and out.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::*;
use mhg::http::{AppState, router};

async fn call(method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let app = router(AppState { pipeline: pipeline(), max_body_bytes: 64 * 1024, max_records: 100, relay: None, guard: test_guard() });
    let b = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/fhir+json")
        .header("x-api-key", TEST_ADMIN_KEY)
        .body(b)
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let s = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (s, serde_json::from_slice(&bytes).unwrap())
}

fn param<'a>(p: &'a Value, name: &str) -> Option<&'a Value> {
    p["parameter"].as_array()?.iter().find(|x| x["name"] == name)
}

const GENDER: &str = "http://hl7.org/fhir/administrative-gender";
const GENDER_VS: &str = "http://hl7.org/fhir/ValueSet/administrative-gender";

#[tokio::test]
async fn lookup_and_validate_code_answer_from_loaded_code_systems() {
    let (s, p) = call("GET", &format!("/fhir/CodeSystem/$lookup?system={GENDER}&code=female"), None).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(param(&p, "display").unwrap()["valueString"], "Female", "{p}");
    assert!(param(&p, "name").is_some());
    assert_eq!(
        call("GET", &format!("/fhir/CodeSystem/$lookup?system={GENDER}&code=nope"), None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(call("GET", "/fhir/CodeSystem/$lookup?code=female", None).await.0, StatusCode::BAD_REQUEST);
    // POST Parameters, a wrong display: false, naming the valid one.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": GENDER}, {"name": "code", "valueCode": "female"}, {"name": "display", "valueString": "Woman"}]});
    let (s, p) = call("POST", "/fhir/CodeSystem/$validate-code", Some(body)).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(param(&p, "result").unwrap()["valueBoolean"], false, "{p}");
    assert_eq!(param(&p, "display").unwrap()["valueString"], "Female");
    let coding = json!({"resourceType": "Parameters", "parameter": [
        {"name": "url", "valueUri": GENDER_VS}, {"name": "coding", "valueCoding": {"system": GENDER, "code": "other"}}]});
    let (_, p) = call("POST", "/fhir/ValueSet/$validate-code", Some(coding)).await;
    assert_eq!(param(&p, "result").unwrap()["valueBoolean"], true, "{p}");
    let (_, p) = call("GET", &format!("/fhir/ValueSet/$validate-code?url={GENDER_VS}&system={GENDER}&code=x"), None).await;
    assert_eq!(param(&p, "result").unwrap()["valueBoolean"], false, "{p}");
}

#[tokio::test]
async fn expand_filters_counts_and_pages() {
    let (s, vs) = call("GET", &format!("/fhir/ValueSet/$expand?url={GENDER_VS}"), None).await;
    assert_eq!(s, StatusCode::OK, "{vs}");
    assert_eq!(vs["expansion"]["total"], 4, "{vs}");
    assert!(vs["expansion"]["timestamp"].is_string());
    let (_, vs) = call("GET", &format!("/fhir/ValueSet/$expand?url={GENDER_VS}&filter=MAL"), None).await;
    let codes: Vec<&str> = vs["expansion"]["contains"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["female", "male"], "{vs}");
    let (_, vs) = call("GET", &format!("/fhir/ValueSet/$expand?url={GENDER_VS}&count=1&offset=1"), None).await;
    assert_eq!(vs["expansion"]["contains"].as_array().unwrap().len(), 1);
    assert_eq!(vs["expansion"]["offset"], 1);
    assert_eq!(
        call("GET", &format!("/fhir/ValueSet/$expand?url={GENDER_VS}&count=x"), None).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call("GET", "/fhir/ValueSet/$expand?url=http://example.org/none", None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn translate_says_what_the_gateway_sends() {
    let url = "https://w3id.org/mhg/fhir/ConceptMap/body-site";
    let (s, p) = call("GET", &format!("/fhir/ConceptMap/$translate?url={url}&code=left-arm"), None).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(param(&p, "result").unwrap()["valueBoolean"], true, "{p}");
    let m = param(&p, "match").unwrap();
    assert_eq!(m["part"][1]["valueCoding"]["code"], "LA", "{p}");
    let (_, p) = call("GET", &format!("/fhir/ConceptMap/$translate?url={url}&code=no-such-site"), None).await;
    assert_eq!(param(&p, "result").unwrap()["valueBoolean"], false);
    assert_eq!(
        call("GET", "/fhir/ConceptMap/$translate?url=http://example.org/cm&code=x", None).await.0,
        StatusCode::NOT_FOUND
    );
}
