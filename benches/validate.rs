//! `cargo bench --bench validate`: the profile validator's cost.
//!
//! - `resource/{Patient,Observation,Immunization}`: one resource of a golden Bundle against its
//!   `meta.profile` (IPS 2.0.0) and base R4, with the shipped packages.
//! - `bundle/22-entries`: a whole golden transaction Bundle (every entry with its own profiles,
//!   references resolved inside the Bundle).
//! - `bundle/100000-entries`: the same entries repeated to 100,000 (must stay linear).
//! - `startup`: loading the shipped packages (`conformance/packages`) and building the
//!   validator, then a first Patient validation (which compiles the profiles it needs).
//! - memory, printed once as `memory/...` lines (criterion measures time only): the heap the
//!   validator holds after start-up and a first Patient, and the peak heap a validation of the
//!   large Bundle adds to the parsed Bundle. Counted by the allocator below, only while
//!   measuring (a branch on a flag otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test and bench code: a failure should stop it loudly

/// mimalloc, counting live and peak heap bytes while `COUNTING` is on.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    if COUNTING.load(Relaxed) {
        let now = LIVE.fetch_add(n, Relaxed) + n;
        PEAK.fetch_max(now, Relaxed);
    }
}

fn shrank(n: usize) {
    if COUNTING.load(Relaxed) {
        // Memory allocated before counting began and freed during it would underflow.
        let _ = LIVE.fetch_update(Relaxed, Relaxed, |l| Some(l.saturating_sub(n)));
    }
}

// The one `unsafe` of the crate (Cargo.toml `[lints.rust]`): an allocator is an unsafe trait.
// SAFETY: every call goes to mimalloc unchanged; the counters only observe the sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        shrank(l.size());
        unsafe { mimalloc::MiMalloc.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { mimalloc::MiMalloc.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { mimalloc::MiMalloc.realloc(p, l, new) };
        if !q.is_null() {
            shrank(l.size());
            grew(new);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with the counters on from zero; answers (bytes it left live, its peak bytes).
fn counted<T>(f: impl FnOnce() -> T) -> (T, usize, usize) {
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let out = f();
    COUNTING.store(false, Relaxed);
    (out, LIVE.load(Relaxed), PEAK.load(Relaxed))
}

fn mb(n: usize) -> String {
    format!("{:.1} MB", n as f64 / 1e6)
}

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
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
    // The validator's own heap: packages indexed, definitions parsed, profiles compiled for a
    // first Patient (memory freed on the way is not counted as held).
    let p = golden("04-ca-ime-ukr-cyrillic-maiden.json")["entry"][0]["resource"].clone();
    let (v0, held, peak) = counted(|| {
        let v = validator();
        black_box(v.validate(&p, &[]));
        v
    });
    println!(
        "memory/startup: {} of heap held by the validator after loading and a first Patient (peak {})",
        mb(held),
        mb(peak)
    );
    drop(v0);
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
    c.bench_function(&format!("bundle/{}-entries", entries.len()), |b| {
        b.iter(|| black_box(v.validate(black_box(&bundle), &[])))
    });

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
    let json_bytes = serde_json::to_vec(&big).map(|b| b.len()).unwrap_or_default();
    let (_, _, peak) = counted(|| black_box(v.validate(&big, &[])));
    println!(
        "memory/bundle-large: {size} entries ({} of JSON): validating it peaks at {} of heap beyond the parsed Bundle",
        mb(json_bytes),
        mb(peak)
    );
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
