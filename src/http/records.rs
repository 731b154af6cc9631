//! `/records` and `/submissions`: accepting records durably and telling what became of them.

use std::sync::Arc;

use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{AppState, convert_request};
use crate::auth::Caller;
use crate::error::{Issue, RejectKind, Rejection};
use crate::queue::commit::Committer;
use crate::queue::{Accepted, GroupOutcome, Store, SubmissionView};
use crate::relay::DestinationConfig;

#[derive(Clone)]
pub struct RelayState {
    pub store: Store,
    pub committer: Committer,
    pub destinations: Arc<Vec<DestinationConfig>>,
    /// Wakes the relay workers when something was accepted or replayed.
    pub wake: Arc<Notify>,
}

fn unavailable() -> Response {
    let mut r =
        Rejection::one(RejectKind::Unavailable, Issue::new("transient", "the store is not available; retry shortly")).into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn internal_error() -> Response {
    Rejection::one(RejectKind::Internal, Issue::new("exception", "internal error")).into_response()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Only printable ASCII, bounded: an Idempotency-Key is an opaque token, not a place for data.
fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, Rejection> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    match v.to_str() {
        Ok(s) if !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| (0x21..0x7f).contains(&b)) => Ok(Some(s.to_owned())),
        _ => Err(Rejection::one(
            RejectKind::Malformed,
            Issue::new("value", "Idempotency-Key must be 1 to 200 printable ASCII characters"),
        )),
    }
}

