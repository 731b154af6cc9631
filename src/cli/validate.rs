//! `mhg validate FILE... [--profile URL] [--package PATH]... [--load FILE]...`: validates FHIR
//! JSON resources with the profile validator and prints one OperationOutcome per file (one JSON
//! document per line, in the order given, each naming its file with the `operationoutcome-file`
//! extension). Exit 0 when no file has an error, 1 when any has
//! (a file that is not FHIR JSON counts, as does one with a key twice in an object, named by the
//! object's pointer), 2 for a usage error (unknown profile, unreadable
//! package or definition file).

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::config::Config;
use crate::validate::profile::{Validator, has_errors, outcome};

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

/// The OperationOutcome for one file's bytes, and whether it holds an error.
pub fn validate_bytes(v: &Validator, bytes: &[u8], profiles: &[&str], max_depth: usize) -> (Value, bool) {
    let bytes = crate::ingest::reader::strip_bom(bytes);
    if crate::ingest::reader::nesting_depth(bytes, max_depth) > max_depth {
        return (failure(&format!("JSON nested deeper than {max_depth} levels")), true);
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) => return (failure("not JSON"), true),
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
        return (json!({"resourceType": "OperationOutcome", "issue": issues}), true);
    }
    if value.get("resourceType").and_then(Value::as_str).is_none() {
        return (failure("not a FHIR resource: no resourceType"), true);
    }
    let findings = v.validate(&value, profiles);
    (outcome(&findings), has_errors(&findings))
}

pub fn run(config: &Config, args: Args) -> i32 {
    let validator = match config.validator(&args.package, &args.load) {
        Ok(v) => v,
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
    let mut status = 0;
    for f in &args.files {
        let (oo, bad) = match std::fs::read(f) {
            Ok(bytes) => validate_bytes(&validator, &bytes, &profiles, config.limits.max_depth),
            Err(e) => (failure(&format!("cannot read {}: {}", f.display(), e.kind())), true),
        };
        if bad {
            status = 1;
        }
        println!("{}", with_file(oo, f));
    }
    status
}
