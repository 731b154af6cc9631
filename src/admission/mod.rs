//! Stage 4, **admission**: deciding whether converted records may be stored, and as what.
//!
//! Given the caller, the configured destinations and the records the pipeline converted (output
//! gate passed), [`admit`] decides, per record:
//! - **authorisation**: the caller may submit this programme and every destination it routes to;
//! - **routing**: which destinations take the record (destination country and programme);
//! - **destination profiles**: a destination that names profiles gets only records meeting them,
//!   so nothing is accepted that a destination is known to refuse;
//! - **identity and idempotency**: the record's identity, the content digest, and the caller's own
//!   `Idempotency-Key` (scoped by the caller; in a batch, `KEY#n` for record n);
//!
//! and returns what the queue stores, or one [`Rejection`] naming every refused record. A request
//! is all or nothing: one refused record refuses the request.
//!
//! Invariants: no HTTP types here (`POST /records`, a broker consumer or the conformance kit call
//! the same function); no I/O, no clock, no logging; only Bundles the pipeline sealed
//! ([`crate::pipeline::ValidatedBundle`]) reach the queue.

use crate::auth::Caller;
use crate::error::{Issue, RejectKind, Rejection};
use crate::map::Mapped;
use crate::pipeline::Pipeline;
use crate::queue::{Conflict, Identity, NewSubmission};
use crate::relay::DestinationConfig;

/// What admission decided for a request: the submissions to store, and for each the warnings
/// of its record (possible but unlikely values), in the same order.
#[derive(Debug)]
pub struct Admitted {
    pub submissions: Vec<NewSubmission>,
    pub warnings: Vec<Vec<Issue>>,
}

/// Decides every record of one request (see the module doc). `key` is the request's
/// `Idempotency-Key`; `batch` whether the request held several records (it changes how refusals
/// and keys name a record). Submission ids come from `new_id`, so that this stays free of
/// randomness.
pub fn admit(
    pipeline: &Pipeline,
    caller: &Caller,
    destinations: &[DestinationConfig],
    mapped: Vec<Mapped>,
    batch: bool,
    key: Option<&str>,
    mut new_id: impl FnMut() -> String,
) -> Result<Admitted, Rejection> {
    let mut out = Admitted { submissions: Vec::with_capacity(mapped.len()), warnings: Vec::with_capacity(mapped.len()) };
    let mut forbidden = Vec::new();
    let mut unrouted = Vec::new();
    for (i, mut m) in mapped.into_iter().enumerate() {
        let at = |r: Rejection| Rejection { source: crate::error::SourceRef { record: Some(i + 1), ..r.source }, ..r };
        if !caller.may_submit_programme(&m.meta.programme) {
            forbidden.push(at(Rejection::one(
                RejectKind::Forbidden,
                Issue::new("forbidden", "this client may not submit records of this programme").at("/assessment/programme"),
            )));
            continue;
        }
        let routed: Vec<&DestinationConfig> =
            destinations.iter().filter(|d| d.takes(&m.meta.destination_country, &m.meta.programme)).collect();
        if routed.is_empty() {
            unrouted.push(at(Rejection::one(
                RejectKind::Schema,
                Issue::new("business-rule", "no destination takes records of this destination country and programme")
                    .at("/assessment/destinationCountry"),
            )));
            continue;
        }
        let issues: Vec<Issue> = routed
            .iter()
            .filter(|d| !d.profiles.is_empty())
            .flat_map(|d| pipeline.check_destination_profiles(&m, &d.name, &d.profiles))
            .collect();
        if !issues.is_empty() {
            crate::ops::inc("mhg_records_rejected_total", &[("reason", "destination-profile")], 1);
            unrouted.push(at(Rejection::new(RejectKind::OutputInvalid, issues)));
            continue;
        }
        // A destination that takes IPS documents gets only records whose document passes the
        // gate too (the relay builds the same document again from the stored Bundle).
        if routed.iter().any(|d| d.format == crate::pipeline::Format::Ips) {
            if let Err(r) = pipeline.document(&m) {
                unrouted.push(at(r));
                continue;
            }
        }
        if let Some(d) = routed.iter().find(|d| !caller.may_submit_to(&d.name)) {
            forbidden.push(at(Rejection::one(
                RejectKind::Forbidden,
                Issue::new("forbidden", format!("this client may not submit records for destination '{}'", d.name))
                    .at("/assessment/destinationCountry"),
            )));
            continue;
        }
        let bundle = match pipeline.seal(&m) {
            Ok(b) => b,
            Err(r) => {
                unrouted.push(at(r));
                continue;
            }
        };
        // The caller's Idempotency-Key is its own: scoped by the caller's name, never shared
        // with another client's identical key.
        let client_key = key.map(|k| {
            let k = if batch { format!("{k}#{}", i + 1) } else { k.to_owned() };
            crate::queue::client_key(&caller.name, &k)
        });
        out.warnings.push(std::mem::take(&mut m.warnings));
        let person_identifiers = person_identifiers(&m.bundle);
        out.submissions.push(NewSubmission {
            id: new_id(),
            identity: Identity { source_system: m.meta.source_system, record_id: m.meta.record_id, record_version: m.meta.record_version },
            digest: m.meta.digest,
            client_key,
            programme: m.meta.programme,
            order_key: m.meta.person_key,
            submitter: caller.name.to_string(),
            bundle,
            destinations: routed.iter().map(|d| d.name.clone()).collect(),
            person_identifiers,
        });
    }
    // A caller refused for who it is hears that first; then what no destination would take.
    if !forbidden.is_empty() {
        return Err(Rejection::merge(forbidden, batch));
    }
    if !unrouted.is_empty() {
        return Err(Rejection::merge(unrouted, batch));
    }
    Ok(out)
}

