//! Building a [`Validator`] at start-up: every `.tgz` (or package folder) under
//! `<conformance>/packages`, then the configured packages, then loose definition files
//! (StructureDefinitions, ValueSets, CodeSystems, or Bundles of them; JSON or FHIR's XML).
//! Errors name the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::Validator;
use crate::error::GatewayError;
use crate::validate::packages::Packages;

fn err(path: &Path, message: impl Into<String>) -> GatewayError {
    GatewayError::Config { file: path.display().to_string(), message: message.into() }
}

/// The shipped packages in `dir` (sorted by name), then `extra` packages, then `loose` files.
pub fn load(dir: &Path, extra: &[PathBuf], loose: &[PathBuf]) -> Result<Validator, GatewayError> {
    let mut packages = Packages::new();
    if dir.is_dir() {
        let mut shipped: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| err(dir, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tgz") || p.join("package").is_dir())
            .collect();
        shipped.sort();
        for p in shipped {
            packages.add(&p)?;
        }
    }
    for p in extra {
        packages.add(p)?;
    }
    let packages = Arc::new(packages);
    // Definitions in FHIR's XML form are read by the packages' own definitions.
    let reader = Validator::new(packages.clone());
    let mut defs = Vec::with_capacity(loose.len());
    for f in loose {
        let bytes = std::fs::read(f).map_err(|e| err(f, format!("cannot read: {e}")))?;
        let v: Value = if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            let text = std::str::from_utf8(&bytes).map_err(|_| err(f, "XML that is not UTF-8"))?;
            reader.xml_to_json(text).map_err(|e| err(f, e))?
        } else {
            serde_json::from_slice(&bytes).map_err(|e| err(f, format!("not JSON: {e}")))?
        };
        if v["resourceType"].as_str().is_none() {
            return Err(err(f, "not a FHIR resource (no resourceType)"));
        }
        defs.push(v);
    }
    // FHIRPath invariants, typed by the R4 definitions just loaded; `memberOf()` answered
    // from the value sets those definitions let us expand.
    let model = Arc::new(crate::validate::fhirpath::model::TypeModel::from_packages(&packages));
    let terminology = LocalTerminology(Validator::new(packages.clone()).with_loose(defs.clone()));
    let engine = crate::validate::fhirpath::FhirPath::with_callbacks(model, Some(Arc::new(terminology)), None)
        .map_err(|e| err(dir, format!("the FHIRPath engine cannot start: {e}")))?;
    Ok(Validator::new(packages).with_loose(defs).with_engine(Arc::new(engine)))
}

/// `memberOf()` without a terminology server: a second validator over the same definitions,
/// with no engine, used for its local expansions only (the validator cannot be its own
/// engine's callback). A value set it cannot expand (SNOMED CT, LOINC filters, or not
/// loaded) answers empty, as FHIRPath does for what it cannot tell.
struct LocalTerminology(Validator);

impl crate::validate::fhirpath::Terminology for LocalTerminology {
    fn member_of(&self, system: &str, code: &str, value_set: &str) -> Option<bool> {
        let expansion = self.0.expansion(value_set)?;
        Some(expansion.has((!system.is_empty()).then_some(system), code))
    }
}
