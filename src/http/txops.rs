//! The terminology operations over HTTP (`GET` with query parameters, or `POST` with a
//! `Parameters` body, merged with the query): `/fhir/CodeSystem/$lookup`,
//! `/fhir/CodeSystem/$validate-code`, `/fhir/ValueSet/$validate-code`, `/fhir/ValueSet/$expand`,
//! `/fhir/ConceptMap/$translate`. Answers 200 with Parameters (a ValueSet for `$expand`); 400
//! for a missing or malformed parameter, 404 for what is not loaded here. The work is
//! [`crate::validate::txops`]; the expansion's timestamp is read here.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{AppState, fhir_response, read_body};
use crate::error::{Issue, RejectKind, Rejection};
use crate::validate::txops::{self, Params, TxError};

#[derive(Clone, Copy)]
pub(super) enum Op {
    Lookup,
    CodeSystemValidate,
    ValueSetValidate,
    Expand,
    Translate,
}

fn rejection(e: TxError) -> Rejection {
    match e {
        TxError::Invalid(t) => Rejection::one(RejectKind::Malformed, Issue::new("invalid", t)),
        TxError::NotFound(t) => Rejection::one(RejectKind::NotFound, Issue::new("not-found", t)),
    }
}

async fn params(query: &[(String, String)], req: Request, limit: usize) -> Result<Params, Rejection> {
    let mut p = Params::from_query(query);
    if req.method() == axum::http::Method::POST {
        let (_, body) = read_body(req, limit).await?;
        let v: Value = serde_json::from_slice(crate::ingest::reader::strip_bom(&body))
            .map_err(|_| Rejection::one(RejectKind::Malformed, Issue::new("structure", "body is not JSON")))?;
        p.extend(Params::from_parameters(&v).map_err(rejection)?);
    }
    Ok(p)
}

pub(super) async fn run(op: Op, st: AppState, query: Vec<(String, String)>, req: Request) -> Response {
    let p = match params(&query, req, st.max_body_bytes).await {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let v = &st.pipeline.validator;
    let answer = match op {
        Op::Lookup => txops::lookup(v, &p),
        Op::CodeSystemValidate => txops::code_system_validate_code(v, &p),
        Op::ValueSetValidate => txops::value_set_validate_code(v, &p),
        Op::Expand => txops::expand(v, &p, &crate::calendar::rfc3339(crate::calendar::now_ms())),
        Op::Translate => txops::translate(&st.pipeline.terminology, &p),
    };
    match answer {
        Ok(body) => fhir_response(200, &body),
        Err(e) => rejection(e).into_response(),
    }
}
