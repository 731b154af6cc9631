//! `cargo bench --bench validate`: the profile validator's cost.
//!
//! - `resource/{Patient,Observation,Immunization}`: one resource of a golden Bundle against its
//!   `meta.profile` (IPS 2.0.0) and base R4, with the shipped packages.
//! - `bundle/22-entries`: a whole golden transaction Bundle (every entry with its own profiles,
//!   references resolved inside the Bundle).
//! - `bundle/100000-entries`: the same entries repeated to 100,000 (must stay linear).
//! - `startup`: loading the shipped packages (`conformance/packages`) and building the
//!   validator, then a first Patient validation (which compiles the profiles it needs).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mhg::validate::profile::{Validator, load};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> Validator {
    load::load(&root().join("conformance/packages"), &[], &[]).expect("packages load")
}

fn golden(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(root().join("tests/golden/expected").join(name)).expect("golden")).expect("json")
}

fn bench(c: &mut Criterion) {
    let v = validator();
    let bundle = golden("04-ca-ime-ukr-cyrillic-maiden.json");
    let entries = bundle["entry"].as_array().expect("entries").clone();
    for rt in ["Patient", "Observation", "Immunization"] {
        let Some(r) = entries.iter().map(|e| &e["resource"]).find(|r| r["resourceType"] == rt && r["meta"]["profile"].is_array()) else {
            continue;
        };
        assert!(!mhg::validate::profile::has_errors(&v.validate(r, &[])), "{rt} validates");
        c.bench_function(&format!("resource/{rt}"), |b| b.iter(|| black_box(v.validate(black_box(r), &[]))));
    }
    c.bench_function(&format!("bundle/{}-entries", entries.len()), |b| b.iter(|| black_box(v.validate(black_box(&bundle), &[]))));

    // 100,000 entries: the golden entries, then copies of its non-Patient entries with fresh
    // fullUrls (their references still point at the one Patient).
    // Under `cargo test --benches` (each benchmark run once, unoptimised) 2,000 entries are
    // enough to prove it still works; `cargo bench` measures the full 100,000.
    let size = if std::env::args().any(|a| a == "--bench") { 100_000 } else { 2_000 };
    let mut big = bundle.clone();
    let mut all = entries.clone();
    let mut n = 0u64;
    while all.len() < size {
        for e in entries.iter().filter(|e| e["resource"]["resourceType"] != "Patient") {
            if all.len() >= size {
                break;
            }
            let mut e = e.clone();
            n += 1;
            e["fullUrl"] = json!(format!("urn:uuid:00000000-0000-4000-8000-{n:012x}"));
            all.push(e);
        }
    }
    big["entry"] = Value::Array(all);
    let mut g = c.benchmark_group("bundle-large");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function(format!("{size}-entries"), |b| b.iter(|| black_box(v.validate(black_box(&big), &[]))));
    g.finish();

    let mut g = c.benchmark_group("startup");
    g.sample_size(10);
    let patient = entries.iter().map(|e| &e["resource"]).find(|r| r["resourceType"] == "Patient").cloned().expect("patient");
    g.bench_function("load+first-patient", |b| {
        b.iter(|| {
            let v = validator();
            black_box(v.validate(&patient, &[]))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
