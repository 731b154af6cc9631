//! `mhg conformance gateway`: a running gateway (this one, or another implementation of the
//! same API) against the vectors.
//!
//! Checks, each a rule of the API:
//! - `convert`: every valid vector through `POST /fhir/$convert` gives 200 and its expected
//!   Bundle (by meaning); every bad one the expected status, rejection code and locations;
//! - `records`: every valid vector through `POST /records` gives 202 with a submission (and its
//!   warnings at the expected locations); the same record again gives the same submission
//!   (`duplicate`); every bad vector is refused as by `$convert`;
//! - `delivery`: every submission reaches `delivered` (an older version of a record the set also
//!   holds in a newer one may end `superseded` instead).
//!
//! Requests go through the relay's client ([`crate::relay::probe`]).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::check::{Run, at};
use super::compare;
use super::vectors::{Expect, VectorSet};
use crate::relay::deliver::Destination;
use crate::relay::probe::{Answer, ProbeError};

/// How long submissions may take to be delivered, and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub deliver_timeout: Duration,
    pub poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { deliver_timeout: Duration::from_secs(120), poll: Duration::from_millis(250) }
    }
}

pub use super::Progress;

/// The number of steps a run makes, for a progress bar.
pub fn steps(set: &VectorSet) -> u64 {
    (set.valid.len() * 4 + set.bad.len() * 2) as u64
}

struct Client<'a> {
    dest: &'a Destination,
    key: &'a str,
}

impl Client<'_> {
    async fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> Result<Answer, ProbeError> {
        let headers = [("x-api-key", self.key)];
        self.dest.request(method, path, &headers, body.map(|b| ("application/json", b))).await
    }
}

/// Runs every check against the gateway `dest` reaches, calling with API key `key`. Fails only
/// when the gateway cannot be reached at all (the exit status 2).
pub async fn run(dest: &Destination, key: &str, set: &VectorSet, opts: Options, tick: Progress<'_>) -> Result<Run, ProbeError> {
    let c = Client { dest, key };
    let started = Instant::now();
    let mut run = Run::new("gateway", dest.config.base_url.as_deref().unwrap_or_default());
    // Reachable at all? (Any HTTP answer will do; the checks say what is wrong with it.)
    c.call("GET", "fhir/metadata", None).await?;

    for v in &set.valid {
        let body = serde_json::to_vec(&v.record).unwrap_or_default();
        let a = c.call("POST", "fhir/$convert", Some(body)).await?;
        let name = Some(v.name.as_str());
        if a.status != 200 {
            run.fail(
                at("convert", "convert-status", name),
                &format!("expected 200, got {}", a.status),
                Some(a.body.clone()),
                a.millis,
            );
        } else {
            run.pass(at("convert", "convert-status", name), a.millis);
            let d = compare::diff(&v.bundle, &a.body);
            run.expect(
                at("convert", "convert-bundle", name),
                d.is_empty(),
                &format!("the Bundle differs from the expected one at {} path(s)", d.len()),
                Some(Value::from(d)),
                a.millis,
            );
        }
        tick(1);
    }
    for b in &set.bad {
        for (suite, path) in [("convert", "fhir/$convert"), ("records", "records")] {
            let a = c.call("POST", path, Some(b.body.clone())).await?;
            let got = Expect::of_answer(a.status, &a.body);
            let rule = format!("{suite}-refusal");
            let what = format!(
                "expected {} {} at {:?}, got {} {} at {:?}",
                b.expect.status, b.expect.code, b.expect.locations, got.status, got.code, got.locations
            );
            run.expect(at(suite, &rule, Some(&b.name)), got == b.expect, &what, Some(a.body), a.millis);
            tick(1);
        }
    }

    let mut submitted: Vec<(usize, String)> = Vec::new();
    for (i, v) in set.valid.iter().enumerate() {
        let body = serde_json::to_vec(&v.record).unwrap_or_default();
        let name = Some(v.name.as_str());
        let first = c.call("POST", "records", Some(body.clone())).await?;
        let id = first.body["id"].as_str().map(str::to_owned);
        let accepted = first.status == 202 && id.is_some();
        run.expect(
            at("records", "records-accepted", name),
            accepted,
            &format!("expected 202 with a submission id, got {}", first.status),
            Some(first.body.clone()),
            first.millis,
        );
        let mut warned: Vec<String> = first.body["warnings"]["issue"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|i| i["location"].as_array().cloned().unwrap_or_default())
            .filter_map(|l| l.as_str().map(str::to_owned))
            .collect();
        warned.sort();
        warned.dedup();
        if accepted {
            run.expect(
                at("records", "records-warnings", name),
                warned == v.warnings,
                &format!("warnings at {warned:?}, expected at {:?}", v.warnings),
                Some(first.body["warnings"].clone()),
                0.0,
            );
        }
        tick(1);
        let again = c.call("POST", "records", Some(body)).await?;
        let same = again.status / 100 == 2 && again.body["id"].as_str() == id.as_deref() && again.body["duplicate"] == Value::Bool(true);
        run.expect(
            at("records", "idempotent-resend", name),
            same,
            &format!("a resend must answer the first submission with duplicate: true (got {})", again.status),
            Some(again.body),
            again.millis,
        );
        tick(1);
        if let (true, Some(id)) = (accepted, id) {
            submitted.push((i, id));
        }
    }

    // Delivery: poll each submission until it is final or the time is up.
    let deadline = Instant::now() + opts.deliver_timeout;
    for (i, id) in submitted {
        let v = &set.valid[i];
        let newer_exists = set.valid.iter().any(|w| {
            w.record["sourceSystem"] == v.record["sourceSystem"]
                && w.record["recordId"] == v.record["recordId"]
                && w.record["recordVersion"].as_u64() > v.record["recordVersion"].as_u64()
        });
        let t0 = Instant::now();
        let (state, last) = loop {
            let a = c.call("GET", &format!("submissions/{id}"), None).await?;
            let s = a.body["state"].as_str().unwrap_or_default().to_owned();
            if s == "delivered" || s == "dead-letter" || (s == "superseded" && newer_exists) || Instant::now() >= deadline {
                break (s, a.body);
            }
            tokio::time::sleep(opts.poll).await;
        };
        let ok = state == "delivered" || (state == "superseded" && newer_exists);
        run.expect(
            at("delivery", "reaches-delivered", Some(&v.name)),
            ok,
            &format!("state '{state}' after {:.0} s", t0.elapsed().as_secs_f64()),
            Some(last),
            t0.elapsed().as_secs_f64() * 1000.0,
        );
        tick(1);
    }
    run.millis = started.elapsed().as_secs_f64() * 1000.0;
    Ok(run)
}
