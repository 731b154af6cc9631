//! Operating: readiness, metrics (with no patient data), and a truthful CapabilityStatement.

use serde_json::{Value, json};

use crate::common::*;
use crate::relay::{post_records, record, wait_state};
use crate::support::{Gateway, fhir_destination, sqlite_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_metrics_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let mut dest = fhir_destination("files", "http://unused");
    dest.kind = mhg::relay::DestinationKind::Directory;
    dest.base_url = None;
    dest.path = Some(dir.path().join("out"));
    let gw = Gateway::start(&sqlite_url(&dir).await, vec![dest]).await;
    let client = http();

    let ready: Value = client.get(format!("{}/ready", gw.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"], "sqlite");

    // A record with distinctive values, accepted; and a broken copy, refused.
    let mut rec = record("OPS-1", "OPSP-1", 1);
    rec["person"]["names"][0]["family"] = json!("Zyxwvutmetrics");
    let (s, r) = post_records(&client, &gw.base, rec.to_string()).await;
    assert_eq!(s, 202);
    wait_state(&client, &gw.base, r["id"].as_str().unwrap(), "delivered", 20).await;
    let mut bad = rec.clone();
    bad["person"]["sex"] = json!("Zyxwvutsex");
    let (s, _) = post_records(&client, &gw.base, bad.to_string()).await;
    assert_eq!(s, 422);

    let resp = client.get(format!("{}/metrics", gw.base)).send().await.unwrap();
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    for want in [
        "mhg_records_accepted_total{path=\"records\"}",
        "mhg_records_rejected_total{reason=\"schema\"}",
        "mhg_deliveries_total{destination=\"files\",outcome=\"delivered\"}",
        "mhg_stage_seconds_bucket{stage=\"convert\",le=",
        "mhg_queue_depth{destination=\"files\",state=\"delivered\"}",
    ] {
        assert!(text.contains(want), "metrics lack {want}:\n{text}");
    }
    for leak in ["Zyxwvut", "OPSP-1", "OPS-1"] {
        assert!(!text.contains(leak), "metrics carry record data ({leak})");
    }

    let cs: Value = client.get(format!("{}/fhir/metadata", gw.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["kind"], "instance");
    let ops: Vec<&str> = cs["rest"][0]["operation"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert!(ops.contains(&"convert"));
    assert!(ops.contains(&"validate"), "$validate is implemented and claimed");
    // Serves no resources: the types listed carry the terminology operations, no interaction.
    let types = cs["rest"][0]["resource"].as_array().unwrap();
    assert!(types.iter().all(|r| r.get("interaction").is_none() && r["operation"].is_array()), "{cs}");
    // And it is valid FHIR, as an independent validator sees it.
    let peers = root().join("tests/peers");
    assert!(std::process::Command::new("bash").arg(peers.join("setup.sh")).status().unwrap().success());
    let mut child = std::process::Command::new("node")
        .arg(peers.join("medplum/validate.mjs"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{cs}\n").as_bytes()).unwrap();
    let verdict: Value = serde_json::from_slice(&child.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(verdict["errors"], json!([]), "{verdict}");
    gw.stop().await;
}
