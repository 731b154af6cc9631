//! The profile validator: the gateway's golden Bundles, the IPS 2.0.0 examples, and focused
//! checks, against the shipped definition packages (`conformance/packages`).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use mhg::validate::packages::Packages;
use mhg::validate::profile::{Finding, Severity, Validator};
use serde_json::{Value, json};

use crate::common::*;

pub fn packages_dir() -> PathBuf {
    root().join("conformance/packages")
}

/// The shipped package files, in name order.
fn shipped_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(packages_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tgz"))
        .collect();
    files.sort();
    files
}

pub fn shipped() -> Arc<Packages> {
    static P: OnceLock<Arc<Packages>> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = Packages::new();
        for f in shipped_files() {
            p.add(&f).unwrap();
        }
        Arc::new(p)
    })
    .clone()
}

/// The shipped packages and these (a case's own `.tgz` or folders), loaded after them.
pub fn shipped_with(extra: &[PathBuf]) -> Arc<Packages> {
    let mut p = Packages::new();
    for f in shipped_files().iter().chain(extra) {
        if let Err(e) = p.add(f) {
            eprintln!("package {}: {e}", f.display());
        }
    }
    Arc::new(p)
}

/// The shipped packages with the FHIRPath engine, as the gateway runs the validator.
pub fn validator_with_engine() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        let model = Arc::new(mhg::validate::fhirpath::model::TypeModel::from_packages(&shipped()));
        let engine = Arc::new(mhg::validate::fhirpath::FhirPath::new(model).expect("FHIRPath engine"));
        Validator::new(shipped()).with_engine(engine)
    })
}

pub fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| Validator::new(shipped()))
}

fn errors(f: &[Finding]) -> Vec<String> {
    f.iter().filter(|f| f.severity == Severity::Error).map(|f| format!("{} {}: {}", f.code, f.expression, f.text)).collect()
}

