//! `Patient/$summary` for clinics that pull (issue 15): the IPS document of the newest record
//! the gateway holds for a person identifier, over real HTTP on an in-process gateway (SQLite and
//! PostgreSQL) and once through the real binary with `[summary] retention_days` and a key made by
//! `mhg keys add --scope summary:read`. Found (a valid IPS document, the same as
//! `$convert?format=ips`), newest version first and never an older one arriving late, not found,
//! retention off, expiry, wrong scope, another country's or programme's person (404 without
//! patient data), the read in the audit trail, bad parameters.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;
use crate::relay::record;
use crate::support::{Gateway, Serve, both_stores, directory_destination, sqlite_url};
use mhg::http::Guard;
use mhg::relay::DestinationConfig;

const PERSON_ID: &str = "https://w3id.org/mhg/fhir/sid/person-id";
const UPLOADER: &str = "mhg_test-summary-uploader-0123456789abcdef01";
const CLINIC_QAT: &str = "mhg_test-summary-clinic-qat-0123456789abcdef";
const CLINIC_CAN: &str = "mhg_test-summary-clinic-can-0123456789abcdef";
const CLINIC_IME: &str = "mhg_test-summary-clinic-ime-0123456789abcdef";
const READER: &str = "mhg_test-summary-reader-0123456789abcdef0123";

/// A gateway keeping summaries `days` days, with destinations `qat` (Qatar) and `can` (Canada),
/// and clients: the admin; `uploader` (records:write); `clinic-qat` and `clinic-can`
/// (summary:read, limited to their destination); `clinic-ime` (summary:read, programme
/// `ca-ime` only); `reader` (submissions:read only).
async fn start(store_url: &str, days: u32, outbox: &tempfile::TempDir) -> Gateway {
    let dest = |name: &str, country: &str| DestinationConfig {
        countries: vec![country.into()],
        ..directory_destination(name, &outbox.path().join(name))
    };
    let limited = |name: &str, key: &str, destinations: Option<&str>, programmes: Option<&str>| {
        let mut c = test_client(name, key, &["summary:read"]);
        c.destinations = destinations.map(|d| vec![d.to_owned()]);
        c.programmes = programmes.map(|p| vec![p.to_owned()]);
        c
    };
    let cfg = mhg::auth::AuthConfig {
        keys_file: std::path::PathBuf::from("/nonexistent/keys.json"),
        clients: vec![
            test_client("test-admin", TEST_ADMIN_KEY, &["admin"]),
            test_client("uploader", UPLOADER, &["records:write"]),
            limited("clinic-qat", CLINIC_QAT, Some("qat"), None),
            limited("clinic-can", CLINIC_CAN, Some("can"), None),
            limited("clinic-ime", CLINIC_IME, None, Some("ca-ime")),
            test_client("reader", READER, &["submissions:read"]),
        ],
        ..Default::default()
    };
    let guard = Arc::new(Guard::new(Arc::new(mhg::auth::Auth::from_config(&cfg).unwrap()), 0, 0, 0, Duration::ZERO));
    Gateway::builder(store_url).destinations(vec![dest("qat", "QAT"), dest("can", "CAN")]).guard(guard).summary_days(days).start().await
}

