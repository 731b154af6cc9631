//! `GET /console/submissions` (filtered, paged, newest first; searchable by submission id, record
//! id and Idempotency-Key, never by name) and `GET /console/submissions/{id}` (states per
//! destination, the destination's OperationOutcome as a table, the audit timeline, the Bundle's
//! shape: resource types, counts and profiles claimed, never its content).
//!
//! What a client may see is decided as the API decides it (`Caller::may_read`): a submission it
//! may not read is not listed and its page answers 404; listing dead letters needs `admin`, as
//! `GET /submissions?state=dead-letter` does.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::html::{self, esc, url};
use super::session::{Session, html_response, refusal};
use crate::auth::Scope;
use crate::http::AppState;
use crate::queue::SubmissionView;
use crate::queue::browse::Filter;

pub const STATES: [&str; 5] = ["accepted", "delivering", "retrying", "delivered", "dead-letter"];
const PAGE: i64 = 50;

pub fn visible(s: &Session, v: &SubmissionView) -> bool {
    s.caller.may_read(&v.programme, v.deliveries.iter().map(|d| d.destination.as_str()))
}

/// `YYYY-MM-DD` as unix ms at 00:00 UTC.
fn day_ms(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (v[..4].parse::<i64>().ok()?, v[5..7].parse::<i64>().ok()?, v[8..].parse::<i64>().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(crate::calendar::days_from_civil(y, m, d) * 86_400_000)
}

/// The list's filters from the query string, or the name of the field that cannot be read.
fn filter(query: Option<&str>) -> Result<(Filter, BTreeMap<String, String>), String> {
    let given: BTreeMap<String, String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .collect();
    let text = |k: &str| -> Result<Option<String>, String> {
        match given.get(k) {
            Some(v) if v.len() > 200 || v.chars().any(char::is_control) => Err(format!("'{k}' must be at most 200 printable characters")),
            v => Ok(v.cloned()),
        }
    };
    let mut f = Filter {
        destination: text("destination")?,
        programme: text("programme")?,
        submitter: text("submitter")?,
        search: text("q")?,
        ..Default::default()
    };
    if let Some(s) = given.get("state") {
        if !STATES.contains(&s.as_str()) {
            return Err("'state' must be one of accepted, delivering, retrying, delivered, dead-letter".into());
        }
        f.state = Some(s.clone());
    }
    if let Some(v) = given.get("from") {
        f.from_ms = Some(day_ms(v).ok_or("'from' must be a date, YYYY-MM-DD")?);
    }
    if let Some(v) = given.get("to") {
        f.to_ms = Some(day_ms(v).ok_or("'to' must be a date, YYYY-MM-DD")? + 86_400_000);
    }
    if let Some(v) = given.get("before") {
        f.before = Some(v.parse::<i64>().ok().filter(|n| *n > 0).ok_or("'before' must be a positive whole number")?);
    }
    Ok((f, given))
}

/// A submission's row in a list (its deliveries' states summed up).
pub fn row(v: &SubmissionView) -> Vec<String> {
    let dels = v.deliveries.iter().map(|d| format!("{}: {}", esc(&d.destination), esc(&d.state))).collect::<Vec<_>>().join("<br>");
    vec![
        format!("<a href=\"/console/submissions/{}\"><code>{}</code></a>", url(&v.id), esc(&v.id)),
        format!("<code>{}</code> v{}", esc(&v.record_id), v.record_version),
        esc(&v.programme),
        esc(&v.submitter),
        html::state(&v.state),
        esc(&v.accepted_at),
        dels,
    ]
}

pub const HEAD: [&str; 7] = ["Submission", "Record", "Programme", "Submitter", "State", "Accepted", "Deliveries"];

fn form(st: &AppState, given: &BTreeMap<String, String>, admin: bool) -> String {
    let val = |k: &str| esc(given.get(k).map(String::as_str).unwrap_or(""));
    let mut states = String::from("<option value=\"\">any</option>");
    for s in STATES.iter().filter(|s| admin || **s != "dead-letter") {
        let sel = if given.get("state").is_some_and(|v| v == s) { " selected" } else { "" };
        let _ = write!(states, "<option{sel} value=\"{s}\">{s}</option>");
    }
    let mut dests = String::from("<option value=\"\">any</option>");
    for d in st.relay.as_ref().map(|r| r.destinations.iter().map(|d| d.name.clone()).collect::<Vec<_>>()).unwrap_or_default() {
        let sel = if given.get("destination") == Some(&d) { " selected" } else { "" };
        let _ = write!(dests, "<option{sel} value=\"{0}\">{0}</option>", esc(&d));
    }
    format!(
        "<form method=\"get\" action=\"/console/submissions\" class=\"filters\" role=\"search\">\
         <p><label for=\"q\">Submission id, record id or Idempotency-Key</label><input id=\"q\" name=\"q\" value=\"{}\" type=\"search\"></p>\
         <p><label for=\"state\">State</label><select id=\"state\" name=\"state\">{states}</select></p>\
         <p><label for=\"destination\">Destination</label><select id=\"destination\" name=\"destination\">{dests}</select></p>\
         <p><label for=\"programme\">Programme</label><input id=\"programme\" name=\"programme\" value=\"{}\"></p>\
         <p><label for=\"submitter\">Submitter</label><input id=\"submitter\" name=\"submitter\" value=\"{}\"></p>\
         <p><label for=\"from\">Accepted from</label><input id=\"from\" name=\"from\" type=\"date\" value=\"{}\"></p>\
         <p><label for=\"to\">to</label><input id=\"to\" name=\"to\" type=\"date\" value=\"{}\"></p>\
         <p><button type=\"submit\">Show</button> <a href=\"/console/submissions\">Clear</a></p></form>",
        val("q"),
        val("programme"),
        val("submitter"),
        val("from"),
        val("to")
    )
}

pub async fn list(State(st): State<AppState>, Extension(s): Extension<Session>, RawQuery(query): RawQuery) -> Response {
    let store = match super::store(&st, &s) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (f, given) = match filter(query.as_deref()) {
        Ok(x) => x,
        Err(text) => return refusal(StatusCode::BAD_REQUEST, "Submissions", &text, Some(&s)),
    };
    let admin = s.caller.has(Scope::Admin);
    if f.state.as_deref() == Some("dead-letter") && !admin {
        return refusal(StatusCode::FORBIDDEN, "Not allowed", "Listing dead letters needs the scope 'admin'.", Some(&s));
    }
    let page = match store.browse(&f, PAGE, |v| visible(&s, v)).await {
        Ok(p) => p,
        Err(e) => return super::unavailable(&s, &e),
    };
    let mut body = form(&st, &given, admin);
    let rows: Vec<Vec<String>> = page.rows.iter().map(row).collect();
    body.push_str(&html::table("Submissions, newest first", &HEAD, &rows));
    body.push_str("<nav aria-label=\"Pages\" class=\"pages\">");
    if f.before.is_some() {
        body.push_str("<a href=\"/console/submissions?");
        body.push_str(&esc(&keep(&given, None)));
        body.push_str("\">Newest</a> ");
    }
    if let Some(next) = page.next {
        let _ = write!(body, "<a rel=\"next\" href=\"/console/submissions?{}\">Older</a>", esc(&keep(&given, Some(next))));
    }
    body.push_str("</nav>");
    html_response(StatusCode::OK, html::page("Submissions", Some(&s.who()), "/console/submissions", &body))
}

/// The query string of the same filters, with another cursor.
fn keep(given: &BTreeMap<String, String>, before: Option<i64>) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in given.iter().filter(|(k, _)| k.as_str() != "before") {
        q.append_pair(k, v);
    }
    if let Some(b) = before {
        q.append_pair("before", &b.to_string());
    }
    q.finish()
}