#[test]
fn golden_bundles_have_no_errors() {
    let v = validator();
    let mut bad = Vec::new();
    for e in std::fs::read_dir(root().join("tests/golden/expected")).unwrap() {
        let p = e.unwrap().path();
        let b: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let f = v.validate(&b, &[]);
        for e in errors(&f) {
            bad.push(format!("{}: {e}", p.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(bad.is_empty(), "{} errors:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn ips_examples_have_no_errors() {
    let f = std::fs::File::open(packages_dir().join("hl7.fhir.uv.ips-2.0.0.tgz")).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let v = validator();
    let (mut n, mut bad) = (0, Vec::new());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("package/example/") || !name.ends_with(".json") {
            continue;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        let r: Value = serde_json::from_slice(&bytes).unwrap();
        n += 1;
        for e in errors(&v.validate(&r, &[])) {
            bad.push(format!("{name}: {e}"));
        }
    }
    assert!(n > 30, "only {n} examples");
    assert!(bad.is_empty(), "{} errors:\n{}", bad.len(), bad.join("\n"));
}

/// data-driven: (resource, profiles, expected error expressions)
fn check(resource: Value, profiles: &[&str], expected: &[&str]) {
    let f = validator().validate(&resource, profiles);
    let mut got: Vec<String> = f.iter().filter(|f| f.severity == Severity::Error).map(|f| f.expression.clone()).collect();
    got.sort();
    got.dedup();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{f:#?}");
}

#[test]
fn json_layer_and_primitives() {
    check(json!({"resourceType": "Patient", "gender": "male", "birthDate": "1990-01-01"}), &[], &[]);
    // Unknown properties are reported at their parent, as the HL7 validator does.
    check(json!({"resourceType": "Patient", "foo": 1}), &[], &["Patient"]);
    check(json!({"resourceType": "Patient", "birthDate": "1990-13-01"}), &[], &["Patient.birthDate"]);
    check(json!({"resourceType": "Patient", "name": {"family": "x"}}), &[], &["Patient.name"]);
    check(json!({"resourceType": "Patient", "active": "true"}), &[], &["Patient.active"]);
    check(json!({"resourceType": "Patient", "name": []}), &[], &["Patient.name"]);
    check(json!({"resourceType": "Patient", "name": [{}]}), &[], &["Patient.name[0]"]);
    check(json!({"resourceType": "Patient", "gender": "unknown-code"}), &[], &["Patient.gender"]);
    check(json!({"resourceType": "Patient", "id": "a_b"}), &[], &["Patient.id"]);
    check(
        json!({"resourceType": "Patient", "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1990-01-01T10:00:00Z"}]}}),
        &[],
        &[],
    );
    check(json!({"resourceType": "Nope"}), &[], &["Nope"]);
    check(
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueBoolean": true, "valueString": "x"}),
        &[],
        &["Observation"],
    );
}

#[test]
fn cardinality_and_profiles() {
    // Observation.status and .code are required.
    check(json!({"resourceType": "Observation"}), &[], &["Observation"]);
    // IPS Patient needs a name (min 1) and birthDate.
    let ips = "http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips";
    let f = validator().validate(&json!({"resourceType": "Patient"}), &[ips]);
    assert!(mhg::validate::profile::has_errors(&f), "{f:#?}");
    assert!(!validator().knows_profile("http://example.org/nope"));
}

mod interfaces {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use crate::common::*;
    use mhg::http::{AppState, router};

    async fn call(uri: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let app = router(AppState { pipeline: pipeline(), max_body_bytes: 64 * 1024, max_records: 100, relay: None, guard: test_guard() });
        let req = Request::post(uri)
            .header("content-type", "application/fhir+json")
            .header("x-api-key", TEST_ADMIN_KEY)
            .body(body.into())
            .unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let s = resp.status();
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        (s, serde_json::from_slice(&b).unwrap())
    }

    fn severities(oo: &Value) -> Vec<String> {
        oo["issue"].as_array().unwrap().iter().map(|i| i["severity"].as_str().unwrap().to_owned()).collect()
    }

    #[tokio::test]
    async fn validate_route() {
        let good = json!({"resourceType": "Patient", "gender": "female"});
        let (s, oo) = call("/fhir/$validate", good.to_string()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(!severities(&oo).contains(&"error".to_owned()), "{oo}");
        let (_, oo) = call("/fhir/$validate", json!({"resourceType": "Basic", "code": {"text": "x"}, "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"}}).to_string()).await;
        assert_eq!(severities(&oo), ["information"], "{oo}");
        let (s, oo) = call("/fhir/Patient/$validate", json!({"resourceType": "Patient", "gender": "x"}).to_string()).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(oo["issue"][0]["expression"][0], "Patient.gender", "{oo}");
        // Parameters with a profile: IPS Patient needs name and birthDate.
        let params = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": good},
            {"name": "profile", "valueCanonical": "http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips"}]});
        let (s, oo) = call("/fhir/$validate", params.to_string()).await;
        assert_eq!(s, StatusCode::OK);
        assert!(severities(&oo).contains(&"error".to_owned()), "{oo}");
        // Refusals.
        assert_eq!(call("/fhir/$validate", "{nope").await.0, StatusCode::BAD_REQUEST);
        assert_eq!(call("/fhir/$validate", "[1]").await.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(call("/fhir/Observation/$validate", good.to_string()).await.0, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            call("/fhir/$validate?profile=http://example.org/none", good.to_string()).await.0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(call("/fhir/$validate", "[".repeat(100) + &"]".repeat(100)).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(
            call("/fhir/$validate", format!("{{\"resourceType\":\"Patient\",\"x\":\"{}\"}}", "a".repeat(70_000))).await.0,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn validate_command() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(&good, json!({"resourceType": "Patient", "gender": "female"}).to_string()).unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "not json").unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_mhg")).current_dir(root()).args(args).output().unwrap();
            (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let g = good.to_str().unwrap();
        let (code, out) = run(&["validate", g]);
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(out.lines().count(), 1);
        // A UTF-8 byte order mark (some Windows editors write one) is not an error.
        let bom = dir.path().join("bom.json");
        std::fs::write(&bom, [&[0xEF, 0xBB, 0xBF][..], json!({"resourceType": "Patient"}).to_string().as_bytes()].concat()).unwrap();
        assert_eq!(run(&["validate", bom.to_str().unwrap()]).0, Some(0));
        let (code, out) = run(&["validate", g, bad.to_str().unwrap()]);
        assert_eq!(code, Some(1));
        // Each outcome names its file (the standard operationoutcome-file extension).
        let files: Vec<String> = out
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["extension"][0]["valueString"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(files, [g, bad.to_str().unwrap()]);
        assert_eq!(
            run(&["validate", g, "--profile", "http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips"]).0,
            Some(1)
        );
        let (code, out) = run(&["validate", g, "--profile", "http://example.org/none"]);
        assert_eq!(code, Some(2));
        assert!(out.contains("OperationOutcome") && out.contains("unknown profile"), "{out}");
        assert_eq!(run(&["validate", g, "--package", "/nonexistent.tgz"]).0, Some(2));
        // A package whose dependency is not loaded: said on stderr, validation goes on.
        let pkg = dir.path().join("pkg/package");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            pkg.join("package.json"),
            json!({"name": "example.national", "version": "1.0.0",
            "dependencies": {"hl7.fhir.r4.core": "4.0.1", "example.not.loaded": "2.0.0"}})
            .to_string(),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_mhg"))
            .current_dir(root())
            .args(["validate", "--package", dir.path().join("pkg").to_str().unwrap(), g])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("example.national#1.0.0 needs example.not.loaded#2.0.0") && !stderr.contains("hl7.fhir.r4.core"),
            "{stderr}"
        );
    }
}

/// Odd input is a report, never a panic.
#[test]
fn odd_input_never_panics() {
    let v = validator();
    let odd = [
        json!({"resourceType": 5}),
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [{}, {"resource": 1}, {"resource": {"resourceType": "Patient"}, "fullUrl": "x"}, null]}),
        json!({"resourceType": "Bundle", "type": "document", "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Composition", "subject": {"reference": "urn:uuid:2"}}}]}),
        json!({"resourceType": "Patient", "name": [null, {"given": [null, "x"], "_given": [{"id": "a"}]}], "_gender": [1], "birthDate": 19900101}),
        json!({"resourceType": "Observation", "valueQuantity": "x", "valueString": {"a": 1}, "component": [[]], "contained": [{"resourceType": "Patient", "contained": [{}]}]}),
        json!({"resourceType": "Patient", "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueBoolean": "no"}, {"url": 3}, {}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "p", "part": [{"name": "q", "part": [{"name": "r", "resource": {"resourceType": "Nope"}}]}]}]}),
        json!({"resourceType": "Patient", "meta": {"profile": ["http://example.org/unknown", 7]}, "managingOrganization": {"reference": "#"}}),
        json!({"resourceType": "Questionnaire", "status": "draft", "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "2", "type": "string", "item": [{"linkId": "3", "type": "string"}]}]}]}),
    ];
    for o in odd {
        let f = v.validate(&o, &[]);
        assert!(f.iter().all(|f| !f.expression.is_empty()), "{f:#?}");
    }
    // A profile with only a differential whose types make no sense still gives a report.
    let sd = json!({"resourceType": "StructureDefinition", "url": "http://example.org/sd/odd", "type": "Patient", "kind": "resource",
        "derivation": "constraint", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [{"path": "Patient.name.given.foo.bar", "min": 1}, {"path": "Patient.identifier", "sliceName": "x", "min": 1},
            {"path": "Patient.birthDate", "maxValueDuration": {"value": 1e300, "code": "a"}}]}});
    let v2 = Validator::new(shipped()).with_loose([sd]);
    let f = v2.validate(&json!({"resourceType": "Patient", "birthDate": "2000-01-01"}), &["http://example.org/sd/odd"]);
    assert!(mhg::validate::profile::has_errors(&f), "identifier:x is required: {f:#?}");
}

