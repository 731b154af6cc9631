//! Nothing lost, nobody sees what is not theirs (issue 11): a record's identity is
//! (sourceSystem, recordId, recordVersion) everywhere; Idempotency-Keys are each client's own; the
//! same identity with other content is a 409, never a silent duplicate; reads are scoped as writes
//! are; what the gateway stores is private to its user. Each store-backed test runs on SQLite and
//! on PostgreSQL, delivering to real files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;
use crate::relay::record;
use crate::support::{Gateway, both_stores, directory_destination, sqlite_url};
use mhg::http::Guard;
use mhg::relay::DestinationConfig;

const KEY_A: &str = "mhg_test-client-a-0123456789abcdef0123456789";
const KEY_B: &str = "mhg_test-client-b-0123456789abcdef0123456789";
const KEY_READER: &str = "mhg_test-reader-0123456789abcdef0123456789ab";

/// A gateway with two directory destinations in `outbox`: `qat` takes records for Qatar, `can`
/// those for Canada. Clients: the admin; `a` and `b` (write and read, any destination);
/// `qat-only` (write and read, `qat` only); `reader` (submissions:read only, any destination).
struct Scoped {
    gw: Gateway,
    outbox: tempfile::TempDir,
}

async fn start(store_url: &str) -> Scoped {
    let outbox = tempfile::tempdir().unwrap();
    let dest = |name: &str, country: &str| DestinationConfig {
        countries: vec![country.into()],
        ..directory_destination(name, &outbox.path().join(name))
    };
    let rw = ["records:write", "submissions:read"];
    let mut qat_only = test_client("qat-only", "mhg_test-qat-only-0123456789abcdef0123456789", &rw);
    qat_only.destinations = Some(vec!["qat".into()]);
    let cfg = mhg::auth::AuthConfig {
        keys_file: std::path::PathBuf::from("/nonexistent/keys.json"),
        clients: vec![
            test_client("test-admin", TEST_ADMIN_KEY, &["admin"]),
            test_client("a", KEY_A, &rw),
            test_client("b", KEY_B, &rw),
            test_client("reader", KEY_READER, &["submissions:read"]),
            qat_only,
        ],
        ..Default::default()
    };
    let guard = Arc::new(Guard::new(Arc::new(mhg::auth::Auth::from_config(&cfg).unwrap()), 0, 0, 0, Duration::ZERO));
    let gw = Gateway::builder(store_url).destinations(vec![dest("qat", "QAT"), dest("can", "CAN")]).guard(guard).start().await;
    Scoped { gw, outbox }
}

impl Scoped {
    async fn stop(self) {
        self.gw.stop().await;
    }