/// The keys `Patient/$summary` finds a record under: each identifier (system and value) of the
/// Bundle's Patient, hashed ([`crate::queue::summary::identifier_key`]).
fn person_identifiers(bundle: &serde_json::Value) -> Vec<String> {
    let entries = bundle["entry"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut keys: Vec<String> = entries
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Patient")
        .flat_map(|r| r["identifier"].as_array().map(Vec::as_slice).unwrap_or_default())
        .filter_map(|i| Some(crate::queue::summary::identifier_key(i["system"].as_str()?, i["value"].as_str()?)))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The refusal for records that contradict what was accepted before (409), by their position
/// in the request. Names the field (`/recordVersion`) or the header; quotes neither.
pub fn conflicts(conflicts: Vec<(usize, Conflict)>, batch: bool) -> Rejection {
    let refusals = conflicts
        .into_iter()
        .map(|(i, c)| {
            let issue = match c {
                Conflict::ContentDiffers => Issue::new(
                    "conflict",
                    "a record with this sourceSystem, recordId and recordVersion was accepted with other content; \
                     send a correction with a higher recordVersion",
                )
                .at("/recordVersion"),
                Conflict::KeyReused => Issue::new(
                    "conflict",
                    "this client already used this Idempotency-Key for another record; use a new key for a new record",
                ),
            };
            let mut r = Rejection::one(RejectKind::Conflict, issue);
            r.source.record = Some(i + 1);
            r
        })
        .collect();
    Rejection::merge(refusals, batch)
}

#[cfg(test)]
mod tests {
    use crate::auth::{Caller, Scope};
    use crate::pipeline::Pipeline;
    use crate::relay::{DestinationConfig, DestinationKind};
    use serde_json::Value;

    fn pipeline() -> &'static Pipeline {
        static P: std::sync::OnceLock<Pipeline> = std::sync::OnceLock::new();
        P.get_or_init(|| {
            let home = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            Pipeline::load(&home.join("mappings"), &[], &home.join("conformance"), 32).unwrap()
        })
    }

    fn record() -> Value {
        let home = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(home.join("tests/golden/records/32-shared-labour-minimal.json")).unwrap()).unwrap()
    }

    fn dest(name: &str, country: &str) -> DestinationConfig {
        DestinationConfig { countries: vec![country.into()], ..DestinationConfig::new(name, DestinationKind::Directory) }
    }

    #[test]
    fn routes_scopes_keys_and_refuses_in_one_place() {
        let p = pipeline();
        let m = || vec![p.convert_value(&record()).unwrap()];
        let ids = || {
            let mut n = 0;
            move || {
                n += 1;
                format!("s-{n}")
            }
        };
        let dests = [dest("qat", "QAT"), dest("can", "CAN")];
        let caller = Caller::new("uploader", &[Scope::RecordsWrite]);
        let a = super::admit(p, &caller, &dests, m(), false, Some("42"), ids()).unwrap();
        assert_eq!(a.submissions[0].destinations, ["qat"]);
        assert_eq!(a.submissions[0].client_key.as_deref(), Some(crate::queue::client_key("uploader", "42").as_str()));
        assert_eq!(a.submissions[0].id, "s-1");
        // In a batch, record n has KEY#n.
        let b = super::admit(p, &caller, &dests, m(), true, Some("42"), ids()).unwrap();
        assert_eq!(b.submissions[0].client_key.as_deref(), Some(crate::queue::client_key("uploader", "42#1").as_str()));
        // No destination for it: 422 at the destination country.
        let r = super::admit(p, &caller, &dests[1..], m(), false, None, ids()).unwrap_err();
        assert_eq!((r.http_status(), r.issues[0].input_path.as_deref()), (422, Some("/assessment/destinationCountry")));
        // A caller limited to another destination: 403.
        let mut limited = caller.clone();
        limited.destinations = Some(vec!["can".to_owned()].into());
        assert_eq!(super::admit(p, &limited, &dests, m(), false, None, ids()).unwrap_err().http_status(), 403);
    }

    #[test]
    fn only_a_gated_bundle_is_sealed() {
        let p = pipeline();
        let ungated = p.check_and_map(&record()).unwrap();
        assert!(p.seal(&ungated).is_err(), "mapping alone, without the output gate, is never stored");
        let caller = Caller::new("uploader", &[Scope::RecordsWrite]);
        let r = super::admit(p, &caller, &[dest("qat", "QAT")], vec![ungated], false, None, String::new).unwrap_err();
        assert_eq!(r.http_status(), 422);
        assert!(p.seal(&p.convert_value(&record()).unwrap()).is_ok());
    }
}