/// The FHIRPath hook: constraints the validator does not implement natively go to the engine;
/// `false` is a finding of the constraint's severity, an engine error a warning naming the key.
#[test]
fn invariants_go_through_the_engine() {
    use mhg::validate::profile::InvariantEngine;
    struct Engine;
    impl InvariantEngine for Engine {
        fn invariant(
            &self,
            expr: &str,
            _focus: &Value,
            focus_type: &str,
            _resource: &Value,
            _root: &Value,
        ) -> Result<bool, mhg::validate::profile::InvariantError> {
            match expr {
                // pat-1 on Patient.contact: "name or telecom or address or organization".
                e if e.contains("organization") && focus_type == "Patient.contact" => Ok(false),
                e if e.starts_with("birthDate") => Err(mhg::validate::profile::InvariantError::Unsupported),
                _ => Ok(true),
            }
        }
    }
    let v = Validator::new(shipped()).with_engine(std::sync::Arc::new(Engine));
    let f = v.validate(&json!({"resourceType": "Patient", "contact": [{"gender": "male"}]}), &[]);
    let pat1: Vec<&Finding> = f.iter().filter(|f| f.text.contains("pat-1")).collect();
    assert_eq!(pat1.len(), 1, "{f:#?}");
    assert_eq!(pat1[0].severity, Severity::Error);
    assert_eq!(pat1[0].expression, "Patient.contact[0]");
    assert!(f.iter().all(|f| f.severity != Severity::Error || f.text.contains("pat-1")), "{f:#?}");
}

#[test]
fn validation_configuration() {
    use std::collections::HashMap;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mhg.toml");
    std::fs::write(&f, "[validation]\npackages = []\nload = []\nprofile_gate = false\n").unwrap();
    let c = mhg::config::Config::load_from(Some(&f), &HashMap::new()).unwrap();
    assert!(!c.validation.profile_gate);
    let env = HashMap::from([("MHG_VALIDATION_PROFILE_GATE".to_owned(), "true".to_owned())]);
    assert!(mhg::config::Config::load_from(Some(&f), &env).unwrap().validation.profile_gate);
    std::fs::write(&f, "[validation]\npackage = []\n").unwrap();
    let e = mhg::config::Config::load_from(Some(&f), &HashMap::new()).unwrap_err().to_string();
    assert!(e.contains("package") && e.contains("mhg.toml"), "{e}");
    // check_references: a relative reference must resolve in what is validated.
    std::fs::write(&f, "[validation]\ncheck_references = true\n").unwrap();
    let mut c = mhg::config::Config::load_from(Some(&f), &HashMap::new()).unwrap();
    c.home = Some(root());
    let v = c.validator(&[], &[]).unwrap();
    let obs =
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "subject": {"reference": "Patient/elsewhere"}});
    let f2 = v.validate(&obs, &[]);
    assert!(f2.iter().any(|f| f.severity == Severity::Error && f.expression == "Observation.subject"), "{f2:#?}");
    assert!(errors(&validator().validate(&obs, &[])).is_empty(), "off by default");
    // A loose definition file that is not FHIR names the file.
    let bad = dir.path().join("x.json");
    std::fs::write(&bad, "{}").unwrap();
    let mut c = mhg::config::Config { home: Some(root()), ..Default::default() };
    c.validation.load = vec![bad.clone()];
    let e = c.validator(&[], &[]).unwrap_err().to_string();
    assert!(e.contains("x.json"), "{e}");
}

