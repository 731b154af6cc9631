//! `mhg validate FILE... [--profile URL] [--package PATH]... [--load FILE]... [--ndjson]
//! [--mode M] [--tx URL]`: validates FHIR JSON resources with the profile validator and prints one
//! OperationOutcome per file (one JSON document per line, in the order given, each naming its
//! file with the `operationoutcome-file` extension). An NDJSON file (`.ndjson`, `.jsonl`, or any
//! file with `--ndjson`) gets one OperationOutcome per non-blank line, naming the file, each
//! issue naming its line (`operationoutcome-issue-line`). Exit 0 when no file has an error, 1
//! when any has
//! (a file that is not FHIR JSON counts, as does one with a key twice in an object, named by the
//! object's pointer), 2 for a usage error (unknown profile, unreadable
//! package or definition file, a `--tx` that is not an http(s) URL).
//!
//! `--tx URL` (a FHIR terminology base) routes the codes of every code system not loaded here
//! to that server (`CodeSystem/$validate-code`; bindings to value sets not expandable here to
//! its `ValueSet/$validate-code`), as `[terminology] servers` do for the
//! gateway (which apply here too), with the same disk cache; a server that does not answer
//! makes its codes warnings ("not checked, terminology server unavailable"), not errors.
//! `--tx n/a` (as the HL7 validator's) uses no server, not even the configured ones.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::config::Config;
use crate::validate::document::{Mode, parse_document, validate_ndjson, validate_value};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// FHIR resources (JSON) to validate.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Also validate against this profile (canonical URL); repeatable.
    #[arg(long)]
    pub profile: Vec<String>,
    /// Load a FHIR package (.tgz or folder) beyond the shipped ones; repeatable.
    #[arg(long)]
    pub package: Vec<PathBuf>,
    /// Load a definition file (StructureDefinition, ValueSet, CodeSystem); repeatable.
    #[arg(long)]
    pub load: Vec<PathBuf>,
    /// Read every file as NDJSON (one resource per line); `.ndjson` and `.jsonl` files are.
    #[arg(long)]
    pub ndjson: bool,
    /// `$validate`'s mode: create, update, delete or profile.
    #[arg(long, value_parser = ["create", "update", "delete", "profile"])]
    pub mode: Option<String>,
    /// A FHIR terminology server (its base URL) for the codes of every code system not loaded;
    /// `n/a`: none, not even the configured ones.
    #[arg(long, value_name = "URL")]
    pub tx: Option<String>,
    /// Longest one request to the `--tx` server may take, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub tx_timeout_ms: u64,
    /// The least severe issues printed, as the HL7 validator's `-level`: `hints` (all),
    /// `warnings` (warnings and errors) or `errors`. The exit status is the same whatever it is.
    #[arg(long, value_parser = ["hints", "warnings", "errors"], default_value = "hints")]
    pub level: String,
    /// What a failed best-practice invariant (`dom-6`...) is, as the HL7 validator's
    /// `-best-practice`: ignore, hint, warning (the default) or error.
    #[arg(long, value_parser = ["ignore", "hint", "warning", "error"], default_value = "warning")]
    pub best_practice: String,
    /// Invariant failures quote the FHIRPath expression (HL7's `-want-invariants-in-messages`).
    #[arg(long)]
    pub want_invariants_in_messages: bool,
    /// A canonical resource marked experimental is an error (HL7's `-no-experimental-content`).
    #[arg(long)]
    pub no_experimental_content: bool,
    /// Example URLs (example.org, acme.com...) are accepted unresolved (HL7's
    /// `-allow-example-urls`); `false` makes one an error where a URL must resolve.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub allow_example_urls: bool,
    /// Extensions under this URL prefix may be unknown (HL7's `-extension`); `any` for all;
    /// repeatable.
    #[arg(long, value_name = "URL")]
    pub extension_domain: Vec<String>,
    /// A string that looks like it embeds HTML tags is an error (HL7's `-security-checks`).
    #[arg(long)]
    pub security_checks: bool,
    /// What looks like an HTML tag in markdown is an error, not a warning (HL7's
    /// `noHtmlInMarkdown`).
    #[arg(long)]
    pub no_html_in_markdown: bool,
    /// Relative references must resolve in the content validated (HL7's reference policy
    /// CHECK_EXISTS_AND_TYPE, without fetching anything).
    #[arg(long)]
    pub check_references: bool,
    /// Comments (`//`, `/* */`) in a JSON file are accepted (the HL7 validator's
    /// `allow-comments`); without it each is an error at the element it precedes. Other
    /// departures from JSON (missing or extra commas, unquoted names) are errors either way.
    #[arg(long)]
    pub allow_comments: bool,
}

/// Drops the issues below `level` (`hints`, `warnings`, `errors`) from an OperationOutcome.
fn at_level(mut oo: Value, level: &str) -> Value {
    let keep = |sev: &str| match level {
        "errors" => matches!(sev, "error" | "fatal"),
        "warnings" => matches!(sev, "error" | "fatal" | "warning"),
        _ => true,
    };
    if let Some(issues) = oo.get_mut("issue").and_then(Value::as_array_mut) {
        issues.retain(|i| keep(i["severity"].as_str().unwrap_or_default()));
        if issues.is_empty() {
            // An OperationOutcome needs an issue: say that nothing at this level was found.
            issues.push(json!({"severity": "information", "code": "informational", "details": {"text": "no issues at this level"}}));
        }
    }
    oo
}

