//! Nothing lost: the real binary, killed -9 in the middle of a 2,000-record load and restarted,
//! delivers every record it answered 202 for to the real FHIR server, once by identifier; and a
//! destination that is down for a while gets everything once it is back.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use crate::common::*;
use crate::relay::{post_records, record, wait_state};
use crate::support::{Gateway, Hfs, Serve, fhir_destination, search_count, sqlite_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_in_the_middle_of_a_load_loses_nothing() {
    const RECORDS: usize = 2_000;
    const KILL_AFTER: usize = 600;
    let hfs = Hfs::start("off").await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mhg.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n\
             [relay]\npoll_ms = 50\nlease_secs = 5\nbackoff_base_ms = 200\nbackoff_max_ms = 2000\n\
             [[destinations]]\nname = \"moh\"\nkind = \"fhir\"\nbase_url = \"{}\"\nconcurrency = 8\n",
            dir.path().join("mhg.db").display(),
            hfs.base
        ),
    )
    .unwrap();
    let client = http();
    let serve = Serve::new(dir.path()).config(&config);
    let base = serve.base();
    let gateway = serve.start().await;

    // A client that retries each record until it gets its 202 (as a careful sender would).
    let accepted: Arc<Mutex<Vec<(usize, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(16));
    let mut senders = Vec::new();
    for i in 0..RECORDS {
        let (client, base, accepted, count, gate) = (client.clone(), base.clone(), accepted.clone(), count.clone(), gate.clone());
        senders.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let body = record(&format!("K-{i}"), &format!("KP-{i}"), 1).to_string();
            loop {
                let sent =
                    client.post(format!("{base}/records")).header("content-type", "application/json").body(body.clone()).send().await;
                if let Ok(r) = sent {
                    if r.status() == 202 {
                        if let Ok(v) = r.json::<Value>().await {
                            accepted.lock().await.push((i, v["id"].as_str().unwrap_or_default().to_owned()));
                            count.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }));
    }
    // kill -9 once enough is accepted, then start it again on the same store.
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::SeqCst) < KILL_AFTER {
        assert!(Instant::now() < deadline, "load too slow");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.kill();
    let at_kill = count.load(Ordering::SeqCst);
    assert!(at_kill < RECORDS, "the kill happened in the middle of the load");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gateway = serve.start().await;
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.lock().await.clone();
    assert_eq!(accepted.len(), RECORDS);

    // Every accepted record is delivered ...
    for (_, id) in &accepted {
        wait_state(&client, &base, id, "delivered", 300).await;
    }
    // ... and at the server there is exactly one of each person (read back, not taken on trust).
    let person_sys = "https://w3id.org/mhg/fhir/sid/person-id";
    let gate = Arc::new(Semaphore::new(8));
    let mut checks = Vec::new();
    for (i, _) in &accepted {
        let (client, hbase, gate) = (client.clone(), hfs.base.clone(), gate.clone());
        let q = format!("Patient?identifier={person_sys}%7CKP-{i}");
        checks.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            (q.clone(), search_count(&client, &hbase, &q).await)
        }));
    }
    for c in checks {
        let (q, n) = c.await.unwrap();
        assert_eq!(n, 1, "{q}");
    }
    gateway.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_down_for_a_while_gets_everything_when_back() {
    let mut hfs = Hfs::start("off").await;
    hfs.stop();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&sqlite_url(&dir).await, vec![fhir_destination("moh", &hfs.base)]).await;
    let client = http();
    let mut ids = Vec::new();
    for i in 0..20 {
        let (s, r) = post_records(&client, &gw.base, record(&format!("OUT-{i}"), &format!("OUTP-{i}"), 1).to_string()).await;
        assert_eq!(s, 202);
        ids.push(r["id"].as_str().unwrap().to_owned());
    }
    // While it is down, deliveries are retried, not lost and not dead-lettered.
    wait_state(&client, &gw.base, &ids[0], "retrying", 20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    hfs.restart().await;
    for id in &ids {
        wait_state(&client, &gw.base, id, "delivered", 60).await;
    }
    for i in 0..20 {
        let q = format!("Patient?identifier=https://w3id.org/mhg/fhir/sid/person-id%7COUTP-{i}");
        assert_eq!(search_count(&client, &hfs.base, &q).await, 1);
    }
    gw.stop().await;
}