fn client(key: &str) -> reqwest::Client {
    mhg::relay::install_tls();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-api-key", reqwest::header::HeaderValue::from_str(key).unwrap());
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

/// A record of person `person` for Qatar (the fixture's country) or, with `country`, elsewhere.
fn rec(record_id: &str, person: &str, version: u32, country: Option<&str>) -> Value {
    let mut r = record(record_id, person, version);
    if let Some(c) = country {
        r["assessment"]["destinationCountry"] = json!(c);
    }
    r
}

/// `POST /records` as the uploader; the submission id.
async fn submit(base: &str, r: &Value) -> String {
    let resp = client(UPLOADER)
        .post(format!("{base}/records"))
        .header("content-type", "application/json")
        .body(r.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn answer(resp: reqwest::Response) -> (u16, String, String) {
    let s = resp.status().as_u16();
    let ct = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (s, ct, resp.text().await.unwrap())
}

/// `GET /fhir/Patient/$summary?identifier=...` as `key`: (status, Content-Type, body).
async fn get(base: &str, key: &str, identifier: &str) -> (u16, String, String) {
    answer(client(key).get(url(base, &[("identifier", identifier)])).send().await.unwrap()).await
}

/// `/fhir/Patient/$summary` with the query parameters, form-encoded.
fn url(base: &str, query: &[(&str, &str)]) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
    format!("{base}/fhir/Patient/$summary?{q}")
}

/// `POST /fhir/Patient/$summary` with `body` as `key`.
async fn post(base: &str, key: &str, body: &Value) -> (u16, String, String) {
    let r = client(key)
        .post(format!("{base}/fhir/Patient/$summary"))
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    answer(r).await
}

fn person(id: &str) -> String {
    format!("{PERSON_ID}|{id}")
}

fn parameters(identifier: Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": [identifier]})
}

/// A 200 answer's document: a valid IPS document (the gateway's validator, against
/// `Bundle-uv-ips`); its identifier's value, `recordId@version`.
fn document(answer: &(u16, String, String)) -> (Value, String) {
    assert_eq!(answer.0, 200, "{}", answer.2);
    assert!(answer.1.starts_with("application/fhir+json"), "{}", answer.1);
    let doc: Value = serde_json::from_str(&answer.2).unwrap();
    assert_eq!((doc["resourceType"].as_str(), doc["type"].as_str()), (Some("Bundle"), Some("document")));
    assert_eq!(doc["entry"][0]["resource"]["resourceType"], "Composition");
    let errors: Vec<String> = pipeline()
        .validator
        .validate(&doc, &[mhg::map::ips::BUNDLE_PROFILE])
        .into_iter()
        .filter(|f| f.severity == mhg::validate::profile::Severity::Error)
        .map(|f| format!("{} {}", f.expression, f.text))
        .collect();
    assert!(errors.is_empty(), "the document meets Bundle-uv-ips: {errors:?}");
    let id = doc["identifier"]["value"].as_str().unwrap().to_owned();
    (doc, id)
}

/// A 404 OperationOutcome that names nothing of the person.
fn not_found(answer: &(u16, String, String), person_id: &str) {
    assert_eq!(answer.0, 404, "{}", answer.2);
    let oo: Value = serde_json::from_str(&answer.2).unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["code"], "not-found");
    for secret in [person_id, "Rahman", "Mohammed", "1996-11-02"] {
        assert!(!answer.2.contains(secret), "the refusal names nothing of the person: {}", answer.2);
    }
}

/// Found: the newest version's IPS document, valid and the same as `$convert?format=ips` of that
/// record; a newer version supersedes it; an older version accepted after a newer one does not;
/// each read is in the audit trail with the client's name and nothing of the person. On SQLite
/// and PostgreSQL (the store code differs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_version_is_served_and_an_older_one_never_replaces_it() {
    both_stores(|url| async move {
        let outbox = tempfile::tempdir().unwrap();
        let gw = start(&url, 30, &outbox).await;
        let base = gw.base.clone();
        let v1 = rec("R-SUM-1", "P-SUM-1", 1, None);
        submit(&base, &v1).await;
        let (doc, id) = document(&get(&base, CLINIC_QAT, &person("P-SUM-1")).await);
        assert_eq!(id, "R-SUM-1@1");
        // The same code and gate as `$convert?format=ips`: the same document.
        let converted: Value = http()
            .post(format!("{base}/fhir/$convert?format=ips"))
            .header("content-type", "application/json")
            .body(v1.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc, converted, "the summary is the record's IPS document");
        // A newer version supersedes it, by GET and by POST (valueString and valueIdentifier).
        let sub2 = submit(&base, &rec("R-SUM-1", "P-SUM-1", 2, None)).await;
        assert_eq!(document(&get(&base, CLINIC_QAT, &person("P-SUM-1")).await).1, "R-SUM-1@2");
        let by_string = parameters(json!({"name": "identifier", "valueString": person("P-SUM-1")}));
        assert_eq!(document(&post(&base, CLINIC_QAT, &by_string).await).1, "R-SUM-1@2");
        let by_identifier = parameters(json!({"name": "identifier", "valueIdentifier": {"system": PERSON_ID, "value": "P-SUM-1"}}));
        assert_eq!(document(&post(&base, CLINIC_QAT, &by_identifier).await).1, "R-SUM-1@2");
        // Version 3 first, then version 2 arrives: both accepted, version 3 stays the summary.
        submit(&base, &rec("R-SUM-2", "P-SUM-2", 3, None)).await;
        submit(&base, &rec("R-SUM-2", "P-SUM-2", 2, None)).await;
        assert_eq!(document(&get(&base, CLINIC_QAT, &person("P-SUM-2")).await).1, "R-SUM-2@3");
        // Each read is audited: who, on the submission served; nothing of the person.
        let audit: Value = http().get(format!("{base}/submissions/{sub2}/audit")).send().await.unwrap().json().await.unwrap();
        let reads: Vec<&Value> = audit["audit"].as_array().unwrap().iter().filter(|e| e["event"] == "summary-read").collect();
        assert_eq!(reads.len(), 3, "{audit}");
        assert!(reads.iter().all(|e| e["detail"]["client"] == "clinic-qat" && e["at"].is_string()), "{audit}");
        let text = audit.to_string();
        assert!(!text.contains("P-SUM-1") && !text.contains("Rahman"), "no patient data in the audit: {text}");
        gw.stop().await;
    })
    .await;
}

