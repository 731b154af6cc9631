//! What `POST /fhir/$convert` answers with: `?format=transaction|ips|html`, or by `Accept`
//! (`text/html` asks for the page when no `format` is given). The conversion is the same; an IPS
//! document passes the output gate against `Bundle-uv-ips` ([`crate::pipeline::Pipeline::document`])
//! before it is answered. A page is one record's: a batch asked for as HTML is refused.
//!
//! Must not know: how documents or pages are built (`map::ips`).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use crate::error::{Issue, RejectKind, Rejection};
use crate::map::Mapped;
use crate::pipeline::{Format, Pipeline};

/// The format a request asks for: its `format` query parameter, else `text/html` in `Accept`,
/// else a transaction. An unknown `format` is refused, naming the parameter.
pub(super) fn requested(req: &Request) -> Result<Format, Rejection> {
    let query = req.uri().query().unwrap_or_default();
    let asked: Vec<String> = form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == "format").map(|(_, v)| v.into_owned()).collect();
    match asked.as_slice() {
        [] => {}
        [one] => {
            return Format::parse(one).ok_or_else(|| {
                Rejection::one(
                    RejectKind::Malformed,
                    Issue::new("value", "query parameter 'format' must be transaction, ips or html").at("format"),
                )
            });
        }
        _ => {
            return Err(Rejection::one(
                RejectKind::Malformed,
                Issue::new("value", "query parameter 'format' given more than once").at("format"),
            ));
        }
    }
    let html = req
        .headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|m| m.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/html")));
    Ok(if html { Format::Html } else { Format::Transaction })
}

/// The records as IPS documents (each gated), or one record's page. CPU work: off the I/O threads.
pub(super) async fn render(
    pipeline: std::sync::Arc<Pipeline>,
    mapped: Vec<Mapped>,
    batch: bool,
    format: Format,
) -> Result<Response, Rejection> {
    if format == Format::Html && batch {
        return Err(Rejection::one(
            RejectKind::Malformed,
            Issue::new("not-supported", "format html answers one record: send one record, or ask for format ips").at("format"),
        ));
    }
    let internal = || Rejection::one(RejectKind::Internal, Issue::new("exception", "internal error"));
    tokio::task::spawn_blocking(move || match format {
        Format::Html => {
            let page = pipeline.page(mapped.first().ok_or_else(internal)?)?;
            let mut r = Response::new(Body::from(page));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            Ok(r)
        }
        _ => {
            let docs = mapped.iter().map(|m| pipeline.document(m)).collect::<Result<Vec<_>, _>>()?;
            Ok(match (batch, docs.first()) {
                (false, Some(d)) => super::fhir_response(200, &d.bundle),
                _ => {
                    let mut out = String::new();
                    for d in &docs {
                        out.push_str(&d.bundle.to_string());
                        out.push('\n');
                    }
                    let mut r = Response::new(Body::from(out));
                    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(super::FHIR_NDJSON));
                    r
                }
            })
        }
    })
    .await
    .map_err(|_| internal())?
}
