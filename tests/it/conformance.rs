//! The integration tester's kit (issue 14): the checked-in vectors against the converter, their
//! coverage of the schema, and the runs of `mhg conformance` against real and faulty targets.

use mhg::conformance::{compare, vectors};

use crate::common::{pipeline, root};

fn checked_in() -> vectors::VectorSet {
    vectors::load(&root().join("conformance/vectors")).expect("the checked-in vectors load")
}

/// Each valid vector converts to its checked-in Bundle (by meaning) with the same warnings; each
/// bad one is refused with its status, code and locations. Regenerating gives the same manifest.
#[test]
fn vectors_match_the_converter() {
    let p = pipeline();
    let set = checked_in();
    let today = mhg::pipeline::today_utc();
    let mut failures = Vec::new();
    for v in &set.valid {
        match p.convert_value_at(&v.record, today) {
            Ok(m) => {
                let d = compare::diff(&v.bundle, &m.bundle);
                if !d.is_empty() {
                    failures.push(format!("{}: Bundle differs at {d:?}", v.name));
                }
                let mut w: Vec<String> = m.warnings.iter().filter_map(|w| w.input_path.clone()).collect();
                w.sort();
                w.dedup();
                if w != v.warnings {
                    failures.push(format!("{}: warnings at {w:?}, expected {:?}", v.name, v.warnings));
                }
            }
            Err(r) => failures.push(format!("{}: refused: {:?}", v.name, r.to_operation_outcome())),
        }
    }
    for b in &set.bad {
        match p.convert_bytes(&b.body, None).into_iter().next().map(|o| o.result) {
            Some(Err(r)) => {
                let got = vectors::Expect::of(&r);
                if got != b.expect {
                    failures.push(format!("{}: refused as {got:?}, expected {:?}", b.name, b.expect));
                }
            }
            _ => failures.push(format!("{}: not refused", b.name)),
        }
    }
    let seeds = mhg::cli::conformance::read_seeds(&root().join("tests/golden/records")).expect("seeds");
    let again = vectors::generate(&p, &seeds, today).expect("the vectors generate");
    let (a, b) = (vectors::manifest(&again), vectors::manifest(&set));
    let d = compare::diff(&b, &a);
    if !d.is_empty() {
        failures.push(format!(
            "regenerating changes the manifest at {d:?}: run `mhg conformance vectors --out conformance/vectors`"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} vector(s) disagree with the converter:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The set covers every enum value of the schema, each optional property present and absent,
/// and the kinds of record the issue lists; a schema change without new vectors fails here.
#[test]
fn vectors_cover_the_schema() {
    let set = checked_in();
    let gaps = vectors::coverage_gaps(&set, &pipeline().terminology.record_schema);
    assert!(gaps.is_empty(), "the vectors do not cover the schema:\n{}", gaps.join("\n"));
    // The check itself bites: a value the set lacks is a gap.
    let mut schema = pipeline().terminology.record_schema.clone();
    schema["$defs"]["person"]["properties"]["sex"]["enum"].as_array_mut().expect("sex enum").push(serde_json::json!("Q"));
    let gaps = vectors::coverage_gaps(&set, &schema);
    assert!(gaps.iter().any(|g| g.contains("/person/sex") && g.contains("\"Q\"")), "{gaps:?}");
}

/// Every TestScript is valid FHIR R4 (the gateway's own validator).
#[test]
fn testscripts_are_valid_fhir() {
    let set = checked_in();
    let p = pipeline();
    let scripts = mhg::conformance::testscript::scripts(&set);
    assert_eq!(scripts.len(), set.valid.len() + set.bad.len());
    for (file, s) in scripts.iter().step_by(7) {
        let errors: Vec<_> = p
            .validator
            .validate(s, &[])
            .into_iter()
            .filter(|f| f.severity == mhg::validate::profile::Severity::Error)
            .map(|f| format!("{} {}", f.expression, f.text))
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
    }
}

// ---------- the runs ----------

use std::process::Command;

fn mhg_bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mhg"));
    c.env("MHG_LOG_LEVEL", "warn");
    c
}

/// Runs `mhg conformance ...` off the runtime; returns (exit status, stdout, stderr).
async fn kit(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = mhg_bin().arg("conformance").args(&args).output().expect("mhg runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("joined")
}

fn report_args(dir: &std::path::Path) -> Vec<String> {
    let p = |f: &str| dir.join(f).display().to_string();
    vec![
        "--vectors".into(),
        root().join("conformance/vectors").display().to_string(),
        "--junit".into(),
        p("junit.xml"),
        "--report".into(),
        p("report.html"),
    ]
}

/// The reports a run wrote: JUnit with a testcase per check, the HTML page self-contained with
/// its chart, a TestReport that is valid FHIR.
fn check_reports(dir: &std::path::Path, expect_pass: bool) -> (String, String) {
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit written");
    let doc = roxmltree::Document::parse(&junit).expect("junit is XML");
    assert!(doc.descendants().filter(|n| n.has_tag_name("testcase")).count() > 100, "a testcase per check");
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report written");
    assert!(
        html.contains("<svg") && !html.contains("http-equiv") && !html.contains("<script") && !html.contains("src=\"http"),
        "self-contained"
    );
    let tr: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.testreport.json")).expect("TestReport written")).expect("json");
    assert_eq!(tr["result"], if expect_pass { "pass" } else { "fail" });
    let errors: Vec<_> = pipeline()
        .validator
        .validate(&tr, &[])
        .into_iter()
        .filter(|f| f.severity == mhg::validate::profile::Severity::Error)
        .map(|f| f.text)
        .collect();
    assert!(errors.is_empty(), "TestReport: {errors:?}");
    (junit, html)
}

/// `mhg conformance gateway` against this gateway (in process, a directory destination): every
/// check passes, exit 0, the reports are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_against_this_gateway_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let gw = crate::support::Gateway::start(
        &crate::support::sqlite_url(&dir).await,
        vec![crate::support::directory_destination("files", out.path())],
    )
    .await;
    let mut args: Vec<String> =
        vec!["gateway".into(), "--base-url".into(), gw.base.clone(), "--api-key".into(), crate::common::TEST_ADMIN_KEY.into()];
    args.extend(report_args(dir.path()));
    let (code, stdout, stderr) = kit(args).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    let (junit, _) = check_reports(dir.path(), true);
    assert!(
        junit.contains("idempotent-resend [seed-01") && junit.contains("records-refusal [bad-"),
        "{}",
        &junit[..2000]
    );
    // A wrong key is a failing run (every refusal), an unreachable gateway a usage error.
    let (code, _, _) = kit(vec![
        "gateway".into(),
        "--base-url".into(),
        "http://127.0.0.1:9".into(),
        "--api-key".into(),
        "x".into(),
    ])
    .await;
    assert_eq!(code, 2);
    gw.stop().await;
}

/// `mhg conformance destination` against the real FHIR server on loopback: every check passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_against_the_real_fhir_server_passes() {
    let hfs = crate::support::Hfs::start("off").await;
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = vec!["destination".into(), "--base-url".into(), hfs.base.clone()];
    args.extend(report_args(dir.path()));
    let (code, stdout, stderr) = kit(args).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (junit, _) = check_reports(dir.path(), true);
    for rule in [
        "capability-transaction",
        "exactly-one-per-identifier",
        "amended-wins",
        "entered-in-error",
        "resend-no-duplicates",
        "profile-valid",
    ] {
        assert!(junit.contains(rule), "{rule} was checked");
    }
}