/// Nothing held for the identifier: 404 with an OperationOutcome. Bad parameters: 400 naming the
/// parameter. Another profile than IPS: 400 naming `profile`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_and_bad_parameters() {
    let (dir, outbox) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = start(&sqlite_url(&dir).await, 30, &outbox).await;
    let base = gw.base.clone();
    submit(&base, &rec("R-SUM-3", "P-SUM-3", 1, None)).await;
    not_found(&get(&base, CLINIC_QAT, &person("P-NOBODY")).await, "P-NOBODY");
    not_found(&get(&base, CLINIC_QAT, "https://other.example/id|P-SUM-3").await, "P-SUM-3");
    let named = |a: &(u16, String, String), param: &str| {
        assert_eq!(a.0, 400, "{}", a.2);
        let oo: Value = serde_json::from_str(&a.2).unwrap();
        assert_eq!(oo["resourceType"], "OperationOutcome");
        assert!(oo["issue"][0]["details"]["text"].as_str().unwrap().contains(&format!("'{param}'")), "{oo}");
        assert_eq!(oo["issue"][0]["location"][0], param, "{oo}");
    };
    let no_identifier = answer(client(CLINIC_QAT).get(format!("{base}/fhir/Patient/$summary")).send().await.unwrap()).await;
    named(&no_identifier, "identifier");
    named(&get(&base, CLINIC_QAT, "P-SUM-3").await, "identifier");
    named(&get(&base, CLINIC_QAT, &format!("{PERSON_ID}|")).await, "identifier");
    let twice =
        client(CLINIC_QAT).get(url(&base, &[("identifier", &person("P-SUM-3")), ("identifier", &person("P-SUM-3"))])).send().await.unwrap();
    named(&answer(twice).await, "identifier");
    named(&post(&base, CLINIC_QAT, &json!({"resourceType": "Parameters"})).await, "identifier");
    named(
        &post(&base, CLINIC_QAT, &parameters(json!({"name": "identifier", "valueString": "P-SUM-3"}))).await,
        "identifier",
    );
    named(
        &post(
            &base,
            CLINIC_QAT,
            &parameters(json!({"name": "identifier", "valueIdentifier": {"value": "P-SUM-3"}})),
        )
        .await,
        "identifier",
    );
    let other_profile = client(CLINIC_QAT)
        .get(url(
            &base,
            &[("identifier", &person("P-SUM-3")), ("profile", "http://example.org/StructureDefinition/x")],
        ))
        .send()
        .await
        .unwrap();
    named(&answer(other_profile).await, "profile");
    let ips_profile = client(CLINIC_QAT)
        .get(url(&base, &[("identifier", &person("P-SUM-3")), ("profile", mhg::map::ips::BUNDLE_PROFILE)]))
        .send()
        .await
        .unwrap();
    assert_eq!(document(&answer(ips_profile).await).1, "R-SUM-3@1");
    // Not a Parameters resource, not JSON, not a type it reads.
    let (s, _, _) = post(&base, CLINIC_QAT, &json!({"resourceType": "Patient"})).await;
    assert_eq!(s, 400);
    let r = client(CLINIC_QAT).post(format!("{base}/fhir/Patient/$summary")).header("content-type", "text/html").body("<p>").send().await;
    assert_eq!(r.unwrap().status(), 415);
    // A GET has no body: its Content-Type does not matter.
    let g = client(CLINIC_QAT).get(url(&base, &[("identifier", &person("P-SUM-3"))])).header("content-type", "text/html").send().await;
    assert_eq!(document(&answer(g.unwrap()).await).1, "R-SUM-3@1");
    // The type-level `$validate` still answers beside it.
    let v = http()
        .post(format!("{base}/fhir/Patient/$validate"))
        .header("content-type", "application/fhir+json")
        .body(json!({"resourceType": "Patient"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), 200);
    gw.stop().await;
}

