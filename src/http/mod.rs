//! The HTTP interface (axum). The only module that knows axum or HTTP.
//!
//! - `POST /fhir/$convert`: a record, a JSON array of records, or NDJSON -> the Bundle (one
//!   record) or NDJSON of Bundles (a batch). Relays nothing. All-or-nothing: if any record is
//!   refused, the answer is a 4xx OperationOutcome naming each refused record and field.
//! - `POST /records`: the same input, converted and validated as `$convert` does, stored
//!   durably, and answered `202 Accepted` with a submission id and `Location` only after the
//!   store committed; the relay then delivers it. `Idempotency-Key` (or the record's own id and
//!   version) makes a resend return the first submission.
//! - `GET /submissions/{id}`, `GET /submissions?state=`, `GET /submissions/{id}/audit`,
//!   `POST /submissions/{id}/$replay`: what happened to each record, and replaying dead letters.
//! - `POST /fhir/$validate`, `POST /fhir/{type}/$validate`: the profile validator on a
//!   resource or a Parameters (`resource`, `profile`); an OperationOutcome.
//! - `GET`/`POST /fhir/Patient/$summary`: the IPS document of the newest record held for a
//!   person identifier, for receiving clinics (`[summary] retention_days`; `summary.rs`).
//! - `GET /health`: the process is up. `GET /ready`: the store answers. `GET /metrics`:
//!   Prometheus text. `GET /fhir/metadata`: the CapabilityStatement. `GET /openapi.json`: this
//!   API as OpenAPI ([`OPENAPI`], `conformance/openapi.json`).
//!
//! Every route but `GET /health`, `GET /ready`, `GET /fhir/metadata` and `GET /openapi.json`
//! passes the [`guard`] first: concurrency, authentication, rate limit and timeout (see
//! `crate::auth`), then the scope the route names beside its path (`needs`). Connections are accepted and timed by [`serve`] (plain HTTP and, with
//! [`tls`], HTTPS): the only place that names hyper's server types.
//!
//! Every refusal is an OperationOutcome with a 4xx status, axum's own rejections included
//! (405 with `Allow`, unreadable path or query parameters: `outcome_for_bare_errors`); a body
//! of a type the route does not read is refused with 415 before its handler runs. A panic
//! anywhere below becomes a 500 OperationOutcome (and is a bug), never a dropped connection.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::error::{Issue, RejectKind, Rejection};
use crate::pipeline::Pipeline;
use guard::ScopeRule;

pub mod console;
mod formats;
pub mod guard;
mod records;
pub mod serve;
mod summary;
pub mod tls;
mod txops;
mod validate;

pub use guard::Guard;
pub use records::RelayState;

pub const FHIR_JSON: &str = "application/fhir+json";
pub const FHIR_NDJSON: &str = "application/fhir+ndjson";

#[derive(Clone)]
pub struct AppState {
    pub pipeline: Arc<Pipeline>,
    pub max_body_bytes: usize,
    pub max_records: usize,
    /// The durable relay (`/records`, `/submissions`); absent when only converting.
    pub relay: Option<records::RelayState>,
    /// Authentication and limits in front of every route ([`Guard::open`]: none).
    pub guard: Arc<Guard>,
}

/// The media types a route that takes records reads.
const RECORD_TYPES: &[&str] = &["application/json", FHIR_JSON, FHIR_NDJSON, "application/x-ndjson", "application/ndjson", "text/plain"];
/// The media types `$validate` reads: one FHIR resource in JSON, or NDJSON (one a line).
const RESOURCE_TYPES: &[&str] = &["application/json", FHIR_JSON, FHIR_NDJSON];

/// This gateway's HTTP API as OpenAPI 3.0 (`conformance/openapi.json`), built into the binary so
/// that it always describes the routes it is served by.
pub const OPENAPI: &str = include_str!("../../conformance/openapi.json");

