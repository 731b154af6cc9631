//! Validating what a tester hands over, as bytes: one FHIR JSON document, or NDJSON (one
//! resource per line, as Bulk Data writes them), each answered by an OperationOutcome. Shared
//! by `mhg validate` and `POST /fhir/$validate`; the `$validate` modes (`create`, `update`,
//! `delete`, `profile`) are read here too.
//!
//! No I/O (the caller reads the file or the body), no clock, no logging; outcomes name paths
//! and lines, never values.

use crate::terminology::delegate::TxAnswers;
use serde_json::{Value, json};

use super::profile::{Finding, Severity, Validator, has_errors, outcome};

/// The `operationoutcome-issue-line` extension: the line of the source an issue is about.
pub const ISSUE_LINE: &str = "http://hl7.org/fhir/StructureDefinition/operationoutcome-issue-line";

/// `$validate`'s `mode` (FHIR R4 `resource-validation-mode`; absent: no mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
    Delete,
    Profile,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "create" => Mode::Create,
            "update" => Mode::Update,
            "delete" => Mode::Delete,
            "profile" => Mode::Profile,
            _ => return None,
        })
    }
}

fn failure(text: &str) -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "structure", "details": {"text": text}}]})
}

/// Findings the mode adds to a resource's: `update` needs the resource's id (FHIR: the id the
/// resource will have), `create` has none to keep (a server assigns it; a warning, as the id
/// is ignored).
pub fn mode_findings(mode: Option<Mode>, resource: &Value) -> Vec<Finding> {
    let rt = resource.get("resourceType").and_then(Value::as_str).unwrap_or("Resource").to_owned();
    let has_id = resource.get("id").and_then(Value::as_str).is_some();
    let f = |severity, code, text: &str| Finding { severity, code, text: text.to_owned(), expression: rt.clone() };
    match mode {
        Some(Mode::Update) if !has_id => {
            vec![f(Severity::Error, "required", "mode update: the resource needs an id (the id it is updated at)")]
        }
        Some(Mode::Create) if has_id => {
            vec![f(
                Severity::Warning,
                "business-rule",
                "mode create: the resource has an id, which a server ignores and replaces on create",
            )]
        }
        _ => Vec::new(),
    }
}

/// The OperationOutcome for one JSON document's bytes, and whether it holds an error: not
/// JSON (almost-JSON is read as the HL7 validator reads it, each departure an error at its
/// path, [`parse_document`]), nested deeper than `max_depth`, a key twice in an object (named
/// by the object's pointer), no `resourceType`, or the validator's findings (with a
/// terminology server's verdicts, `tx`, when delegation prefetched them).
pub fn validate_bytes(
    v: &Validator,
    bytes: &[u8],
    profiles: &[&str],
    mode: Option<Mode>,
    max_depth: usize,
    allow_comments: bool,
    tx: Option<&TxAnswers>,
) -> (Value, bool) {
    match parse_document(bytes, max_depth, allow_comments) {
        Ok((value, syntax)) => validate_value(v, value, syntax, profiles, mode, tx),
        Err(oo) => (oo, true),
    }
}