/// With `[summary] retention_days` off (the default), nothing is kept: every identifier answers
/// 404, the admin's included. The CapabilityStatement lists the operation and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_retention_off_nothing_is_held() {
    let (dir, outbox) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = start(&sqlite_url(&dir).await, 0, &outbox).await;
    submit(&gw.base, &rec("R-SUM-4", "P-SUM-4", 1, None)).await;
    not_found(&get(&gw.base, TEST_ADMIN_KEY, &person("P-SUM-4")).await, "P-SUM-4");
    not_found(&get(&gw.base, CLINIC_QAT, &person("P-SUM-4")).await, "P-SUM-4");
    let cs: Value = anonymous_http().get(format!("{}/fhir/metadata", gw.base)).send().await.unwrap().json().await.unwrap();
    let patient = cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Patient").expect("Patient listed").clone();
    assert_eq!(patient["operation"][0]["name"], "summary");
    assert_eq!(patient["operation"][0]["definition"], "http://hl7.org/fhir/uv/ips/OperationDefinition/summary");
    assert!(patient["operation"][0]["documentation"].as_str().unwrap().contains("retention_days = 0"));
    gw.stop().await;
}

/// `summary:read` is needed (403 naming it, 401 without credentials); a clinic sees only the
/// persons whose records were destined for its destination and programme: another country's
/// person answers 404 exactly as an unknown one, with nothing of the person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_destination_and_programme_decide_who_sees_whom() {
    let (dir, outbox) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let gw = start(&sqlite_url(&dir).await, 30, &outbox).await;
    let base = gw.base.clone();
    submit(&base, &rec("R-SUM-5", "P-SUM-5", 1, Some("CAN"))).await;
    for key in [READER, UPLOADER] {
        let (s, _, body) = get(&base, key, &person("P-SUM-5")).await;
        assert_eq!(s, 403, "{body}");
        let oo: Value = serde_json::from_str(&body).unwrap();
        assert!(oo["issue"][0]["details"]["text"].as_str().unwrap().contains("summary:read"), "{oo}");
    }
    let anon = anonymous_http().get(url(&base, &[("identifier", &person("P-SUM-5"))])).send();
    assert_eq!(anon.await.unwrap().status(), 401);
    // Canada's person: not for the Qatar clinic, nor for a clinic of another programme.
    not_found(&get(&base, CLINIC_QAT, &person("P-SUM-5")).await, "P-SUM-5");
    not_found(
        &post(&base, CLINIC_QAT, &parameters(json!({"name": "identifier", "valueString": person("P-SUM-5")}))).await,
        "P-SUM-5",
    );
    not_found(&get(&base, CLINIC_IME, &person("P-SUM-5")).await, "P-SUM-5");
    assert_eq!(document(&get(&base, CLINIC_CAN, &person("P-SUM-5")).await).1, "R-SUM-5@1");
    assert_eq!(document(&get(&base, TEST_ADMIN_KEY, &person("P-SUM-5")).await).1, "R-SUM-5@1");
    // A fixture of Canada's `ca-ime` programme, found by its passport: the clinic limited to that
    // programme sees it, and Canada's clinic; Qatar's does not.
    submit(&base, &read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"))).await;
    let passport = "urn:oid:2.16.840.1.113883.4.330.760|N0123456";
    assert_eq!(document(&get(&base, CLINIC_IME, passport).await).1, "R-0001@1");
    assert_eq!(document(&get(&base, CLINIC_CAN, passport).await).1, "R-0001@1");
    not_found(&get(&base, CLINIC_QAT, passport).await, "N0123456");
    // The same person's later record for Qatar: the Qatar clinic sees that one, Canada's its own.
    submit(&base, &rec("R-SUM-6", "P-SUM-5", 1, None)).await;
    assert_eq!(document(&get(&base, CLINIC_QAT, &person("P-SUM-5")).await).1, "R-SUM-6@1");
    assert_eq!(document(&get(&base, CLINIC_CAN, &person("P-SUM-5")).await).1, "R-SUM-5@1");
    gw.stop().await;
}

