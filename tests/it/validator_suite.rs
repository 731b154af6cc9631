//! The HL7 validator's own R4 test cases (`../shared/test-suites/fhir-validator-r4/`), run with
//! the profile validator and compared with the HL7 Java validator's recorded outcomes: a case
//! agrees when the verdict (any error or none) and the set of error `expression`s match.
//! Agreement is printed per module; the test fails when a case that agreed in the committed
//! baseline (`conformance/validator-r4-baseline.json`) no longer does. `MHG_BLESS=1` rewrites
//! the baseline (review the diff: it must only gain agreements).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use mhg::validate::profile::{Severity, Validator};
use serde_json::{Value, json};

use crate::common::*;

fn suite() -> PathBuf {
    std::env::var("MHG_TEST_SUITES").map(PathBuf::from).unwrap_or_else(|_| root().join("../shared/test-suites")).join("fhir-validator-r4")
}

/// The definitions a case names, JSON or XML (read as the gateway reads them).
fn load(dir: &Path, files: Option<&Value>) -> Vec<Value> {
    static READER: std::sync::OnceLock<Validator> = std::sync::OnceLock::new();
    let reader = READER.get_or_init(|| Validator::new(crate::profile::shipped()));
    files
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .filter_map(|f| std::fs::read(dir.join(f)).ok())
        .filter_map(|b| match b.iter().find(|c| !c.is_ascii_whitespace()) {
            Some(b'<') => reader.xml_to_json(std::str::from_utf8(&b).ok()?).ok(),
            _ => serde_json::from_slice(&b).ok(),
        })
        .collect()
}

/// (any error, error expressions) of a Java outcome: a file under expected/, an inline
/// `outcome` (an OperationOutcome), or an inline count (`errorCount`).
fn java_outcome(dir: &Path, java: &Value) -> Option<(bool, Option<BTreeSet<String>>)> {
    let inline = java.get("outcome").filter(|o| o["resourceType"] == "OperationOutcome");
    match java {
        _ if inline.is_some() || java.is_string() => {
            let oo: Value = match (inline, java) {
                (Some(o), _) => o.clone(),
                (None, Value::String(p)) => serde_json::from_slice(&std::fs::read(dir.join("expected").join(p)).ok()?).ok()?,
                _ => return None,
            };
            let errs: BTreeSet<String> = oo["issue"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| matches!(i["severity"].as_str(), Some("error" | "fatal")))
                .flat_map(|i| i["expression"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e.as_str().map(strip_comments))
                .collect();
            let any = oo["issue"].as_array().into_iter().flatten().any(|i| matches!(i["severity"].as_str(), Some("error" | "fatal")));
            Some((any, Some(errs)))
        }
        Value::Object(o) => Some((o.get("errorCount").and_then(Value::as_u64).unwrap_or(0) > 0, None)),
        _ => None,
    }
}

/// Java annotates nested resources in paths (`entry[0].resource/*Patient/1*/.name`): a
/// presentation detail, removed before comparing.
fn strip_comments(e: &str) -> String {
    let mut out = String::with_capacity(e.len());
    let mut rest = e;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i..].find("*/") {
            Some(j) => rest = &rest[i + j + 2..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// A case's JSON; a leading UTF-8 byte order mark is skipped (RFC 8259 lets a parser ignore
/// it, and the HL7 validator does).
fn parse(bytes: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes))
}

/// Our verdict and error expressions for a case: JSON read as `mhg validate` reads it (a
/// departure from JSON, such as a comment, is an error at its path unless `allow_comments`).
fn ours(v: &Validator, bytes: &[u8], profile: Option<&str>, allow_comments: bool) -> (bool, BTreeSet<String>) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let parsed = match bytes.iter().find(|c| !c.is_ascii_whitespace()) {
        // An XML case (the suite's own cases are JSON; others may not be).
        Some(b'<') => std::str::from_utf8(bytes).map_err(|e| e.to_string()).and_then(|t| v.xml_to_json(t)).ok().map(|v| (v, Vec::new())),
        _ => mhg::validate::document::parse_document(bytes, 128, allow_comments).ok(),
    };
    let Some((value, mut f)) = parsed else { return (true, BTreeSet::new()) };
    let profiles: Vec<&str> = profile.into_iter().collect();
    f.extend(v.validate(&value, &profiles));
    let errs: BTreeSet<String> = f.iter().filter(|f| f.severity == Severity::Error).map(|f| f.expression.clone()).collect();
    (!errs.is_empty(), errs)
}

