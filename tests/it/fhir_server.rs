//! Against the real FHIR server (Helios FHIR Server 0.2.7 on loopback, `tests/peers/hfs.sh`):
//! every golden Bundle is accepted as a transaction; sending it again changes nothing (one
//! resource per business identifier, read back from the server, not taken from the gateway's
//! word); a newer record version updates; and the server's own `$validate` finds no error in any
//! produced resource beyond a server defect that HL7's own examples hit too.

use serde_json::Value;

use crate::common::*;
use crate::support::{Hfs, search_count};

pub async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = client.post(url).header("content-type", "application/fhir+json").body(body.to_string()).send().await.expect("sent");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub fn golden_bundles() -> Vec<(String, Value)> {
    let p = pipeline();
    fixtures()
        .into_iter()
        .map(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            (name, p.convert_value(&read_json(&f)).expect("converts").bundle)
        })
        .collect()
}

/// Transactions, resending and version updates, read back from the server. The server runs with
/// write-path validation off here because it refuses every vital-signs Observation, HL7's own
/// examples included (see `server_validate_finds_no_errors`); validation is checked there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_load_and_resending_is_idempotent() {
    let hfs = Hfs::start("off").await;
    let client = http();
    let bundles = golden_bundles();
    for round in 0..2 {
        for (name, b) in &bundles {
            let (status, resp) = post_json(&client, &hfs.base, b).await;
            assert_eq!(status, 200, "round {round}, {name}: {resp}");
            assert_eq!(resp["type"], "transaction-response", "{name}");
        }
    }
    // One resource per business identifier, whatever was sent twice (and the amended record,
    // sent as version 1 then 2, also shares its identifiers).
    for (name, b) in &bundles {
        for e in b["entry"].as_array().unwrap() {
            let url = e["request"]["url"].as_str().unwrap();
            if url.contains("?identifier=") {
                assert_eq!(search_count(&client, &hfs.base, url).await, 1, "{name}: {url}");
            } else {
                let r = client.get(format!("{}/{url}", hfs.base)).send().await.unwrap();
                assert_eq!(r.status(), 200, "{name}: {url}");
            }
        }
    }
    // The newer version of the amended record won: its changed result is at the server.
    let v2 = &bundles.iter().find(|(n, _)| n.starts_with("20-")).expect("fixture 20").1;
    for e in v2["entry"].as_array().unwrap() {
        if e["resource"]["resourceType"] == "Observation" && e["resource"]["status"] == "amended" {
            let url = e["request"]["url"].as_str().unwrap();
            let r: Value = client.get(format!("{}/{url}", hfs.base)).send().await.unwrap().json().await.unwrap();
            let at_server = &r["entry"][0]["resource"];
            assert_eq!(at_server["status"], "amended");
            assert_eq!(at_server["value"], e["resource"]["value"]);
            assert_eq!(at_server.get("valueQuantity"), e["resource"].get("valueQuantity"));
            assert_eq!(at_server.get("valueCodeableConcept"), e["resource"].get("valueCodeableConcept"));
        }
    }
}

/// The server's `$validate` on every produced resource (references made relative, as a server
/// would store them). The only error tolerated is the server's slice defect on vital-signs
/// categories, and only while the server reports the same error for HL7's own example.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_validate_finds_no_errors() {
    let hfs = Hfs::start("enforce").await;
    let client = http();
    let validate = |r: Value| {
        let client = client.clone();
        let base = hfs.base.clone();
        async move {
            let rt = r["resourceType"].as_str().unwrap().to_owned();
            let (_, oo) = post_json(&client, &format!("{base}/{rt}/$validate"), &r).await;
            oo["issue"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| matches!(i["severity"].as_str(), Some("error" | "fatal")))
                .map(|i| (i["details"]["text"].as_str().unwrap_or("").to_owned(), i["expression"].to_string()))
                .collect::<Vec<_>>()
        }
    };
    // HL7's own vital-signs example, to tell a server defect from ours.
    let official = serde_json::json!({
        "resourceType": "Observation", "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}], "text": "Vital Signs"}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "39156-5", "display": "Body mass index (BMI) [Ratio]"}], "text": "BMI"},
        "subject": {"reference": "Patient/example"}, "effectiveDateTime": "1999-07-02",
        "valueQuantity": {"value": 16.2, "unit": "kg/m2", "system": "http://unitsofmeasure.org", "code": "kg/m2"}
    });
    let server_defect = validate(official).await;
    // The oracle must be able to say no: an Immunization without its required vaccineCode.
    let broken = serde_json::json!({"resourceType": "Immunization", "status": "completed",
        "patient": {"reference": "Patient/example"}, "occurrenceDateTime": "2020"});
    assert!(!validate(broken).await.is_empty(), "the server's $validate reports a missing vaccineCode");
    let is_defect = |e: &(String, String)| server_defect.contains(e) && e.1.contains("Observation.category");

    let mut problems = Vec::new();
    for (name, b) in golden_bundles() {
        let entries = b["entry"].as_array().unwrap();
        let mut text = b.to_string();
        for e in entries {
            let full = e["fullUrl"].as_str().unwrap();
            let rt = e["resource"]["resourceType"].as_str().unwrap();
            text = text.replace(full, &format!("{rt}/{}", &full[9..]));
        }
        let b: Value = serde_json::from_str(&text).unwrap();
        for (i, e) in b["entry"].as_array().unwrap().iter().enumerate() {
            for err in validate(e["resource"].clone()).await {
                let vital = e["resource"]["category"][0]["coding"][0]["code"] == "vital-signs";
                if !(vital && is_defect(&err)) {
                    problems.push(format!("{name} entry {i}: {} at {}", err.0, err.1));
                }
            }
        }
    }
    assert!(problems.is_empty(), "the server's $validate found:\n{}", problems.join("\n"));
}