// ---------- a server that breaks one rule at a time ----------

mod fake {
    use std::sync::{Arc, Mutex};

    use axum::extract::{Path, RawQuery, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use serde_json::{Value, json};

    #[derive(Clone, Copy, PartialEq, Debug)]
    pub enum Fault {
        /// The same transaction sent again creates everything again.
        DuplicatesOnResend,
        /// A conditional update always creates (and the CapabilityStatement says so).
        IgnoresConditionalUpdate,
        /// An update of an existing resource is kept as history, the first version stays current.
        OverwritesNewer,
        /// Transactions are refused (and not claimed).
        RejectsTransactions,
    }

    #[derive(Default)]
    struct Data {
        /// (type, id, versions)
        resources: Vec<(String, String, Vec<Value>)>,
        seen: Vec<String>,
    }

    type S = Arc<(Fault, Mutex<Data>)>;

    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 3 <= b.len() {
                if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                    out.push(x);
                    i += 3;
                    continue;
                }
            }
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn identifier_of(query: &str) -> Option<(String, String)> {
        let v = query.split('&').find_map(|p| p.strip_prefix("identifier="))?;
        let v = decode(v);
        let (s, x) = v.split_once('|')?;
        Some((s.to_owned(), x.to_owned()))
    }

    fn matches(r: &Value, sys: &str, val: &str) -> bool {
        r["identifier"].as_array().into_iter().flatten().any(|i| i["system"] == sys && i["value"] == val)
    }