/// Kept for `retention_days` from acceptance: an older entry is not answered, and the purge
/// drops it; a store opened with summaries off drops everything. On both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_summaries_are_neither_answered_nor_kept() {
    both_stores(|url| async move {
        use mhg::queue::summary::identifier_key;
        let store = mhg::queue::Store::open(&url).await.unwrap().keep_summaries(1);
        let day = 86_400_000;
        let now = mhg::queue::now_ms();
        let key = identifier_key(PERSON_ID, "P-SUM-7");
        let submission = |id: &str, record_id: &str| mhg::queue::NewSubmission {
            id: id.into(),
            identity: mhg::queue::Identity { source_system: "emr".into(), record_id: record_id.into(), record_version: 1 },
            digest: id.into(),
            client_key: None,
            programme: "labour".into(),
            order_key: "p".into(),
            submitter: "uploader".into(),
            bundle: mhg::pipeline::ValidatedBundle::for_store_tests(b"{}".to_vec()),
            destinations: vec!["qat".into()],
            person_identifiers: vec![key.clone()],
        };
        store.accept(vec![submission("s-old", "R-OLD")], now - 2 * day).await.unwrap();
        store.accept(vec![submission("s-new", "R-NEW")], now).await.unwrap();
        let held: Vec<String> = store.summaries_for(&key, now).await.unwrap().into_iter().map(|h| h.submission_id).collect();
        assert_eq!(held, ["s-new"], "the expired one is not answered");
        assert_eq!(store.summaries_for(&key, now - 2 * day).await.unwrap().len(), 2, "both were kept");
        assert_eq!(store.prune_summaries(now).await.unwrap(), 1);
        assert_eq!(store.prune_summaries(now).await.unwrap(), 0);
        let off = store.keep_summaries(0);
        assert_eq!(off.prune_summaries(now).await.unwrap(), 1, "off keeps nothing extra");
        assert!(off.keep_summaries(1).summaries_for(&key, now).await.unwrap().is_empty());
    })
    .await;
}

/// The real binary: `[summary] retention_days` in the configuration file, a clinic key made by
/// `mhg keys add --scope summary:read --destination outbox`, a record accepted, its summary read;
/// the log has the read with the client's name and not the person's identifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_summaries_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mhg.toml");
    std::fs::write(&config, "[summary]\nretention_days = 30\n[log]\nformat = \"json\"\nlevel = \"debug\"\n").unwrap();
    let serve = Serve::new(dir.path()).config(&config);
    let gw = serve.start().await;
    let base = serve.base();
    let add = std::process::Command::new(env!("CARGO_BIN_EXE_mhg"))
        .args(["keys", "add", "clinic-pull", "--scope", "summary:read", "--destination", "outbox"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let clinic = String::from_utf8(add.stdout).unwrap().trim().to_owned();
    let r = http()
        .post(format!("{base}/records"))
        .header("content-type", "application/json")
        .body(rec("R-SUM-8", "P-SUM-8", 1, None).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // The running gateway takes the new key within a second or two.
    let mut got = (0, String::new(), String::new());
    for _ in 0..40 {
        got = get(&base, &clinic, &person("P-SUM-8")).await;
        if got.0 != 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(document(&got).1, "R-SUM-8@1");
    drop(gw);
    let log = std::fs::read_to_string(serve.log()).unwrap();
    assert!(log.contains("summary served") && log.contains("clinic-pull"), "the read is logged");
    assert!(!log.contains("P-SUM-8"), "the log carries no identifier");
}
