//! `/records` and `/submissions`: accepting records durably and telling what became of them.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::{AppState, convert_request, fhir_response};
use crate::error::{Issue, RejectKind, Rejection};
use crate::queue::commit::Committer;
use crate::queue::{Accepted, NewSubmission, Store};
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
    fhir_response(
        503,
        &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "transient",
            "details": {"text": "the store is not available"}}]}),
    )
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
    let caller = req.extensions().get::<crate::auth::Caller>().cloned().unwrap_or_else(crate::auth::Caller::anonymous);
    let (mapped, batch, headers) = convert_request(&st, req).await?;
    let key = idempotency_key(&headers)?;
    let mut batch_subs = Vec::with_capacity(mapped.len());
    let mut unrouted = Vec::new();
    let mut forbidden = Vec::new();
    for (i, mut m) in mapped.into_iter().enumerate() {
        if !caller.may_submit_programme(&m.meta.programme) {
            let mut r = Rejection::one(
                RejectKind::Forbidden,
                Issue::new("forbidden", "this client may not submit records of this programme").at("/assessment/programme"),
            );
            r.source.record = Some(i + 1);
            forbidden.push(r);
            continue;
        }
        let destinations: Vec<String> = relay
            .destinations
            .iter()
            .filter(|d| d.takes(&m.meta.destination_country, &m.meta.programme))
            .map(|d| d.name.clone())
            .collect();
        if destinations.is_empty() {
            let mut r = Rejection::one(
                RejectKind::Schema,
                Issue::new("business-rule", "no destination takes records of this destination country and programme")
                    .at("/assessment/destinationCountry"),
            );
            r.source.record = Some(i + 1);
            unrouted.push(r);
            continue;
        }
        // Destinations that name profiles get only records meeting them (checked here, so that
        // nothing is accepted that a destination is known to refuse).
        let required: Vec<(String, Vec<String>)> = relay
            .destinations
            .iter()
            .filter(|d| !d.profiles.is_empty() && destinations.contains(&d.name))
            .map(|d| (d.name.clone(), d.profiles.clone()))
            .collect();
        if !required.is_empty() {
            let pipeline = st.pipeline.clone();
            let (m2, issues) = tokio::task::spawn_blocking(move || {
                let issues: Vec<Issue> =
                    required.iter().flat_map(|(d, p)| pipeline.check_destination_profiles(&m, d, p)).collect();
                (m, issues)
            })
            .await
            .map_err(|_| Rejection::one(RejectKind::Malformed, Issue::new("exception", "validation was interrupted")))?;
            if !issues.is_empty() {
                crate::ops::inc("mhg_records_rejected_total", &[("reason", "destination-profile")], 1);
                let mut r = Rejection::new(RejectKind::OutputInvalid, issues);
                r.source.record = Some(i + 1);
                unrouted.push(r);
                continue;
            }
            m = m2;
        }
        if let Some(d) = destinations.iter().find(|d| !caller.may_submit_to(d)) {
            let mut r = Rejection::one(
                RejectKind::Forbidden,
                Issue::new("forbidden", format!("this client may not submit records for destination '{d}'"))
                    .at("/assessment/destinationCountry"),
            );
            r.source.record = Some(i + 1);
            forbidden.push(r);
            continue;
        }
        let idem_key = match (&key, batch) {
            (Some(k), false) => format!("key:{k}"),
            (Some(k), true) => format!("key:{k}#{}", i + 1),
            (None, _) => format!("record:{}|{}|{}", m.meta.source_system, m.meta.record_id, m.meta.record_version),
        };
        let bundle = serde_json::to_vec(&m.bundle).unwrap_or_default();
        batch_subs.push(NewSubmission {
            id: uuid::Uuid::new_v4().to_string(),
            idem_key,
            record_id: m.meta.record_id,
            record_version: m.meta.record_version,
            order_key: m.meta.person_key,
            submitter: caller.name.to_string(),
            bundle,
            destinations,
        });
    }
    if !forbidden.is_empty() {
        return Err(super::merge_refusals(forbidden, batch));
    }
    if !unrouted.is_empty() {
        return Err(super::merge_refusals(unrouted, batch));
    }
    let started = std::time::Instant::now();
    let accepted = match relay.committer.submit(batch_subs).await {
        Ok(a) => a,
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
    let view = |a: &Accepted| {
        json!({"id": a.id(), "state": "accepted", "location": format!("/submissions/{}", a.id()),
               "duplicate": matches!(a, Accepted::Existing(_))})
    };
    let mut resp = if batch {
        json_response(StatusCode::ACCEPTED, &json!({"submissions": accepted.iter().map(view).collect::<Vec<_>>()}))
    } else {
        let a = &accepted[0];
        let mut r = json_response(StatusCode::ACCEPTED, &view(a));
        if let Ok(v) = HeaderValue::from_str(&format!("/submissions/{}", a.id())) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    };
    resp.headers_mut().insert("cache-control", HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn not_found() -> Response {
    fhir_response(
        404,
        &json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found",
            "details": {"text": "no such submission"}}]}),
    )
}

pub async fn status(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(relay) = st.relay else { return unavailable() };
    match relay.store.get(&id).await {
        Ok(Some(v)) => json_response(StatusCode::OK, &serde_json::to_value(v).unwrap_or(Value::Null)),
        Ok(None) => not_found(),
        Err(_) => unavailable(),
    }
}

pub async fn audit(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(relay) = st.relay else { return unavailable() };
    match relay.store.get(&id).await {
        Ok(Some(_)) => match relay.store.audit(&id).await {
            Ok(a) => json_response(StatusCode::OK, &json!({"id": id, "audit": a})),
            Err(_) => unavailable(),
        },
        Ok(None) => not_found(),
        Err(_) => unavailable(),
    }
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    limit: Option<i64>,
}

pub async fn list(State(st): State<AppState>, Query(q): Query<ListQuery>) -> Result<Response, Rejection> {
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
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    match relay.store.list(q.state.as_deref(), limit).await {
        Ok(v) => Ok(json_response(StatusCode::OK, &json!({"submissions": v}))),
        Err(_) => Ok(unavailable()),
    }
}

pub async fn replay(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    let Some(relay) = st.relay else { return unavailable() };
    match relay.store.get(&id).await {
        Ok(Some(_)) => {}
        Ok(None) => return not_found(),
        Err(_) => return unavailable(),
    }
    match relay.store.replay(&id, crate::queue::now_ms()).await {
        Ok(n) => {
            relay.wake.notify_waiters();
            tracing::info!(stage = "replay", submission_id = %id, replayed = n, "replay requested");
            json_response(StatusCode::OK, &json!({"id": id, "replayed": n}))
        }
        Err(_) => unavailable(),
    }
}