pub async fn accept(State(st): State<AppState>, req: Request) -> Result<Response, Rejection> {
    let Some(relay) = st.relay.clone() else { return Ok(unavailable()) };
    let caller = req.extensions().get::<Caller>().cloned().unwrap_or_else(Caller::anonymous);
    let (mapped, batch, headers) = convert_request(&st, req).await?;
    let key = idempotency_key(&headers)?;
    // Admission (authorisation, routing, destination profiles, identity) is CPU work: off the
    // I/O threads.
    let (pipeline, destinations) = (st.pipeline.clone(), relay.destinations.clone());
    let who = caller.clone();
    let admitted = tokio::task::spawn_blocking(move || {
        crate::admission::admit(&pipeline, &who, &destinations, mapped, batch, key.as_deref(), || uuid::Uuid::new_v4().to_string())
    })
    .await;
    let Ok(admitted) = admitted else {
        tracing::error!(stage = "accept", "admission was interrupted: this is a bug");
        return Ok(internal_error());
    };
    let crate::admission::Admitted { submissions: batch_subs, warnings } = admitted?;
    let started = std::time::Instant::now();
    let accepted = match relay.committer.submit(batch_subs).await {
        Ok(GroupOutcome::Stored(a)) => a,
        Ok(GroupOutcome::Refused(conflicts)) => {
            crate::ops::inc("mhg_records_rejected_total", &[("reason", "conflict")], conflicts.len() as u64);
            return Err(crate::admission::conflicts(conflicts, batch));
        }
        Err(e) => {
            tracing::error!(stage = "accept", error = %e, "store failed: nothing accepted");
            return Ok(unavailable());
        }
    };
    relay.wake.notify_waiters();
    crate::ops::observe("mhg_stage_seconds", &[("stage", "accept")], started.elapsed().as_secs_f64());
    let fresh = accepted.iter().filter(|a| matches!(a, Accepted::New(_))).count();
    crate::ops::inc("mhg_records_accepted_total", &[("path", "records")], fresh as u64);
    tracing::info!(stage = "accept", records = accepted.len(), new = fresh, "accepted");
    let n_warned = warnings.iter().filter(|w| !w.is_empty()).count();
    if n_warned > 0 {
        crate::ops::inc("mhg_record_warnings_total", &[("path", "records")], n_warned as u64);
    }
    let view = |(a, w): (&Accepted, &Vec<Issue>)| {
        let mut v = json!({"id": a.id(), "state": "accepted", "location": format!("/submissions/{}", a.id()),
               "duplicate": matches!(a, Accepted::Existing(_))});
        if let Some(oo) = crate::error::warnings_outcome(w, None) {
            v["warnings"] = oo;
        }
        v
    };
    let mut resp = match (batch, accepted.first(), warnings.first()) {
        (false, Some(a), Some(w)) => {
            let mut r = json_response(StatusCode::ACCEPTED, &view((a, w)));
            if let Ok(v) = HeaderValue::from_str(&format!("/submissions/{}", a.id())) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        _ => json_response(
            StatusCode::ACCEPTED,
            &json!({"submissions": accepted.iter().zip(warnings.iter()).map(view).collect::<Vec<_>>()}),
        ),
    };
    resp.headers_mut().insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn not_found() -> Response {
    Rejection::one(RejectKind::NotFound, Issue::new("not-found", "no such submission")).into_response()
}

/// The caller of a guarded route (the guard put it there; without authentication, anonymous).
fn caller_of(c: Option<Extension<Caller>>) -> Caller {
    c.map(|Extension(c)| c).unwrap_or_else(Caller::anonymous)
}

fn visible(caller: &Caller, v: &SubmissionView) -> bool {
    caller.may_read(&v.programme, v.deliveries.iter().map(|d| d.destination.as_str()))
}

/// The submission if it exists and this caller may see it; a submission it may not see is
/// answered as unknown (404), so ids cannot be probed across clients.
async fn visible_submission(relay: &RelayState, caller: &Caller, id: &str) -> Result<SubmissionView, Response> {
    match relay.store.get(id).await {
        Ok(Some(v)) if visible(caller, &v) => Ok(v),
        Ok(_) => Err(not_found()),
        Err(_) => Err(unavailable()),
    }
}

pub async fn status(State(st): State<AppState>, caller: Option<Extension<Caller>>, Path(id): Path<String>) -> Response {
    let Some(relay) = st.relay else { return unavailable() };
    match visible_submission(&relay, &caller_of(caller), &id).await {
        Ok(v) => json_response(StatusCode::OK, &serde_json::to_value(v).unwrap_or(Value::Null)),
        Err(r) => r,
    }
}

pub async fn audit(State(st): State<AppState>, caller: Option<Extension<Caller>>, Path(id): Path<String>) -> Response {
    let Some(relay) = st.relay else { return unavailable() };
    if let Err(r) = visible_submission(&relay, &caller_of(caller), &id).await {
        return r;
    }
    match relay.store.audit(&id).await {
        Ok(a) => json_response(StatusCode::OK, &json!({"id": id, "audit": a})),
        Err(_) => unavailable(),
    }
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
}

pub async fn list(
    State(st): State<AppState>,
    caller: Option<Extension<Caller>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, Rejection> {
    let Some(relay) = st.relay else { return Ok(unavailable()) };
    const STATES: [&str; 5] = ["accepted", "delivering", "delivered", "retrying", "dead-letter"];
    if let Some(s) = &q.state {
        if !STATES.contains(&s.as_str()) {
            return Err(Rejection::one(
                RejectKind::Malformed,
                Issue::new("value", "state must be one of accepted, delivering, delivered, retrying, dead-letter"),
            ));
        }
    }
    let caller = caller_of(caller);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let scan = if caller.is_restricted() { limit * 20 } else { limit };
    match relay.store.list(q.state.as_deref(), limit, scan, |v| visible(&caller, v)).await {
        Ok(v) => Ok(json_response(StatusCode::OK, &json!({"submissions": v}))),
        Err(_) => Ok(unavailable()),
    }
}

pub async fn replay(State(st): State<AppState>, caller: Option<Extension<Caller>>, Path(id): Path<String>) -> Response {
    let Some(relay) = st.relay else { return unavailable() };
    if let Err(r) = visible_submission(&relay, &caller_of(caller), &id).await {
        return r;
    }
    match relay.store.replay(&id, crate::calendar::now_ms()).await {
        Ok(n) => {
            relay.wake.notify_waiters();
            tracing::info!(stage = "replay", submission_id = %id, replayed = n, "replay requested");
            json_response(StatusCode::OK, &json!({"id": id, "replayed": n}))
        }
        Err(_) => unavailable(),
    }
}