    async fn post(&self, key: &str, idem: Option<&str>, body: String) -> (u16, Value) {
        let mut r = client(key).post(format!("{}/records", self.gw.base)).header("content-type", "application/json").body(body);
        if let Some(k) = idem {
            r = r.header("idempotency-key", k);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let r = client(key).get(format!("{}{path}", self.gw.base)).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn delivered(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, s) = self.get(TEST_ADMIN_KEY, &format!("/submissions/{id}")).await;
            if s["state"] == "delivered" {
                return s;
            }
            assert!(Instant::now() < deadline, "never delivered: {s}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn files(&self, destination: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.outbox.path().join(destination))
            .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| !n.starts_with('.')).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn client(key: &str) -> reqwest::Client {
    mhg::relay::install_tls();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-api-key", reqwest::header::HeaderValue::from_str(key).unwrap());
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

fn from(source: &str, record_id: &str, person: &str) -> Value {
    let mut r = record(record_id, person, 1);
    r["sourceSystem"] = json!(source);
    r
}

fn conflict_issue(oo: &Value) -> &Value {
    assert_eq!(oo["resourceType"], "OperationOutcome", "{oo}");
    let i = &oo["issue"][0];
    assert_eq!(i["code"], "conflict", "{oo}");
    assert_eq!(i["details"]["coding"][0]["code"], "conflict", "{oo}");
    i
}

/// Two systems' record `R-1` version 1 are two records: both accepted as new, both delivered,
/// as two files whose names carry the source system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_system_is_part_of_a_records_identity() {
    both_stores(|url| async move {
        let g = start(&url).await;
        let (s1, a) = g.post(KEY_A, None, from("emr-north", "ID-R-1", "P-1").to_string()).await;
        let (s2, b) = g.post(KEY_A, None, from("emr-south", "ID-R-1", "P-1").to_string()).await;
        assert_eq!((s1, s2), (202, 202), "{a} {b}");
        assert_eq!((a["duplicate"].clone(), b["duplicate"].clone()), (json!(false), json!(false)));
        assert_ne!(a["id"], b["id"]);
        let va = g.delivered(a["id"].as_str().unwrap()).await;
        let vb = g.delivered(b["id"].as_str().unwrap()).await;
        assert_eq!(va["sourceSystem"], "emr-north");
        assert_eq!(vb["sourceSystem"], "emr-south");
        for v in [&va, &vb] {
            assert_eq!(v["deliveries"][0]["state"], "delivered", "not superseded: {v}");
        }
        assert_eq!(g.files("qat"), ["emr-north~ID-R-1.v1.json", "emr-south~ID-R-1.v1.json"]);
        // The audit names the whole identity.
        let (_, audit) = g.get(TEST_ADMIN_KEY, &format!("/submissions/{}/audit", a["id"].as_str().unwrap())).await;
        assert_eq!(audit["audit"][0]["detail"]["sourceSystem"], "emr-north", "{audit}");
        g.stop().await;
    })
    .await;
}

/// Client B's `Idempotency-Key: 42` is not client A's: B's record is stored and delivered. A key
/// reused by its own client for another record is a 409; for the same record, the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_each_clients_own() {
    both_stores(|url| async move {
        let g = start(&url).await;
        let rec_a = from("emr", "ID-K-A", "P-A").to_string();
        let rec_b = from("emr", "ID-K-B", "P-B").to_string();
        let (s, a) = g.post(KEY_A, Some("42"), rec_a.clone()).await;
        assert_eq!(s, 202, "{a}");
        let (s, b) = g.post(KEY_B, Some("42"), rec_b.clone()).await;
        assert_eq!(s, 202, "{b}");
        assert_eq!(b["duplicate"], false, "another client's key is not a duplicate: {b}");
        assert_ne!(a["id"], b["id"]);
        g.delivered(b["id"].as_str().unwrap()).await;
        // A resends its record under its key: the first submission.
        let (s, again) = g.post(KEY_A, Some("42"), rec_a.clone()).await;
        assert_eq!((s, &again["id"], &again["duplicate"]), (202, &a["id"], &json!(true)));
        // A reuses the key for another record: refused, nothing stored.
        let (s, oo) = g.post(KEY_A, Some("42"), from("emr", "ID-K-C", "P-C").to_string()).await;
        assert_eq!(s, 409, "{oo}");
        assert!(conflict_issue(&oo)["details"]["text"].as_str().unwrap().contains("Idempotency-Key"), "{oo}");
        let (_, list) = g.get(TEST_ADMIN_KEY, "/submissions").await;
        assert_eq!(list["submissions"].as_array().unwrap().len(), 2, "{list}");
        g.stop().await;
    })
    .await;
}

/// The same identity with other content is a correction sent without a new version: 409 naming
/// `/recordVersion`. The same content (keys in another order) is a duplicate. In a batch, one
/// conflict refuses the batch and stores none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_identity_with_other_content_is_a_conflict() {
    both_stores(|url| async move {
        let g = start(&url).await;
        let first = from("emr", "ID-C-1", "P-1");
        let (s, a) = g.post(KEY_A, None, first.to_string()).await;
        assert_eq!(s, 202, "{a}");
        // Same content, keys reordered and re-spaced: a duplicate.
        let reordered: serde_json::Map<String, Value> =
            first.as_object().unwrap().iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect();
        let (s, dup) = g.post(KEY_B, None, serde_json::to_string_pretty(&reordered).unwrap()).await;
        assert_eq!((s, &dup["id"], &dup["duplicate"]), (202, &a["id"], &json!(true)), "{dup}");
        // `recordVersion` written 1.0 is version 1: the same record.
        let as_decimal = first.to_string().replace("\"recordVersion\":1,", "\"recordVersion\":1.0,");
        assert!(as_decimal.contains("1.0"));
        let (s, dup) = g.post(KEY_A, None, as_decimal).await;
        assert_eq!((s, &dup["id"], &dup["duplicate"]), (202, &a["id"], &json!(true)), "{dup}");
        // Changed content, same version: a conflict that names the field.
        let mut changed = first.clone();
        changed["assessment"]["assessmentId"] = json!("A-CHANGED");
        let (s, oo) = g.post(KEY_A, None, changed.to_string()).await;
        assert_eq!(s, 409, "{oo}");
        assert_eq!(conflict_issue(&oo)["location"], json!(["/recordVersion"]));
        // With a new version it is accepted.
        changed["recordVersion"] = json!(2);
        let (s, v2) = g.post(KEY_A, None, changed.to_string()).await;
        assert_eq!((s, &v2["duplicate"]), (202, &json!(false)), "{v2}");
        // A batch holding one conflict stores nothing of the batch.
        let mut conflicting = first.clone();
        conflicting["assessment"]["assessmentId"] = json!("A-OTHER");
        let fresh = from("emr", "ID-C-NEW", "P-9");
        let body = format!("{fresh}\n{conflicting}\n");
        let r = client(KEY_A)
            .post(format!("{}/records", g.gw.base))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 409);
        let oo: Value = r.json().await.unwrap();
        assert!(conflict_issue(&oo)["details"]["text"].as_str().unwrap().starts_with("record 2"), "{oo}");
        let (_, list) = g.get(TEST_ADMIN_KEY, "/submissions").await;
        assert!(
            list["submissions"].as_array().unwrap().iter().all(|s| s["recordId"] != "ID-C-NEW"),
            "nothing of a refused batch is stored: {list}"
        );
        g.stop().await;
    })
    .await;
}

