//! The durable relay, end to end: accept over HTTP, store (SQLite and PostgreSQL), deliver.
//! Faults with exact timing come from a small in-process fake destination; delivery itself is
//! proven against the real FHIR server (and, for a crash, with the real binary killed -9).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::common::*;
use crate::support::{Gateway, Hfs, directory_destination, fhir_destination, postgres_url, search_count, sqlite_url};

// ---------- records ----------

pub fn record(record_id: &str, person_id: &str, version: u32) -> Value {
    let mut r = read_json(&root().join("tests/golden/records/32-shared-labour-minimal.json"));
    r["recordId"] = json!(record_id);
    r["recordVersion"] = json!(version);
    r["person"]["personId"] = json!(person_id);
    r["assessment"]["assessmentId"] = json!(format!("A-{record_id}"));
    r
}

fn ndjson(records: &[Value]) -> String {
    records.iter().map(|r| r.to_string() + "\n").collect()
}

pub async fn post_records(client: &reqwest::Client, base: &str, body: String) -> (u16, Value) {
    let r = client.post(format!("{base}/records")).header("content-type", "application/x-ndjson").body(body).send().await.expect("sent");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn ids(resp: &Value) -> Vec<String> {
    match resp.get("submissions") {
        Some(s) => s.as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()).collect(),
        None => vec![resp["id"].as_str().unwrap().to_owned()],
    }
}

pub async fn status(client: &reqwest::Client, base: &str, id: &str) -> Value {
    client.get(format!("{base}/submissions/{id}")).send().await.unwrap().json().await.unwrap()
}

