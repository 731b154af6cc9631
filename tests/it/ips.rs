//! IPS documents and printable pages (issue 15): every fixture record becomes an IPS document
//! that passes the gateway's own gate against `Bundle-uv-ips`, equal by meaning to the reviewed
//! document in `tests/golden/ips/`, and a page equal to `tests/golden/html/` (markup compared with
//! white space collapsed). `MHG_BLESS=1` rewrites both.

use serde_json::Value;

use crate::common::*;

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn golden_ips_documents_and_pages() {
    let p = pipeline();
    let bless = std::env::var("MHG_BLESS").is_ok();
    let mut failures = Vec::new();
    let (ips_dir, html_dir) = (root().join("tests/golden/ips"), root().join("tests/golden/html"));
    for f in fixtures() {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let mapped = p.convert_value(&read_json(&f)).expect("converts");
        let doc = match p.document(&mapped) {
            Ok(d) => d,
            Err(r) => {
                failures.push(format!("{name}: IPS document refused by the gate: {}", r.to_operation_outcome()));
                continue;
            }
        };
        let page = p.page(&doc).expect("renders");
        let html_name = name.replace(".json", ".html");
        if bless {
            std::fs::create_dir_all(&ips_dir).unwrap();
            std::fs::create_dir_all(&html_dir).unwrap();
            std::fs::write(ips_dir.join(&name), serde_json::to_string_pretty(&doc.bundle).unwrap() + "\n").unwrap();
            std::fs::write(html_dir.join(&html_name), &page).unwrap();
            continue;
        }
        let mut diff = Vec::new();
        match std::fs::read(ips_dir.join(&name)) {
            Ok(b) => json_diff(&doc.bundle, &serde_json::from_slice::<Value>(&b).expect("json"), "Bundle", &mut diff),
            Err(_) => diff.push("no expected document (run with MHG_BLESS=1 and review)".to_owned()),
        }
        match std::fs::read_to_string(html_dir.join(&html_name)) {
            Ok(h) if collapse(&h) == collapse(&page) => {}
            Ok(_) => diff.push("page differs from the reviewed one".to_owned()),
            Err(_) => diff.push("no expected page".to_owned()),
        }
        if !diff.is_empty() {
            diff.truncate(20);
            failures.push(format!("{name}:\n  {}", diff.join("\n  ")));
        }
    }
    assert!(failures.is_empty(), "IPS golden mismatches:\n{}", failures.join("\n"));
}

/// The gate holds the document to `Bundle-uv-ips`: a document without its Composition, or
/// with a required section dropped, is refused by the same validator.
#[test]
fn the_ips_profile_is_applied() {
    use mhg::validate::profile::Severity;
    let p = pipeline();
    let mapped = p.convert_value(&read_json(&root().join("tests/golden/records/01-us-immigrant-vnm-clear.json"))).expect("converts");
    let doc = p.document(&mapped).expect("gated").bundle;
    let errors =
        |d: &Value| p.validator.validate(d, &[mhg::map::ips::BUNDLE_PROFILE]).into_iter().filter(|f| f.severity == Severity::Error).count();
    assert_eq!(errors(&doc), 0);
    let mut no_composition = doc.clone();
    no_composition["entry"].as_array_mut().unwrap().remove(0);
    assert!(errors(&no_composition) > 0, "a document without a Composition is refused");
    let mut no_allergies = doc.clone();
    no_allergies["entry"][0]["resource"]["section"].as_array_mut().unwrap().remove(1);
    assert!(errors(&no_allergies) > 0, "a document without the allergies section is refused");
    let mut empty_without_reason = doc.clone();
    empty_without_reason["entry"][0]["resource"]["section"][0].as_object_mut().unwrap().remove("emptyReason");
    assert!(errors(&empty_without_reason) > 0, "an empty required section needs its emptyReason");
}

