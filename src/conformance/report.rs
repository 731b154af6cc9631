//! A run rendered three ways: JUnit XML (one `testcase` per check, for CI systems), a
//! self-contained HTML page (inline styles and an inline SVG chart of latencies; nothing
//! fetched) to attach to a sign-off, and a FHIR R4 `TestReport`. Each holds check names, rules,
//! vector names, statuses, codes and paths: nothing of a record beyond the synthetic vectors.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::check::{Run, Verdict};

fn xml(s: &str) -> String {
    crate::markup::escape(s)
}

/// JUnit XML: a `testsuite` per suite of checks, a `testcase` per check.
pub fn junit(run: &Run) -> String {
    let mut suites: Vec<&str> = run.checks.iter().map(|c| c.suite.as_str()).collect();
    suites.dedup();
    let mut seen = Vec::new();
    suites.retain(|s| {
        if seen.contains(s) {
            false
        } else {
            seen.push(*s);
            true
        }
    });
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"mhg conformance {}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        xml(&run.kind),
        run.checks.len(),
        run.count(Verdict::Fail),
        run.count(Verdict::Skip),
        run.millis / 1000.0
    );
    for s in suites {
        let cs: Vec<_> = run.checks.iter().filter(|c| c.suite == s).collect();
        let fails = cs.iter().filter(|c| c.verdict == Verdict::Fail).count();
        let skips = cs.iter().filter(|c| c.verdict == Verdict::Skip).count();
        let time: f64 = cs.iter().map(|c| c.millis).sum::<f64>() / 1000.0;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" skipped=\"{skips}\" time=\"{time:.3}\" timestamp=\"{}\">",
            xml(s),
            cs.len(),
            xml(&run.started)
        );
        for c in cs {
            let _ = write!(
                out,
                "    <testcase classname=\"{}.{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&run.kind),
                xml(s),
                xml(&c.name()),
                c.millis / 1000.0
            );
            match c.verdict {
                Verdict::Pass => out.push_str("/>\n"),
                Verdict::Skip => {
                    let _ = writeln!(out, ">\n      <skipped message=\"{}\"/>\n    </testcase>", xml(&c.message));
                }
                Verdict::Fail => {
                    let detail = c.detail.as_ref().map(|d| serde_json::to_string_pretty(d).unwrap_or_default()).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>",
                        xml(&c.message),
                        xml(&c.rule),
                        xml(&detail)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// An inline SVG histogram of the checks' latencies (log-spaced buckets, in ms).
fn latency_chart(run: &Run) -> String {
    let ms: Vec<f64> = run.checks.iter().filter(|c| c.millis > 0.0).map(|c| c.millis).collect();
    if ms.is_empty() {
        return "<p>No timed requests.</p>".to_owned();
    }
    let edges = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, f64::INFINITY];
    let mut counts = vec![0usize; edges.len()];
    for m in &ms {
        let i = edges.iter().position(|e| m <= e).unwrap_or(edges.len() - 1);
        counts[i] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1);
    let (w, h, bar) = (640.0, 200.0, 640.0 / edges.len() as f64);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\" aria-label=\"latency histogram\">",
        h + 40.0
    );
    for (i, c) in counts.iter().enumerate() {
        let bh = (*c as f64 / max as f64) * h;
        let x = i as f64 * bar;
        let label = if edges[i].is_finite() { format!("≤{}", edges[i]) } else { ">5000".to_owned() };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#3b6ea5\"><title>{label} ms: {c}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{c}</text><text x=\"{:.1}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{label}</text>",
            x + 2.0,
            h - bh,
            bar - 4.0,
            x + bar / 2.0,
            (h - bh - 2.0).max(10.0),
            x + bar / 2.0,
            h + 14.0
        );
    }
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    let _ = write!(
        svg,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">ms per check; p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms</text></svg>",
        w / 2.0,
        h + 34.0,
        q(0.5),
        q(0.95),
        q(1.0)
    );
    svg
}