/// A destination that names profiles gets only records meeting them: a record that does not is
/// refused at the door (422 naming the destination, the profile, the output FHIRPath and the
/// input field), and nothing of it is stored.
#[tokio::test]
async fn destination_profiles_are_enforced_on_accept() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use mhg::http::{AppState, router};
    use tower::ServiceExt;

    const STRICT: &str = "https://example.org/fhir/StructureDefinition/patient-with-photo";
    let dir = tempfile::tempdir().unwrap();
    let sd = serde_json::json!({
        "resourceType": "StructureDefinition", "url": STRICT, "name": "PatientWithPhoto", "status": "active",
        "fhirVersion": "4.0.1", "kind": "resource", "abstract": false, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [{"id": "Patient.photo", "path": "Patient.photo", "min": 1}]}
    });
    let sd_file = dir.path().join("sd.json");
    std::fs::write(&sd_file, sd.to_string()).unwrap();
    let r = root();
    let validator = mhg::validate::profile::load::load(&r.join("conformance/packages"), &[], &[sd_file]).unwrap();
    let pipeline = std::sync::Arc::new(
        mhg::pipeline::Pipeline::load_with(&r.join("mappings"), &[], &r.join("conformance"), 32, std::sync::Arc::new(validator)).unwrap(),
    );
    let store = mhg::queue::Store::open(&format!("sqlite://{}", dir.path().join("mhg.db").display())).await.unwrap();
    let dest = |name: &str, profiles: Vec<String>| mhg::relay::DestinationConfig {
        path: Some(dir.path().join(name)),
        profiles,
        ..mhg::relay::DestinationConfig::new(name, mhg::relay::DestinationKind::Directory)
    };
    let app = |dests: Vec<mhg::relay::DestinationConfig>| {
        router(AppState {
            pipeline: pipeline.clone(),
            max_body_bytes: 1024 * 1024,
            max_records: 10,
            relay: Some(mhg::http::RelayState {
                committer: mhg::queue::commit::Committer::start(store.clone()),
                store: store.clone(),
                destinations: std::sync::Arc::new(dests),
                wake: std::sync::Arc::new(tokio::sync::Notify::new()),
            }),
            guard: test_guard(),
        })
    };
    let body = std::fs::read_to_string(r.join("tests/golden/records/32-shared-labour-minimal.json")).unwrap();
    let post = |app: axum::Router| {
        let body = body.clone();
        async move {
            let req = Request::post("/records")
                .header("x-api-key", TEST_ADMIN_KEY)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let s = resp.status().as_u16();
            (s, serde_json::from_slice::<Value>(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap())
        }
    };
    // IPS Patient: met. The strict profile: not met.
    let (s, v) = post(app(vec![dest("ips", vec!["http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips".into()])])).await;
    assert_eq!(s, 202, "{v}");
    let (s, oo) = post(app(vec![dest("clinic", vec![]), dest("strict", vec![STRICT.into()])])).await;
    assert_eq!(s, 422, "{oo}");
    let issue = &oo["issue"][0];
    let text = issue["details"]["text"].as_str().unwrap();
    assert!(text.contains(STRICT) && text.contains("strict"), "{text}");
    assert!(issue["expression"][0].as_str().unwrap().starts_with("Bundle.entry["), "{issue}");
    assert_eq!(issue["location"][0], "/person", "{issue}");
    assert_eq!(
        store.list(None, 100, 100, |_| true).await.unwrap().len(),
        1,
        "nothing of the refused record is stored"
    );
    let metrics = mhg::ops::render(&[]);
    assert!(metrics.contains(&format!("mhg_validation_failures_total{{profile=\"{STRICT}\"}}")), "{metrics}");
}