/// Same record, same bytes; and the document carries the transaction's identifiers.
#[test]
fn documents_are_deterministic_and_traceable() {
    let p = pipeline();
    for f in fixtures() {
        let v = read_json(&f);
        let m = p.convert_value(&v).expect("converts");
        let a = serde_json::to_vec(&p.document(&m).unwrap().bundle).unwrap();
        let b = serde_json::to_vec(&p.document(&p.convert_value(&v).unwrap()).unwrap().bundle).unwrap();
        assert_eq!(a, b, "{}", f.display());
        let doc: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(doc["identifier"]["value"], m.bundle["identifier"]["value"]);
        assert_eq!(doc["timestamp"], m.bundle["timestamp"]);
        let tx: Vec<&Value> = m.bundle["entry"].as_array().unwrap().iter().map(|e| &e["fullUrl"]).collect();
        let entries = doc["entry"].as_array().unwrap();
        assert_eq!(entries[0]["resource"]["resourceType"], "Composition");
        assert_eq!(entries[1]["resource"]["resourceType"], "Patient");
        assert_eq!(entries.len(), tx.len() + 1, "every transaction resource is in the document");
        for e in &entries[1..] {
            assert!(tx.contains(&&e["fullUrl"]), "{}: same full URLs", f.display());
            assert!(
                e["resource"]["text"]["div"].as_str().is_some_and(|d| d.len() > 60),
                "{}: a narrative in every resource",
                f.display()
            );
            assert!(e.get("request").is_none());
        }
        for s in entries[0]["resource"]["section"].as_array().unwrap() {
            assert!(
                s["text"]["div"].as_str().is_some_and(|d| d.len() > 60),
                "{}: a narrative in every section",
                f.display()
            );
            assert!(s.get("entry").is_some() != s.get("emptyReason").is_some());
        }
    }
}

fn mhg() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mhg"));
    c.current_dir(root());
    c
}

fn fixture(name: &str) -> String {
    root().join("tests/golden/records").join(name).display().to_string()
}

/// `mhg convert --format`: transaction stays the default; ips gives documents; html a page on
/// stdout for one record, one `.html` file per record under `--out`; anything else is refused.
#[test]
fn convert_formats_on_the_command_line() {
    let (a, b) = (fixture("30-shared-adult-refugee-clear.json"), fixture("31-shared-child-tb-class-b1.json"));
    let lines = |out: &std::process::Output| -> Vec<Value> {
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
    };
    let default = mhg().args(["convert", &a]).output().unwrap();
    let tx = mhg().args(["convert", "--format", "transaction", &a]).output().unwrap();
    assert_eq!(default.stdout, tx.stdout);
    assert_eq!(lines(&tx)[0]["type"], "transaction");

    let ips = mhg().args(["convert", "--format", "ips", &a, &b]).output().unwrap();
    assert_eq!(ips.status.code(), Some(0), "{}", String::from_utf8_lossy(&ips.stderr));
    let docs = lines(&ips);
    assert_eq!(docs.len(), 2);
    assert!(docs.iter().all(|d| d["type"] == "document" && d["entry"][0]["resource"]["resourceType"] == "Composition"));

    let html = mhg().args(["convert", "--format", "html", &a]).output().unwrap();
    assert_eq!(html.status.code(), Some(0));
    let page = String::from_utf8(html.stdout).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("Immunizations") && !page.contains("<script"));

    let dir = tempfile::tempdir().unwrap();
    let out = mhg().args(["convert", "--format", "html", "--out"]).arg(dir.path()).args([&a, &b]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let mut files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| f.ends_with(".html")), "{files:?}");

    let bad = mhg().args(["convert", "--format", "pdf", &a]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("transaction, ips or html"));
}

mod http {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use crate::common::*;
    use mhg::http::{AppState, router};

    async fn call(uri: &str, accept: Option<&str>, body: String) -> (StatusCode, String, String) {
        let app = router(AppState {
            pipeline: pipeline(),
            max_body_bytes: 1024 * 1024,
            max_records: 100,
            relay: None,
            guard: std::sync::Arc::new(mhg::http::Guard::open()),
        });
        let mut req = Request::post(uri).header("content-type", "application/json");
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let resp = app.oneshot(req.body(Body::from(body)).unwrap()).await.expect("answers");
        let status = resp.status();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned()).unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, ct, String::from_utf8_lossy(&bytes).into_owned())
    }

    fn record(name: &str) -> String {
        std::fs::read_to_string(root().join("tests/golden/records").join(name)).unwrap()
    }

    #[tokio::test]
    async fn convert_answers_documents_and_pages() {
        let r = record("31-shared-child-tb-class-b1.json");
        let (s, ct, body) = call("/fhir/$convert?format=ips", None, r.clone()).await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/fhir+json"));
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["type"], "document");
        let (s, ct, page) = call("/fhir/$convert", Some("text/html,application/xhtml+xml;q=0.9"), r.clone()).await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "text/html; charset=utf-8"));
        assert!(page.contains("TB screening"));
        let (_, _, page2) = call("/fhir/$convert?format=html", None, r.clone()).await;
        assert_eq!(page, page2);
        let (s, _, tx) = call("/fhir/$convert?format=transaction", Some("text/html"), r.clone()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(serde_json::from_str::<Value>(&tx).unwrap()["type"], "transaction", "format wins over Accept");
        let batch = format!(
            "{}\n{}\n",
            serde_json::from_str::<Value>(&r).unwrap(),
            serde_json::from_str::<Value>(&record("30-shared-adult-refugee-clear.json")).unwrap()
        );
        let (s, ct, body) = call("/fhir/$convert?format=ips", None, batch.clone()).await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "application/fhir+ndjson"));
        assert_eq!(body.lines().count(), 2);
        let (s, _, body) = call("/fhir/$convert?format=html", None, batch).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        let (s, _, body) = call("/fhir/$convert?format=pdf", None, r).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("OperationOutcome") && body.contains("format"));
    }
}