/// SIGTERM while a delivery is in flight: the gateway stops accepting, lets the delivery finish
/// and record its outcome, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_deliveries_then_exits() {
    use std::sync::atomic::AtomicUsize as Counter;
    // A destination that takes two seconds to answer.
    let seen = Arc::new(Counter::new(0));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move || {
            let s = s2.clone();
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(2)).await;
                serde_json::json!({"resourceType": "Bundle", "type": "transaction-response", "entry": []}).to_string()
            }
        }),
    );
    let fl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = format!("http://{}", fl.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(fl, app).await;
    });

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mhg.db");
    let config = dir.path().join("mhg.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n[relay]\npoll_ms = 50\n\
             [[destinations]]\nname = \"slow\"\nkind = \"fhir\"\nbase_url = \"{fake}\"\n",
            db.display()
        ),
    )
    .unwrap();
    let client = http();
    let serve = Serve::new(dir.path()).config(&config);
    let base = serve.base();
    let gw = serve.start().await;
    let (s, r) = post_records(&client, &base, record("TERM-1", "TERMP-1", 1).to_string()).await;
    assert_eq!(s, 202);
    let id = r["id"].as_str().unwrap().to_owned();
    while seen.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    gw.terminate();
    let status = tokio::task::spawn_blocking(move || gw.wait()).await.unwrap();
    assert_eq!(status.code(), Some(0), "clean exit");
    assert!(t0.elapsed() >= Duration::from_millis(1500), "it waited for the delivery in flight");
    // The outcome was recorded before exiting.
    let store = mhg::queue::Store::open(&format!("sqlite://{}", db.display())).await.unwrap();
    assert_eq!(store.get(&id).await.unwrap().unwrap().state, "delivered");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "sent once");
}

/// Retention: delivered payloads are pruned after the period; the submission's status and audit
/// stay, and undelivered payloads are never pruned.
#[tokio::test]
async fn retention_prunes_delivered_payloads_and_keeps_the_audit() {
    use mhg::queue::{NewSubmission, Outcome, Store, now_ms};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&sqlite_url(&dir).await).await.unwrap();
    let sub = |i: usize| NewSubmission {
        id: format!("ret-{i}"),
        identity: mhg::queue::Identity { source_system: "test".into(), record_id: format!("RET-{i}"), record_version: 1 },
        digest: String::new(),
        client_key: None,
        programme: String::new(),
        order_key: format!("person-{i}"),
        submitter: "test".into(),
        bundle: mhg::pipeline::ValidatedBundle::for_store_tests(b"{}".to_vec()),
        destinations: vec!["moh".into()],
        person_identifiers: Vec::new(),
    };
    store.accept(vec![sub(1), sub(2)], now_ms()).await.unwrap();
    let claims = store.claim("moh", 10, "me", 10_000, now_ms()).await.unwrap();
    let c1 = claims.iter().find(|c| c.submission_id == "ret-1").unwrap();
    store.complete(c1, "me", Outcome::Delivered { status: Some(200), detail: serde_json::json!({}) }, now_ms()).await.unwrap();
    store.release("me").await.unwrap();
    let pruned = store.prune(now_ms() + 1_000).await.unwrap();
    assert_eq!(pruned, 1, "only the delivered payload");
    assert_eq!(store.get("ret-1").await.unwrap().unwrap().state, "delivered");
    assert!(!store.audit("ret-1").await.unwrap().is_empty(), "the audit stays");
    // The pending one still has its payload: it can still be claimed and sent.
    let again = store.claim("moh", 10, "me", 10_000, now_ms()).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].submission_id, "ret-2");
}

/// `mhg replay ID` on the store of a stopped gateway: dead letters become pending again, and are
/// delivered when the gateway runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mhg_replay_requeues_dead_letters() {
    use mhg::queue::{NewSubmission, Outcome, Store, now_ms};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mhg.db");
    let store = Store::open(&format!("sqlite://{}", db.display())).await.unwrap();
    let sub = NewSubmission {
        id: "replay-me".into(),
        identity: mhg::queue::Identity { source_system: "test".into(), record_id: "RPL-1".into(), record_version: 1 },
        digest: String::new(),
        client_key: None,
        programme: String::new(),
        order_key: "person".into(),
        submitter: "test".into(),
        bundle: mhg::pipeline::ValidatedBundle::for_store_tests(b"{}".to_vec()),
        destinations: vec!["moh".into()],
        person_identifiers: Vec::new(),
    };
    store.accept(vec![sub], now_ms()).await.unwrap();
    let c = store.claim("moh", 1, "me", 10_000, now_ms()).await.unwrap().remove(0);
    store.complete(&c, "me", Outcome::Dead { status: Some(422), detail: serde_json::json!({}) }, now_ms()).await.unwrap();
    assert_eq!(store.get("replay-me").await.unwrap().unwrap().state, "dead-letter");
    drop(store);
    let config = dir.path().join("mhg.toml");
    std::fs::write(&config, format!("[store]\nurl = \"sqlite://{}\"\n", db.display())).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mhg"))
        .args(["--config", config.to_str().unwrap(), "replay", "replay-me", "nope"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("replay-me: 1 dead delivery(ies) replayed"), "{stdout}");
    assert_eq!(out.status.code(), Some(1), "an unknown id makes the exit status 1");
    let store = Store::open(&format!("sqlite://{}", db.display())).await.unwrap();
    assert_eq!(
        store.get("replay-me").await.unwrap().unwrap().state,
        "retrying",
        "pending again, with its earlier attempt counted"
    );
}
