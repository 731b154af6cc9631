//! `mhg conformance destination`: a receiving FHIR server against the vectors, through the
//! relay's own delivery code and outbound authentication ([`Destination::deliver`], with the
//! destination configuration types).
//!
//! Rules, each a check (the names are what a failure reports):
//! - `capability-*`: the CapabilityStatement claims what the gateway needs: `transaction`, and
//!   for each resource type sent, `update`, `conditionalUpdate` and the `identifier` search;
//! - `delivered`: every vector's Bundle is taken (a transaction, or entry by entry when
//!   `transactions = false`), in the set's order, so an amended version follows its original;
//! - `exactly-one-per-identifier`: each business identifier (the conditional URL of an entry)
//!   finds exactly one resource;
//! - `amended-wins`: where a record's later version changed a resource, the server holds the
//!   later content (an older version never overwrites it);
//! - `entered-in-error`: an entry sent as entered-in-error reads back so;
//! - `resend-no-duplicates`, `resend-changes-nothing`: every Bundle sent again leaves one resource
//!   per identifier, with the content it had;
//! - `profile-valid`: what the server returns meets its `meta.profile` and the named profiles;
//! - `cleanup`: what the run created is deleted where the server allows it (a skip says where
//!   it does not).

use std::time::Instant;

use serde_json::{Value, json};

use super::check::{Run, at};
use super::compare;
use super::vectors::{Valid, VectorSet};
use crate::queue::{Claim, Identity, Outcome};
use crate::relay::deliver::{Backoff, Destination};
use crate::relay::probe::ProbeError;
use crate::validate::profile::{Severity, Validator};

pub use super::Progress;

pub fn steps(set: &VectorSet) -> u64 {
    (set.valid.len() * 3) as u64
}

fn claim(v: &Valid, seq: i64) -> Claim {
    Claim {
        seq,
        submission_id: v.name.clone(),
        destination: "conformance".into(),
        identity: Identity {
            source_system: v.record["sourceSystem"].as_str().unwrap_or_default().to_owned(),
            record_id: v.record["recordId"].as_str().unwrap_or_default().to_owned(),
            record_version: v.record["recordVersion"].as_i64().unwrap_or(1),
        },
        attempts: 1,
        bundle: serde_json::to_vec(&v.bundle).unwrap_or_default(),
    }
}

/// The entries of a Bundle written by conditional update: (type, search query, resource).
fn conditional(bundle: &Value) -> Vec<(String, String, Value)> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let url = e["request"]["url"].as_str()?;
            let (t, q) = url.split_once('?')?;
            Some((t.to_owned(), q.to_owned(), e["resource"].clone()))
        })
        .collect()
}

/// `v` with every `reference` removed (a server rewrites `urn:uuid:` to its own ids).
fn without_references(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(k, _)| k.as_str() != "reference").map(|(k, x)| (k.clone(), without_references(x))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(without_references).collect()),
        x => x.clone(),
    }
}

/// Equal, numbers by value: a server may write `56.20` back as `56.2`, which holds version 2 all
/// the same (the converter's own output is compared by text, [`compare::diff`]).
fn same_value(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(Value::Array(x)), Some(Value::Array(y))) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(Some(p), Some(q))),
        (Some(Value::Object(x)), Some(Value::Object(y))) => x.len() == y.len() && x.iter().all(|(k, v)| same_value(Some(v), y.get(k))),
        (a, b) => a == b,
    }
}

/// What the run reads back by identifier: for each query, the resources found.
async fn search(dest: &Destination, rtype: &str, query: &str) -> Result<(Vec<Value>, f64), ProbeError> {
    let a = dest.request("GET", &format!("{rtype}?{query}"), &[], None).await?;
    let found = a.body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["resourceType"].as_str() == Some(rtype))
        .filter(|e| e["search"]["mode"].as_str().is_none_or(|m| m == "match"))
        .map(|e| e["resource"].clone())
        .collect();
    Ok((found, a.millis))
}