/// Destinations with `format = "ips"`: the real FHIR server gets each record's document at
/// `[base]/Bundle` (by its identifier: sending it again leaves one), a folder gets the document
/// as the record's file; both are the documents the gate passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ips_destinations_get_documents() {
    use crate::relay::{post_records, wait_state};
    use crate::support::{Gateway, Hfs, directory_destination, fhir_destination, search_count, sqlite_url};
    use mhg::pipeline::Format;
    let hfs = Hfs::start("off").await;
    let store = tempfile::tempdir().unwrap();
    let outbox = tempfile::tempdir().unwrap();
    let mut to_server = fhir_destination("clinic", &hfs.base);
    to_server.format = Format::Ips;
    let mut to_folder = directory_destination("files", outbox.path());
    to_folder.format = Format::Ips;
    let gw = Gateway::start(&sqlite_url(&store).await, vec![to_server, to_folder]).await;
    let client = http();
    let names = ["01-us-immigrant-vnm-clear.json", "31-shared-child-tb-class-b1.json"];
    let records: Vec<Value> = names.iter().map(|n| read_json(&root().join("tests/golden/records").join(n))).collect();
    let body: String = records.iter().map(|r| r.to_string() + "\n").collect();
    let (s, r) = post_records(&client, &gw.base, body).await;
    assert_eq!(s, 202, "{r}");
    let p = pipeline();
    for (i, sub) in r["submissions"].as_array().unwrap().iter().enumerate() {
        let st = wait_state(&client, &gw.base, sub["id"].as_str().unwrap(), "delivered", 120).await;
        let expected = p.document(&p.convert_value(&records[i]).unwrap()).unwrap().bundle;
        let ident = &expected["identifier"];
        let query = format!(
            "Bundle?identifier={}%7C{}",
            ident["system"].as_str().unwrap().replace(':', "%3A").replace('/', "%2F"),
            ident["value"].as_str().unwrap().replace('@', "%40")
        );
        assert_eq!(search_count(&client, &hfs.base, &query).await, 1, "{}: {st}", names[i]);
        // Sending it again (as a retry would) leaves one document.
        let again = client
            .put(format!("{}/{query}", hfs.base))
            .header("content-type", "application/fhir+json")
            .body(expected.to_string())
            .send()
            .await
            .unwrap();
        assert!(again.status().is_success(), "{}", again.status());
        assert_eq!(search_count(&client, &hfs.base, &query).await, 1, "{}: idempotent by identifier", names[i]);
        let at_server: Value = client.get(format!("{}/{query}", hfs.base)).send().await.unwrap().json().await.unwrap();
        let doc = &at_server["entry"][0]["resource"];
        assert_eq!(doc["type"], "document");
        assert_eq!(doc["entry"].as_array().map(Vec::len), expected["entry"].as_array().map(Vec::len));
        let file = mhg::files::record_file_name(
            records[i]["sourceSystem"].as_str().unwrap(),
            records[i]["recordId"].as_str().unwrap(),
            records[i]["recordVersion"].as_i64().unwrap(),
        );
        let written: Value = serde_json::from_slice(&std::fs::read(outbox.path().join(&file)).unwrap()).unwrap();
        assert_eq!(written, expected, "{}: the folder gets the gated document", names[i]);
    }
    gw.stop().await;
}