/// What an audit entry's detail says, in a few words: ids, codes and statuses only.
fn audit_summary(event: &str, detail: &Value) -> String {
    if let Some(t) = detail.as_str() {
        return esc(t);
    }
    if event == "summary-read" {
        return format!("IPS summary read by {}", esc(detail["client"].as_str().unwrap_or("?")));
    }
    if event == "accepted" {
        let dests = detail["destinations"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
        return format!("by {} for {}", esc(detail["submitter"].as_str().unwrap_or("?")), esc(&dests.unwrap_or_default()));
    }
    let mut parts = Vec::new();
    if let Some(n) = detail["gaveUpAfter"].as_i64() {
        parts.push(format!("gave up after {n} attempt(s)"));
    }
    if let Some(oo) = html::find_outcome(detail) {
        let codes: Vec<&str> = oo["issue"].as_array().map(|a| a.iter().filter_map(|i| i["code"].as_str()).collect()).unwrap_or_default();
        parts.push(format!("OperationOutcome: {}", esc(&codes.join(", "))));
    } else if let Some(s) = detail.get("last").unwrap_or(detail)["status"].as_i64() {
        parts.push(format!("HTTP {s}"));
    }
    parts.join("; ")
}

/// The Bundle's shape: its type, and per resource type the count and the profiles claimed.
fn shape(bundle: &[u8]) -> String {
    let Ok(b) = serde_json::from_slice::<Value>(bundle) else { return html::notice("error", "The stored Bundle is not JSON.") };
    let mut by: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for e in b["entry"].as_array().map(|a| a.as_slice()).unwrap_or_default() {
        let t = e["resource"]["resourceType"].as_str().unwrap_or("?").to_owned();
        let slot = by.entry(t).or_default();
        slot.0 += 1;
        for p in e["resource"]["meta"]["profile"].as_array().map(|a| a.as_slice()).unwrap_or_default() {
            if let Some(p) = p.as_str() {
                if !slot.1.iter().any(|x| x == p) {
                    slot.1.push(p.to_owned());
                }
            }
        }
    }
    let rows: Vec<Vec<String>> = by
        .iter()
        .map(|(t, (n, p))| {
            vec![esc(t), n.to_string(), p.iter().map(|p| format!("<code>{}</code>", esc(p))).collect::<Vec<_>>().join("<br>")]
        })
        .collect();
    format!(
        "<p>Bundle type <code>{}</code>, {} entries.</p>{}",
        esc(b["type"].as_str().unwrap_or("?")),
        by.values().map(|(n, _)| n).sum::<usize>(),
        html::table(
            "Resources in the Bundle (shape only, no content)",
            &["Resource type", "Count", "Profiles claimed"],
            &rows
        )
    )
}

pub async fn one(
    State(st): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let store = match super::store(&st, &s) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let v = match store.get(&id).await {
        Ok(Some(v)) if visible(&s, &v) => v,
        Ok(_) => return refusal(StatusCode::NOT_FOUND, "Not found", "No such submission.", Some(&s)),
        Err(e) => return super::unavailable(&s, &e),
    };
    let (audit, bundle) = match tokio::try_join!(store.audit(&id), store.bundle(&id)) {
        Ok(x) => x,
        Err(e) => return super::unavailable(&s, &e),
    };
    let replayed = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "replayed")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let mut body = replayed
        .map(|n| html::notice("ok", &format!("Replayed {n} dead delivery(ies): pending again, the relay is delivering them.")))
        .unwrap_or_default();
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Submission</dt><dd><code>{}</code></dd><dt>State</dt><dd>{}</dd>\
         <dt>Record</dt><dd><code>{}</code> version {} from <code>{}</code></dd><dt>Programme</dt><dd>{}</dd>\
         <dt>Submitter</dt><dd>{}</dd><dt>Accepted</dt><dd>{}</dd></dl>",
        esc(&v.id),
        html::state(&v.state),
        esc(&v.record_id),
        v.record_version,
        esc(&v.source_system),
        esc(&v.programme),
        esc(&v.submitter),
        esc(&v.accepted_at)
    );
    if s.caller.has(Scope::Admin) && v.deliveries.iter().any(|d| d.state == "dead") {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/dead-letters/replay\">{}<input type=\"hidden\" name=\"one\" value=\"{1}\"><input type=\"hidden\" name=\"back\" value=\"{1}\">\
             <button type=\"submit\">Replay the dead deliveries</button></form>",
            html::csrf_field(&s.csrf),
            esc(&v.id)
        );
    }
    let rows: Vec<Vec<String>> = v
        .deliveries
        .iter()
        .map(|d| {
            vec![
                esc(&d.destination),
                html::state(&d.state),
                d.attempts.to_string(),
                d.last_status.map(|x| x.to_string()).unwrap_or_default(),
                esc(d.next_attempt_at.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    body.push_str("<h2>Deliveries</h2>");
    body.push_str(&html::table(
        "State per destination",
        &["Destination", "State", "Attempts", "Last HTTP status", "Next attempt"],
        &rows,
    ));
    for d in v.deliveries.iter().filter(|d| d.state != "delivered") {
        if let Some(oo) = d.outcome.as_ref().and_then(html::find_outcome) {
            let _ = write!(body, "<h3>{}'s answer</h3>", esc(&d.destination));
            body.push_str(&html::outcome_table("The destination's OperationOutcome", oo));
        }
    }
    let rows: Vec<Vec<String>> = audit
        .iter()
        .map(|e| {
            let event = e["event"].as_str().unwrap_or("");
            vec![
                esc(e["at"].as_str().unwrap_or("")),
                esc(event),
                esc(e["destination"].as_str().unwrap_or("")),
                audit_summary(event, &e["detail"]),
            ]
        })
        .collect();
    body.push_str("<h2>Audit timeline</h2>");
    body.push_str(&html::table("Every state change, oldest first", &["At", "Event", "Destination", "Detail"], &rows));
    body.push_str("<h2>Bundle shape</h2>");
    match bundle {
        Some(b) => body.push_str(&shape(&b)),
        None => body.push_str("<p>The Bundle was pruned after the retention period (the audit stays).</p>"),
    }
    html_response(StatusCode::OK, html::page("Submission", Some(&s.who()), "/console/submissions", &body))
}