/// Whether the case `id` (`NNN file...`) is in the `tx` module.
fn tx_case(manifest: &Value, id: &str) -> bool {
    let n: usize = id.get(..3).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    manifest["test-cases"].get(n).is_some_and(|c| c["module"] == "tx")
}

#[test]
fn hl7_validator_r4_cases_agree_with_the_baseline() {
    let dir = suite();
    let manifest = read_json(&dir.join("manifest.json"));
    let cases_dir = dir.join("cases");
    let packages = crate::profile::shipped();
    // As the gateway runs it (`profile::load::load`): with the FHIRPath engine for invariants.
    let model = std::sync::Arc::new(mhg::validate::fhirpath::model::TypeModel::from_packages(&packages));
    let engine: std::sync::Arc<dyn mhg::validate::profile::InvariantEngine> =
        std::sync::Arc::new(mhg::validate::fhirpath::FhirPath::new(model).expect("FHIRPath engine"));
    let mut results: BTreeMap<String, bool> = BTreeMap::new();
    let mut per_module: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut detail = Vec::new();
    for (n, case) in manifest["test-cases"].as_array().expect("cases").iter().enumerate() {
        let file = case["file"].as_str().unwrap_or_default();
        let module = case["module"].as_str().unwrap_or("?").to_owned();
        let bytes = std::fs::read(cases_dir.join(file)).unwrap_or_default();
        let mut defs = load(&cases_dir, case.get("supporting"));
        defs.extend(load(&cases_dir, case.get("profiles")));
        // R5 definitions the harness loads as R5 (`supporting5`): an extension's definition
        // reads the same in R4.
        defs.extend(load(&cases_dir, case.get("supporting5")));
        // Packages the case carries as files (`.tgz`), with those its `package-map` serves
        // as dependencies: loaded as `mhg validate --package` loads them. Packages named
        // only by id (from the registry) are not fetched.
        let local: Vec<PathBuf> = case["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(case["package-map"].as_object().into_iter().flat_map(|m| m.values()))
            .filter_map(Value::as_str)
            .map(|p| cases_dir.join(p))
            .filter(|p| p.is_file())
            .collect();
        let packages = if local.is_empty() { packages.clone() } else { crate::profile::shipped_with(&local) };
        let mut runs: Vec<(String, Option<String>, Vec<Value>, &Value)> = Vec::new();
        if let Some(j) = case.get("java") {
            runs.push((format!("{n:03} {file}"), None, defs.clone(), j));
        }
        if let Some(p) = case.get("profile") {
            if let (Some(src), Some(j)) = (p["source"].as_str(), p.get("java")) {
                let mut pdefs = defs.clone();
                pdefs.extend(load(&cases_dir, p.get("supporting")));
                let sd = load(&cases_dir, Some(&json!([src])));
                let url = sd.first().and_then(|s| s["url"].as_str()).map(str::to_owned);
                pdefs.extend(sd);
                runs.push((format!("{n:03} {file} profile {src}"), url, pdefs, j));
            }
        }
        for (id, profile, defs, java) in runs {
            let Some((jv, jexpr)) = java_outcome(&dir, java) else { continue };
            // Unknown extensions are errors, as the HL7 validator reports them by default.
            let v = Validator::new(packages.clone())
                .with_loose(defs)
                .with_engine(engine.clone())
                .with_unknown_extension_errors(true)
                .with_contained_skipped(case["validateContains"] == "IGNORE")
                .with_references_checked(case["validateReference"] == "CHECK_EXISTS_AND_TYPE")
                .with_no_experimental_content(case["no-experimental-content"] == true)
                // The harness's defaults: example URLs allowed, no extension domains, no
                // security checks.
                .with_example_urls(case["examples"] != false)
                .with_extension_domains(
                    case["allowed-extension-domain"]
                        .as_str()
                        .into_iter()
                        .chain(case["allowed-extension-domains"].as_array().into_iter().flatten().filter_map(Value::as_str))
                        .map(str::to_owned)
                        .collect(),
                )
                .with_security_checks(case["security-checks"] == true)
                .with_no_html_in_markdown(case["noHtmlInMarkdown"] == true)
                // The suite's convention: no `best-practice` means best practice is ignored.
                .with_best_practice(
                    case["best-practice"]
                        .as_str()
                        .and_then(|b| mhg::validate::profile::BestPractice::parse(&b.to_lowercase()))
                        .unwrap_or(mhg::validate::profile::BestPractice::Ignore),
                );
            let (ov, oexpr) = ours(&v, &bytes, profile.as_deref(), case["allow-comments"] == true);
            // `MHG_SUITE_CASE=033` prints our findings for the cases whose id starts so.
            if std::env::var("MHG_SUITE_CASE").is_ok_and(|c| id.starts_with(&c)) {
                let value: Value = parse(&bytes).unwrap_or_default();
                for f in v.validate(&value, &profile.iter().map(String::as_str).collect::<Vec<_>>()) {
                    println!("{id}: {:?} {} {} | {}", f.severity, f.code, f.expression, f.text);
                }
            }
            let agree = jv == ov && jexpr.as_ref().is_none_or(|j| *j == oexpr);
            if !agree {
                detail.push(format!("{id} [{module}]: java {jv} {jexpr:?} / ours {ov} {oexpr:?}"));
            }
            let m = per_module.entry(module.clone()).or_default();
            m.0 += usize::from(agree);
            m.1 += 1;
            results.insert(id, agree);
        }
    }
    let (mut a, mut t) = (0, 0);
    for (m, (ok, n)) in &per_module {
        println!("module {m}: {ok}/{n} agree");
        if m != "tx" {
            a += ok;
            t += n;
        }
    }
    println!("outside tx: {a}/{t} agree ({:.1}%)", 100.0 * a as f64 / t.max(1) as f64);
    // Reported apart: cases that turn only on terminology content no loaded package carries
    // (`conformance/validator-r4-terminology.json`, each with the content it needs).
    let apart = read_json(&root().join("conformance/validator-r4-terminology.json"));
    let apart: Vec<&String> = apart.as_object().map(|m| m.keys().filter(|k| !k.starts_with('_')).collect()).unwrap_or_default();
    let listed = |id: &str| apart.iter().any(|k| id == k.as_str());
    let (mut a2, mut t2) = (0, 0);
    for (id, ok) in &results {
        if listed(id) || tx_case(&manifest, id) {
            continue;
        }
        a2 += usize::from(*ok);
        t2 += 1;
    }
    println!(
        "outside tx, {} cases needing terminology content apart: {a2}/{t2} agree ({:.1}%)",
        apart.len(),
        100.0 * a2 as f64 / t2.max(1) as f64
    );
    for d in &detail {
        println!("disagrees: {d}");
    }
    let baseline_path = root().join("conformance/validator-r4-baseline.json");
    if std::env::var("MHG_BLESS").is_ok() {
        let text = serde_json::to_string_pretty(&results).expect("json");
        std::fs::write(&baseline_path, text + "\n").expect("write baseline");
        return;
    }
    let baseline: BTreeMap<String, bool> =
        serde_json::from_slice(&std::fs::read(&baseline_path).expect("baseline (MHG_BLESS=1 writes it)")).expect("json");
    let regressions: Vec<&String> = baseline.iter().filter(|(k, v)| **v && results.get(*k) != Some(&true)).map(|(k, _)| k).collect();
    assert!(regressions.is_empty(), "cases that agreed in the baseline no longer do: {regressions:#?}");
}