/// `types`: every resource type sent, with whether it is written by conditional update (those
/// need `conditionalUpdate` and the `identifier` search; the others, written at their id, `update`).
fn capability(run: &mut Run, cs: &Value, types: &[(String, bool)]) {
    let rest = cs["rest"].as_array().and_then(|r| r.iter().find(|r| r["mode"] == "server")).cloned().unwrap_or(Value::Null);
    let claims = |list: &Value, code: &str| list.as_array().into_iter().flatten().any(|i| i["code"] == code);
    run.expect(
        at("capability", "capability-transaction", None),
        claims(&rest["interaction"], "transaction"),
        "the CapabilityStatement does not claim the transaction interaction",
        None,
        0.0,
    );
    for (t, by_identifier) in types {
        let r = rest["resource"].as_array().and_then(|rs| rs.iter().find(|r| r["type"] == t.as_str())).cloned();
        let Some(r) = r else {
            run.fail(
                at("capability", "capability-resource", None),
                &format!("resource type {t} is not listed"),
                None,
                0.0,
            );
            continue;
        };
        let rule_for = |s: &str| format!("capability-{s}");
        run.expect(
            at("capability", &rule_for("update"), Some(t)),
            claims(&r["interaction"], "update"),
            &format!("{t}: no update interaction"),
            None,
            0.0,
        );
        if !by_identifier {
            continue;
        }
        run.expect(
            at("capability", &rule_for("conditional-update"), Some(t)),
            r["conditionalUpdate"] == json!(true),
            &format!("{t}: conditionalUpdate is not claimed"),
            None,
            0.0,
        );
        let by_identifier = r["searchParam"].as_array().into_iter().flatten().any(|p| p["name"] == "identifier");
        run.expect(
            at("capability", &rule_for("identifier-search"), Some(t)),
            by_identifier,
            &format!("{t}: no identifier search parameter"),
            None,
            0.0,
        );
    }
}

/// Runs every check against the server `dest` reaches; validates with `validator` against
/// each resource's own profiles and `profiles`. Fails only when the server cannot be reached.
pub async fn run(
    dest: &Destination,
    validator: &Validator,
    profiles: &[String],
    set: &VectorSet,
    tick: Progress<'_>,
) -> Result<Run, ProbeError> {
    let started = Instant::now();
    let mut run = Run::new("destination", dest.config.base_url.as_deref().unwrap_or_default());
    let meta = dest.request("GET", "metadata", &[], None).await?;
    let mut types: Vec<(String, bool)> = Vec::new();
    for v in &set.valid {
        for e in v.bundle["entry"].as_array().into_iter().flatten() {
            let Some(t) = e["resource"]["resourceType"].as_str() else { continue };
            let conditional = e["request"]["url"].as_str().is_some_and(|u| u.contains('?'));
            match types.iter_mut().find(|(x, _)| x == t) {
                Some((_, c)) => *c |= conditional,
                None => types.push((t.to_owned(), conditional)),
            }
        }
    }
    capability(&mut run, &meta.body, &types);
    let backoff = Backoff { base_ms: 1000, max_ms: 1000 };

    // Deliver every vector, in order.
    let mut delivered = vec![false; set.valid.len()];
    for (i, v) in set.valid.iter().enumerate() {
        let t0 = Instant::now();
        let out = dest.deliver(&claim(v, i as i64), backoff).await;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        match out {
            Outcome::Delivered { .. } => {
                delivered[i] = true;
                run.pass(at("delivery", "delivered", Some(&v.name)), ms);
            }
            Outcome::Retry { status, detail, .. } | Outcome::Dead { status, detail } => {
                if status.is_none() && i == 0 {
                    return Err(ProbeError::Transport("connect"));
                }
                let how = if dest.config.transactions { "the transaction" } else { "an entry" };
                run.fail(
                    at("delivery", "delivered", Some(&v.name)),
                    &format!("{how} was refused (status {status:?})"),
                    Some(detail),
                    ms,
                );
            }
        }
        tick(1);
    }

    // The latest version of each record is what the server must hold.
    let latest: Vec<usize> = (0..set.valid.len())
        .filter(|&i| {
            let v = &set.valid[i].record;
            !set.valid.iter().any(|w| {
                w.record["sourceSystem"] == v["sourceSystem"]
                    && w.record["recordId"] == v["recordId"]
                    && w.record["recordVersion"].as_u64() > v["recordVersion"].as_u64()
            })
        })
        .collect();
    let before = read_back(dest, &mut run, set, &latest, &delivered, "").await?;
    amended(&mut run, set, &before);
    validate(&mut run, validator, profiles, &before);
    tick(set.valid.len() as u64);

    // Resend every latest Bundle: nothing may change.
    for &i in &latest {
        let _ = dest.deliver(&claim(&set.valid[i], i as i64), backoff).await;
    }
    let after = read_back(dest, &mut run, set, &latest, &delivered, "resend-").await?;
    for (key, (name, res)) in &after {
        if let Some((_, old)) = before.get(key) {
            let d = compare::diff(&compare::without_server_fields(old, &json!({})), &compare::without_server_fields(res, &json!({})));
            run.expect(
                at("resend", "resend-changes-nothing", Some(name)),
                d.is_empty(),
                &format!("{key} changed on resend at {d:?}"),
                None,
                0.0,
            );
        }
    }
    tick(set.valid.len() as u64);
    cleanup(dest, &mut run, &after).await;
    run.millis = started.elapsed().as_secs_f64() * 1000.0;
    Ok(run)
}