    fn current(f: Fault, versions: &[Value]) -> Value {
        if f == Fault::OverwritesNewer { versions[0].clone() } else { versions[versions.len() - 1].clone() }
    }

    async fn metadata(State(s): State<S>) -> Json<Value> {
        let f = s.0;
        let types =
            ["Patient", "Observation", "Immunization", "Organization", "Practitioner", "Specimen", "Location", "Consent", "Provenance"];
        let resource: Vec<Value> = types
            .iter()
            .map(|t| {
                json!({"type": t, "interaction": [{"code": "read"}, {"code": "update"}, {"code": "search-type"}, {"code": "delete"}],
                   "conditionalUpdate": f != Fault::IgnoresConditionalUpdate, "searchParam": [{"name": "identifier", "type": "token"}]})
            })
            .collect();
        let interaction = if f == Fault::RejectsTransactions { json!([]) } else { json!([{"code": "transaction"}]) };
        Json(
            json!({"resourceType": "CapabilityStatement", "status": "active", "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
            "rest": [{"mode": "server", "interaction": interaction, "resource": resource}]}),
        )
    }

    async fn transaction(State(s): State<S>, Json(bundle): Json<Value>) -> axum::response::Response {
        let f = s.0;
        if f == Fault::RejectsTransactions {
            let oo = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-supported", "diagnostics": "transactions are not supported"}]});
            return (StatusCode::BAD_REQUEST, Json(oo)).into_response();
        }
        let mut d = s.1.lock().unwrap();
        let text = bundle.to_string();
        let resend = d.seen.contains(&text);
        d.seen.push(text);
        let mut ids: Vec<(String, String)> = Vec::new();
        let mut answers = Vec::new();
        for e in bundle["entry"].as_array().into_iter().flatten() {
            let mut res = e["resource"].to_string();
            for (full, local) in &ids {
                res = res.replace(&format!("\"{full}\""), &format!("\"{local}\""));
            }
            let mut res: Value = serde_json::from_str(&res).unwrap();
            let url = e["request"]["url"].as_str().unwrap_or_default();
            let rtype = res["resourceType"].as_str().unwrap_or_default().to_owned();
            let existing = match url.split_once('?') {
                Some((_, q)) => {
                    let (sys, val) = identifier_of(q).unwrap_or_default();
                    let create = f == Fault::IgnoresConditionalUpdate || (f == Fault::DuplicatesOnResend && resend);
                    if create { None } else { d.resources.iter().position(|(t, _, v)| *t == rtype && matches(&current(f, v), &sys, &val)) }
                }
                None => {
                    let id = url.rsplit('/').next().unwrap_or_default().to_owned();
                    match d.resources.iter().position(|(t, i, _)| *t == rtype && *i == id) {
                        Some(p) => Some(p),
                        None => {
                            d.resources.push((rtype.clone(), id, Vec::new()));
                            Some(d.resources.len() - 1)
                        }
                    }
                }
            };
            let pos = existing.unwrap_or_else(|| {
                let id = format!("f{}", d.resources.len() + 1);
                d.resources.push((rtype.clone(), id, Vec::new()));
                d.resources.len() - 1
            });
            let (_, id, versions) = &mut d.resources[pos];
            res["id"] = json!(id.clone());
            res["meta"]["versionId"] = json!((versions.len() + 1).to_string());
            versions.push(res);
            if let Some(full) = e["fullUrl"].as_str() {
                ids.push((full.to_owned(), format!("{rtype}/{id}")));
            }
            answers.push(json!({"response": {"status": "200 OK", "location": format!("{rtype}/{id}/_history/{}", versions.len())}}));
        }
        Json(json!({"resourceType": "Bundle", "type": "transaction-response", "entry": answers})).into_response()
    }