pub fn router(state: AppState) -> Router {
    use axum::middleware::{from_fn, from_fn_with_state};
    use guard::needs;
    let reads = |types: &'static [&'static str]| from_fn_with_state(types, media_type);
    // Each route names the scope it needs where it is defined (`needs`); the guard in front of
    // them authenticates, limits and times every request, unknown routes included (which then
    // answer 404 to any known caller, so routes cannot be probed anonymously).
    let guarded = Router::new()
        .route(
            "/fhir/$convert",
            post(convert).layer(reads(RECORD_TYPES)).route_layer(needs(ScopeRule::Is(Scope::Convert))),
        )
        .route(
            "/fhir/$validate",
            post(validate::any).layer(reads(RESOURCE_TYPES)).route_layer(needs(ScopeRule::Is(Scope::Validate))),
        )
        .route(
            "/fhir/{type}/$validate",
            post(validate::typed).layer(reads(RESOURCE_TYPES)).route_layer(needs(ScopeRule::Is(Scope::Validate))),
        )
        .route(
            "/records",
            post(records::accept).layer(reads(RECORD_TYPES)).route_layer(needs(ScopeRule::Is(Scope::RecordsWrite))),
        )
        .route("/submissions", get(records::list).route_layer(needs(ScopeRule::DeadLettersAreAdmin)))
        .route("/submissions/{id}", get(records::status).route_layer(needs(ScopeRule::Is(Scope::SubmissionsRead))))
        .route(
            "/submissions/{id}/audit",
            get(records::audit).route_layer(needs(ScopeRule::Is(Scope::SubmissionsRead))),
        )
        .route("/submissions/{id}/$replay", post(records::replay).route_layer(needs(ScopeRule::Is(Scope::Admin))))
        // Terminology operations (`txops.rs`), for testers: the `validate` scope.
        .route("/fhir/CodeSystem/$lookup", tx(txops::Op::Lookup).route_layer(needs(ScopeRule::Is(Scope::Validate))))
        .route(
            "/fhir/CodeSystem/$validate-code",
            tx(txops::Op::CodeSystemValidate).route_layer(needs(ScopeRule::Is(Scope::Validate))),
        )
        .route(
            "/fhir/ValueSet/$validate-code",
            tx(txops::Op::ValueSetValidate).route_layer(needs(ScopeRule::Is(Scope::Validate))),
        )
        .route("/fhir/ValueSet/$expand", tx(txops::Op::Expand).route_layer(needs(ScopeRule::Is(Scope::Validate))))
        .route(
            "/fhir/ConceptMap/$translate",
            tx(txops::Op::Translate).route_layer(needs(ScopeRule::Is(Scope::Validate))),
        )
        // For clinics that pull (`summary.rs`): a person's IPS document.
        .route(
            "/fhir/Patient/$summary",
            // Only `POST` has a body whose type matters (415).
            get(summary::get)
                .post(axum::handler::Handler::layer(summary::post, reads(RESOURCE_TYPES)))
                .route_layer(needs(ScopeRule::Is(Scope::SummaryRead))),
        )
        .route("/metrics", get(metrics).route_layer(needs(ScopeRule::Is(Scope::Metrics))))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::guard));
    // Public: probes and the descriptions of the API, without credentials or limits, so that
    // they keep answering under load.
    let public = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/fhir/metadata", get(metadata))
        .route("/openapi.json", get(openapi));
    // The operator console answers in HTML, its refusals included (outside
    // `outcome_for_bare_errors`), and checks its own sessions (`console::session`).
    let console = console::router(&state);
    public
        .merge(guarded)
        .layer(from_fn(outcome_for_bare_errors))
        .merge(console)
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

/// A terminology operation's route: `GET` (query) and `POST` (Parameters, JSON).
fn tx(op: txops::Op) -> axum::routing::MethodRouter<AppState> {
    let h = move |State(st): State<AppState>, axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>, req: Request| {
        txops::run(op, st, q, req)
    };
    get(h).post(h).layer(axum::middleware::from_fn_with_state(RESOURCE_TYPES, media_type))
}

/// Refuses a body whose `Content-Type` the route does not read (415), before the handler runs.
/// No `Content-Type` at all is read as JSON.
async fn media_type(State(types): State<&'static [&'static str]>, req: Request, next: axum::middleware::Next) -> Response {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE) else { return next.run(req).await };
    let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if types.contains(&ct.as_str()) {
        return next.run(req).await;
    }
    let text = if types.contains(&FHIR_NDJSON) {
        "Content-Type must be application/fhir+json, application/json or NDJSON"
    } else {
        "Content-Type must be application/fhir+json or application/json"
    };
    Rejection::one(RejectKind::UnsupportedMedia, Issue::new("not-supported", text)).into_response()
}

