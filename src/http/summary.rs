//! `GET /fhir/Patient/$summary?identifier=SYSTEM|VALUE` and `POST /fhir/Patient/$summary` with
//! a Parameters body (merged with the query), as IPS 2.0.0 defines the operation
//! (`http://hl7.org/fhir/uv/ips/OperationDefinition/summary`): the IPS document of the newest
//! record the gateway holds for that person (`[summary] retention_days`), built and gated as
//! `$convert?format=ips` builds and gates it.
//!
//! - `identifier`: a token `SYSTEM|VALUE` (`\|`, `\,`, `\$` and `\\` escape those characters
//!   in either part), as a query parameter or a Parameters `valueString`; or a
//!   `valueIdentifier` (`system`, `value`). Missing, given twice, without `|` or with an empty
//!   value: 400 naming `identifier`.
//! - `profile` (optional): the IPS Bundle or Composition profile; any other is a 400 naming
//!   `profile` (the gateway writes IPS documents only).
//! - Who: the `summary:read` scope (the route's `needs`), and the caller's programme and
//!   destination restrictions ([`crate::auth::Caller::may_read_summary`]). Whatever the caller
//!   may not see is answered exactly as what is not held: 404, naming nothing.
//! - Every answered read is recorded in the submission's audit trail (the client's name) before
//!   the document is sent; the log names the client and the submission, never the identifier.

use axum::extract::{Extension, Query, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{AppState, fhir_response, read_body};
use crate::auth::Caller;
use crate::error::{Issue, RejectKind, Rejection};
use crate::queue::summary::{HeldSummary, identifier_key};

/// The profiles a caller may ask for: what the gateway's documents meet.
const PROFILES: [&str; 2] = [crate::map::ips::BUNDLE_PROFILE, "http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips"];

fn bad(param: &'static str, text: impl Into<String>) -> Rejection {
    Rejection::one(RejectKind::Malformed, Issue::new("value", text).at(param))
}

fn not_held() -> Rejection {
    Rejection::one(
        RejectKind::NotFound,
        Issue::new("not-found", "no summary is held for this identifier (or it is not one this client may read)"),
    )
}

fn unavailable() -> Response {
    let mut r =
        Rejection::one(RejectKind::Unavailable, Issue::new("transient", "the store is not available; retry shortly")).into_response();
    r.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
    r
}

/// A search token `SYSTEM|VALUE`: split at the first `|` not escaped by `\`, escapes removed.
fn token(s: &str) -> Result<(String, String), Rejection> {
    let (mut system, mut value, mut split) = (String::new(), String::new(), false);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let c = match c {
            '\\' => chars.next().ok_or_else(|| bad("identifier", "parameter 'identifier' ends with an unfinished escape (\\)"))?,
            '|' if !split => {
                split = true;
                continue;
            }
            c => c,
        };
        if split { value.push(c) } else { system.push(c) }
    }
    if !split {
        return Err(bad(
            "identifier",
            "parameter 'identifier' must be SYSTEM|VALUE (the identifier's system, '|', its value)",
        ));
    }
    identifier(system, value)
}

fn identifier(system: String, value: String) -> Result<(String, String), Rejection> {
    if value.is_empty() {
        return Err(bad("identifier", "parameter 'identifier' has no value after the '|'"));
    }
    Ok((system, value))
}

/// What a request asks for: the identifier, from the query and (for `POST`) a Parameters body.
#[derive(Default)]
struct Asked {
    identifier: Option<(String, String)>,
}

impl Asked {
    fn set_identifier(&mut self, id: (String, String)) -> Result<(), Rejection> {
        if self.identifier.replace(id).is_some() {
            return Err(bad("identifier", "parameter 'identifier' given more than once"));
        }
        Ok(())
    }

    fn from_query(query: &[(String, String)]) -> Result<Asked, Rejection> {
        let mut a = Asked::default();
        for (k, v) in query {
            match k.as_str() {
                "identifier" => a.set_identifier(token(v)?)?,
                "profile" => profile(v)?,
                _ => {}
            }
        }
        Ok(a)
    }

