//! `POST /fhir/$validate` and `POST /fhir/{type}/$validate`: a resource, or a `Parameters`
//! with `resource` and optional `profile` parameters; `?profile=` too. Answers 200 with an
//! OperationOutcome (one information issue when clean); 400 not JSON, too deep or unknown
//! profile, or an object with a key twice (named by the object's pointer); 413 too big; 422 not
//! a resource or of the wrong type for the URL.

use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{AppState, fhir_response, read_body};
use crate::error::{Issue, RejectKind, Rejection};
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
    let (_, body) = read_body(req, st.max_body_bytes).await?;
    let max_depth = st.pipeline.max_depth;
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
                _ => {}
            }
        }
        if let Some(r) = resource {
            value = r;
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
    let findings = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = profiles.iter().map(String::as_str).collect();
        validator.validate(&value, &refs)
    })
    .await
    .map_err(|_| reject(RejectKind::Internal, "exception", "internal error"))?;
    Ok(fhir_response(200, &outcome(&findings)))
}