/// Every answer from 400 up is an OperationOutcome. The gateway's own are already; this turns
/// axum's (a method the route does not take, a path or query parameter that cannot be read),
/// which are plain text or empty, into one with the same status and headers (`Allow` among
/// them). Nothing of the request is quoted.
async fn outcome_for_bare_errors(req: Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let fhir = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(FHIR_JSON.as_bytes()));
    if status.as_u16() < 400 || fhir {
        return resp;
    }
    let (kind, code, text) = match status.as_u16() {
        405 => (
            RejectKind::MethodNotAllowed,
            "not-supported",
            "this route does not take this method (see the Allow header)",
        ),
        413 => (RejectKind::TooLarge, "too-costly", "the request is too large"),
        415 => (RejectKind::UnsupportedMedia, "not-supported", "unsupported Content-Type"),
        s if s >= 500 => (RejectKind::Unavailable, "exception", "the gateway could not answer this request"),
        _ => (RejectKind::Malformed, "invalid", "the request's path or query string could not be read"),
    };
    let (parts, _) = resp.into_parts();
    let mut out = Rejection::one(kind, Issue::new(code, text)).into_response();
    *out.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

async fn openapi() -> Response {
    let mut r = Response::new(Body::from(OPENAPI));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub(crate) fn fhir_response(status: u16, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        tracing::info!(stage = "ingest", reason = self.kind.label(), issues = self.issues.len(), "request refused");
        crate::ops::inc("mhg_requests_refused_total", &[("reason", self.kind.label())], 1);
        fhir_response(self.http_status(), &self.to_operation_outcome())
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!(stage = "http", "handler panicked: this is a bug");
    Rejection::one(RejectKind::Internal, Issue::new("exception", "internal error")).into_response()
}

async fn not_found() -> Response {
    Rejection::one(RejectKind::NotFound, Issue::new("not-found", "no such route")).into_response()
}

async fn health() -> Response {
    fhir_response(200, &json!({"status": "ok"}))
}

/// Ready when the mappings are loaded (they are, or the process would not have started) and the
/// store answers.
async fn ready(State(st): State<AppState>) -> Response {
    let mappings = st.pipeline.terminology.mapping_version.clone();
    let packages: Vec<String> = st.pipeline.validator.packages().packages().map(|(n, v)| format!("{n}#{v}")).collect();
    match &st.relay {
        Some(r) => match r.store.depth().await {
            Ok(_) => fhir_response(
                200,
                &json!({"status": "ready", "store": r.store.kind(), "mappings": mappings, "packages": packages}),
            ),
            Err(_) => fhir_response(503, &json!({"status": "not ready", "store": "unavailable", "mappings": mappings})),
        },
        None => fhir_response(200, &json!({"status": "ready", "store": "none", "mappings": mappings, "packages": packages})),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    let depth = match &st.relay {
        Some(r) => r.store.depth().await.unwrap_or_default(),
        None => Vec::new(),
    };
    let mut r = Response::new(Body::from(crate::ops::render(&depth)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    r
}

/// The CapabilityStatement: what this server really implements, and nothing more.
async fn metadata(State(st): State<AppState>) -> Response {
    let relay = st.relay.is_some();
    let mut ops = vec![json!({"name": "convert", "definition": "https://w3id.org/mhg/fhir/OperationDefinition/convert",
        "documentation": "POST a migration health record (JSON, JSON array or NDJSON); returns the FHIR R4 transaction Bundle(s); ?format=ips the IPS document(s) (Bundle-uv-ips, IPS 2.0.0); ?format=html or Accept: text/html the printable page of one record. Relays nothing."})];
    ops.push(json!({"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
        "documentation": "POST /fhir/$validate or /fhir/{type}/$validate: a resource or Parameters (resource, profile, mode); profile and mode also as ?profile= and ?mode= (create, update, delete, profile); application/fhir+ndjson answers one OperationOutcome a line. Validates against base R4, meta.profile and the given profiles with the definitions loaded (shipped: R4 core, hl7.terminology.r4, extensions, IPS 2.0.0); UCUM units by the UCUM grammar."}));
    if relay {
        ops.push(json!({"name": "replay", "definition": "https://w3id.org/mhg/fhir/OperationDefinition/replay",
            "documentation": "POST /submissions/{id}/$replay: replay the dead-lettered deliveries of a submission."}));
    }
    let mut resources = tx_resources();
    if let Some(r) = resources.as_array_mut() {
        r.insert(0, patient_resource(st.relay.as_ref().map_or(0, |r| r.store.summary_days())));
    }
    fhir_response(
        200,
        &json!({
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": crate::calendar::rfc3339(crate::calendar::now_ms())[..10].to_owned(),
            "kind": "instance",
            "software": {"name": "mhg", "version": env!("CARGO_PKG_VERSION")},
            "implementation": {"description": format!(
                "Migration health gateway: records in, FHIR R4 transaction Bundles out{}. Mappings {}.",
                if relay { ", relayed durably to national systems (POST /records)" } else { "" },
                st.pipeline.terminology.mapping_version)},
            "fhirVersion": "4.0.1",
            "format": ["application/fhir+json", "json"],
            "rest": [{
                "mode": "server",
                "security": if st.guard.auth.enabled() {
                    json!({"cors": false, "description": "Every interaction but GET /metadata needs credentials: an API key (X-API-Key header, or Authorization: Bearer/ApiKey), a JWT bearer token from a configured issuer (scopes in 'scope'), or a configured client certificate over mutual TLS. Scopes: convert, records:write, submissions:read, validate, metrics, admin, summary:read."})
                } else {
                    json!({"cors": false, "description": "Authentication is OFF on this instance (--insecure-no-auth): for local trials only."})
                },
                "documentation": "No FHIR resources are stored or served as such: the gateway produces them for destinations. $validate checks resources against the loaded profiles; Patient/$summary answers the IPS document of a record it holds for that purpose.",
                "operation": ops,
                // Terminology operations over the loaded packages and the gateway's mappings
                // (`txops.rs`); no resources are stored or read.
                "resource": resources
            }]
        }),
    )
}

/// `rest.resource` of the CapabilityStatement for Patient: the IPS `$summary` operation (no
/// interaction: Patients are not stored or read as such).
fn patient_resource(days: u32) -> Value {
    let held = if days == 0 {
        "This instance keeps no records for it ([summary] retention_days = 0): every identifier answers 404.".to_owned()
    } else {
        format!("This instance keeps the newest version of each record for {days} day(s) after its acceptance.")
    };
    json!({"type": "Patient", "operation": [{
        "name": "summary",
        "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary",
        "documentation": format!("GET ?identifier=SYSTEM|VALUE or POST a Parameters body (identifier as valueString SYSTEM|VALUE or valueIdentifier): the IPS document (Bundle-uv-ips, IPS 2.0.0) of the newest record held for that person, for clients with the scope summary:read and within their destination and programme restrictions; 404 when none is held for the caller. [id] is not supported (no Patients are stored). {held}")
    }]})
}

/// `rest.resource` of the CapabilityStatement: the terminology operations, by type.
fn tx_resources() -> Value {
    let op = |name: &str, def: &str, doc: &str| json!({"name": name, "definition": format!("http://hl7.org/fhir/OperationDefinition/{def}"), "documentation": doc});
    json!([
        {"type": "CodeSystem", "operation": [
            op("lookup", "CodeSystem-lookup", "GET or POST: system, code (or coding): name, version, display from a loaded complete CodeSystem."),
            op("validate-code", "CodeSystem-validate-code", "GET or POST: url, code, display (or coding): result, message, display.")]},
        {"type": "ValueSet", "operation": [
            op("validate-code", "ValueSet-validate-code", "GET or POST: url, system, code, display (or coding, codeableConcept), against a value set expanded from the loaded packages."),
            op("expand", "ValueSet-expand", "GET or POST: url, filter (code or display, case-insensitive), count, offset.")]},
        {"type": "ConceptMap", "operation": [
            op("translate", "ConceptMap-translate", "GET or POST: url (a gateway ConceptMap, or all), code (or coding), targetsystem: what the gateway sends for a code.")]}
    ])
}

/// Reads the body, refusing it as soon as it exceeds the limit (a 413 OperationOutcome, not a
/// bare text answer).
async fn read_body(req: Request, limit: usize) -> Result<(HeaderMap, Bytes), Rejection> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok((parts.headers, b)),
        Err(_) => Err(Rejection::one(
            RejectKind::TooLarge,
            Issue::new("too-costly", format!("request body larger than {limit} bytes")),
        )),
    }
}

/// Reads and converts every record of a request, all or nothing: the Bundles (with the record
/// facts the relay needs) and whether the request was a batch, or one refusal naming every bad
/// record and field.
async fn convert_request(st: &AppState, req: Request) -> Result<(Vec<crate::map::Mapped>, bool, HeaderMap), Rejection> {
    let started = std::time::Instant::now();
    // The route's Content-Type was checked before (`media_type`).
    let (headers, body) = read_body(req, st.max_body_bytes).await?;
    let pipeline = st.pipeline.clone();
    let max_records = st.max_records;
    // Mapping is CPU work: keep it off the I/O threads.
    let outcomes = tokio::task::spawn_blocking(move || {
        let items = crate::ingest::read_records(&body, None, pipeline.max_depth);
        if items.len() > max_records {
            return Err(Rejection::one(
                RejectKind::TooMany,
                Issue::new("too-costly", format!("more than {max_records} records in one request")),
            ));
        }
        Ok(pipeline.convert_items(items))
    })
    .await
    .map_err(|_| Rejection::one(RejectKind::Internal, Issue::new("exception", "internal error")))??;
    let batch = outcomes.len() > 1 || outcomes.first().is_some_and(|o| o.source.line.is_some());
    let mut refused: Vec<Rejection> = Vec::new();
    let mut mapped = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        match o.result {
            Ok(m) => mapped.push(m),
            Err(r) => refused.push(r),
        }
    }
    for r in &refused {
        crate::ops::inc("mhg_records_rejected_total", &[("reason", r.kind.label())], 1);
    }
    crate::ops::observe("mhg_stage_seconds", &[("stage", "convert")], started.elapsed().as_secs_f64());
    if !refused.is_empty() {
        return Err(Rejection::merge(refused, batch));
    }
    Ok((mapped, batch, headers))
}

async fn convert(State(st): State<AppState>, req: Request) -> Result<Response, Rejection> {
    let format = formats::requested(&req)?;
    let (mapped, batch, _) = convert_request(&st, req).await?;
    crate::ops::inc("mhg_records_accepted_total", &[("path", "convert")], mapped.len() as u64);
    let warned = mapped.iter().filter(|m| !m.warnings.is_empty()).count();
    if format != crate::pipeline::Format::Transaction {
        let mut r = formats::render(st.pipeline.clone(), mapped, batch, format).await?;
        if let Some(v) = (warned > 0).then(|| HeaderValue::from_str(&warned.to_string()).ok()).flatten() {
            r.headers_mut().insert("x-mhg-warnings", v);
        }
        return Ok(r);
    }
    let mut bundles: Vec<Value> = mapped.into_iter().map(|m| m.bundle).collect();
    tracing::info!(stage = "convert", records = bundles.len(), warned, "converted");
    let mut r = match (batch, bundles.pop()) {
        (false, Some(b)) => fhir_response(200, &b),
        (_, last) => {
            bundles.extend(last);
            let mut out = String::new();
            for b in &bundles {
                out.push_str(&b.to_string());
                out.push('\n');
            }
            let mut r = Response::new(Body::from(out));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_NDJSON));
            r
        }
    };
    if warned > 0 {
        crate::ops::inc("mhg_record_warnings_total", &[("path", "convert")], warned as u64);
        if let Ok(v) = HeaderValue::from_str(&warned.to_string()) {
            r.headers_mut().insert("x-mhg-warnings", v);
        }
    }
    Ok(r)
}
