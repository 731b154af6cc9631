//! `cargo bench --bench queue`: the store's accept path (one transaction, fsync'd), SQLite, for
//! one submission per transaction and for group-committed batches. Each iteration stores new
//! submissions, so the database grows over the run as it would in service.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test and bench code: a failure should stop it loudly

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mhg::queue::{NewSubmission, Store, now_ms};

static SEQ: AtomicU64 = AtomicU64::new(0);

fn submissions(n: usize, bundle: &[u8]) -> Vec<NewSubmission> {
    (0..n)
        .map(|_| {
            let i = SEQ.fetch_add(1, Ordering::Relaxed);
            NewSubmission {
                id: format!("bench-{i}"),
                identity: mhg::queue::Identity { source_system: "test".into(), record_id: format!("R-{i}"), record_version: 1 },
                digest: String::new(),
                client_key: None,
                programme: String::new(),
                order_key: format!("{i:032x}"),
                submitter: "bench".into(),
                bundle: mhg::pipeline::ValidatedBundle::for_store_tests(bundle.to_vec()),
                destinations: vec!["moh".into()],
                person_identifiers: Vec::new(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = rt.block_on(Store::open(&format!("sqlite://{}", dir.path().join("bench.db").display()))).expect("store");
    // A typical mapped Bundle's size.
    let bundle = vec![b'x'; 30 * 1024];
    let mut g = c.benchmark_group("sqlite-accept");
    for n in [1usize, 100] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("{n}-per-transaction"), |b| {
            b.iter(|| rt.block_on(store.accept(submissions(n, &bundle), now_ms())).expect("accepted"))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3)).warm_up_time(std::time::Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