/// A national base the gateway does not ship, fetched from the npm registry into the test
/// cache (`<cache>/national`, apart from the peers' packages), as a receiver would add it.
fn au_base() -> PathBuf {
    let cache = crate::support::cache().join("national");
    let out = std::process::Command::new("bash")
        .arg(root().join("tests/peers/fetch-packages.sh"))
        .arg("hl7.fhir.au.base@6.0.0")
        .env("MHG_CACHE", &cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    cache.join("packages/hl7.fhir.au.base#6.0.0")
}

/// `mhg validate --package` with hl7.fhir.au.base 6.0.0: every example the package carries is
/// valid, as its IG publisher found. They exercise what IPS does not: datatype profiles given
/// as alternatives (an AU identifier may be an IHI, a Medicare number... or any Identifier),
/// closed type slicing of `deceased[x]`, THO code systems newer than R4 core's copies, and a
/// profile's `trace()`-free silence on stderr.
#[test]
fn a_national_base_validates_its_own_examples() {
    let pkg = au_base();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(pkg.join("package/example"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    examples.sort();
    assert!(examples.len() > 100, "only {} examples", examples.len());
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_mhg")).arg("validate").arg("--package").arg(&pkg).args(&examples).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let outcomes: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(outcomes.len(), examples.len(), "one OperationOutcome per file");
    let mut bad = Vec::new();
    for (f, oo) in examples.iter().zip(&outcomes) {
        for i in oo["issue"].as_array().unwrap() {
            if i["severity"] == "error" || i["severity"] == "fatal" {
                bad.push(format!(
                    "{}: {} {}",
                    f.file_name().unwrap().to_string_lossy(),
                    i["expression"],
                    i["details"]["text"]
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{} errors:\n{}", bad.len(), bad.join("\n"));
    // Every invariant answered: tim-5 on a Timing.repeat with periodUnit and no period once met
    // the engine's choice misreading (answered now by its guard, `period.exists()`).
    assert!(!stdout.contains("could not be evaluated"), "an invariant could not be evaluated");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("TRACE"), "the engine's trace() wrote data to stderr: {stderr}");

    // A profile rule of the package, broken: au-patient's inv-pat-0 (birth time on another day).
    let dir = tempfile::tempdir().unwrap();
    let bad_patient = dir.path().join("patient.json");
    let patient = json!({
        "resourceType": "Patient",
        "meta": {"profile": ["http://hl7.org.au/fhir/StructureDefinition/au-patient"]},
        "birthDate": "2001-04-05",
        "_birthDate": {"extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
            "valueDateTime": "2001-04-06T10:30:00+10:00"
        }]},
        "deceasedString": "no"
    });
    std::fs::write(&bad_patient, patient.to_string()).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mhg"))
        .arg("validate")
        .arg("--package")
        .arg(&pkg)
        .arg(&bad_patient)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let oo: Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors: Vec<String> = oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["severity"] == "error")
        .map(|i| format!("{} {}", i["expression"][0].as_str().unwrap(), i["details"]["text"]))
        .collect();
    assert!(errors.iter().any(|e| e.starts_with("Patient ") && e.contains("inv-pat-0")), "{errors:#?}");
    // Reported at the element holding the choice, as HL7's validator reports a type the
    // profile does not allow (Validation_VAL_Profile_NoType).
    assert!(
        errors.iter().any(|e| e.starts_with("Patient ") && e.contains("deceasedString is not known") && e.contains("boolean, dateTime")),
        "deceasedString is outside the closed type slicing: {errors:#?}"
    );

    // The package's own definitions (StructureDefinitions, ValueSets, CodeSystems...), as an
    // integration tester validates a profile: no errors either (R5 contexts such as
    // `CanonicalResource`, extension definitions newer than R4 core's copies).
    let mut definitions: Vec<PathBuf> = std::fs::read_dir(pkg.join("package"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("package.json"))
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    definitions.sort();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mhg"))
        .arg("validate")
        .arg("--package")
        .arg(&pkg)
        .args(&definitions)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut bad = Vec::new();
    for (f, l) in definitions.iter().zip(stdout.lines()) {
        let oo: Value = serde_json::from_str(l).unwrap();
        for i in oo["issue"].as_array().unwrap() {
            if i["severity"] == "error" {
                bad.push(format!(
                    "{}: {} {}",
                    f.file_name().unwrap().to_string_lossy(),
                    i["expression"],
                    i["details"]["text"]
                ));
            }
        }
    }
    assert!(definitions.len() > 100 && bad.is_empty(), "{} errors:\n{}", bad.len(), bad.join("\n"));
}

/// Rules of a StructureDefinition itself: slicing at the root, a binding on a type that
/// cannot be bound, a discriminator path naming no element of the sliced element.
#[test]
fn definitions_are_checked_as_definitions() {
    let sd = |elements: Value| {
        json!({
            "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/p", "name": "P",
            "status": "draft", "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "differential": {"element": elements}
        })
    };
    let f = validator().validate(
        &sd(json!([
            {"id": "Patient", "path": "Patient", "slicing": {"discriminator": [{"type": "value", "path": "id"}], "rules": "open"}},
            {"id": "Patient.birthDate", "path": "Patient.birthDate", "type": [{"code": "date"}], "binding": {"strength": "required", "valueSet": "http://example.org/ValueSet/d"}},
            {"id": "Patient.identifier", "path": "Patient.identifier", "slicing": {"discriminator": [{"type": "value", "path": "sytem"}], "rules": "open"}},
            {"id": "Patient.contact", "path": "Patient.contact", "slicing": {"discriminator": [{"type": "pattern", "path": "relationship"}], "rules": "open"}},
            {"id": "Patient.extension", "path": "Patient.extension", "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}}
        ])),
        &[],
    );
    let got: Vec<&str> = f.iter().filter(|f| f.severity == Severity::Error).map(|f| f.expression.as_str()).collect();
    for want in [
        "StructureDefinition",
        "StructureDefinition.differential.element[0]",
        "StructureDefinition.differential.element[1]",
        "StructureDefinition.differential.element[2].slicing.discriminator[0]",
    ] {
        assert!(got.contains(&want), "{want} missing: {f:#?}");
    }
    // A backbone's own children (contact.relationship) and an Extension's url are fine.
    assert!(!got.iter().any(|g| g.contains("element[3]") || g.contains("element[4]")), "{f:#?}");
}

/// R4: an Observation with a vital sign's code SHALL conform to that sign's core profile,
/// claimed or not (the codes of HL7's validator's table: LOINC, by method too, and SNOMED CT).
/// A component's unit outside
/// ucum-vitals-common is a warning (the errata HL7's validator applies), not an error.
#[test]
fn vital_sign_codes_call_for_their_profiles() {
    let weight = |category: bool, unit: &str| {
        let mut o = json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-05-01",
            "valueQuantity": {"value": 61.2, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        });
        if category {
            o["category"] =
                json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]);
        }
        o
    };
    let f = validator().validate(&weight(true, "kg"), &[]);
    assert!(errors(&f).is_empty(), "{:#?}", errors(&f));
    assert!(f.iter().any(|f| f.severity == Severity::Information && f.text.contains("bodyweight")), "{f:#?}");
    // No vital-signs category, and a unit the body-weight profile does not allow.
    let f = validator().validate(&weight(false, "[stone_av]"), &[]);
    let e = errors(&f);
    assert!(e.iter().any(|e| e.contains("Observation.category")), "{e:#?}");
    assert!(e.iter().any(|e| e.contains("Observation.value")), "{e:#?}");
    // Not a vital-sign code: the base rules only.
    let mut other = weight(false, "[stone_av]");
    other["code"]["coding"][0]["code"] = json!("2339-0");
    assert!(errors(&validator().validate(&other, &[])).is_empty());
    // A saturation with an inhaled-oxygen flow component in L/min: a warning only.
    let mut sat = weight(true, "%");
    sat["code"]["coding"][0]["code"] = json!("2708-6");
    sat["component"] = json!([{
        "code": {"coding": [{"system": "http://loinc.org", "code": "3151-8"}]},
        "valueQuantity": {"value": 6, "unit": "L/min", "system": "http://unitsofmeasure.org", "code": "L/min"}
    }]);
    let f = validator().validate(&sat, &[]);
    assert!(errors(&f).is_empty(), "{:#?}", errors(&f));
    assert!(
        f.iter().any(|f| f.severity == Severity::Warning && f.expression.starts_with("Observation.component[0].value")),
        "{f:#?}"
    ); // An oral temperature (LOINC 8331-1) and a SNOMED CT body temperature (276885007) both
    // call for bodytemp, whose LOINC 8310-5 they lack: an error at the code.
    for (system, code) in [("http://loinc.org", "8331-1"), ("http://snomed.info/sct", "276885007")] {
        let mut t = weight(true, "Cel");
        t["code"]["coding"][0] = json!({"system": system, "code": code});
        let f = validator().validate(&t, &[]);
        assert!(f.iter().any(|f| f.severity == Severity::Information && f.text.contains("bodytemp")), "{f:#?}");
        assert!(errors(&f).iter().any(|e| e.contains("Observation.code")), "{f:#?}");
        // With 8310-5 beside it, the profile is met.
        t["code"]["coding"].as_array_mut().unwrap().push(json!({"system": "http://loinc.org", "code": "8310-5"}));
        let f = validator().validate(&t, &[]);
        assert!(errors(&f).is_empty(), "{:#?}", errors(&f));
    }
}

/// A relative reference is `Type/id`, its type spelt as FHIR spells it; an item matching two
/// slices of a slicing is an error (slices must not overlap).
#[test]
fn reference_form_and_overlapping_slices() {
    let patient = |r: &str| json!({"resourceType": "Patient", "generalPractitioner": [{"reference": r}]});
    check(patient("Practitioner/p-1"), &[], &[]);
    check(patient("Practitioner/p-1/_history/2"), &[], &[]);
    check(patient("urn:uuid:8f4e2b1c-0000-4000-8000-000000000001"), &[], &[]);
    check(patient("practitioner/p-1"), &[], &["Patient.generalPractitioner[0]"]);
    check(patient("p-1"), &[], &["Patient.generalPractitioner[0]"]);
    // A relative canonical: an error, as HL7's validator has it; `#id` names a contained one.
    let plan = json!({"resourceType": "PlanDefinition", "status": "draft", "library": ["Library/example"]});
    let f = validator().validate(&plan, &[]);
    assert!(
        f.iter().any(|f| f.severity == Severity::Error && f.expression == "PlanDefinition.library[0]"),
        "{f:#?}"
    );
    let plan = json!({"resourceType": "PlanDefinition", "status": "draft", "library": ["http://example.org/fhir/Library/example"]});
    assert!(errors(&validator().validate(&plan, &[])).is_empty());

    let sd = json!({
        "resourceType": "StructureDefinition", "url": "http://example.org/StructureDefinition/two-ids", "name": "TwoIds",
        "status": "draft", "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "differential": {"element": [
            {"id": "Patient.identifier", "path": "Patient.identifier", "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
            {"id": "Patient.identifier:a", "path": "Patient.identifier", "sliceName": "a", "max": "1"},
            {"id": "Patient.identifier:a.system", "path": "Patient.identifier.system", "fixedUri": "urn:example:a"},
            {"id": "Patient.identifier:any", "path": "Patient.identifier", "sliceName": "any"}
        ]}
    });
    let v = Validator::new(shipped()).with_loose([sd]);
    let p = json!({"resourceType": "Patient", "identifier": [{"system": "urn:example:a", "value": "1"}, {"system": "urn:example:b", "value": "2"}]});
    let f = v.validate(&p, &["http://example.org/StructureDefinition/two-ids"]);
    let e = errors(&f);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].contains("Patient.identifier[0]") && e[0].contains("more than one slice (a, any)"), "{e:#?}");
}

