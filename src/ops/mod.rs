//! Operating the gateway: metrics in the Prometheus text format.
//!
//! Labels are reasons, stages, destinations and outcomes: closed sets the gateway defines,
//! never values from a record. One process-wide registry, lock-free on the hot paths that matter
//! (a mutex around small maps; recording is rare next to mapping a record).

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// Latency buckets, seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// A series: metric name and its label pairs.
type Series = (&'static str, Vec<(&'static str, String)>);

#[derive(Default)]
struct Registry {
    counters: BTreeMap<Series, u64>,
    histograms: BTreeMap<Series, Histogram>,
    gauges: BTreeMap<Series, i64>,
    /// Per-minute counts of the last hour, by (what, destination): `accepted` (records stored for
    /// delivery) and each delivery outcome. The console's rates and chart are drawn from these.
    minutes: BTreeMap<(&'static str, String), VecDeque<(i64, u64)>>,
}

/// How many minutes [`last_hour`] covers.
pub const MINUTES: usize = 60;

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Registry::default()))
}

const HELP: &[(&str, &str, &str)] = &[
    (
        "mhg_records_accepted_total",
        "counter",
        "Records accepted (stored for delivery, or converted by $convert).",
    ),
    ("mhg_records_rejected_total", "counter", "Records refused, by reason."),
    ("mhg_requests_refused_total", "counter", "Requests answered with a 4xx OperationOutcome, by reason."),
    (
        "mhg_connections_closed_total",
        "counter",
        "Connections the gateway closed itself, by reason (connection-limit, header-timeout, idle-timeout).",
    ),
    (
        "mhg_validation_failures_total",
        "counter",
        "Errors found in produced FHIR, by the profile the entry claims or a destination requires.",
    ),
    (
        "mhg_deliveries_total",
        "counter",
        "Delivery attempts, by destination and outcome (delivered, retry, dead-letter).",
    ),
    ("mhg_summaries_served_total", "counter", "IPS documents answered by Patient/$summary."),
    ("mhg_stage_seconds", "histogram", "Time spent per stage (convert, accept, deliver)."),
    ("mhg_breaker_open", "gauge", "1 while a destination's breaker is open (it keeps failing), else 0."),
    (
        "mhg_queue_depth",
        "gauge",
        "Deliveries by destination and state, read from the store at scrape time.",
    ),
];

pub fn inc(name: &'static str, labels: &[(&'static str, &str)], by: u64) {
    let key = (name, labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
    let label = |k: &str| labels.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    // The figures the console charts, per minute.
    let minute = match name {
        "mhg_records_accepted_total" if label("path") == Some("records") => Some(("accepted", "")),
        "mhg_deliveries_total" => match (label("outcome"), label("destination")) {
            (Some("delivered"), Some(d)) => Some(("delivered", d)),
            (Some("retry"), Some(d)) => Some(("retry", d)),
            (Some("dead-letter"), Some(d)) => Some(("dead-letter", d)),
            _ => None,
        },
        _ => None,
    };
    let now_min = minute.map(|_| crate::calendar::now_ms().div_euclid(60_000));
    if let Ok(mut r) = registry().lock() {
        *r.counters.entry(key).or_insert(0) += by;
        if let (Some((what, dest)), Some(m)) = (minute, now_min) {
            let ring = r.minutes.entry((what, dest.to_owned())).or_default();
            match ring.back_mut() {
                Some((at, n)) if *at == m => *n += by,
                _ => ring.push_back((m, by)),
            }
            while ring.front().is_some_and(|(at, _)| *at <= m - MINUTES as i64) {
                ring.pop_front();
            }
        }
    }
}

/// A gauge's current value (e.g. `mhg_breaker_open`).
pub fn set_gauge(name: &'static str, labels: &[(&'static str, &str)], value: i64) {
    let key = (name, labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
    if let Ok(mut r) = registry().lock() {
        r.gauges.insert(key, value);
    }
}

pub fn gauge(name: &'static str, labels: &[(&'static str, &str)]) -> Option<i64> {
    let key: Series = (name, labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
    registry().lock().ok()?.gauges.get(&key).copied()
}

/// Per-minute counts of `what` over the last hour, oldest first, ending with the minute of
/// `now_ms`: for one destination, or summed over all (`None`). What this process counted since
/// it started (a restart starts from zero; replicas count their own).
pub fn last_hour(what: &str, destination: Option<&str>, now_ms: i64) -> Vec<u64> {
    let now_min = now_ms.div_euclid(60_000);
    let mut out = vec![0u64; MINUTES];
    if let Ok(r) = registry().lock() {
        for ((w, d), ring) in &r.minutes {
            if *w != what || destination.is_some_and(|x| x != d) {
                continue;
            }
            for (at, n) in ring {
                let age = now_min - at;
                if (0..MINUTES as i64).contains(&age) {
                    out[MINUTES - 1 - age as usize] += n;
                }
            }
        }
    }
    out
}

pub fn observe(name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
    let key = (name, labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());
    if let Ok(mut r) = registry().lock() {
        let h = r.histograms.entry(key).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }
}

fn labels(l: &[(&'static str, String)], extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() { String::new() } else { format!("{{{}}}", parts.join(",")) }
}

/// The Prometheus exposition, with the queue depth passed in (read from the store by the caller).
pub fn render(queue: &[(String, String, i64)]) -> String {
    let mut out = String::new();
    for (name, kind, help) in HELP {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    if let Ok(r) = registry().lock() {
        for ((name, l), v) in &r.counters {
            let _ = writeln!(out, "{name}{} {v}", labels(l, None));
        }
        for ((name, l), h) in &r.histograms {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(out, "{name}_bucket{} {}", labels(l, Some(("le", b.to_string()))), h.counts[i]);
            }
            let _ = writeln!(out, "{name}_bucket{} {}", labels(l, Some(("le", "+Inf".into()))), h.count);
            let _ = writeln!(out, "{name}_sum{} {}", labels(l, None), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", labels(l, None), h.count);
        }
        for ((name, l), v) in &r.gauges {
            let _ = writeln!(out, "{name}{} {v}", labels(l, None));
        }
    }
    for (dest, state, n) in queue {
        let _ = writeln!(
            out,
            "mhg_queue_depth{} {n}",
            labels(&[("destination", dest.clone()), ("state", state.clone())], None)
        );
    }
    out
}
