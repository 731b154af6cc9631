//! The HTTP interface, in-process (`oneshot`) and over a real socket.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::common::*;
use mhg::http::{AppState, router};

fn app() -> axum::Router {
    router(AppState {
        pipeline: pipeline(),
        max_body_bytes: 1024 * 1024,
        max_records: 100,
        relay: None,
        guard: std::sync::Arc::new(mhg::http::Guard::open()),
    })
}

async fn call(req: Request<Body>) -> (StatusCode, String, String) {
    let resp = app().oneshot(req).await.expect("answers");
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, ct, String::from_utf8_lossy(&body).into_owned())
}

fn post(body: impl Into<Body>, ct: &str) -> Request<Body> {
    Request::post("/fhir/$convert").header("content-type", ct).body(body.into()).expect("request")
}

fn record_text(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/golden/records").join(name)).expect("fixture")
}

#[tokio::test]
async fn convert_one_record() {
    let (s, ct, body) = call(post(record_text("30-shared-adult-refugee-clear.json"), "application/json")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "application/fhir+json");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["resourceType"], "Bundle");
    assert_eq!(v["type"], "transaction");
}

#[tokio::test]
async fn convert_ndjson_batch() {
    let lines: Vec<String> = ["30-shared-adult-refugee-clear.json", "31-shared-child-tb-class-b1.json", "32-shared-labour-minimal.json"]
        .iter()
        .map(|n| serde_json::to_string(&serde_json::from_str::<Value>(&record_text(n)).unwrap()).unwrap())
        .collect();
    let (s, ct, body) = call(post(lines.join("\n"), "application/fhir+ndjson")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ct, "application/fhir+ndjson");
    let bundles: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).expect("bundle line")).collect();
    assert_eq!(bundles.len(), 3);
    assert!(bundles.iter().all(|b| b["resourceType"] == "Bundle"));
}

#[tokio::test]
async fn batch_with_one_bad_line_is_refused_naming_the_line() {
    let good = serde_json::to_string(&serde_json::from_str::<Value>(&record_text("32-shared-labour-minimal.json")).unwrap()).unwrap();
    let bad = good.replace(r#""sex":"M""#, r#""sex":"Q""#);
    let (s, _, body) = call(post(format!("{good}\n{bad}\n"), "application/x-ndjson")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let oo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["location"][0], "/person/sex");
    assert!(oo["issue"][0]["details"]["text"].as_str().unwrap().starts_with("line 2"));
}

#[tokio::test]
async fn bad_inputs_get_4xx_operation_outcomes() {
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (post("{not json", "application/json"), StatusCode::BAD_REQUEST),
        (post("", "application/json"), StatusCode::BAD_REQUEST),
        (post(deep, "application/json"), StatusCode::BAD_REQUEST),
        (post(r#"{"schemaVersion":"1.0"}"#, "application/json"), StatusCode::UNPROCESSABLE_ENTITY),
        (post("[1,2,3]", "application/json"), StatusCode::UNPROCESSABLE_ENTITY),
        (post(vec![b'{'; 2 * 1024 * 1024], "application/json"), StatusCode::PAYLOAD_TOO_LARGE),
        (post("<Patient/>", "application/fhir+xml"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (post("{\"a\":1}\n".repeat(150), "application/x-ndjson"), StatusCode::PAYLOAD_TOO_LARGE),
        (Request::get("/nowhere").body(Body::empty()).unwrap(), StatusCode::NOT_FOUND),
    ];
    for (req, want) in cases {
        let uri = req.uri().clone();
        let (s, ct, body) = call(req).await;
        assert_eq!(s, want, "{uri}: {body}");
        assert_eq!(ct, "application/fhir+json");
        let v: Value = serde_json::from_str(&body).expect("OperationOutcome JSON");
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert!(v["issue"][0]["details"]["text"].is_string());
    }
}

#[tokio::test]
async fn schema_errors_name_the_input_path() {
    let mut rec: Value = serde_json::from_str(&record_text("30-shared-adult-refugee-clear.json")).unwrap();
    rec["vaccinations"][1]["vaccine"] = "smallpox".into();
    rec["results"][0]["value"] = serde_json::json!({"quantity": "163", "unit": "cm"});
    rec["person"]["birthDate"] = "2026-02-31".into();
    let (s, _, body) = call(post(rec.to_string(), "application/fhir+json")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let oo: Value = serde_json::from_str(&body).unwrap();
    let locations: Vec<&str> = oo["issue"].as_array().unwrap().iter().filter_map(|i| i["location"][0].as_str()).collect();
    assert!(locations.contains(&"/vaccinations/1/vaccine"), "{locations:?}");
    assert!(locations.contains(&"/results/0/value/quantity"), "{locations:?}");
}

#[tokio::test]
async fn calendar_errors_name_the_input_path() {
    let mut rec: Value = serde_json::from_str(&record_text("30-shared-adult-refugee-clear.json")).unwrap();
    rec["person"]["birthDate"] = "2026-02-31".into();
    let (s, _, body) = call(post(rec.to_string(), "application/json")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("/person/birthDate"), "{body}");
}

#[tokio::test]
async fn health() {
    let (s, _, body) = call(Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("ok"));
}

/// The real server, on a real socket, as `mhg serve` runs it.
#[tokio::test]
async fn real_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app()).await });
    let client = http();
    let resp = client
        .post(format!("http://{addr}/fhir/$convert"))
        .header("content-type", "application/fhir+json")
        .body(record_text("31-shared-child-tb-class-b1.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["resourceType"], "Bundle");
    server.abort();
}