/// Rules of CodeSystems and ValueSets themselves, and of Codings against a supplement.
#[test]
fn terminology_resources_are_checked_as_definitions() {
    let cs = json!({
        "resourceType": "CodeSystem", "url": "http://example.org/CodeSystem/cs", "status": "draft", "content": "complete",
        "count": 3,
        "property": [{"code": "flag", "type": "boolean"}, {"code": "flag", "type": "string"}, {"code": "link", "type": "Coding"}],
        "concept": [{"code": "a", "property": [{"code": "flag", "valueString": "yes"}], "concept": [{"code": "a1"}]}]
    });
    let supplement = json!({
        "resourceType": "CodeSystem", "url": "http://example.org/CodeSystem/sup", "status": "draft", "content": "supplement",
        "supplements": "http://example.org/CodeSystem/cs", "concept": [{"code": "a"}]
    });
    let v = Validator::new(shipped()).with_loose([cs.clone(), supplement]);
    let got = |r: &Value| -> Vec<String> {
        let mut e: Vec<String> = v.validate(r, &[]).into_iter().filter(|f| f.severity == Severity::Error).map(|f| f.expression).collect();
        e.sort();
        e
    };
    assert_eq!(got(&cs), ["CodeSystem.concept[0].property[0]", "CodeSystem.count", "CodeSystem.property[1]"]);

    let vs = json!({
        "resourceType": "ValueSet", "url": "ValueSet/relative", "status": "draft",
        "compose": {"include": [
            {"system": "http://example.org/CodeSystem/cs", "filter": [
                {"property": "link", "op": "=", "value": "a"},
                {"property": "link", "op": "=", "value": "http://example.org/CodeSystem/cs#zz"},
                {"property": "link", "op": "=", "value": "http://example.org/CodeSystem/cs#a1"},
                {"property": "flag", "op": "=", "value": "1"},
                {"property": "flag", "op": "=", "value": "true"}
            ]},
            {"system": "#local"}
        ]}
    });
    assert_eq!(
        got(&vs),
        [
            "ValueSet.compose.include[0].filter[0]",
            "ValueSet.compose.include[0].filter[1]",
            "ValueSet.compose.include[0].filter[3]",
            "ValueSet.compose.include[1]",
            "ValueSet.url"
        ]
    );

    let obs = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://example.org/CodeSystem/sup", "code": "a"}]}});
    assert_eq!(got(&obs), ["Observation.code.coding[0].system"]);

    // R4 core's 2019 copy of DICOM's codes is not the authority: a code it lacks is a warning.
    let mut obs = obs;
    obs["code"]["coding"][0] = json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "130401"});
    assert!(got(&obs).is_empty());
    assert!(v.validate(&obs, &[]).iter().any(|f| f.severity == Severity::Warning && f.expression == "Observation.code.coding[0].code"));
}

