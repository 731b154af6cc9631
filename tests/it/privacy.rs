//! No patient data where it does not belong: records with distinctive synthetic names,
//! identifiers, dates and notes go through every path of the real binary (success and every
//! kind of refusal, the relay's dead letters, status, audit, replay, metrics, authentication
//! failures, the CLI), with logs at `debug` in JSON; none of those values may appear in the
//! captured logs, the metrics, or any answer other than the converted output itself.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::support::Serve;

const TOKENS: &[&str] = &[
    "Zyxwarblequint",
    "Qorvathenylle",
    "1931-02-27",
    "1931-02-30",
    "IDZQX7734019",
    "PZQ9981237",
    "Marmaladewombat",
    "Vexhollowburg",
    "Ulnaprax",
    "Zyxvaccinequa",
];

fn distinctive() -> Value {
    let mut r: Value = read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"));
    r["recordId"] = json!("PRIV-1");
    r["person"]["personId"] = json!("PRIV-P-1");
    r["person"]["names"][0]["family"] = json!("Zyxwarblequint");
    r["person"]["names"][0]["given"] = json!(["Qorvathenylle"]);
    r["person"]["birthDate"] = json!("1931-02-27");
    r["person"]["identifiers"][0]["value"] = json!("IDZQX7734019");
    r["person"]["identifiers"][1]["value"] = json!("PZQ9981237");
    r["person"]["destinationAddress"]["city"] = json!("Vexhollowburg");
    r["assessment"]["physician"]["name"] = json!("Dr. Ulnaprax Vorm");
    r["results"][0]["note"] = json!("Marmaladewombat seen at intake");
    r
}

fn leaks(text: &str) -> Vec<&'static str> {
    TOKENS.iter().copied().filter(|t| text.contains(t)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_patient_data_in_logs_metrics_or_errors() {
    // A destination that refuses everything for good (422): the dead-letter path.
    let fake = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            [("content-type", "application/fhir+json")],
            json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "business-rule", "diagnostics": "refused"}]}).to_string(),
        )
    });
    let fl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = format!("http://{}", fl.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(fl, fake).await });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mhg.toml");
    std::fs::write(
        &config,
        format!(
            "[log]\nformat = \"json\"\nlevel = \"debug\"\n\
             [store]\nurl = \"sqlite://{}\"\n[relay]\npoll_ms = 50\n\
             [[destinations]]\nname = \"moh\"\nkind = \"fhir\"\nbase_url = \"{fake_url}\"\n\
             [[destinations]]\nname = \"clinic\"\nkind = \"directory\"\npath = \"{}\"\n",
            dir.path().join("mhg.db").display(),
            dir.path().join("outbox").display(),
        ),
    )
    .unwrap();
    let serve = Serve::new(dir.path()).config(&config);
    let (base, log) = (serve.base(), serve.log());
    let gw = serve.start().await;
    let client = http();

    let good = distinctive();
    let mut answers: Vec<(String, String)> = Vec::new(); // (what, body) of every answer that must not leak
    let post = |path: &'static str, body: String, ct: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let r = client.post(format!("{base}{path}")).header("content-type", ct).body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // The converted output may (must) carry the data; nothing else may.
    let (s, out) = post("/fhir/$convert", good.to_string(), "application/json").await;
    assert_eq!(s, 200);
    assert!(out.contains("Zyxwarblequint"), "the converted output carries the record");

    // Every kind of refusal.
    let mut bad_sex = good.clone();
    bad_sex["person"]["sex"] = json!("Zyxwarblequint");
    let mut bad_date = good.clone();
    bad_date["person"]["birthDate"] = json!("1931-02-30");
    let mut control = good.clone();
    control["person"]["names"][0]["family"] = json!("Zyxwarblequint\u{7}");
    let mut unmapped = good.clone();
    unmapped["vaccinations"] =
        json!([{"vaccinationId": "V-PRIV", "vaccine": "Zyxvaccinequa", "date": "2026-10-02", "source": "administered"}]);
    let mut extra = good.clone();
    // A field the schema does not know, carrying data: the answer names the field (a name of the
    // sender's structure), never its value.
    extra["person"]["nickname"] = json!("Qorvathenylle");
    let mut deep = json!("Zyxwarblequint");
    for _ in 0..100 {
        deep = json!({"n": deep});
    }
    let truncated = good.to_string()[..300].to_owned();
    let cases: Vec<(&str, String, &str)> = vec![
        ("schema enum", bad_sex.to_string(), "application/json"),
        ("calendar", bad_date.to_string(), "application/json"),
        ("control characters", control.to_string(), "application/json"),
        ("unmapped code", unmapped.to_string(), "application/json"),
        ("unknown property", extra.to_string(), "application/json"),
        ("too deep", deep.to_string(), "application/json"),
        ("malformed", truncated.clone(), "application/json"),
        ("batch with a bad line", format!("{}\n{}\n", good, bad_sex), "application/x-ndjson"),
        ("content type", good.to_string(), "text/html"),
    ];
    for (what, body, ct) in &cases {
        for path in ["/fhir/$convert", "/records"] {
            let (s, text) = post(path, body.clone(), ct).await;
            assert!((400..500).contains(&s), "{what} on {path}: {s}");
            answers.push((format!("{what} on {path}"), text));
        }
    }

    // Accepted, delivered to the folder, dead-lettered at the ministry, replayed.
    let (s, a) = post("/records", good.to_string(), "application/json").await;
    assert_eq!(s, 202, "{a}");
    answers.push(("202".into(), a.clone()));
    let id = serde_json::from_str::<Value>(&a).unwrap()["id"].as_str().unwrap().to_owned();
    let mut state = Value::Null;
    for _ in 0..200 {
        state = client.get(format!("{base}/submissions/{id}")).send().await.unwrap().json().await.unwrap();
        if state["state"] == "dead-letter" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "dead-letter", "{state}");
    for path in [
        format!("/submissions/{id}"),
        format!("/submissions/{id}/audit"),
        "/submissions?state=dead-letter".into(),
        "/submissions?state=Zyxwarblequint".into(),
        "/submissions/Zyxwarblequint".into(),
        "/Zyxwarblequint".into(),
    ] {
        let text = client.get(format!("{base}{path}")).send().await.unwrap().text().await.unwrap();
        answers.push((path, text));
    }
    let text = client.post(format!("{base}/submissions/{id}/$replay")).send().await.unwrap().text().await.unwrap();
    answers.push(("replay".into(), text));
    // Credentials that carry data are not echoed or logged either.
    let r = anonymous_http()
        .get(format!("{base}/metrics"))
        .header("x-api-key", "mhg_Zyxwarblequint-Qorvathenylle-000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    answers.push(("401".into(), r.text().await.unwrap()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    answers.push(("metrics".into(), metrics));

    let stdout = gw.stop();
    answers.push(("the gateway's standard output".into(), stdout));

    // The CLI's refusals on stderr.
    let bad_file = dir.path().join("bad.json");
    std::fs::write(&bad_file, bad_sex.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mhg")).arg("convert").arg(&bad_file).env("MHG_HOME", root()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    answers.push(("mhg convert stderr".into(), String::from_utf8_lossy(&out.stderr).into_owned()));

    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.lines().count() > 10, "debug logs were captured");
    assert!(leaks(&logs).is_empty(), "patient data in the logs: {:?}", leaks(&logs));
    for (what, text) in &answers {
        assert!(leaks(text).is_empty(), "patient data in the answer to {what}: {:?}\n{text}", leaks(text));
    }
}