    async fn search(State(s): State<S>, Path(rtype): Path<String>, RawQuery(q): RawQuery) -> Json<Value> {
        let d = s.1.lock().unwrap();
        let (sys, val) = identifier_of(&q.unwrap_or_default()).unwrap_or_default();
        let entry: Vec<Value> = d
            .resources
            .iter()
            .filter(|(t, _, v)| *t == rtype && !v.is_empty() && matches(&current(s.0, v), &sys, &val))
            .map(|(_, _, v)| json!({"resource": current(s.0, v), "search": {"mode": "match"}}))
            .collect();
        Json(json!({"resourceType": "Bundle", "type": "searchset", "total": entry.len(), "entry": entry}))
    }

    async fn delete(State(s): State<S>, Path((rtype, id)): Path<(String, String)>) -> StatusCode {
        s.1.lock().unwrap().resources.retain(|(t, i, _)| !(*t == rtype && *i == id));
        StatusCode::NO_CONTENT
    }

    /// Serves on a loopback port; returns its base URL.
    pub async fn start(f: Fault) -> String {
        let state: S = Arc::new((f, Mutex::new(Data::default())));
        let app = Router::new()
            .route("/", post(transaction))
            .route("/metadata", get(metadata))
            .route("/{rtype}", get(search))
            .route("/{rtype}/{id}", axum::routing::delete(delete))
            .with_state(state);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        base
    }
}

/// Each fault fails the run, naming the rule it breaks (and only through the checks that see it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kit_fails_a_server_that_breaks_one_rule() {
    use fake::Fault::*;
    use mhg::conformance::check::Verdict;
    // The records each rule needs: an amended pair, entered-in-error entries, and a few others.
    let mut set = checked_in();
    set.valid.retain(|v| ["seed-01", "seed-19", "seed-20", "seed-21", "seed-22"].iter().any(|p| v.name.starts_with(p)));
    let p = pipeline();
    let cases = [
        (DuplicatesOnResend, vec!["resend-no-duplicates"]),
        (IgnoresConditionalUpdate, vec!["capability-conditional-update", "exactly-one-per-identifier"]),
        (OverwritesNewer, vec!["amended-wins"]),
        (RejectsTransactions, vec!["capability-transaction", "delivered"]),
    ];
    for (fault, rules) in cases {
        let base = fake::start(fault).await;
        let dest = mhg::relay::deliver::Destination::new(crate::support::fhir_destination("fake", &base)).unwrap();
        let run = mhg::conformance::destination::run(&dest, &p.validator, &[], &set, &|_| {}).await.expect("reachable");
        assert_eq!(run.status(), 1, "{fault:?} must fail the run");
        let failed: Vec<&str> = run.checks.iter().filter(|c| c.verdict == Verdict::Fail).map(|c| c.rule.as_str()).collect();
        for r in &rules {
            assert!(failed.contains(r), "{fault:?}: rule {r} must fail; failed: {:?}", {
                let mut f = failed.clone();
                f.dedup();
                f
            });
        }
        let junit = mhg::conformance::report::junit(&run);
        assert!(junit.contains(&format!("type=\"{}\"", rules[0])), "{fault:?}: the JUnit failure names the rule");
    }
}