pub async fn wait_state(client: &reqwest::Client, base: &str, id: &str, state: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = status(client, base, id).await;
        if s["state"] == state {
            return s;
        }
        assert!(Instant::now() < deadline, "submission never reached {state}: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------- a fake destination with exact fault timing ----------

#[derive(Clone, Default)]
pub(crate) struct Fake {
    /// (Bundle identifier `recordId@version`, when it arrived)
    arrivals: Arc<Mutex<Vec<(String, Instant)>>>,
    /// Answers to give, in order; then 200.
    plan: Arc<Mutex<VecDeque<u16>>>,
}

impl Fake {
    pub(crate) async fn start(plan: &[u16]) -> (Fake, String) {
        let fake = Fake::default();
        fake.plan.lock().unwrap().extend(plan.iter().copied());
        let f = fake.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: String| {
                let f = f.clone();
                async move {
                    let b: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let ident = b["identifier"]["value"].as_str().unwrap_or("?").to_owned();
                    f.arrivals.lock().unwrap().push((ident, Instant::now()));
                    let code = f.plan.lock().unwrap().pop_front().unwrap_or(200);
                    let status = StatusCode::from_u16(code).unwrap();
                    match code {
                        200 => (
                            status,
                            [("retry-after", "0")],
                            json!({"resourceType": "Bundle", "type": "transaction-response",
                            "entry": [{"response": {"status": "201 Created", "location": "Patient/1/_history/1"}}]})
                            .to_string(),
                        )
                            .into_response(),
                        503 => (status, [("retry-after", "1")], "{}".to_owned()).into_response(),
                        _ => (
                            status,
                            [("retry-after", "0")],
                            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error",
                            "code": "processing", "details": {"text": "rejected by the fake for the test"}}]})
                            .to_string(),
                        )
                            .into_response(),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (fake, base)
    }

    pub(crate) fn arrivals(&self) -> Vec<(String, Instant)> {
        self.arrivals.lock().unwrap().clone()
    }
}

// ---------- the tests, on both stores ----------

async fn accepts_durably_and_resends_are_idempotent(store_url: String) {
    let out = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&store_url, vec![directory_destination("clinic-files", out.path())]).await;
    let client = http();
    let records: Vec<Value> = (0..5).map(|i| record(&format!("D-{i}"), &format!("DP-{i}"), 1)).collect();
    let (s, first) = post_records(&client, &gw.base, ndjson(&records)).await;
    assert_eq!(s, 202, "{first}");
    let first_ids = ids(&first);
    assert_eq!(first_ids.len(), 5);
    for id in &first_ids {
        let st = wait_state(&client, &gw.base, id, "delivered", 20).await;
        assert_eq!(st["deliveries"][0]["destination"], "clinic-files");
    }
    // The same records again: the first submissions come back, nothing new is stored or sent.
    let (s, again) = post_records(&client, &gw.base, ndjson(&records)).await;
    assert_eq!(s, 202);
    assert_eq!(ids(&again), first_ids);
    assert!(again["submissions"].as_array().unwrap().iter().all(|x| x["duplicate"] == true));
    let files: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert_eq!(files.len(), 5);
    // An explicit Idempotency-Key returns the first submission for the same record, and is a
    // conflict (409) when the same client reuses it for another record (issue 11).
    let one = record("D-key", "DP-key", 1).to_string();
    let send = |body: String| {
        client
            .post(format!("{}/records", gw.base))
            .header("idempotency-key", "client-42")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let a: Value = send(one.clone()).await.unwrap().json().await.unwrap();
    let again: Value = send(one.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(a["id"], again["id"]);
    assert_eq!(again["duplicate"], true);
    let other = send(record("D-key-other", "DP-key", 1).to_string()).await.unwrap();
    assert_eq!(other.status().as_u16(), 409);
    // Invalid input stores nothing.
    let mut bad = record("D-bad", "DP-bad", 1);
    bad["person"]["sex"] = json!("Q");
    let (s, oo) = post_records(&client, &gw.base, ndjson(&[record("D-ok", "DP-ok", 1), bad])).await;
    assert_eq!(s, 422, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let listed: Value = client.get(format!("{}/submissions?limit=1000", gw.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        listed["submissions"].as_array().unwrap().len(),
        6,
        "5 records + the keyed one; nothing of the refused batch"
    );
    gw.stop().await;
}

async fn retry_after_is_honoured(store_url: String) {
    let (fake, fake_url) = Fake::start(&[503]).await;
    let gw = Gateway::start(&store_url, vec![fhir_destination("moh", &fake_url)]).await;
    let client = http();
    let (s, r) = post_records(&client, &gw.base, record("RA-1", "RAP-1", 1).to_string()).await;
    assert_eq!(s, 202, "{r}");
    let st = wait_state(&client, &gw.base, &ids(&r)[0], "delivered", 20).await;
    assert_eq!(st["deliveries"][0]["attempts"], 2);
    let a = fake.arrivals();
    assert_eq!(a.len(), 2);
    assert!(a[1].1 - a[0].1 >= Duration::from_millis(950), "Retry-After: 1 was honoured ({:?})", a[1].1 - a[0].1);
    gw.stop().await;
}

async fn dead_letter_keeps_the_outcome_and_replays(store_url: String) {
    let (fake, fake_url) = Fake::start(&[422]).await;
    let gw = Gateway::start(&store_url, vec![fhir_destination("moh", &fake_url)]).await;
    let client = http();
    let (_, r) = post_records(&client, &gw.base, record("DL-1", "DLP-1", 1).to_string()).await;
    let id = ids(&r)[0].clone();
    let st = wait_state(&client, &gw.base, &id, "dead-letter", 20).await;
    assert_eq!(st["deliveries"][0]["lastStatus"], 422);
    assert_eq!(st["deliveries"][0]["outcome"]["resourceType"], "OperationOutcome");
    let dead: Value = client.get(format!("{}/submissions?state=dead-letter", gw.base)).send().await.unwrap().json().await.unwrap();
    assert!(dead["submissions"].as_array().unwrap().iter().any(|s| s["id"] == id.as_str()));
    // The destination is fixed (the fake answers 200 from now on): replay.
    let rep: Value = client.post(format!("{}/submissions/{id}/$replay", gw.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(rep["replayed"], 1);
    wait_state(&client, &gw.base, &id, "delivered", 20).await;
    assert_eq!(fake.arrivals().len(), 2);
    let audit: Value = client.get(format!("{}/submissions/{id}/audit", gw.base)).send().await.unwrap().json().await.unwrap();
    let events: Vec<&str> = audit["audit"].as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(events, vec!["accepted", "attempt", "dead-letter", "replayed", "attempt", "delivered"]);
    gw.stop().await;
}

async fn a_persons_records_arrive_in_version_order(store_url: String) {
    // Version 1 fails once (503, retry after 1 s): versions 2 and 3 must wait for it.
    let (fake, fake_url) = Fake::start(&[503]).await;
    let gw = Gateway::start(&store_url, vec![fhir_destination("moh", &fake_url)]).await;
    let client = http();
    let recs: Vec<Value> = (1..=3).map(|v| record("ORD-1", "ORDP-1", v)).collect();
    let (s, r) = post_records(&client, &gw.base, ndjson(&recs)).await;
    assert_eq!(s, 202, "{r}");
    for id in ids(&r) {
        wait_state(&client, &gw.base, &id, "delivered", 30).await;
    }
    let order: Vec<String> = fake.arrivals().into_iter().map(|a| a.0).collect();
    assert_eq!(order, vec!["ORD-1@1", "ORD-1@1", "ORD-1@2", "ORD-1@3"]);
    gw.stop().await;
}

async fn an_older_version_never_overwrites(store_url: String) {
    let (fake, fake_url) = Fake::start(&[]).await;
    let gw = Gateway::start(&store_url, vec![fhir_destination("moh", &fake_url)]).await;
    let client = http();
    let (_, r2) = post_records(&client, &gw.base, record("OLD-1", "OLDP-1", 2).to_string()).await;
    wait_state(&client, &gw.base, &ids(&r2)[0], "delivered", 20).await;
    let (_, r1) = post_records(&client, &gw.base, record("OLD-1", "OLDP-1", 1).to_string()).await;
    let st = wait_state(&client, &gw.base, &ids(&r1)[0], "delivered", 20).await;
    assert_eq!(st["deliveries"][0]["state"], "superseded");
    let order: Vec<String> = fake.arrivals().into_iter().map(|a| a.0).collect();
    assert_eq!(order, vec!["OLD-1@2"], "version 1 was never sent");
    gw.stop().await;
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(super::sqlite_url(&dir).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::postgres_url().await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    delivers_to_the_real_fhir_server_exactly_once,
    accepts_durably_and_resends_are_idempotent,
    retry_after_is_honoured,
    dead_letter_keeps_the_outcome_and_replays,
    a_persons_records_arrive_in_version_order,
    an_older_version_never_overwrites,
);

// ---------- the real FHIR server ----------

/// Every golden record, sent twice, reaches the real server once: counted there by identifier.
async fn delivers_to_the_real_fhir_server_exactly_once(store_url: String) {
    let hfs = Hfs::start("off").await;
    let gw = Gateway::start(&store_url, vec![fhir_destination("moh", &hfs.base)]).await;
    let client = http();
    let records: Vec<Value> = fixtures().iter().map(|f| read_json(f)).collect();
    let (s, r) = post_records(&client, &gw.base, ndjson(&records)).await;
    assert_eq!(s, 202, "{r}");
    let (_, again) = post_records(&client, &gw.base, ndjson(&records)).await;
    assert_eq!(ids(&again), ids(&r));
    for id in ids(&r) {
        let st = wait_state(&client, &gw.base, &id, "delivered", 120).await;
        let d = &st["deliveries"][0];
        assert!(d["state"] == "delivered" || d["state"] == "superseded", "{st}");
        if d["state"] == "delivered" {
            assert!(d["outcome"]["entries"].as_array().is_some_and(|e| !e.is_empty()), "the server's ids are kept: {st}");
        }
    }
    for b in crate::fhir_server::golden_bundles() {
        for e in b.1["entry"].as_array().unwrap() {
            let url = e["request"]["url"].as_str().unwrap();
            if url.contains("?identifier=") {
                assert_eq!(search_count(&client, &hfs.base, url).await, 1, "{}: {url}", b.0);
            }
        }
    }
    gw.stop().await;
}

/// A destination that takes no transactions: each resource as its own conditional request, with
/// references rewritten to the server's ids; the result at the server is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_resource_requests_when_a_destination_takes_no_transactions() {
    let hfs = Hfs::start("off").await;
    let dir = tempfile::tempdir().unwrap();
    let mut dest = fhir_destination("moh-rest", &hfs.base);
    dest.transactions = false;
    let gw = Gateway::start(&sqlite_url(&dir).await, vec![dest]).await;
    let client = http();
    let names = ["30-shared-adult-refugee-clear.json", "31-shared-child-tb-class-b1.json", "01-us-immigrant-vnm-clear.json"];
    let records: Vec<Value> = names.iter().map(|n| read_json(&root().join("tests/golden/records").join(n))).collect();
    for _ in 0..2 {
        let (s, r) = post_records(&client, &gw.base, ndjson(&records)).await;
        assert_eq!(s, 202, "{r}");
        for id in ids(&r) {
            wait_state(&client, &gw.base, &id, "delivered", 60).await;
        }
    }
    let p = pipeline();
    for rec in &records {
        let b = p.convert_value(rec).unwrap().bundle;
        for e in b["entry"].as_array().unwrap() {
            let url = e["request"]["url"].as_str().unwrap();
            if url.contains("?identifier=") {
                assert_eq!(search_count(&client, &hfs.base, url).await, 1, "{url}");
            }
        }
    }
    // References point at the server's resources, not at urn:uuid placeholders.
    let obs: Value = client
        .get(format!("{}/Observation?identifier=https://w3id.org/mhg/fhir/sid/result-id%7CR-0001-hiv", hfs.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subject = obs["entry"][0]["resource"]["subject"]["reference"].as_str().unwrap().to_owned();
    assert!(subject.starts_with("Patient/"), "{subject}");
    let pat = client.get(format!("{}/{subject}", hfs.base)).send().await.unwrap();
    assert_eq!(pat.status(), 200);
    gw.stop().await;
}

/// Two gateways on one PostgreSQL queue share the work: every record is delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_one_postgres_queue() {
    let url = postgres_url().await;
    let (fake, fake_url) = Fake::start(&[]).await;
    let a = Gateway::start(&url, vec![fhir_destination("moh", &fake_url)]).await;
    let b = Gateway::start(&url, vec![fhir_destination("moh", &fake_url)]).await;
    let client = http();
    let mut all = Vec::new();
    for (i, gw) in [&a, &b].iter().cycle().take(10).enumerate() {
        let recs: Vec<Value> = (0..20).map(|j| record(&format!("REP-{i}-{j}"), &format!("REPP-{i}-{j}"), 1)).collect();
        let (s, r) = post_records(&client, &gw.base, ndjson(&recs)).await;
        assert_eq!(s, 202, "{r}");
        all.extend(ids(&r));
    }
    for id in &all {
        wait_state(&client, &a.base, id, "delivered", 60).await;
    }
    let arrivals: Vec<String> = fake.arrivals().into_iter().map(|x| x.0).collect();
    let unique: std::collections::HashSet<&String> = arrivals.iter().collect();
    assert_eq!(arrivals.len(), 200, "each record sent once, by one of the replicas");
    assert_eq!(unique.len(), 200);
    a.stop().await;
    b.stop().await;
}

/// The configuration shape of the relay issue, exactly as written there, is accepted; unknown
/// keys are refused with the key named.
#[test]
fn the_documented_configuration_shape_loads() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mhg.toml");
    std::fs::write(
        &f,
        "[server]\nlisten = \"127.0.0.1:8080\"\n\n[store]\nurl = \"sqlite://data/mhg.db\"        # or postgres://user@host/db\n\n\
         [[destinations]]\nname = \"moh\"\nkind = \"fhir\"                        # or \"directory\"\nbase_url = \"http://127.0.0.1:8090\"   # a directory destination has path = \"...\"\n",
    )
    .unwrap();
    let cfg = mhg::config::Config::load_from(Some(&f), &Default::default()).expect("loads");
    assert_eq!(cfg.destinations().len(), 1);
    assert_eq!(cfg.store.url, "sqlite://data/mhg.db");
    std::fs::write(&f, "[[destinations]]\nname = \"moh\"\nkind = \"fhir\"\nbase_url = \"http://x\"\nretries = 3\n").unwrap();
    let e = mhg::config::Config::load_from(Some(&f), &Default::default()).unwrap_err().to_string();
    assert!(e.contains("mhg.toml") && e.contains("retries"), "{e}");
    std::fs::write(&f, "[[destinations]]\nname = \"files\"\nkind = \"directory\"\n").unwrap();
    let e = mhg::config::Config::load_from(Some(&f), &Default::default()).unwrap_err().to_string();
    assert!(e.contains("path"), "{e}");
}
