//! `cargo bench --bench console`: the console's store reads with many submissions, on SQLite
//! and PostgreSQL (`MHG_TEST_PG`, default the local `test` database, in a fresh schema): the
//! overview's figures, the first page of the list, a filtered page, a page deep in the history,
//! and a search; p50 and p99 per page, and each as a ratio to the floor of the same run (reading
//! one submission by id, `Store::get`).
//!
//! `MHG_CONSOLE_BENCH_N` submissions (default 1,000,000 under `cargo bench`, 2,000 when run as
//! a test by `cargo test --benches`), 1 in 100 dead and 1 in 100 pending, the rest delivered
//! (written by SQL, as the relay would leave them: [`fixture`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // bench code: a failure should stop it loudly

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use mhg::queue::Store;
use mhg::queue::browse::Filter;

/// The fixture, written by SQL (accepting a million records one transaction at a time would
/// measure the accept path, which `benches/queue.rs` does): submission `i` is accepted `n - i`
/// seconds ago, by `client-(i % 7)`, programme `refugee` for 1 in 3; its delivery to `moh` is
/// dead for 1 in 100 (with an OperationOutcome), pending for 1 in 100, else delivered.
fn fixture(n: usize, now: i64) -> String {
    format!(
        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < {last})
         INSERT INTO submissions (id, idem_key, record_id, record_version, order_key, submitter, programme, created_at, source_system, digest)
         SELECT 'bench-' || CAST(100000000 + i AS TEXT), 'k-' || CAST(i AS TEXT), 'R-' || CAST(100000000 + i AS TEXT), 1,
                CAST(i AS TEXT), 'client-' || CAST(i % 7 AS TEXT), CASE WHEN i % 3 = 0 THEN 'refugee' ELSE 'labour' END,
                {now} - ({n} - i) * 1000, 'bench', '' FROM c;
         INSERT INTO deliveries (submission_seq, destination, order_key, source_system, record_id, record_version, state, attempts, next_at, updated_at, outcome)
         SELECT seq, 'moh', order_key, 'bench', record_id, 1,
                CASE WHEN seq % 100 = 0 THEN 'dead' WHEN seq % 100 = 1 THEN 'pending' ELSE 'delivered' END,
                CASE WHEN seq % 100 = 1 THEN 0 ELSE 1 END, created_at, created_at,
                CASE WHEN seq % 100 = 0 THEN '{{\"resourceType\":\"OperationOutcome\",\"issue\":[{{\"severity\":\"error\",\"code\":\"processing\"}}]}}' END
         FROM submissions;
         ANALYZE;",
        last = n.saturating_sub(1)
    )
}

async fn fill(url: &str, n: usize) {
    let t = Instant::now();
    let sql = fixture(n, mhg::queue::now_ms());
    if let Some(path) = url.strip_prefix("sqlite://") {
        let c = rusqlite::Connection::open(path).unwrap();
        c.execute_batch(&sql).unwrap();
    } else {
        let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        c.batch_execute(&sql).await.unwrap();
    }
    eprintln!("  filled {n} submissions in {:.1} s", t.elapsed().as_secs_f64());
}

fn quantiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

async fn time<F, Fut>(runs: usize, f: F) -> (f64, f64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await; // warm
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        v.push(t.elapsed());
    }
    quantiles(v)
}

async fn run(kind: &str, url: &str, n: usize, runs: usize) {
    eprintln!("{kind}:");
    let store = Store::open(url).await.unwrap();
    fill(url, n).await;
    let all = |_: &mhg::queue::SubmissionView| true;
    let mid = format!("bench-{}", 100_000_000 + n / 2);
    let floor = time(runs, || async { assert!(store.get(&mid).await.unwrap().is_some()) }).await;
    let mut rows: Vec<(&str, (f64, f64))> = vec![("floor: one submission by id", floor)];
    rows.push((
        "overview (state counts + destinations)",
        time(runs, || async {
            store.state_counts().await.unwrap();
            store.destination_figures(&["moh".to_owned()]).await.unwrap();
        })
        .await,
    ));
    rows.push((
        "list, first page",
        time(runs, || async {
            assert_eq!(store.browse(&Filter::default(), 50, all).await.unwrap().rows.len(), 50)
        })
        .await,
    ));
    let dead = Filter { state: Some("dead-letter".into()), ..Default::default() };
    rows.push((
        "list, state=dead-letter",
        time(runs, || async { assert!(!store.browse(&dead, 50, all).await.unwrap().rows.is_empty()) }).await,
    ));
    let by = Filter { submitter: Some("client-3".into()), programme: Some("refugee".into()), ..Default::default() };
    rows.push((
        "list, submitter + programme",
        time(runs, || async { assert!(!store.browse(&by, 50, all).await.unwrap().rows.is_empty()) }).await,
    ));
    let deep = Filter { before: Some((n / 2) as i64), ..Default::default() };
    rows.push((
        "list, a page in the middle",
        time(runs, || async { assert_eq!(store.browse(&deep, 50, all).await.unwrap().rows.len(), 50) }).await,
    ));
    let search = Filter { search: Some(format!("R-{}", 100_000_000 + n / 3)), ..Default::default() };
    rows.push((
        "search by record id",
        time(runs, || async { assert_eq!(store.browse(&search, 50, all).await.unwrap().rows.len(), 1) }).await,
    ));
    rows.push((
        "dead letters page (first 5,000)",
        time(runs.min(10), || async {
            store.dead_letters(5_000).await.unwrap();
        })
        .await,
    ));
    for (what, (p50, p99)) in rows {
        eprintln!(
            "  {what:<42} p50 {p50:>8.2} ms  p99 {p99:>8.2} ms  ({:.1}x the floor's p99)",
            p99 / floor.1.max(1e-6)
        );
    }
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize =
        std::env::var("MHG_CONSOLE_BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(if benching { 1_000_000 } else { 2_000 });
    let runs = if benching { 50 } else { 3 };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        run("sqlite", &format!("sqlite://{}", dir.path().join("console.db").display()), n, runs).await;
        let base = std::env::var("MHG_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let (c, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("PostgreSQL (MHG_TEST_PG)");
        tokio::spawn(conn);
        let schema = format!("mhg_bench_{}", uuid::Uuid::new_v4().simple());
        c.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
        run("postgres", &format!("{base}?options=-csearch_path%3D{schema}"), n, runs).await;
        c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
    });
}