/// One JSON document's bytes as a resource, with the findings of how it departs from JSON, or
/// the OperationOutcome refusing them (always an error): not JSON even read leniently, nested
/// deeper than `max_depth`, a key twice in an object (named by the object's pointer). JSON is
/// read strictly first; only bytes that fail are read as the HL7 validator's JSON5 mode reads
/// them ([`crate::json_lenient`]: comments, missing or extra commas, unquoted names and values,
/// each an error at its FHIR path, comments none when `allow_comments`), so that a tester
/// learns where each problem is and what else is wrong. The tree is built at its exact size
/// ([`crate::json_lean`]), and nothing of `bytes` is kept: a caller that owns them can free
/// them before validating.
pub fn parse_document(bytes: &[u8], max_depth: usize, allow_comments: bool) -> Result<(Value, Vec<Finding>), Value> {
    let bytes = crate::ingest::reader::strip_bom(bytes);
    if crate::ingest::reader::nesting_depth(bytes, max_depth) > max_depth {
        return Err(failure(&format!("JSON nested deeper than {max_depth} levels")));
    }
    let value: Value = match crate::json_lean::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => {
            let Some((value, departures)) = crate::json_lenient::from_slice(bytes, max_depth) else {
                return Err(failure("not JSON"));
            };
            let syntax = departures
                .into_iter()
                .filter(|d| !(d.comment && allow_comments))
                .map(|d| Finding { severity: Severity::Error, code: "invalid", text: d.message, expression: d.path })
                .collect();
            return Ok((value, syntax));
        }
    };
    let duplicates = crate::json_strict::duplicate_keys(bytes);
    if !duplicates.is_empty() {
        let issues: Vec<Value> = duplicates
            .into_iter()
            .map(|p| {
                let mut i = failure("duplicate property: this object holds a property name twice")["issue"][0].take();
                if !p.is_empty() {
                    i["location"] = json!([p]);
                }
                i
            })
            .collect();
        return Err(json!({"resourceType": "OperationOutcome", "issue": issues}));
    }
    Ok((value, Vec::new()))
}

/// The OperationOutcome for a parsed document ([`parse_document`], with its `syntax` findings),
/// and whether it holds an error: no `resourceType`, the mode's findings, or the validator's. The document is freed
/// once its findings are made, before the OperationOutcome is built (a large Bundle's tree and
/// its outcome's are not held together; issue 17).
pub fn validate_value(
    v: &Validator,
    value: Value,
    syntax: Vec<Finding>,
    profiles: &[&str],
    mode: Option<Mode>,
    tx: Option<&TxAnswers>,
) -> (Value, bool) {
    if value.get("resourceType").and_then(Value::as_str).is_none() {
        return (failure("not a FHIR resource: no resourceType"), true);
    }
    let mut findings = syntax;
    findings.extend(mode_findings(mode, &value));
    findings.extend(v.validate_with(&value, profiles, tx));
    drop(value);
    (outcome(&findings), has_errors(&findings))
}

/// The non-blank lines of NDJSON with their 1-based line numbers (a trailing newline, blank
/// lines and a `\r` before `\n` are allowed).
pub fn ndjson_lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
}

/// Marks every issue of `oo` with the line it is about (`operationoutcome-issue-line`).
pub fn at_line(mut oo: Value, line: usize) -> Value {
    for issue in oo["issue"].as_array_mut().into_iter().flatten() {
        let ext = json!({"url": ISSUE_LINE, "valueInteger": line});
        match issue.get_mut("extension").and_then(Value::as_array_mut) {
            Some(a) => a.push(ext),
            None => issue["extension"] = json!([ext]),
        }
    }
    oo
}