/// `format` of a destination: `transaction` by default, `ips` taken, `html` refused naming the key.
#[test]
fn destination_format_is_checked() {
    use mhg::relay::{DestinationConfig, DestinationKind};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mhg.toml");
    std::fs::write(
        &file,
        "[[destinations]]\nname = \"clinic\"\nkind = \"directory\"\npath = \"out\"\nformat = \"ips\"\n",
    )
    .unwrap();
    let cfg = mhg::config::Config::load_from(Some(&file), &Default::default()).expect("loads");
    assert_eq!(cfg.destinations.as_ref().unwrap()[0].format, mhg::pipeline::Format::Ips);
    let mut d = DestinationConfig { path: Some(dir.path().into()), ..DestinationConfig::new("d", DestinationKind::Directory) };
    assert_eq!(d.format, mhg::pipeline::Format::Transaction);
    d.format = mhg::pipeline::Format::Html;
    assert!(d.check().unwrap_err().contains("destinations[d].format"));
}

/// The page as a person sees it: Debian's Chromium, headless, opens the page offline (the
/// page's own policy forbids fetching anything) and what it renders holds the person in each
/// script (Arabic right to left), the estimated birth date marked, the TB classification, the
/// vaccinations table with their sources, the results with units and codes, and the provenance.
/// It also prints to PDF (A4 by the page's print styles). `MHG_BLESS=1` refreshes the
/// screenshot in `docs/`.
#[test]
fn pages_render_in_a_real_browser() {
    let browser = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("chromium is installed (scripts/test installs Debian's chromium when root)");
    let p = pipeline();
    let dir = tempfile::tempdir().unwrap();
    let page_of = |name: &str| {
        let m = p.convert_value(&read_json(&root().join("tests/golden/records").join(name))).unwrap();
        let path = dir.path().join(name.replace(".json", ".html"));
        std::fs::write(&path, p.page(&m).unwrap()).unwrap();
        path
    };
    let run = |args: &[&str], page: &std::path::Path| {
        let profile = dir.path().join("profile");
        let out = std::process::Command::new(browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", "--hide-scrollbars"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("chromium runs");
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let arabic = page_of("09-eu-phr-syr-arabic-post-arrival.json");
    let dom = run(&["--dump-dom"], &arabic);
    for want in
        ["dir=\"rtl\"", "الخطيب", "Al-Khatib", "Immunizations", "Reported, not verified", "Given here", "TD-8812", "Where this came from"]
    {
        assert!(dom.contains(want), "the rendered page shows {want}");
    }
    assert!(!dom.contains("<script"), "no script");
    let tb = page_of("31-shared-child-tb-class-b1.json");
    let dom = run(&["--dump-dom"], &tb);
    for want in ["(estimated)", "TB classification", "Class B1 TB, pulmonary", "LOINC 71773-6", "IU/mL", "Copied from: Vaccination card"] {
        assert!(dom.contains(want), "the rendered page shows {want}");
    }
    let pdf = dir.path().join("page.pdf");
    run(&[&format!("--print-to-pdf={}", pdf.display()), "--no-pdf-header-footer"], &tb);
    let bytes = std::fs::read(&pdf).expect("a PDF was printed");
    assert!(bytes.starts_with(b"%PDF") && bytes.len() > 10_000);
    let shot = if std::env::var("MHG_BLESS").is_ok() { root().join("docs/ips-summary.png") } else { dir.path().join("shot.png") };
    run(&[&format!("--screenshot={}", shot.display()), "--window-size=1000,2100"], &tb);
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
}

/// Markup in a record is text on the page and in every narrative, never markup.
#[test]
fn markup_in_a_record_is_escaped() {
    let p = pipeline();
    let mut rec = read_json(&root().join("tests/golden/records/30-shared-adult-refugee-clear.json"));
    rec["person"]["names"][0]["family"] = "<script>alert(1)</script>".into();
    rec["assessment"]["site"]["name"] = "A & B \"<img src=x onerror=y>\"".into();
    let m = p.convert_value(&rec).expect("converts");
    let doc = p.document(&m).expect("gated");
    let page = p.page(&doc).unwrap();
    assert!(!page.contains("<script") && !page.contains("<img"), "escaped on the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && page.contains("A &amp; B &quot;&lt;img"));
    let composition = &doc.bundle["entry"][0]["resource"];
    let mut divs: Vec<&str> =
        doc.bundle["entry"].as_array().unwrap().iter().filter_map(|e| e["resource"]["text"]["div"].as_str()).collect();
    divs.extend(composition["section"].as_array().unwrap().iter().filter_map(|s| s["text"]["div"].as_str()));
    assert!(divs.len() > 10);
    for d in divs {
        assert!(!d.contains("<script") && !d.contains("<img"), "escaped in the narratives: {d}");
    }
}
