//! The HL7 validator's options the gateway's validator exposes, with Java's defaults:
//! `--level`, `--best-practice`, `--want-invariants-in-messages`, `--no-experimental-content`,
//! `--check-references`, `--allow-example-urls`, `--extension-domain`, `--security-checks`, `--no-html-in-markdown` on
//! `mhg validate`, and the same as `Validator` settings. Also HL7's rule
//! that an entry holding a reference needs a fullUrl (BUNDLE_BUNDLE_ENTRY_NOFULLURL).

use std::process::Command;

use serde_json::{Value, json};

use crate::common::*;
use mhg::validate::profile::{BestPractice, Severity};

/// `mhg validate` on `resource` with `flags`: (exit status, issues as `severity expression`).
fn validate(resource: &Value, flags: &[&str]) -> (i32, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    std::fs::write(&file, resource.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mhg")).current_dir(root()).arg("validate").args(flags).arg(&file).output().expect("runs");
    let oo: Value = serde_json::from_slice(&out.stdout).expect("one OperationOutcome");
    let issues = oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{} {}", i["severity"].as_str().unwrap(), i["expression"][0].as_str().unwrap_or("")))
        .collect();
    (out.status.code().unwrap(), issues)
}

fn experimental_value_set() -> Value {
    json!({"resourceType": "ValueSet", "url": "http://example.org/fhir/ValueSet/x", "status": "draft", "experimental": true,
           "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "8310-5"}]}]}})
}

#[test]
fn best_practice_defaults_to_a_warning_and_can_be_ignored_or_raised() {
    // A resource without narrative breaks dom-6, R4's best-practice invariant.
    let patient = json!({"resourceType": "Patient", "gender": "female"});
    let (status, issues) = validate(&patient, &[]);
    assert_eq!(status, 0);
    assert!(issues.contains(&"warning Patient".to_owned()), "{issues:?}");
    let (status, issues) = validate(&patient, &["--best-practice", "ignore"]);
    assert_eq!(status, 0);
    assert!(!issues.iter().any(|i| i.starts_with("warning")), "{issues:?}");
    let (status, issues) = validate(&patient, &["--best-practice", "error"]);
    assert_eq!(status, 1);
    assert!(issues.contains(&"error Patient".to_owned()), "{issues:?}");
}

#[test]
fn level_filters_what_is_printed_not_the_verdict() {
    let bad = json!({"resourceType": "Patient", "gender": "unknown-value"});
    let (status, all) = validate(&bad, &[]);
    let (status_errors, errors) = validate(&bad, &["--level", "errors"]);
    assert_eq!((status, status_errors), (1, 1));
    assert!(all.iter().any(|i| i.starts_with("warning")), "{all:?}");
    assert!(!errors.is_empty() && errors.iter().all(|i| i.starts_with("error")), "{errors:?}");
    // Nothing at the level: one information issue says so.
    let (status, none) = validate(&json!({"resourceType": "Patient"}), &["--level", "errors"]);
    assert_eq!(status, 0);
    assert_eq!(none, ["information "]);
}

#[test]
fn experimental_content_is_refused_only_when_asked() {
    let (status, _) = validate(&experimental_value_set(), &["--best-practice", "ignore"]);
    assert_eq!(status, 0);
    let (status, issues) = validate(&experimental_value_set(), &["--no-experimental-content"]);
    assert_eq!(status, 1);
    assert!(issues.contains(&"error ValueSet".to_owned()), "{issues:?}");
}

#[test]
fn invariant_messages_quote_the_expression_when_asked() {
    let v = crate::profile::validator;
    let quoted = mhg::validate::profile::Validator::new(crate::profile::shipped()).with_invariants_in_messages(true);
    let period = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                        "period": {"start": "2026-02-01", "end": "2026-01-01"}});
    let plain = v().validate(&period, &[]).into_iter().find(|f| f.text.contains("per-1")).expect("per-1 fails");
    assert!(!plain.text.contains("(inv = "), "{plain:?}");
    let f = quoted.validate(&period, &[]).into_iter().find(|f| f.text.contains("per-1")).expect("per-1 fails");
    assert!(f.text.contains("(inv = start.hasValue().not() or end.hasValue().not() or (start <= end))"), "{f:?}");
    // The best-practice level applies to dom-6 whatever its severity.
    let hint = mhg::validate::profile::Validator::new(crate::profile::shipped()).with_best_practice(BestPractice::Hint);
    let f = hint.validate(&json!({"resourceType": "Patient"}), &[]);
    assert!(f.iter().any(|f| f.text.contains("dom-6") && f.severity == Severity::Information), "{f:?}");
}

#[test]
fn an_entry_holding_a_reference_needs_a_full_url() {
    let bundle = |full_url: Option<&str>| {
        let mut entry = json!({"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                                            "subject": {"reference": "urn:uuid:6b3f4b2c-1b1e-4c1e-9e55-2f6f0c8d9a01"}}});
        if let Some(u) = full_url {
            entry["fullUrl"] = json!(u);
        }
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:6b3f4b2c-1b1e-4c1e-9e55-2f6f0c8d9a01", "resource": {"resourceType": "Patient"},
             "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "POST", "url": "Observation"}, "resource": entry["resource"].clone(), "fullUrl": entry.get("fullUrl").cloned().unwrap_or(Value::Null)}
        ]})
    };
    let mut without = bundle(None);
    without["entry"][1].as_object_mut().unwrap().remove("fullUrl");
    let errors: Vec<String> = crate::profile::validator()
        .validate(&without, &[])
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("{}: {}", f.expression, f.text))
        .collect();
    assert_eq!(errors, ["Bundle.entry[1]: Bundle entry missing fullUrl"]);
    let with = bundle(Some("urn:uuid:0c2d7a8e-3f4b-4a5c-8d6e-7f8091a2b3c4"));
    let errors: Vec<_> = crate::profile::validator().validate(&with, &[]).into_iter().filter(|f| f.severity == Severity::Error).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn example_urls_are_allowed_unless_told_otherwise() {
    // HL7's `-allow-example-urls`: on as the HL7 test harness runs (the gateway resolves no URL
    // over the network); off, an example URL that names nothing loaded is an error.
    let doc = json!({"resourceType": "DocumentReference", "status": "current",
                     "content": [{"attachment": {"url": "http://repository.example.org/fhir/Binary/1"}}]});
    let at = "error DocumentReference.content[0].attachment.url".to_owned();
    let (status, issues) = validate(&doc, &[]);
    assert_eq!(status, 0, "{issues:?}");
    assert!(!issues.contains(&at), "{issues:?}");
    let (status, issues) = validate(&doc, &["--allow-example-urls", "false"]);
    assert_eq!(status, 1, "{issues:?}");
    assert!(issues.contains(&at), "{issues:?}");
}