    fn add_parameters(&mut self, body: &Value) -> Result<(), Rejection> {
        if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err(Rejection::one(
                RejectKind::Malformed,
                Issue::new("structure", "the body must be a FHIR Parameters resource"),
            ));
        }
        let params = match body.get("parameter") {
            None => return Ok(()),
            Some(Value::Array(p)) => p,
            Some(_) => {
                return Err(Rejection::one(
                    RejectKind::Malformed,
                    Issue::new("structure", "Parameters.parameter must be an array"),
                ));
            }
        };
        for p in params {
            match p.get("name").and_then(Value::as_str) {
                Some("identifier") => {
                    let id = if let Some(s) = p.get("valueString") {
                        token(s.as_str().ok_or_else(|| bad("identifier", "parameter 'identifier': valueString must be a string"))?)?
                    } else if let Some(i) = p.get("valueIdentifier") {
                        let text = |k: &str| i.get(k).and_then(Value::as_str).map(str::to_owned);
                        match (text("system"), text("value")) {
                            (Some(system), Some(value)) => identifier(system, value)?,
                            _ => return Err(bad("identifier", "parameter 'identifier': valueIdentifier needs a system and a value")),
                        }
                    } else {
                        return Err(bad("identifier", "parameter 'identifier' must carry valueString (SYSTEM|VALUE) or valueIdentifier"));
                    };
                    self.set_identifier(id)?;
                }
                Some("profile") => {
                    let v = ["valueCanonical", "valueUri", "valueString"].iter().find_map(|k| p.get(*k)).and_then(Value::as_str);
                    profile(v.ok_or_else(|| bad("profile", "parameter 'profile' must carry valueCanonical"))?)?;
                }
                Some(_) => {}
                None => {
                    return Err(Rejection::one(
                        RejectKind::Malformed,
                        Issue::new("structure", "every Parameters.parameter needs a name"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn profile(p: &str) -> Result<(), Rejection> {
    let url = p.split('|').next().unwrap_or_default();
    if PROFILES.contains(&url) {
        Ok(())
    } else {
        Err(Rejection::one(
            RejectKind::Malformed,
            Issue::new("not-supported", format!("parameter 'profile': only {} is served here", PROFILES.join(" or "))).at("profile"),
        ))
    }
}

fn caller_of(c: Option<Extension<Caller>>) -> Caller {
    c.map(|Extension(c)| c).unwrap_or_else(Caller::anonymous)
}

pub(super) async fn get(
    State(st): State<AppState>,
    caller: Option<Extension<Caller>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    match Asked::from_query(&query) {
        Ok(asked) => answer(&st, &caller_of(caller), asked).await,
        Err(r) => r.into_response(),
    }
}

pub(super) async fn post(
    State(st): State<AppState>,
    caller: Option<Extension<Caller>>,
    Query(query): Query<Vec<(String, String)>>,
    req: Request,
) -> Response {
    let asked = async {
        let mut asked = Asked::from_query(&query)?;
        let (_, body) = read_body(req, st.max_body_bytes).await?;
        let body = crate::ingest::reader::strip_bom(&body);
        if !body.iter().all(u8::is_ascii_whitespace) {
            let v: Value = serde_json::from_slice(body)
                .map_err(|_| Rejection::one(RejectKind::Malformed, Issue::new("structure", "body is not JSON")))?;
            asked.add_parameters(&v)?;
        }
        Ok::<_, Rejection>(asked)
    };
    match asked.await {
        Ok(asked) => answer(&st, &caller_of(caller), asked).await,
        Err(r) => r.into_response(),
    }
}

async fn answer(st: &AppState, caller: &Caller, asked: Asked) -> Response {
    let Some((system, value)) = asked.identifier else {
        return bad("identifier", "parameter 'identifier' (SYSTEM|VALUE) is required").into_response();
    };
    let Some(relay) = &st.relay else { return unavailable() };
    let now = crate::calendar::now_ms();
    let held = match relay.store.summaries_for(&identifier_key(&system, &value), now).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(stage = "summary", error = %e, "store failed");
            return unavailable();
        }
    };
    // The newest record of this person that the caller may see: what it may not see is not
    // there for it.
    let visible = |h: &HeldSummary| caller.may_read_summary(&h.programme, h.destinations.iter().map(String::as_str));
    let Some(h) = held.into_iter().find(visible) else {
        tracing::info!(stage = "summary", client = %caller.name, found = false, "summary asked for: none held for this client");
        return not_held().into_response();
    };
    let bundle = match relay.store.summary_bundle(&h).await {
        Ok(Some(b)) => b,
        // Replaced by a newer version (or purged) between the two reads.
        Ok(None) => return not_held().into_response(),
        Err(_) => return unavailable(),
    };
    let pipeline = st.pipeline.clone();
    let doc = match tokio::task::spawn_blocking(move || pipeline.stored_document(&bundle)).await {
        Ok(Ok(doc)) => doc,
        Ok(Err(r)) => {
            tracing::error!(stage = "summary", submission_id = %h.submission_id, "the stored record's IPS document failed its gate");
            return r.into_response();
        }
        Err(_) => return Rejection::one(RejectKind::Internal, Issue::new("exception", "internal error")).into_response(),
    };
    // Recorded before it is answered: a read that cannot be audited is not served.
    if let Err(e) = relay.store.record_summary_read(h.submission_seq, &caller.name, now).await {
        tracing::error!(stage = "summary", error = %e, "could not record the read: not served");
        return unavailable();
    }
    crate::ops::inc("mhg_summaries_served_total", &[], 1);
    tracing::info!(
        stage = "summary",
        client = %caller.name,
        submission_id = %h.submission_id,
        record_version = h.record_version,
        "summary served"
    );
    let mut r = fhir_response(200, &doc);
    r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_split_at_the_first_unescaped_bar() {
        let ok = |s: &str| super::token(s).map_err(|r| r.issues[0].text.clone());
        assert_eq!(ok("https://x.example/id|A-1").unwrap(), ("https://x.example/id".into(), "A-1".into()));
        assert_eq!(ok("urn:oid:1.2|a\\|b").unwrap(), ("urn:oid:1.2".into(), "a|b".into()));
        assert_eq!(ok("|A-1").unwrap(), (String::new(), "A-1".into()));
        assert_eq!(ok("s|a|b").unwrap(), ("s".into(), "a|b".into()));
        for bad in ["A-1", "s\\|A-1", "s|", "s|a\\"] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }
}
