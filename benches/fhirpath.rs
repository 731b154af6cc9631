//! `cargo bench --bench fhirpath`: the FHIRPath engine's cost for the profile validator.
//!
//! - `model/*`: reading the R4 core StructureDefinitions from the package cache
//!   (`hl7.fhir.r4.examples` 4.0.1, from `tests/peers/fetch-packages.sh`) and building the
//!   [`TypeModel`] from them, apart and together (start-up cost).
//! - `invariant/*`: one real invariant on the golden Patient or Observation
//!   (`tests/golden/expected/30-shared-adult-refugee-clear.json`), through `invariant_at` on a
//!   prepared Bundle (the validator's path), and `invariant` (converts the JSON every call).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test and bench code: a failure should stop it loudly

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mhg::validate::fhirpath::{FhirPath, TypeModel};
use mhg::validate::packages::Packages;
use serde_json::Value;

fn core_package() -> PathBuf {
    std::env::var("MHG_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/mhg"))
        .join("packages/hl7.fhir.r4.examples#4.0.1")
}

fn packages() -> Packages {
    let mut p = Packages::new();
    p.add(&core_package()).expect("R4 core package in the cache (tests/peers/fetch-packages.sh)");
    p
}

fn core_sds(p: &Packages) -> Vec<Arc<Value>> {
    let urls: Vec<String> = p
        .urls_of_type("StructureDefinition")
        .filter(|u| u.strip_prefix("http://hl7.org/fhir/StructureDefinition/").is_some_and(|n| !n.contains('/')))
        .map(str::to_owned)
        .collect();
    urls.iter().filter_map(|u| p.resolve(u)).collect()
}

const INVARIANTS: [(&str, &str, &str); 6] = [
    ("Patient", "pat-name", "name.exists() or text.exists()"),
    ("Patient", "ele-1", "hasValue() or (children().count() > id.count())"),
    (
        "Patient",
        "pat-1",
        "contact.all(name.exists() or telecom.exists() or address.exists() or organization.exists())",
    ),
    ("Observation", "obs-6", "dataAbsentReason.empty() or value.empty()"),
    (
        "Observation",
        "obs-7",
        "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()",
    ),
    ("Observation", "ele-1", "hasValue() or (children().count() > id.count())"),
];

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("model");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("read R4 core SDs", |b| b.iter(|| black_box(core_sds(&packages()).len())));
    let p = packages();
    let sds = core_sds(&p);
    g.bench_function("build from parsed SDs", |b| {
        b.iter(|| black_box(TypeModel::from_definitions(sds.iter().map(|v| v.as_ref())).len()))
    });
    g.bench_function("read and build", |b| b.iter(|| black_box(TypeModel::from_packages(&packages()).len())));
    g.finish();

    let fp = FhirPath::new(Arc::new(TypeModel::from_packages(&p))).expect("engine");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(root.join("tests/golden/expected/30-shared-adult-refugee-clear.json")).expect("golden"))
            .expect("json");
    let prepared = fp.prepare(&bundle);
    let entries = bundle["entry"].as_array().expect("entries");
    let mut g = c.benchmark_group("invariant");
    g.measurement_time(Duration::from_secs(3));
    for (ty, key, expr) in INVARIANTS {
        let i = entries.iter().position(|e| e["resource"]["resourceType"] == ty).expect("resource");
        let at = format!("/entry/{i}/resource");
        let resource = &entries[i]["resource"];
        assert!(fp.invariant_at(expr, &prepared, &at, ty, &at).expect("evaluates"), "{key} holds on the golden {ty}");
        g.bench_function(format!("{ty} {key} (prepared)"), |b| {
            b.iter(|| black_box(fp.invariant_at(expr, &prepared, &at, ty, &at).ok()))
        });
        g.bench_function(format!("{ty} {key} (from JSON)"), |b| {
            b.iter(|| black_box(fp.invariant(expr, resource, ty, resource, &bundle).ok()))
        });
    }
    // All of a resource's invariants above on one context (the constraints of one element).
    for ty in ["Patient", "Observation"] {
        let i = entries.iter().position(|e| e["resource"]["resourceType"] == ty).expect("resource");
        let at = format!("/entry/{i}/resource");
        let exprs: Vec<&str> = INVARIANTS.iter().filter(|(t, _, _)| *t == ty).map(|(_, _, e)| *e).collect();
        g.bench_function(format!("{ty} all 3 (invariants_at, one context)"), |b| {
            b.iter(|| black_box(fp.invariants_at(&exprs, &prepared, &at, ty, &at, "").ok()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
