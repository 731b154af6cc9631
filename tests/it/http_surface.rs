//! The HTTP surface (issue 11): clients that would starve the gateway (silent, slow-header and
//! idle connections, more connections than the cap) against the real accept loop on loopback;
//! every error an OperationOutcome (405 with `Allow`, unreadable path or query parameters, 415
//! on every POST route); the OpenAPI document served and true to the router.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use crate::common::*;
use mhg::http::serve::{ConnLimits, connection_cap};
use mhg::http::{AppState, Guard, router};

fn app(guard: Arc<Guard>) -> axum::Router {
    router(AppState { pipeline: pipeline(), max_body_bytes: 1024 * 1024, max_records: 100, relay: None, guard })
}

/// The gateway's accept loop on `127.0.0.1:0` with these limits; its address.
async fn start(limits: ConnLimits) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(mhg::http::serve::serve(
        listener,
        None,
        app(Arc::new(Guard::open())),
        limits,
        std::future::pending(),
    ));
    addr
}

fn limits(header_secs: u64, idle_secs: u64, max_connections: usize) -> ConnLimits {
    ConnLimits { header_read_timeout: Duration::from_secs(header_secs), idle_timeout: Duration::from_secs(idle_secs), max_connections }
}

/// Sends `GET /health` on a kept-alive connection and reads its answer; the status line.
async fn health_on(s: &mut TcpStream) -> String {
    s.write_all(b"GET /health HTTP/1.1\r\nhost: gw\r\n\r\n").await.expect("write");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\"ok\"") {
        let n = tokio::time::timeout(Duration::from_secs(20), s.read(&mut buf)).await.expect("answer in time").expect("read");
        assert!(n > 0, "closed before answering: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).lines().next().unwrap_or_default().to_owned()
}

/// `/health` on a new connection, as a prober asks it.
async fn probe(addr: std::net::SocketAddr) -> u16 {
    let r = anonymous_http().get(format!("http://{addr}/health")).timeout(Duration::from_secs(20)).send().await;
    r.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Whether the server closed `s` (EOF or reset), looking for at most `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn silent_and_slow_header_connections_are_closed_and_health_keeps_answering() {
    // Header timeout 1 s, idle timeout 4 s: generous bounds below are 10× these.
    let addr = start(limits(1, 4, 1000)).await;
    let started = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..100 {
        silent.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // Slow headers: a byte every 200 ms, for ever, as a slowloris client sends them.
    let mut slow = Vec::new();
    for i in 0..100 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET /health HTTP/1.1\r\nhost: gw\r\nx-slow-{i}: ").as_bytes()).await.expect("write");
        slow.push(tokio::spawn(async move {
            let begun = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if s.write_all(b"a").await.is_err() || closed_within(&mut s, Duration::from_millis(1)).await {
                    return begun.elapsed();
                }
                if begun.elapsed() > Duration::from_secs(10) {
                    return begun.elapsed();
                }
            }
        }));
    }
    // Kept alive after one request, then idle.
    let mut idle = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        assert!(health_on(&mut s).await.contains("200"));
        idle.push(s);
    }
    // 210 connections held: a new client is still answered.
    assert_eq!(probe(addr).await, 200, "/health answers while 210 connections are held");

    for (i, s) in silent.iter_mut().enumerate() {
        let left = Duration::from_secs(10).saturating_sub(started.elapsed());
        assert!(closed_within(s, left).await, "silent connection {i} still open after 10 s (header timeout 1 s)");
    }
    for (i, t) in slow.into_iter().enumerate() {
        let took = t.await.expect("slow client");
        assert!(
            took < Duration::from_secs(10),
            "slow-header connection {i} still open after {took:?} (header timeout 1 s)"
        );
    }
    // The kept-alive ones are closed after the idle timeout (that they outlive the header
    // timeout is the next test's).
    let idle_since = Instant::now();
    for (i, s) in idle.iter_mut().enumerate() {
        let left = Duration::from_secs(40).saturating_sub(idle_since.elapsed());
        assert!(closed_within(s, left).await, "idle connection {i} still open after 40 s (idle timeout 4 s)");
    }
    assert_eq!(probe(addr).await, 200);
}

#[tokio::test]
async fn a_kept_alive_connection_lives_past_the_header_timeout_until_idle() {
    let addr = start(limits(1, 30, 100)).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert!(health_on(&mut s).await.contains("200"));
    // Three header timeouts later, idle between requests, it still serves.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        health_on(&mut s).await.contains("200"),
        "an idle keep-alive connection is not subject to the header timeout"
    );
}

#[tokio::test]
async fn above_the_connection_cap_new_connections_are_refused_and_open_ones_keep_answering() {
    let addr = start(limits(30, 30, 20)).await;
    let mut held = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        assert!(health_on(&mut s).await.contains("200"));
        held.push(s);
    }
    // The 21st is closed at once, with a 503 OperationOutcome when it can be written.
    let mut extra = TcpStream::connect(addr).await.expect("the kernel still accepts");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), extra.read_to_end(&mut got)).await.expect("closed at once");
    let text = String::from_utf8_lossy(&got);
    assert!(text.is_empty() || (text.starts_with("HTTP/1.1 503") && text.contains("OperationOutcome")), "{text}");
    // The connections already open are served.
    assert!(health_on(&mut held[0]).await.contains("200"), "an open connection answers at the cap");
    // Closing some frees their slots for new clients.
    held.truncate(15);
    let deadline = Instant::now() + Duration::from_secs(10);
    while probe(addr).await != 200 {
        assert!(Instant::now() < deadline, "slots freed by closed connections are reused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_connection_cap_stays_below_the_open_file_limit() {
    assert_eq!(connection_cap(4096, Some(1024)), 768, "a quarter of 1024 kept free");
    assert_eq!(connection_cap(4096, Some(20_000)), 4096, "the configured cap when it fits");
    assert_eq!(connection_cap(10, Some(64)), 10);
    assert_eq!(connection_cap(0, Some(1_048_576)), 1_048_576 - 256, "0: only the open-file limit");
    assert_eq!(connection_cap(4096, None), 4096, "no limit readable: the configured cap");
    assert!(mhg::http::serve::open_file_limit().is_some_and(|n| n > 0), "read from /proc/self/limits");
}

#[test]
fn connection_limits_are_configured_under_limits_and_the_environment() {
    let d = mhg::config::Config::load_from(None, &Default::default()).expect("defaults");
    assert_eq!(
        (d.limits.header_read_timeout_secs, d.limits.idle_timeout_secs, d.limits.max_connections),
        (10, 60, 4096)
    );
    let env = [("MHG_LIMITS_HEADER_READ_TIMEOUT_SECS", "3"), ("MHG_LIMITS_IDLE_TIMEOUT_SECS", "7"), ("MHG_LIMITS_MAX_CONNECTIONS", "99")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let c = mhg::config::Config::load_from(None, &env).expect("env");
    assert_eq!(
        (c.limits.header_read_timeout_secs, c.limits.idle_timeout_secs, c.limits.max_connections),
        (3, 7, 99)
    );
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("mhg.toml");
    std::fs::write(&file, "[limits]\nidle_timeout = 5\n").expect("write");
    let e = mhg::config::Config::load_from(Some(&file), &Default::default()).expect_err("unknown key").to_string();
    assert!(e.contains("idle_timeout") && e.contains("mhg.toml"), "{e}");
}

async fn call(req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = app(test_guard()).oneshot(req).await.expect("answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn admin(method: &str, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri).header("x-api-key", TEST_ADMIN_KEY)
}

fn assert_outcome(what: &str, headers: &axum::http::HeaderMap, body: &Value, reason: &str) {
    assert_eq!(headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/fhir+json"), "{what}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{what}: {body}");
    assert_eq!(body["issue"][0]["details"]["coding"][0]["code"], reason, "{what}: {body}");
}

#[tokio::test]
async fn a_method_a_route_does_not_take_is_405_with_allow() {
    for (method, uri, allow) in
        [("GET", "/fhir/$convert", "POST"), ("DELETE", "/records", "POST"), ("POST", "/health", "GET"), ("PUT", "/submissions/x", "GET")]
    {
        let (s, h, body) = call(admin(method, uri).body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}: {body}");
        assert_outcome(uri, &h, &body, "method-not-allowed");
        let got = h.get("allow").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(got.contains(allow), "{method} {uri}: Allow: {got}");
    }
    // Anonymous callers learn nothing about routes: 401 first.
    let (s, _, _) = call(Request::delete("/records").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn unreadable_path_and_query_parameters_are_operation_outcomes() {
    for uri in ["/submissions?limit=many", "/submissions?limit=99999999999999999999999", "/submissions/%FF%FE", "/submissions/%FF/audit"] {
        let (s, h, body) = call(admin("GET", uri).body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_outcome(uri, &h, &body, "malformed");
        let text = body.to_string();
        assert!(!text.contains("many") && !text.contains("99999"), "nothing of the request is quoted: {text}");
    }
}

#[tokio::test]
async fn every_post_route_refuses_a_content_type_it_does_not_read() {
    let patient = r#"{"resourceType":"Patient"}"#;
    for uri in ["/fhir/$convert", "/records", "/fhir/$validate", "/fhir/Patient/$validate"] {
        for ct in ["application/xml", "application/fhir+xml", "multipart/form-data; boundary=x"] {
            let (s, h, body) = call(admin("POST", uri).header("content-type", ct).body(Body::from(patient)).unwrap()).await;
            assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{uri} {ct}: {body}");
            assert_outcome(uri, &h, &body, "unsupported-media");
        }
    }
    // $validate reads one JSON resource: not NDJSON nor text.
    for ct in ["text/plain", "application/x-ndjson"] {
        let (s, _, body) = call(admin("POST", "/fhir/$validate").header("content-type", ct).body(Body::from(patient)).unwrap()).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "$validate {ct}: {body}");
    }
    for ct in ["application/fhir+json", "application/json; charset=utf-8", "application/fhir+json;fhirVersion=4.0"] {
        let (s, _, body) =
            call(admin("POST", "/fhir/Patient/$validate").header("content-type", ct).body(Body::from(patient)).unwrap()).await;
        assert_eq!(s, StatusCode::OK, "$validate {ct}: {body}");
    }
}

/// Each method and path of the OpenAPI document, as the router answers it.
fn documented() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(mhg::http::OPENAPI).expect("the document is JSON");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.push((method.to_uppercase(), path.replace("{type}", "Patient").replace("{id}", "no-such-id")));
        }
    }
    out
}

#[tokio::test]
async fn the_openapi_document_is_served_publicly_and_true_to_the_router() {
    let resp = app(test_guard()).oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "no credentials needed");
    let served: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(served, read_json(&root().join("conformance/openapi.json")), "served as kept in the repository");
    assert_eq!(served["openapi"], "3.0.3");
    let routes = documented();
    for want in [
        "POST /fhir/$convert",
        "POST /fhir/$validate",
        "POST /fhir/Patient/$validate",
        "POST /records",
        "GET /submissions",
        "GET /submissions/no-such-id",
        "GET /submissions/no-such-id/audit",
        "POST /submissions/no-such-id/$replay",
        "GET /health",
        "GET /ready",
        "GET /metrics",
        "GET /fhir/metadata",
        "GET /openapi.json",
    ] {
        assert!(routes.iter().any(|(m, p)| format!("{m} {p}") == want), "{want} is documented");
    }
    // Every documented operation exists: neither 405 nor the router's 404.
    for (method, path) in routes {
        let (s, _, body) = call(admin(&method, &path).header("content-type", "application/json").body(Body::from("{}")).unwrap()).await;
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(body["issue"][0]["details"]["text"], "no such route", "{method} {path}");
    }
}