/// `memberOf()` in a profile's invariant is answered from the value sets expanded here: in,
/// out, and empty (so the invariant passes) for a value set that cannot be expanded.
#[test]
fn member_of_uses_local_expansions() {
    let dir = tempfile::tempdir().unwrap();
    let sd = |key: &str, vs: &str| {
        json!({
            "resourceType": "StructureDefinition", "url": format!("http://example.org/StructureDefinition/{key}"), "name": key,
            "status": "draft", "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "differential": {"element": [{"id": "Patient", "path": "Patient", "constraint": [{
                "key": key, "severity": "error", "human": "gender from the value set",
                "expression": format!("gender.empty() or gender.memberOf('{vs}')")
            }]}]}
        })
    };
    let files: Vec<PathBuf> = [
        ("in-vs", "http://hl7.org/fhir/ValueSet/administrative-gender"),
        ("out-vs", "http://hl7.org/fhir/ValueSet/contact-point-system"),
        ("unknown-vs", "http://example.org/ValueSet/not-loaded"),
    ]
    .iter()
    .map(|(k, vs)| {
        let f = dir.path().join(format!("{k}.json"));
        std::fs::write(&f, sd(k, vs).to_string()).unwrap();
        f
    })
    .collect();
    let v = mhg::validate::profile::load::load(&packages_dir(), &[], &files).unwrap();
    let patient = json!({"resourceType": "Patient", "gender": "male"});
    let failed = |key: &str| {
        let f = v.validate(&patient, &[&format!("http://example.org/StructureDefinition/{key}")]);
        f.iter().any(|f| f.text.contains(&format!("{key} failed")))
    };
    assert!(!failed("in-vs"));
    assert!(failed("out-vs"));
    assert!(!failed("unknown-vs"));
}

