//! `GET /console`: submissions by state, each destination's queue (depth, delivery rate, last
//! success and failure, breaker, oldest pending), and accept and delivery rates over the last
//! hour as an SVG chart drawn here, on the server, from the gateway's own per-minute counts
//! (`crate::ops::last_hour`). The figures sit in `#figures`, which the embedded script
//! re-fetches every few seconds; without the script the page is complete as served.

use std::fmt::Write;

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::html::{self, esc};
use super::session::{Session, html_response};
use crate::http::AppState;
use crate::ops::{MINUTES, last_hour};

pub async fn page(State(st): State<AppState>, Extension(s): Extension<Session>) -> Response {
    let store = match super::store(&st, &s) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let configured: Vec<String> = st.relay.as_ref().map(|r| r.destinations.iter().map(|d| d.name.clone()).collect()).unwrap_or_default();
    let (counts, figures) = match tokio::try_join!(store.state_counts(), store.destination_figures(&configured)) {
        Ok(x) => x,
        Err(e) => return super::unavailable(&s, &e),
    };
    let now = crate::calendar::now_ms();
    let restricted = s.caller.is_restricted();
    let mut body = String::from("<section id=\"figures\" aria-live=\"polite\">");
    if restricted {
        body.push_str(&html::notice(
            "info",
            "This client is limited to some destinations or programmes: gateway-wide counts are not shown.",
        ));
    } else {
        let (by_state, total) = counts;
        body.push_str("<h2>Submissions by state</h2><ul class=\"counts\">");
        for st_name in ["accepted", "delivering", "retrying", "delivered", "dead-letter"] {
            let n = by_state.get(st_name).copied().unwrap_or(0);
            let _ = write!(
                body,
                "<li><a href=\"/console/submissions?state={st_name}\"><span class=\"n\" data-state=\"{st_name}\">{n}</span> \
                 <span class=\"label\">{st_name}</span></a></li>"
            );
        }
        let _ = write!(
            body,
            "<li><span class=\"n\" data-state=\"total\">{total}</span> <span class=\"label\">total</span></li></ul>"
        );
    }
    // Every configured destination, and any the store still holds deliveries for.
    let mut names: Vec<String> = figures.iter().map(|f| f.name.clone()).collect();
    names.retain(|n| s.caller.may_submit_to(n));
    let rows: Vec<Vec<String>> = names
        .iter()
        .map(|n| {
            let f = figures.iter().find(|f| &f.name == n).cloned().unwrap_or_default();
            let delivered: u64 = last_hour("delivered", Some(n), now).iter().sum();
            let breaker = match crate::ops::gauge("mhg_breaker_open", &[("destination", n)]) {
                Some(1) => html::state("open"),
                Some(_) => html::state("closed"),
                None => "<span class=\"muted\">not running here</span>".to_owned(),
            };
            let when = |t: Option<i64>| t.map(|t| format!("{} <span class=\"muted\">({} ago)</span>", html::time(t), html::age(now - t)));
            vec![
                format!("<a href=\"/console/submissions?destination={}\">{}</a>", html::url(n), esc(n)),
                format!("<span data-depth=\"{}\">{}</span>", esc(n), f.depth()),
                format!("{delivered} / h"),
                when(f.last_success_ms).unwrap_or_else(|| "never".into()),
                when(f.last_failure_ms).unwrap_or_else(|| "never".into()),
                breaker,
                f.oldest_open_ms.map(|t| html::age(now - t)).unwrap_or_else(|| "none pending".into()),
                f.by_state.get("dead").copied().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    body.push_str("<h2>Destinations</h2>");
    body.push_str(&html::table(
        "Per destination (delivery rate: deliveries in the last hour, this process)",
        &["Destination", "Queue depth", "Delivery rate", "Last success", "Last failure", "Breaker", "Oldest pending", "Dead letters"],
        &rows,
    ));
    let accepted = last_hour("accepted", None, now);
    let delivered = last_hour("delivered", None, now);
    body.push_str("<h2>The last hour</h2>");
    body.push_str(&chart(&accepted, &delivered));
    let _ = write!(
        body,
        "<p class=\"muted\">Per minute, counted by this gateway process since it started. Accepted: {} in the hour; delivered: {}. \
         Figures refresh every 10 seconds while the page is open (with JavaScript); reload otherwise.</p></section>",
        accepted.iter().sum::<u64>(),
        delivered.iter().sum::<u64>()
    );
    html_response(StatusCode::OK, html::page("Overview", Some(&s.who()), "/console", &body))
}

/// Two series of per-minute counts (oldest first) as an accessible SVG line chart, with the
/// same figures as a table for screen readers and text browsers.
pub fn chart(accepted: &[u64], delivered: &[u64]) -> String {
    let (w, h, pad) = (640.0_f64, 200.0_f64, 36.0_f64);
    let max = accepted.iter().chain(delivered).copied().max().unwrap_or(0).max(1) as f64;
    let n = MINUTES.max(2) as f64;
    let points = |v: &[u64]| -> String {
        v.iter()
            .enumerate()
            .map(|(i, y)| {
                let x = pad + (i as f64) * (w - 2.0 * pad) / (n - 1.0);
                let y = h - pad - (*y as f64) / max * (h - 2.0 * pad);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = format!(
        "<figure class=\"chart\"><svg role=\"img\" aria-labelledby=\"chart-title\" viewBox=\"0 0 {w} {h}\" width=\"100%\" \
         preserveAspectRatio=\"xMidYMid meet\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"chart-title\">Records accepted and delivered per minute, last 60 minutes</title>\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\" stroke-width=\"1\"/>\
         <line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#888\" stroke-width=\"1\"/>\
         <text x=\"{tx}\" y=\"{ty}\" font-size=\"11\" text-anchor=\"end\" fill=\"currentColor\">{max}</text>\
         <text x=\"{tx}\" y=\"{b}\" font-size=\"11\" text-anchor=\"end\" fill=\"currentColor\">0</text>\
         <text x=\"{pad}\" y=\"{lb}\" font-size=\"11\" fill=\"currentColor\">-60 min</text>\
         <text x=\"{r}\" y=\"{lb}\" font-size=\"11\" text-anchor=\"end\" fill=\"currentColor\">now</text>",
        b = h - pad,
        r = w - pad,
        tx = pad - 4.0,
        ty = pad + 4.0,
        lb = h - pad + 16.0,
        max = max as u64,
    );
    let _ = write!(
        svg,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"2\"/>\
         <polyline points=\"{}\" fill=\"none\" stroke=\"#1a7f37\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/>\
         </svg><figcaption><span class=\"key key-accepted\">accepted</span> <span class=\"key key-delivered\">delivered</span>\
         </figcaption></figure>",
        points(accepted),
        points(delivered)
    );
    // The same figures as text, every minute with any activity.
    let rows: Vec<Vec<String>> = (0..accepted.len().min(delivered.len()))
        .filter(|i| accepted[*i] > 0 || delivered[*i] > 0)
        .map(|i| vec![format!("-{} min", MINUTES - 1 - i), accepted[i].to_string(), delivered[i].to_string()])
        .collect();
    svg.push_str("<details><summary>The chart's figures as a table</summary>");
    svg.push_str(&html::table("Per minute (minutes with activity)", &["Minute", "Accepted", "Delivered"], &rows));
    svg.push_str("</details>");
    svg
}