/// The HTML report: one file, inline styles, no scripts, nothing fetched.
pub fn html(run: &Run) -> String {
    let (pass, fail, skip) = (run.count(Verdict::Pass), run.count(Verdict::Fail), run.count(Verdict::Skip));
    let verdict = if fail == 0 { "<span style=\"color:#1a7f37\">PASSED</span>" } else { "<span style=\"color:#c62828\">FAILED</span>" };
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mhg conformance {kind} report</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;width:100%}}\
td,th{{border:1px solid #ccc;padding:4px 6px;font-size:13px;text-align:left;vertical-align:top}}th{{background:#f0f0f0}}\
.pass{{color:#1a7f37}}.fail{{color:#c62828;font-weight:bold}}.skip{{color:#8a6d00}}pre{{background:#f7f7f7;padding:6px;overflow:auto;max-height:20em;font-size:12px}}\
.box{{display:inline-block;padding:8px 16px;margin-right:8px;border-radius:4px;background:#f4f4f4}}</style></head><body>\
<h1>mhg conformance {kind}: {verdict}</h1><p>Target <code>{target}</code>, started {started}, {secs:.1} s. Synthetic test vectors only.</p>\
<div><span class=\"box\">{total} checks</span><span class=\"box pass\">{pass} passed</span><span class=\"box {fail_class}\">{fail} failed</span><span class=\"box skip\">{skip} skipped</span></div>",
        kind = xml(&run.kind),
        target = xml(&run.target),
        started = xml(&run.started),
        secs = run.millis / 1000.0,
        total = run.checks.len(),
        fail_class = if fail > 0 { "fail" } else { "pass" },
    );
    o.push_str(
        "<h2>By suite</h2><table><tr><th>Suite</th><th>Checks</th><th>Passed</th><th>Failed</th><th>Skipped</th><th>Time (ms)</th></tr>",
    );
    let mut suites: Vec<&str> = Vec::new();
    for c in &run.checks {
        if !suites.contains(&c.suite.as_str()) {
            suites.push(&c.suite);
        }
    }
    for s in &suites {
        let cs: Vec<_> = run.checks.iter().filter(|c| c.suite == *s).collect();
        let n = |v| cs.iter().filter(|c| c.verdict == v).count();
        let t: f64 = cs.iter().map(|c| c.millis).sum();
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{t:.0}</td></tr>",
            xml(s),
            cs.len(),
            n(Verdict::Pass),
            n(Verdict::Fail),
            n(Verdict::Skip)
        );
    }
    o.push_str("</table><h2>Latency</h2>");
    o.push_str(&latency_chart(run));
    if fail > 0 {
        o.push_str("<h2>Failures</h2>");
        for c in run.checks.iter().filter(|c| c.verdict == Verdict::Fail) {
            let _ = write!(o, "<h3 class=\"fail\">{}</h3><p>{}</p>", xml(&c.name()), xml(&c.message));
            if let Some(d) = &c.detail {
                let _ = write!(o, "<pre>{}</pre>", xml(&serde_json::to_string_pretty(d).unwrap_or_default()));
            }
        }
    }
    o.push_str("<h2>Every check</h2><table><tr><th>Suite</th><th>Rule</th><th>Vector</th><th>Result</th><th>ms</th><th>Message</th></tr>");
    for c in &run.checks {
        let (class, word) = match c.verdict {
            Verdict::Pass => ("pass", "pass"),
            Verdict::Fail => ("fail", "FAIL"),
            Verdict::Skip => ("skip", "skip"),
        };
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{word}</td><td>{:.1}</td><td>{}</td></tr>",
            xml(&c.suite),
            xml(&c.rule),
            xml(c.vector.as_deref().unwrap_or("")),
            c.millis,
            xml(&c.message)
        );
    }
    o.push_str("</table></body></html>\n");
    o
}

/// The run as a FHIR R4 `TestReport`: a test per suite, an action (assert) per check.
pub fn test_report(run: &Run) -> Value {
    let fail = run.count(Verdict::Fail);
    let total = run.checks.len().max(1);
    let score = (run.count(Verdict::Pass) as f64) * 100.0 / total as f64;
    let mut suites: Vec<&str> = Vec::new();
    for c in &run.checks {
        if !suites.contains(&c.suite.as_str()) {
            suites.push(&c.suite);
        }
    }
    let tests: Vec<Value> = suites
        .iter()
        .map(|s| {
            let action: Vec<Value> = run
                .checks
                .iter()
                .enumerate()
                .filter(|(_, c)| c.suite == *s)
                .map(|(n, c)| {
                    let result = match c.verdict {
                        Verdict::Pass => "pass",
                        Verdict::Fail => "fail",
                        Verdict::Skip => "skip",
                    };
                    // Element ids are unique in a resource (a check may repeat a name: one rule,
                    // one vector, several resources), so the check's position follows its name.
                    let mut a = json!({"id": format!("{}.{n}", c.name().replace([' ', '[', ']'], "_")), "result": result});
                    if !c.message.is_empty() {
                        a["message"] = json!(c.message);
                    }
                    a["detail"] = json!(c.name());
                    json!({"assert": a})
                })
                .collect();
            json!({"name": s, "action": action})
        })
        .collect();
    json!({
        "resourceType": "TestReport",
        "status": "completed",
        "name": format!("mhg conformance {}", run.kind),
        "testScript": {"display": format!("mhg conformance {} (published test vectors)", run.kind)},
        "result": if fail == 0 { "pass" } else { "fail" },
        "score": (score * 100.0).round() / 100.0,
        "tester": "mhg conformance",
        "issued": run.started,
        "participant": [{"type": "server", "uri": run.target}],
        "test": tests,
    })
}
