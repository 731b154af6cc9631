//! `cargo bench --bench mapping`: the conversion's cost per record, against a floor measured in
//! the same run.
//!
//! - `floor`: serde_json parses the input bytes and serialises the output Bundle (the same bytes
//!   the pipeline reads and writes): what any JSON-to-JSON service pays.
//! - `map`: mapping alone (a deserialised record to a Bundle).
//! - `check+map`: record schema, calendar checks, deserialisation and mapping.
//! - `parse+map+serialize`: bytes in, bytes out, without the output gate.
//! - `pipeline`: everything `POST /fhir/$convert` does per record, including the FHIR R4 schema
//!   gate on the output.
//! - `ips-document`: the IPS document built from the converted transaction Bundle (no gate);
//!   `ips-gated`: the same through its output gate against `Bundle-uv-ips`; `html-page`: the
//!   printable page of that document. Against `pipeline` (the transaction output) of the same run.
//!
//! - `varied/floor` and `varied/pipeline`: the same over 1,000 different records, one per
//!   iteration in turn (the golden records with unique ids, as `examples/records.rs` writes
//!   them for `scripts/batch`). The output gate remembers elements it found clean
//!   (`validate/profile/walk/clean.rs`), so one record converted again and again (`typical`)
//!   shows its best case; `varied` shows what a backlog of different records costs.
//!
//! `scripts/bench-report` turns criterion's estimates into records/s and ratios to the floor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test and bench code: a failure should stop it loudly

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mhg::ingest::Record;
use mhg::pipeline::Pipeline;
use serde_json::Value;

#[path = "../examples/backlog/mod.rs"]
mod backlog;

fn pipeline() -> Pipeline {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Pipeline::load(&root.join("mappings"), &[], &root.join("conformance"), 32).expect("pipeline loads")
}

fn bench(c: &mut Criterion) {
    let p = pipeline();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for (label, file) in [("typical", "30-shared-adult-refugee-clear.json"), ("large", "23-us-refugee-mys-large-alias.json")] {
        let path = root.join("tests/golden/records").join(file);
        let Ok(text) = std::fs::read(&path) else { continue };
        // Input as a client sends it: compact JSON.
        let value: Value = serde_json::from_slice(&text).expect("fixture");
        let bytes = serde_json::to_vec(&value).expect("serialises");
        let record: Record = serde_json::from_value(value.clone()).expect("record");
        let bundle = p.convert_value(&value).expect("converts").bundle;

        let mut g = c.benchmark_group(label);
        g.throughput(Throughput::Elements(1));
        g.bench_function("floor", |b| {
            b.iter(|| {
                let v: Value = serde_json::from_slice(black_box(&bytes)).expect("parses");
                black_box(v);
                black_box(serde_json::to_vec(black_box(&bundle)).expect("serialises"))
            })
        });
        g.bench_function("map", |b| {
            b.iter(|| black_box(mhg::map::map_record(black_box(&record), &p.terminology).expect("maps")))
        });
        g.bench_function("check+map", |b| b.iter(|| black_box(p.check_and_map(black_box(&value)).expect("maps"))));
        g.bench_function("parse+map+serialize", |b| {
            b.iter(|| {
                let v: Value = serde_json::from_slice(black_box(&bytes)).expect("parses");
                let m = p.check_and_map(&v).expect("maps");
                black_box(serde_json::to_vec(&m.bundle).expect("serialises"))
            })
        });
        g.bench_function("pipeline", |b| {
            b.iter(|| {
                let v: Value = serde_json::from_slice(black_box(&bytes)).expect("parses");
                let m = p.convert_value(&v).expect("converts");
                black_box(serde_json::to_vec(&m.bundle).expect("serialises"))
            })
        });
        let mapped = p.convert_value(&value).expect("converts");
        let document = p.document(&mapped).expect("document");
        g.bench_function("ips-document", |b| {
            b.iter(|| black_box(serde_json::to_vec(&mhg::map::ips::document(black_box(&mapped.bundle))).expect("serialises")))
        });
        g.bench_function("ips-gated", |b| b.iter(|| black_box(p.document(black_box(&mapped)).expect("document"))));
        g.bench_function("html-page", |b| b.iter(|| black_box(mhg::map::ips::page::render(black_box(&document.bundle)))));
        g.finish();
    }
    varied(c, &p);
    c.bench_function("startup/load-mappings-and-schemas", |b| b.iter(|| black_box(pipeline())));
}

/// 1,000 different records (input bytes, output Bundle), converted one per iteration.
fn varied(c: &mut Criterion, p: &Pipeline) {
    let templates = backlog::templates();
    let mut records: Vec<(Vec<u8>, Value)> = Vec::new();
    for i in 0..1000 {
        let r = backlog::record(&templates, i);
        // The golden set holds one record that is refused: a backlog's are reported apart.
        if let Ok(m) = p.convert_value(&r) {
            records.push((serde_json::to_vec(&r).expect("serialises"), m.bundle));
        }
    }
    let mut g = c.benchmark_group("varied");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("floor", |b| {
        b.iter(|| {
            let (bytes, bundle) = &records[i % records.len()];
            i += 1;
            let v: Value = serde_json::from_slice(black_box(bytes)).expect("parses");
            black_box(v);
            black_box(serde_json::to_vec(black_box(bundle)).expect("serialises"))
        })
    });
    let mut i = 0;
    g.bench_function("pipeline", |b| {
        b.iter(|| {
            let (bytes, _) = &records[i % records.len()];
            i += 1;
            let v: Value = serde_json::from_slice(black_box(bytes)).expect("parses");
            let m = p.convert_value(&v).expect("converts");
            black_box(serde_json::to_vec(&m.bundle).expect("serialises"))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
