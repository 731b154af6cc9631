//! Load generator for the gateway and for a FHIR server alone (used by `scripts/load`).
//!
//! ```text
//! load accept  URL N CONCURRENCY [RATE] [BATCH]   POST N records to URL/records
//! load fhir    URL N CONCURRENCY                  POST N transaction Bundles straight to a FHIR server
//! load drain   URL IDS_FILE                       wait until every submission listed is delivered
//! ```
//! Records are made from a template record with unique ids (`LOAD-<run>-<i>`). `RATE` caps
//! records per second (0 = as fast as possible); `BATCH` sends NDJSON batches of that many.
//! Prints one JSON line of results.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test and bench code: a failure should stop it loudly

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn template() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/records/32-shared-labour-minimal.json");
    serde_json::from_slice(&std::fs::read(p).expect("template record")).expect("json")
}

fn record(t: &Value, run: &str, i: usize) -> Value {
    let mut r = t.clone();
    r["recordId"] = json!(format!("LOAD-{run}-{i}"));
    r["person"]["personId"] = json!(format!("LOADP-{run}-{i}"));
    r["assessment"]["assessmentId"] = json!(format!("LOADA-{run}-{i}"));
    r
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    mhg::relay::install_tls();
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| args.get(i).cloned().unwrap_or_else(|| d.to_owned());
    let mode = arg(1, "");
    let url = arg(2, "http://127.0.0.1:8080");
    // The gateway's API key (authentication stays on while measuring), from MHG_API_KEY.
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(k) = std::env::var("MHG_API_KEY").ok().and_then(|k| reqwest::header::HeaderValue::from_str(&k).ok()) {
        headers.insert("x-api-key", k);
    }
    let client = reqwest::Client::builder().pool_max_idle_per_host(256).default_headers(headers).build().expect("client");
    match mode.as_str() {
        "accept" | "fhir" => {
            let n: usize = arg(3, "1000").parse().expect("N");
            let conc: usize = arg(4, "16").parse().expect("CONCURRENCY");
            let rate: f64 = arg(5, "0").parse().expect("RATE");
            let batch: usize = arg(6, "1").parse::<usize>().expect("BATCH").max(1);
            let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
            let t = template();
            // Bodies are made before the clock starts.
            let bodies: Vec<(String, usize)> = if mode == "fhir" {
                let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
                let p = mhg::pipeline::Pipeline::load(&root.join("mappings"), &[], &root.join("conformance"), 32).expect("pipeline");
                (0..n).map(|i| (p.convert_value(&record(&t, &run, i)).expect("converts").bundle.to_string(), 1)).collect()
            } else {
                (0..n)
                    .collect::<Vec<_>>()
                    .chunks(batch)
                    .map(|c| (c.iter().map(|&i| record(&t, &run, i).to_string()).collect::<Vec<_>>().join("\n"), c.len()))
                    .collect()
            };
            let target = if mode == "fhir" { url.clone() } else { format!("{url}/records") };
            let gate = Arc::new(Semaphore::new(conc));
            let lat = Arc::new(Mutex::new(Vec::<f64>::new()));
            let ids = Arc::new(Mutex::new(Vec::<String>::new()));
            let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let start = Instant::now();
            let mut tasks = Vec::new();
            let mut sent = 0usize;
            for (body, count) in bodies {
                if rate > 0.0 {
                    let due = start + Duration::from_secs_f64(sent as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                sent += count;
                let permit = gate.clone().acquire_owned().await.expect("permit");
                let (client, target, lat, ids, failed) = (client.clone(), target.clone(), lat.clone(), ids.clone(), failed.clone());
                let ndjson = count > 1;
                tasks.push(tokio::spawn(async move {
                    let t0 = Instant::now();
                    let r = client
                        .post(&target)
                        .header("content-type", if ndjson { "application/x-ndjson" } else { "application/fhir+json" })
                        .body(body)
                        .send()
                        .await;
                    let ok = match r {
                        Ok(r) if r.status().is_success() => {
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            let mut g = ids.lock().await;
                            match v.get("submissions") {
                                Some(s) => g.extend(s.as_array().into_iter().flatten().filter_map(|x| x["id"].as_str().map(str::to_owned))),
                                None => g.extend(v["id"].as_str().map(str::to_owned)),
                            }
                            true
                        }
                        _ => false,
                    };
                    lat.lock().await.push(t0.elapsed().as_secs_f64() * 1000.0);
                    if !ok {
                        failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    drop(permit);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            let secs = start.elapsed().as_secs_f64();
            let mut l = lat.lock().await.clone();
            l.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            let ids = ids.lock().await.clone();
            if let Ok(f) = std::env::var("LOAD_IDS_FILE") {
                let _ = std::fs::write(f, ids.join("\n"));
            }
            println!(
                "{}",
                json!({"mode": mode, "records": n, "concurrency": conc, "rate": rate, "batch": batch,
                       "seconds": (secs * 1000.0).round() / 1000.0, "records_per_s": (n as f64 / secs).round(),
                       "requests": l.len(), "failed_requests": failed.load(std::sync::atomic::Ordering::SeqCst),
                       "p50_ms": (pct(&l, 0.5) * 100.0).round() / 100.0, "p99_ms": (pct(&l, 0.99) * 100.0).round() / 100.0})
            );
        }
        "drain" => {
            let ids: Vec<String> = std::fs::read_to_string(arg(3, "ids.txt")).expect("ids file").lines().map(str::to_owned).collect();
            let start = Instant::now();
            for id in &ids {
                loop {
                    let v: Value =
                        client.get(format!("{url}/submissions/{id}")).send().await.expect("status").json().await.unwrap_or(Value::Null);
                    if v["state"] == "delivered" {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            println!(
                "{}",
                json!({"mode": "drain", "submissions": ids.len(), "seconds_after_start": start.elapsed().as_secs_f64()})
            );
        }
        _ => {
            eprintln!("usage: load accept URL N CONCURRENCY [RATE] [BATCH] | load fhir URL N CONCURRENCY | load drain URL IDS_FILE");
            std::process::exit(2);
        }
    }
}