/// A client limited to some destinations reads only the submissions it could have made: others
/// are unknown to it (404), absent from its listings, and their audit (with the destinations'
/// answers) is not served to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_scoped_as_writes_are() {
    both_stores(|url| async move {
        let g = start(&url).await;
        const QAT_KEY: &str = "mhg_test-qat-only-0123456789abcdef0123456789";
        let (s, mine) = g.post(QAT_KEY, None, from("emr", "ID-S-QAT", "P-1").to_string()).await;
        assert_eq!(s, 202, "{mine}");
        let mut to_canada = from("emr", "ID-S-CAN", "P-2");
        to_canada["assessment"]["destinationCountry"] = json!("CAN");
        let (s, other) = g.post(KEY_A, None, to_canada.to_string()).await;
        assert_eq!(s, 202, "{other}");
        let (mine, other) = (mine["id"].as_str().unwrap(), other["id"].as_str().unwrap());
        assert_eq!(g.get(QAT_KEY, &format!("/submissions/{mine}")).await.0, 200);
        for path in [format!("/submissions/{other}"), format!("/submissions/{other}/audit")] {
            let (s, oo) = g.get(QAT_KEY, &path).await;
            assert_eq!(s, 404, "{path}: {oo}");
            assert_eq!(oo["issue"][0]["code"], "not-found");
        }
        let (_, list) = g.get(QAT_KEY, "/submissions").await;
        let ids: Vec<&str> = list["submissions"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [mine], "{list}");
        // Unrestricted readers and the admin see both.
        for key in [KEY_READER, TEST_ADMIN_KEY] {
            assert_eq!(g.get(key, &format!("/submissions/{other}")).await.0, 200);
            assert_eq!(g.get(key, "/submissions").await.1["submissions"].as_array().unwrap().len(), 2);
        }
        g.stop().await;
    })
    .await;
}

/// The scope check reads the query as the handler does: dead letters are admin-only however the
/// query spells `dead-letter`.
#[tokio::test]
async fn dead_letters_need_admin_however_the_query_is_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let g = start(&sqlite_url(&dir).await).await;
    for q in [
        "state=dead-letter",
        "state=dead%2Dletter",
        "state=%64ead-letter",
        "limit=5&state=dead%2dletter",
        "state=accepted&state=dead-letter",
    ] {
        let (s, oo) = g.get(KEY_READER, &format!("/submissions?{q}")).await;
        assert_eq!(s, 403, "{q}: {oo}");
        assert_eq!(oo["issue"][0]["code"], "forbidden", "{q}");
        let (s, _) = g.get(TEST_ADMIN_KEY, &format!("/submissions?{q}")).await;
        assert_ne!(s, 403, "{q}: the admin may");
    }
    assert_eq!(g.get(KEY_READER, "/submissions?state=accepted").await.0, 200);
    g.stop().await;
}

/// The store, its folder and the delivered files are private to the gateway's user, whatever
/// the umask (the tests run with the usual 022).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_data_is_private_to_the_gateways_user() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let g = start(&format!("sqlite://{}", data.join("mhg.db").display())).await;
    let (s, a) = g.post(KEY_A, None, from("emr", "ID-P-1", "P-1").to_string()).await;
    assert_eq!(s, 202, "{a}");
    g.delivered(a["id"].as_str().unwrap()).await;
    assert_eq!(mode(&data), 0o700, "the data folder");
    for f in ["mhg.db", "mhg.db-wal", "mhg.db-shm"] {
        let p = data.join(f);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{f}");
        }
    }
    assert_eq!(mode(&g.outbox.path().join("qat")), 0o700, "the outbox folder");
    for f in g.files("qat") {
        assert_eq!(mode(&g.outbox.path().join("qat").join(&f)), 0o600, "{f}");
    }
    g.stop().await;
}