type Found = std::collections::BTreeMap<String, (String, Value)>;

/// Searches every identifier of the latest vectors; checks exactly one each, and entered-in-error.
async fn read_back(
    dest: &Destination,
    run: &mut Run,
    set: &VectorSet,
    latest: &[usize],
    delivered: &[bool],
    prefix: &str,
) -> Result<Found, ProbeError> {
    let mut found = Found::new();
    for &i in latest {
        let v = &set.valid[i];
        if !delivered[i] {
            continue;
        }
        for (t, q, sent) in conditional(&v.bundle) {
            let key = format!("{t}?{q}");
            if found.contains_key(&key) {
                continue;
            }
            let (hits, ms) = search(dest, &t, &q).await?;
            let rule = format!("{prefix}{}", if prefix.is_empty() { "exactly-one-per-identifier" } else { "no-duplicates" });
            run.expect(
                at(if prefix.is_empty() { "read-back" } else { "resend" }, &rule, Some(&v.name)),
                hits.len() == 1,
                &format!("{key} finds {} resources, expected exactly one", hits.len()),
                None,
                ms,
            );
            if let Some(r) = hits.into_iter().next() {
                if prefix.is_empty() && sent["status"] == "entered-in-error" {
                    run.expect(
                        at("read-back", "entered-in-error", Some(&v.name)),
                        r["status"] == "entered-in-error",
                        &format!("{key} was sent entered-in-error and reads back as {}", r["status"]),
                        None,
                        0.0,
                    );
                }
                found.insert(key, (v.name.clone(), r));
            }
        }
    }
    Ok(found)
}

/// For every record in several versions: what the latest changed must be what the server holds.
fn amended(run: &mut Run, set: &VectorSet, found: &Found) {
    for newer in &set.valid {
        for older in &set.valid {
            let same = older.record["sourceSystem"] == newer.record["sourceSystem"] && older.record["recordId"] == newer.record["recordId"];
            if !same || older.record["recordVersion"].as_u64() >= newer.record["recordVersion"].as_u64() {
                continue;
            }
            let old: std::collections::BTreeMap<String, Value> =
                conditional(&older.bundle).into_iter().map(|(t, q, r)| (format!("{t}?{q}"), r)).collect();
            for (t, q, sent) in conditional(&newer.bundle) {
                let key = format!("{t}?{q}");
                let Some(prev) = old.get(&key) else { continue };
                let changed = compare::diff(&without_references(prev), &without_references(&sent));
                if changed.is_empty() {
                    continue;
                }
                let Some((_, got)) = found.get(&key) else { continue };
                let got = without_references(got);
                let sent = without_references(&sent);
                let stale: Vec<&String> =
                    changed.iter().filter(|p| !p.contains(' ') && !same_value(got.pointer(p), sent.pointer(p))).collect();
                run.expect(
                    at("read-back", "amended-wins", Some(&newer.name)),
                    stale.is_empty(),
                    &format!("{key} does not hold version {} at {stale:?}", newer.record["recordVersion"]),
                    None,
                    0.0,
                );
            }
        }
    }
}

fn validate(run: &mut Run, validator: &Validator, profiles: &[String], found: &Found) {
    for (key, (name, r)) in found {
        let rtype = r["resourceType"].as_str().unwrap_or_default();
        let named: Vec<&str> =
            profiles.iter().map(String::as_str).filter(|p| validator.profile(p).is_some_and(|d| d.type_name == rtype)).collect();
        let errors: Vec<Value> = validator
            .validate(r, &named)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| json!({"expression": f.expression, "text": f.text}))
            .collect();
        run.expect(
            at("validate", "profile-valid", Some(name)),
            errors.is_empty(),
            &format!("{key} as returned has {} profile error(s)", errors.len()),
            Some(Value::from(errors)),
            0.0,
        );
    }
}

async fn cleanup(dest: &Destination, run: &mut Run, found: &Found) {
    let (mut deleted, mut refused, mut status) = (0, 0, 0);
    for (_, r) in found.values() {
        let (Some(t), Some(id)) = (r["resourceType"].as_str(), r["id"].as_str()) else { continue };
        match dest.request("DELETE", &format!("{t}/{id}"), &[], None).await {
            Ok(a) if a.status / 100 == 2 => deleted += 1,
            Ok(a) => {
                refused += 1;
                status = a.status;
            }
            Err(_) => refused += 1,
        }
    }
    if refused == 0 {
        run.pass(at("cleanup", "cleanup", None), 0.0);
    } else {
        run.skip(
            at("cleanup", "cleanup", None),
            &format!(
                "the server did not allow deleting {refused} of {} resources (last status {status}); {deleted} deleted",
                deleted + refused
            ),
        );
    }
}