/// A file in FHIR's XML form: named `.xml`, or starting (after a byte-order mark and white
/// space) with `<`.
fn is_xml(f: &std::path::Path, bytes: &[u8]) -> bool {
    f.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml"))
        || crate::ingest::reader::strip_bom(bytes).iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

fn failure(text: &str) -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "structure", "details": {"text": text}}]})
}

/// Names the file an OperationOutcome is about (the standard `operationoutcome-file`
/// extension, as the HL7 validator marks its outcomes), first among its properties.
fn with_file(oo: Value, file: &std::path::Path) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("resourceType".into(), json!("OperationOutcome"));
    out.insert(
        "extension".into(),
        json!([{"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-file", "valueString": file.display().to_string()}]),
    );
    if let Value::Object(m) = oo {
        out.extend(m.into_iter().filter(|(k, _)| k != "resourceType"));
    }
    Value::Object(out)
}

pub fn run(config: &Config, args: Args) -> i32 {
    let best_practice =
        crate::validate::profile::BestPractice::parse(&args.best_practice).unwrap_or(crate::validate::profile::BestPractice::Warning);
    let validator = match config.validator(&args.package, &args.load) {
        Ok(v) => v
            .with_best_practice(best_practice)
            .with_invariants_in_messages(args.want_invariants_in_messages)
            .with_no_experimental_content(args.no_experimental_content)
            .with_references_checked(args.check_references)
            .with_example_urls(args.allow_example_urls)
            .with_extension_domains(config.validation.extension_domains.iter().chain(&args.extension_domain).cloned().collect())
            .with_security_checks(args.security_checks)
            .with_no_html_in_markdown(args.no_html_in_markdown),
        Err(e) => {
            eprintln!("mhg: {e}");
            return 2;
        }
    };
    for d in config.unserved_dependencies(&validator) {
        eprintln!(
            "mhg: note: {} needs {}, which is not loaded: add it with --package, or definitions from it are unknown",
            d.package, d.needs
        );
    }
    for p in &args.profile {
        if !validator.knows_profile(p) {
            let text = format!("unknown profile {p} (load it with --package or --load)");
            eprintln!("mhg: {text}");
            let mut oo = failure(&text);
            oo["issue"][0]["code"] = json!("not-found");
            println!("{oo}");
            return 2;
        }
    }
    let profiles: Vec<&str> = args.profile.iter().map(String::as_str).collect();
    let mode = args.mode.as_deref().and_then(Mode::parse);
    let max_depth = config.limits.max_depth;
    let mut tx_config = config.terminology.clone();
    if args.tx.as_deref() == Some("n/a") {
        // As the HL7 validator's `-tx n/a`: no terminology server at all.
        tx_config.servers.clear();
    } else if let Some(url) = &args.tx {
        let mut s = crate::terminology::delegate::ServerConfig::catch_all(url);
        s.timeout_ms = args.tx_timeout_ms;
        tx_config.servers.push(s);
    }
    let delegation = match crate::terminology::delegate::Delegation::from_config(&tx_config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mhg: {e}");
            return 2;
        }
    };
    let rt = match delegation.as_ref().map(|_| tokio::runtime::Builder::new_current_thread().enable_all().build()) {
        Some(Err(e)) => {
            eprintln!("mhg: cannot start the runtime: {e}");
            return 2;
        }
        Some(Ok(rt)) => Some(rt),
        None => None,
    };
    let prefetch = |bytes: &[u8], ndjson: bool| match (&delegation, &rt) {
        (Some(d), Some(rt)) => Some(rt.block_on(d.prefetch_bytes(&validator, bytes, ndjson, &profiles))),
        _ => None,
    };
    let mut status = 0;
    for f in &args.files {
        let ndjson = args.ndjson || f.extension().is_some_and(|e| e == "ndjson" || e == "jsonl");
        let (outcomes, bad) = match std::fs::read(f) {
            Ok(bytes) if ndjson => {
                let tx = prefetch(&bytes, true);
                validate_ndjson(&validator, &bytes, &profiles, mode, max_depth, args.allow_comments, tx.as_ref())
            }
            Ok(bytes) if is_xml(f, &bytes) => {
                // FHIR's XML form, read into its JSON form by the loaded definitions.
                let parsed = std::str::from_utf8(crate::ingest::reader::strip_bom(&bytes))
                    .map_err(|_| "the XML is not UTF-8".to_owned())
                    .and_then(|t| validator.xml_to_json(t));
                drop(bytes);
                let (oo, bad) = match parsed {
                    Ok(value) => {
                        let tx = prefetch(value.to_string().as_bytes(), false);
                        validate_value(&validator, value, Vec::new(), &profiles, mode, tx.as_ref())
                    }
                    Err(e) => (failure(&e), true),
                };
                (vec![oo], bad)
            }
            Ok(bytes) => {
                let tx = prefetch(&bytes, false);
                // The bytes are freed before validating: with the tree they would be held twice
                // (a 122 MB Bundle is 122 MB more at the peak; issue 17).
                let parsed = parse_document(&bytes, max_depth, args.allow_comments);
                drop(bytes);
                let (oo, bad) = match parsed {
                    Ok((value, syntax)) => validate_value(&validator, value, syntax, &profiles, mode, tx.as_ref()),
                    Err(oo) => (oo, true),
                };
                (vec![oo], bad)
            }
            Err(e) => (vec![failure(&format!("cannot read {}: {}", f.display(), e.kind()))], true),
        };
        if bad {
            status = 1;
        }
        for oo in outcomes {
            println!("{}", with_file(at_level(oo, &args.level), f));
        }
    }
    status
}
