//! `POST /fhir/$validate` and `POST /fhir/{type}/$validate`: a resource, or a `Parameters`
//! with `resource` and optional `profile` and `mode` parameters; `?profile=` and `?mode=` too
//! (FHIR's `$validate`: `mode` is create, update, delete or profile). Answers 200 with an
//! OperationOutcome (one information issue when clean); 400 not JSON, too deep, unknown profile
//! or mode, or an object with a key twice (named by the object's pointer); 413 too big; 422 not
//! a resource or of the wrong type for the URL. `application/fhir+ndjson` (one resource a line)
//! answers 200 with NDJSON: one OperationOutcome a non-blank line, each issue naming its line
//! (`operationoutcome-issue-line`); a line that is not a resource is an error in its outcome.

use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{AppState, FHIR_NDJSON, fhir_response, read_body};
use crate::error::{Issue, RejectKind, Rejection};
use crate::validate::document::{Mode, mode_findings, validate_ndjson};
use crate::validate::profile::outcome;

pub(super) async fn any(State(st): State<AppState>, Query(q): Query<Vec<(String, String)>>, req: Request) -> Response {
    run(st, None, q, req).await.unwrap_or_else(IntoResponse::into_response)
}

pub(super) async fn typed(
    State(st): State<AppState>,
    Path(ty): Path<String>,
    Query(q): Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    run(st, Some(ty), q, req).await.unwrap_or_else(IntoResponse::into_response)
}

fn reject(kind: RejectKind, code: &'static str, text: impl Into<String>) -> Rejection {
    Rejection::one(kind, Issue::new(code, text))
}

async fn run(st: AppState, ty: Option<String>, query: Vec<(String, String)>, req: Request) -> Result<Response, Rejection> {
    let (headers, body) = read_body(req, st.max_body_bytes).await?;
    let max_depth = st.pipeline.max_depth;
    let mut mode = None;
    for (_, m) in query.iter().filter(|(k, _)| k == "mode") {
        mode = Some(Mode::parse(m).ok_or_else(bad_mode)?);
    }
    let ndjson = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(FHIR_NDJSON));
    if ndjson {
        let profiles: Vec<String> = query.into_iter().filter(|(k, _)| k == "profile").map(|(_, v)| v).collect();
        return ndjson_outcomes(st, profiles, mode, body).await;
    }
    if crate::ingest::reader::nesting_depth(&body, max_depth) > max_depth {
        return Err(reject(RejectKind::TooDeep, "too-costly", format!("JSON nested deeper than {max_depth} levels")));
    }
    let body = crate::ingest::reader::strip_bom(&body);
    let mut value: Value = serde_json::from_slice(body).map_err(|_| reject(RejectKind::Malformed, "structure", "body is not JSON"))?;
    let duplicates = crate::json_strict::duplicate_keys(body);
    if !duplicates.is_empty() {
        let issues = duplicates
            .into_iter()
            .map(|p| {
                let issue = Issue::new("structure", "duplicate property: this object holds a property name twice");
                if p.is_empty() { issue } else { issue.at(p) }
            })
            .collect();
        return Err(Rejection::new(RejectKind::Malformed, issues));
    }
    let mut profiles: Vec<String> = query.into_iter().filter(|(k, _)| k == "profile").map(|(_, v)| v).collect();
    if value["resourceType"] == "Parameters" {
        let params = value["parameter"].as_array().cloned().unwrap_or_default();
        let mut resource = None;
        for p in params {
            match p["name"].as_str() {
                Some("resource") => resource = Some(p["resource"].clone()),
                Some("profile") => {
                    if let Some(u) = p["valueCanonical"].as_str().or(p["valueUri"].as_str()).or(p["valueString"].as_str()) {
                        profiles.push(u.to_owned());
                    }
                }
                Some("mode") => {
                    let m = p["valueCode"].as_str().or(p["valueString"].as_str()).unwrap_or_default();
                    mode = Some(Mode::parse(m).ok_or_else(bad_mode)?);
                }
                _ => {}
            }
        }
        match resource {
            Some(r) => value = r,
            // Deleting needs no resource: the gateway stores none, so nothing prevents it.
            None if mode == Some(Mode::Delete) => {
                let oo = serde_json::json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational",
                    "details": {"text": "mode delete: the gateway stores no resources, so no rule of its prevents a deletion"}}]});
                return Ok(fhir_response(200, &oo));
            }
            None => {}
        }
    }
    let Some(rt) = value.get("resourceType").and_then(Value::as_str) else {
        return Err(reject(RejectKind::Schema, "structure", "not a FHIR resource: no resourceType"));
    };
    if let Some(t) = &ty {
        if t != rt {
            return Err(reject(RejectKind::Schema, "invalid", format!("a {rt} posted to /fhir/{t}/$validate")));
        }
    }
    let validator = st.pipeline.validator.clone();
    for p in &profiles {
        if !validator.knows_profile(p) {
            return Err(reject(RejectKind::Malformed, "not-found", format!("unknown profile {p}")));
        }
    }
    // Codes of systems routed to a terminology server are asked first, here (async); the
    // walk then reads the verdicts (crate::terminology::delegate).
    let tx = match st.pipeline.tx.clone() {
        Some(d) => {
            let (v, prof) = (validator.clone(), profiles.clone());
            let (plan, d, back) = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = prof.iter().map(String::as_str).collect();
                (d.plan(&v, &[&value], &refs), d, value)
            })
            .await
            .map_err(|_| reject(RejectKind::Internal, "exception", "internal error"))?;
            value = back;
            Some(d.ask(plan).await)
        }
        None => None,
    };
    let findings = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = profiles.iter().map(String::as_str).collect();
        let mut f = mode_findings(mode, &value);
        f.extend(validator.validate_with(&value, &refs, tx.as_ref()));
        f
    })
    .await
    .map_err(|_| reject(RejectKind::Internal, "exception", "internal error"))?;
    Ok(fhir_response(200, &outcome(&findings)))
}

fn bad_mode() -> Rejection {
    reject(RejectKind::Malformed, "value", "mode must be create, update, delete or profile")
}

/// An NDJSON body: one OperationOutcome a non-blank line, as NDJSON.
async fn ndjson_outcomes(st: AppState, profiles: Vec<String>, mode: Option<Mode>, body: axum::body::Bytes) -> Result<Response, Rejection> {
    let validator = st.pipeline.validator.clone();
    for p in &profiles {
        if !validator.knows_profile(p) {
            return Err(reject(RejectKind::Malformed, "not-found", format!("unknown profile {p}")));
        }
    }
    let max_depth = st.pipeline.max_depth;
    let tx = match st.pipeline.tx.clone() {
        Some(d) => {
            let (v, prof, bytes) = (validator.clone(), profiles.clone(), body.clone());
            let (plan, d) = tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = prof.iter().map(String::as_str).collect();
                (d.plan_bytes(&v, &bytes, true, &refs), d)
            })
            .await
            .map_err(|_| reject(RejectKind::Internal, "exception", "internal error"))?;
            Some(d.ask(plan).await)
        }
        None => None,
    };
    let outcomes = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = profiles.iter().map(String::as_str).collect();
        validate_ndjson(&validator, &body, &refs, mode, max_depth, false, tx.as_ref()).0
    })
    .await
    .map_err(|_| reject(RejectKind::Internal, "exception", "internal error"))?;
    let mut text = String::new();
    for oo in outcomes {
        text.push_str(&oo.to_string());
        text.push('\n');
    }
    let mut r = Response::new(axum::body::Body::from(text));
    r.headers_mut().insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static(FHIR_NDJSON));
    Ok(r)
}
