//! Entry points for the fuzz targets in `fuzz/` (cargo fuzz), shared with the regression test
//! that replays every input a fuzzer ever crashed on (`fuzz/regressions/<target>/`). Each takes
//! arbitrary bytes and must return without panicking, whatever they hold.

use std::sync::OnceLock;

use crate::pipeline::Pipeline;

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let home = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        match Pipeline::load(&home.join("mappings"), &[], &home.join("conformance"), 32) {
            Ok(p) => p,
            #[allow(clippy::panic)] // a fuzz harness without its inputs cannot run at all
            Err(e) => panic!("fuzzing needs the mappings: {e}"),
        }
    })
}

/// The record reader: one record, a JSON array or NDJSON, with the depth guard.
pub fn record_reader(data: &[u8]) {
    let _ = crate::ingest::read_records(data, Some("fuzz"), 32);
}

/// The whole pipeline: read, schema, semantic checks, mapping, output gate; and every refusal
/// rendered as an OperationOutcome.
pub fn mapping(data: &[u8]) {
    for o in pipeline().convert_bytes(data, None) {
        if let Err(r) = o.result {
            let _ = r.to_operation_outcome();
        }
    }
}

/// The FHIR package loader, on a `.tgz` made of the input bytes.
pub fn package_loader(data: &[u8]) {
    let Ok(dir) = std::env::temp_dir().canonicalize() else { return };
    let path = dir.join(format!("mhg-fuzz-{}.tgz", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let mut p = crate::validate::packages::Packages::new();
        if p.add(&path).is_ok() {
            for url in p.urls_of_type("StructureDefinition").map(str::to_owned).collect::<Vec<_>>() {
                let _ = p.resolve(&url);
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

/// JWT verification, against an issuer with an HS256 secret and one with an RSA key.
pub fn jwt(data: &[u8]) {
    static ISSUERS: OnceLock<Vec<crate::auth::jwt::Issuer>> = OnceLock::new();
    let issuers = ISSUERS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mhg-fuzz-jwt-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let secret = dir.join("secret");
        let _ = std::fs::write(&secret, "a-shared-secret-of-at-least-32-bytes-long");
        let cfg: crate::auth::jwt::IssuerConfig = match toml::from_str(&format!(
            "issuer = \"https://hs.example\"\naudience = \"mhg\"\nsecret_file = {:?}\nalgorithms = [\"HS256\"]\n",
            secret.display().to_string()
        )) {
            Ok(c) => c,
            #[allow(clippy::panic)] // a fuzz harness without its inputs cannot run at all
            Err(e) => panic!("{e}"),
        };
        crate::auth::jwt::Issuer::new(&cfg, &crate::environment::Env::default()).into_iter().collect()
    });
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = crate::auth::jwt::verify(issuers, s);
    }
}

/// The profile validator (shipped definitions), on any JSON: base R4, `meta.profile`, and the
/// IPS Patient profile given by the caller.
pub fn validator(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let p = pipeline();
    let _ = p.validator.validate(&v, &[]);
    let _ = p.validator.validate(&v, &["http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips"]);
}

/// The FHIRPath parser and evaluator: the input split at the first newline into an expression
/// and a JSON resource (an Observation when there is none), evaluated and as an invariant.
pub fn fhirpath(data: &[u8]) {
    static ENGINE: OnceLock<Option<crate::validate::fhirpath::FhirPath>> = OnceLock::new();
    let Some(engine) = ENGINE.get_or_init(|| {
        let home = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut packages = crate::validate::packages::Packages::new();
        packages.add(&home.join("conformance/packages/hl7.fhir.r4.examples-4.0.1.tgz")).ok()?;
        let model = std::sync::Arc::new(crate::validate::fhirpath::model::TypeModel::from_packages(&packages));
        crate::validate::fhirpath::FhirPath::new(model).ok()
    }) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (expr, json) = text.split_once('\n').unwrap_or((text, ""));
    let resource = serde_json::from_str::<serde_json::Value>(json).unwrap_or_else(|_| {
        serde_json::json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 1.5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}})
    });
    if engine.parse(expr).is_ok() {
        let _ = engine.evaluate(expr, &resource);
        let ty = resource["resourceType"].as_str().unwrap_or("Resource").to_owned();
        let _ = engine.invariant(expr, &resource, &ty, &resource, &resource);
    }
}