#[test]
fn extension_domains_let_unknown_extensions_through() {
    // HL7's `-extension`: a national domain's extensions need no loaded definition.
    let patient = json!({"resourceType": "Patient", "extension": [{"url": "https://fhir.nhs.uk/StructureDefinition/Extension-x", "valueString": "y"}]});
    let (_, issues) = validate(&patient, &[]);
    assert!(issues.iter().any(|i| i.ends_with(" Patient.extension[0]")), "{issues:?}");
    let (_, issues) = validate(&patient, &["--extension-domain", "https://fhir.nhs.uk/StructureDefinition"]);
    assert!(!issues.iter().any(|i| i.ends_with(" Patient.extension[0]")), "{issues:?}");
    let (_, issues) = validate(&patient, &["--extension-domain", "any"]);
    assert!(!issues.iter().any(|i| i.ends_with(" Patient.extension[0]")), "{issues:?}");
}

#[test]
fn security_checks_refuse_strings_that_embed_html() {
    // HL7's `-security-checks` (SECURITY_STRING_CONTENT_ERROR); off by default.
    let patient = json!({"resourceType": "Patient", "name": [{"text": "Standard <script>x</script>"}]});
    let at = "error Patient.name[0].text".to_owned();
    assert!(!validate(&patient, &[]).1.contains(&at));
    let (status, issues) = validate(&patient, &["--security-checks"]);
    assert_eq!(status, 1);
    assert!(issues.contains(&at), "{issues:?}");
}

#[test]
fn no_html_in_markdown_makes_the_markdown_warning_an_error() {
    // HL7's `noHtmlInMarkdown` (TYPE_SPECIFIC_CHECKS_DT_MARKDOWN_HTML): a warning by default.
    let comm = json!({"resourceType": "Communication", "status": "completed", "note": [{"text": "see <b>this</b>"}]});
    let (status, issues) = validate(&comm, &[]);
    assert_eq!(status, 0, "{issues:?}");
    assert!(issues.contains(&"warning Communication.note[0].text".to_owned()), "{issues:?}");
    let (status, issues) = validate(&comm, &["--no-html-in-markdown"]);
    assert_eq!(status, 1);
    assert!(issues.contains(&"error Communication.note[0].text".to_owned()), "{issues:?}");
}

#[test]
fn a_period_whose_ends_differ_in_precision_and_agree_fails_per_1() {
    // FHIRPath's `start <= end` is empty for 2023-06-21 against 2023-06-21T06:20:00Z, and
    // HL7's validator fails a constraint that evaluates to empty.
    let enc = json!({"resourceType": "Encounter", "status": "unknown", "class": {"code": "AMB"},
                     "period": {"start": "2023-06-21", "end": "2023-06-21T06:20:00Z"}});
    let (status, issues) = validate(&enc, &[]);
    assert_eq!(status, 1);
    assert!(issues.contains(&"error Encounter.period".to_owned()), "{issues:?}");
}

#[test]
fn xml_is_validated_as_the_json_it_stands_for() {
    // FHIR's XML form, read by the loaded definitions: the findings are the JSON form's, at
    // the same FHIRPath locations.
    let dir = tempfile::tempdir().unwrap();
    let run = |xml: &str| {
        let file = dir.path().join("r.xml");
        std::fs::write(&file, xml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_mhg")).current_dir(root()).arg("validate").arg(&file).output().expect("runs");
        let oo: Value = serde_json::from_slice(&out.stdout).expect("one OperationOutcome");
        let errors: Vec<String> = oo["issue"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["severity"] == "error")
            .map(|i| i["expression"][0].as_str().unwrap_or("").to_owned())
            .collect();
        (out.status.code().unwrap(), errors)
    };
    let good = r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">A</div></text>
      <name><family value="Doe"/><given value="A"/><given value="B"/></name><gender value="female"/><birthDate value="1990-01-01"/></Patient>"#;
    assert_eq!(run(good), (0, vec![]));
    let bad = good.replace("female", "feminine").replace("1990-01-01", "1990-13-01");
    let (status, errors) = run(&bad);
    assert_eq!(status, 1);
    assert!(
        errors.contains(&"Patient.gender".to_owned()) && errors.contains(&"Patient.birthDate".to_owned()),
        "{errors:?}"
    );
    let (status, _) = run("<Patient xmlns=\"http://hl7.org/fhir\">");
    assert_eq!(status, 1);
}