/// One OperationOutcome per non-blank NDJSON line (each issue naming its line), and whether
/// any holds an error. No lines at all is one error.
pub fn validate_ndjson(
    v: &Validator,
    bytes: &[u8],
    profiles: &[&str],
    mode: Option<Mode>,
    max_depth: usize,
    allow_comments: bool,
    tx: Option<&TxAnswers>,
) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    let mut bad = false;
    for (n, line) in ndjson_lines(crate::ingest::reader::strip_bom(bytes)) {
        let (oo, b) = validate_bytes(v, line, profiles, mode, max_depth, allow_comments, tx);
        bad |= b;
        out.push(at_line(oo, n));
    }
    if out.is_empty() {
        return (vec![failure("no resources: the NDJSON has no non-blank line")], true);
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_are_numbered_from_one_and_blank_ones_skipped() {
        let lines: Vec<(usize, &[u8])> = ndjson_lines(b"{\"a\":1}\r\n\n  \n{\"b\":2}\n").collect();
        assert_eq!(lines, vec![(1, &b"{\"a\":1}"[..]), (4, &b"{\"b\":2}"[..])]);
    }

    /// Issue 17: `parse_document` builds its tree with `json_lean`; the OperationOutcome is the
    /// one serde_json's own tree gives, on the golden Bundles, the HL7 suite's Bundle cases
    /// and a generated 2,000-entry Bundle (golden Bundle 04's entries repeated, as
    /// `examples/bundle.rs` builds them).
    #[test]
    fn outcomes_are_those_of_serde_jsons_tree() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let v = crate::validate::profile::load::load(&root.join("conformance/packages"), &[], &[]).unwrap();
        let check = |name: &str, bytes: &[u8]| {
            let theirs: Value = serde_json::from_slice(bytes).unwrap();
            let (ours, syntax) = parse_document(bytes, 64, false).unwrap();
            assert!(syntax.is_empty());
            assert_eq!(
                validate_value(&v, ours, syntax, &[], None, None),
                validate_value(&v, theirs, Vec::new(), &[], None, None),
                "{name}"
            );
        };
        let mut bundles = 0;
        for dir in [root.join("tests/golden/expected"), root.join("../shared/test-suites/fhir-validator-r4/cases")] {
            for f in std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()) {
                let bytes = std::fs::read(&f).unwrap_or_default();
                let is_bundle = serde_json::from_slice::<Value>(&bytes).is_ok_and(|b| b["resourceType"] == "Bundle");
                if is_bundle {
                    check(&f.display().to_string(), &bytes);
                    bundles += 1;
                }
            }
        }
        assert!(bundles >= 32, "{bundles} Bundles compared");
        let golden: Value =
            serde_json::from_slice(&std::fs::read(root.join("tests/golden/expected/04-ca-ime-ukr-cyrillic-maiden.json")).unwrap()).unwrap();
        let entries = golden["entry"].as_array().unwrap();
        let mut all = entries.clone();
        for n in 0..2_000 - entries.len() {
            let mut e = entries[n % entries.len()].clone();
            e["fullUrl"] = json!(format!("urn:uuid:00000000-0000-4000-8000-{n:012x}"));
            all.push(e);
        }
        let mut big = golden.clone();
        big["entry"] = Value::Array(all);
        check("2,000 entries", &serde_json::to_vec(&big).unwrap());
    }

    #[test]
    fn almost_json_is_read_with_each_departure_an_error_at_its_path() {
        let text = b"// from a card\n{\"resourceType\": \"Patient\", \"gender\": \"female\",}";
        let (value, syntax) = parse_document(text, 32, false).unwrap();
        assert_eq!(value["gender"], "female");
        let at: Vec<(&str, &str)> = syntax.iter().map(|f| (f.expression.as_str(), f.text.as_str())).collect();
        assert_eq!(
            at,
            [("Patient", "Comments are not allowed in JSON"), ("Patient", "There is an extra comma at the end of the Object in the JSON")]
        );
        assert!(syntax.iter().all(|f| f.severity == Severity::Error));
        let (_, syntax) = parse_document(text, 32, true).unwrap();
        assert_eq!(syntax.len(), 1, "comments allowed, the comma is still an error");
        assert!(parse_document(b"{\"resourceType\": ", 32, true).is_err());
    }

    #[test]
    fn modes_ask_for_and_about_ids() {
        let with = json!({"resourceType": "Patient", "id": "1"});
        let without = json!({"resourceType": "Patient"});
        assert!(mode_findings(Some(Mode::Update), &without).iter().any(|f| f.severity == Severity::Error));
        assert!(mode_findings(Some(Mode::Update), &with).is_empty());
        assert!(mode_findings(Some(Mode::Create), &with).iter().all(|f| f.severity == Severity::Warning));
        assert!(mode_findings(None, &without).is_empty() && Mode::parse("patch").is_none());
    }
}