/// A receiver's national base configured as `[validation] packages` (no rebuild): `$validate`
/// checks against its profiles, and a destination can require one of them of every record.
#[tokio::test]
async fn national_base_from_configuration() {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use mhg::http::{AppState, router};
    use tower::ServiceExt;

    const AU_PATIENT: &str = "http://hl7.org.au/fhir/StructureDefinition/au-patient";
    let pkg = au_base();
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("mhg.toml");
    std::fs::write(&toml, format!("[validation]\npackages = [{:?}]\n", pkg.display().to_string())).unwrap();
    let mut config = mhg::config::Config::load_from(Some(&toml), &std::collections::HashMap::new()).unwrap();
    config.home = Some(root());
    let validator = std::sync::Arc::new(config.validator(&[], &[]).unwrap());
    assert!(validator.knows_profile(AU_PATIENT));
    let r = root();
    let pipeline =
        std::sync::Arc::new(mhg::pipeline::Pipeline::load_with(&r.join("mappings"), &[], &r.join("conformance"), 32, validator).unwrap());
    let store = mhg::queue::Store::open(&format!("sqlite://{}", dir.path().join("mhg.db").display())).await.unwrap();
    let app = router(AppState {
        pipeline,
        max_body_bytes: 1024 * 1024,
        max_records: 10,
        relay: Some(mhg::http::RelayState {
            committer: mhg::queue::commit::Committer::start(store.clone()),
            store: store.clone(),
            destinations: std::sync::Arc::new(vec![mhg::relay::DestinationConfig {
                path: Some(dir.path().join("au")),
                profiles: vec![AU_PATIENT.into()],
                ..mhg::relay::DestinationConfig::new("au-moh", mhg::relay::DestinationKind::Directory)
            }]),
            wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        }),
        guard: test_guard(),
    });
    let post = |uri: &str, body: String| {
        let req = Request::post(uri)
            .header("x-api-key", TEST_ADMIN_KEY)
            .header("content-type", "application/fhir+json")
            .body(Body::from(body))
            .unwrap();
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let s = resp.status().as_u16();
            (s, serde_json::from_slice::<Value>(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap())
        }
    };
    // $validate with the profile as a parameter: au-patient's inv-pat-0 (birth time on another day).
    let patient = json!({"resourceType": "Patient", "birthDate": "2001-04-05",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "2001-04-06T10:30:00+10:00"}]}});
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient}, {"name": "profile", "valueCanonical": AU_PATIENT}]});
    let (s, oo) = post("/fhir/Patient/$validate", params.to_string()).await;
    assert_eq!(s, 200, "{oo}");
    assert!(
        oo["issue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["severity"] == "error" && i["details"]["text"].as_str().unwrap().contains("inv-pat-0")),
        "{oo}"
    );
    let (s, oo) = post(
        "/fhir/$validate?profile=http://hl7.org.au/fhir/StructureDefinition/none",
        json!({"resourceType": "Patient"}).to_string(),
    )
    .await;
    assert_eq!(s, 400, "{oo}");
    // The gateway's own records meet au-patient: accepted for the destination that requires it.
    let record = std::fs::read_to_string(r.join("tests/golden/records/32-shared-labour-minimal.json")).unwrap();
    let (s, v) = post("/records", record).await;
    assert_eq!(s, 202, "{v}");
}
