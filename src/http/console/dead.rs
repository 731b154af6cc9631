//! `GET /console/dead-letters` (grouped by destination and by cause, the code of the
//! destination's OperationOutcome), `POST /console/dead-letters/replay` (one, a selection, or
//! every dead letter of one cause; the result is shown on the page it leads back to) and
//! `GET /console/callers` (who submitted how much: client names, never keys). All `admin`.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Extension, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::html::{self, esc, url};
use super::session::{Session, check_post, html_response, redirect, refusal};
use super::submissions::visible;
use crate::http::AppState;
use crate::queue::browse::DeadLetter;

/// How many dead letters a page (and a replay of one cause) reads at most.
const MAX_DEAD: i64 = 2_000;

type Groups = BTreeMap<(String, String), Vec<DeadLetter>>;

async fn groups(st: &AppState, s: &Session) -> Result<(Groups, bool), Response> {
    let store = super::store(st, s)?;
    let dead = store.dead_letters(MAX_DEAD).await.map_err(|e| super::unavailable(s, &e))?;
    let capped = dead.len() as i64 >= MAX_DEAD;
    let mut out: Groups = BTreeMap::new();
    for d in dead.into_iter().filter(|d| visible(s, &d.submission)) {
        let cause = html::cause(d.outcome.as_ref(), d.last_status);
        out.entry((d.destination.clone(), cause)).or_default().push(d);
    }
    Ok((out, capped))
}

pub async fn list(State(st): State<AppState>, Extension(s): Extension<Session>, RawQuery(query): RawQuery) -> Response {
    let (groups, capped) = match groups(&st, &s).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut body = String::new();
    let q: BTreeMap<String, String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
    if let (Some(n), Some(m)) = (
        q.get("replayed").and_then(|v| v.parse::<u64>().ok()),
        q.get("of").and_then(|v| v.parse::<u64>().ok()),
    ) {
        body.push_str(&html::notice(
            "ok",
            &format!("Replayed {n} dead delivery(ies) of {m} submission(s): they are pending again and the relay is delivering them."),
        ));
    }
    if capped {
        body.push_str(&html::notice("warning", &format!("Showing the first {MAX_DEAD} dead letters only.")));
    }
    if groups.is_empty() {
        body.push_str("<p>No dead letters.</p>");
    }
    let mut summary: Vec<Vec<String>> = Vec::new();
    for ((dest, cause), items) in &groups {
        summary.push(vec![
            esc(dest),
            format!("<a href=\"#g-{}-{}\"><code>{}</code></a>", esc(&url(dest)), esc(&url(cause)), esc(cause)),
            items.len().to_string(),
        ]);
    }
    if !groups.is_empty() {
        body.push_str(&html::table(
            "Dead letters by destination and cause",
            &["Destination", "Cause", "Dead letters"],
            &summary,
        ));
    }
    for ((dest, cause), items) in &groups {
        let _ = write!(
            body,
            "<section class=\"group\" id=\"g-{}-{}\"><h2>{} · <code>{}</code> ({})</h2>\
             <form method=\"post\" action=\"/console/dead-letters/replay\">{}\
             <input type=\"hidden\" name=\"destination\" value=\"{}\"><input type=\"hidden\" name=\"cause\" value=\"{}\">",
            esc(&url(dest)),
            esc(&url(cause)),
            esc(dest),
            esc(cause),
            items.len(),
            html::csrf_field(&s.csrf),
            esc(dest),
            esc(cause)
        );
        if let Some(oo) = items.first().and_then(|d| d.outcome.as_ref()).and_then(html::find_outcome) {
            body.push_str(&html::outcome_table("The latest answer of this cause", oo));
        }
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|d| {
                let id = &d.submission.id;
                vec![
                    format!(
                        "<input type=\"checkbox\" name=\"id\" value=\"{0}\" id=\"c-{0}\" aria-label=\"Select {0}\">",
                        esc(id)
                    ),
                    format!("<a href=\"/console/submissions/{}\"><code>{}</code></a>", url(id), esc(id)),
                    format!("<code>{}</code> v{}", esc(&d.submission.record_id), d.submission.record_version),
                    d.last_status.map(|x| x.to_string()).unwrap_or_default(),
                    html::time(d.at_ms),
                    format!("<button type=\"submit\" name=\"one\" value=\"{}\">Replay</button>", esc(id)),
                ]
            })
            .collect();
        body.push_str(&html::table("Dead letters", &["Select", "Submission", "Record", "HTTP status", "Since", ""], &rows));
        let _ = write!(
            body,
            "<p class=\"actions\"><button type=\"submit\" name=\"action\" value=\"selected\">Replay selected</button> \
             <button type=\"submit\" name=\"action\" value=\"cause\">Replay all {} of this cause</button></p></form></section>",
            items.len()
        );
    }
    html_response(StatusCode::OK, html::page("Dead letters", Some(&s.who()), "/console/dead-letters", &body))
}

pub async fn replay(State(st): State<AppState>, Extension(s): Extension<Session>, req: Request) -> Response {
    let form = match check_post(&s, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (groups, _) = match groups(&st, &s).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    // What may be replayed: the dead letters this client sees, as the page showed them.
    let all: Vec<&DeadLetter> = groups.values().flatten().collect();
    let wanted: Vec<String> = if let Some(one) = get("one") {
        vec![one]
    } else if get("action").as_deref() == Some("cause") {
        let key = (get("destination").unwrap_or_default(), get("cause").unwrap_or_default());
        groups.get(&key).map(|g| g.iter().map(|d| d.submission.id.clone()).collect()).unwrap_or_default()
    } else {
        form.iter().filter(|(k, _)| k == "id").map(|(_, v)| v.clone()).collect()
    };
    let mut ids: Vec<String> = wanted.into_iter().filter(|w| all.iter().any(|d| &d.submission.id == w)).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Dead letters",
            "Nothing to replay: select at least one dead letter.",
            Some(&s),
        );
    }
    let Some(relay) = st.relay.as_ref() else { return refusal(StatusCode::SERVICE_UNAVAILABLE, "No store", "No store.", Some(&s)) };
    let of = ids.len();
    match relay.store.replay_many(ids, crate::calendar::now_ms()).await {
        Ok(n) => {
            relay.wake.notify_waiters();
            tracing::info!(stage = "replay", client = %s.caller.name, submissions = of, replayed = n, "replay requested from the console");
            match get("back").filter(|_| of == 1) {
                Some(id) => redirect(&format!("/console/submissions/{}?replayed={n}", url(&id))),
                None => redirect(&format!("/console/dead-letters?replayed={n}&of={of}")),
            }
        }
        Err(e) => super::unavailable(&s, &e),
    }
}

pub async fn callers(State(st): State<AppState>, Extension(s): Extension<Session>) -> Response {
    let store = match super::store(&st, &s) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let rows = match store.submitters().await {
        Ok(r) => r,
        Err(e) => return super::unavailable(&s, &e),
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, n, last)| {
            vec![format!("<a href=\"/console/submissions?submitter={}\">{}</a>", url(name), esc(name)), n.to_string(), html::time(*last)]
        })
        .collect();
    let body = format!(
        "<p>API clients by name (keys are never shown; they are stored as hashes).</p>{}",
        html::table("Who submitted how much", &["Client", "Submissions", "Last submission"], &rows)
    );
    html_response(StatusCode::OK, html::page("Keys and callers", Some(&s.who()), "/console/callers", &body))
}
