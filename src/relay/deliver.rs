//! One delivery attempt, and what its result means.

use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};

use super::auth::TokenSource;
use super::{DestinationConfig, DestinationKind};
use crate::pipeline::Format;
use crate::queue::{Claim, Outcome, now_ms};

/// The IPS document of a stored transaction Bundle, and the conditional update URL (relative to
/// the base) that makes it idempotent by the document's identifier. The stored Bundle passed the
/// output gate, and so did its document when the record was accepted (admission gates it for
/// every `ips` destination); building it is deterministic, so these are the bytes that passed.
fn ips_document(stored: &[u8]) -> Result<(Vec<u8>, String), Outcome> {
    let dead = |e: &str| Outcome::Dead { status: None, detail: json!({"error": e}) };
    let tx: Value = serde_json::from_slice(stored).map_err(|_| dead("stored payload is not JSON"))?;
    let doc = crate::map::ips::document(&tx);
    let id = &doc["identifier"];
    let url =
        crate::map::util::identifier_query("Bundle", id["system"].as_str().unwrap_or_default(), id["value"].as_str().unwrap_or_default());
    let bytes = serde_json::to_vec(&doc).map_err(|_| dead("document could not be serialised"))?;
    Ok((bytes, url))
}

/// Backoff of retryable failures.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base_ms: i64,
    pub max_ms: i64,
}

impl Backoff {
    /// `base * 2^(attempt-1)`, capped, with ±50% jitter so that a recovering destination is not
    /// hit by every retry at once.
    pub fn delay_ms(&self, attempt: i64) -> i64 {
        let exp = self.base_ms.saturating_mul(1i64 << (attempt - 1).clamp(0, 30)).min(self.max_ms);
        let jitter: f64 = rand::rng().random_range(0.5..1.5);
        ((exp as f64) * jitter) as i64
    }
}

/// A destination ready to send to: configuration plus the HTTP client and the secret.
pub struct Destination {
    pub config: DestinationConfig,
    pub(super) client: reqwest::Client,
    pub(super) tokens: TokenSource,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination").field("name", &self.config.name).finish_non_exhaustive()
    }
}

impl Destination {
    pub fn new(config: DestinationConfig) -> Result<Destination, String> {
        config.check()?;
        super::install_tls();
        let tokens = TokenSource::new(&config.name, &config.auth, &config.env)?;
        let n = &config.name;
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(10)))
            .user_agent(concat!("mhg/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.tls.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("destinations[{n}].tls.ca_file: cannot read {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("destinations[{n}].tls.ca_file: not PEM certificates: {e}"))?;
            builder = builder.tls_certs_only(certs);
        }
        if let (Some(c), Some(k)) = (&config.tls.client_cert_file, &config.tls.client_key_file) {
            let mut pem =
                std::fs::read(c).map_err(|e| format!("destinations[{n}].tls.client_cert_file: cannot read {}: {e}", c.display()))?;
            pem.push(b'\n');
            pem.extend(std::fs::read(k).map_err(|e| format!("destinations[{n}].tls.client_key_file: cannot read {}: {e}", k.display()))?);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| format!("destinations[{n}].tls: not a PEM certificate and key: {e}"))?;
            builder = builder.identity(id);
        }
        let client = builder.build().map_err(|e| format!("destinations[{n}]: cannot build the HTTP client: {e}"))?;
        Ok(Destination { config, client, tokens })
    }

    /// Sends one claimed delivery and classifies the result.
    pub async fn deliver(&self, claim: &Claim, backoff: Backoff) -> Outcome {
        let outcome = match (self.config.kind, self.config.format) {
            (DestinationKind::Fhir, Format::Ips) => self.put_document(claim, backoff).await,
            (DestinationKind::Directory, Format::Ips) => match ips_document(&claim.bundle) {
                Ok((bytes, _)) => self.write_file(claim, bytes, backoff).await,
                Err(o) => o,
            },
            (DestinationKind::Fhir, _) if self.config.transactions => self.post_transaction(claim, backoff).await,
            (DestinationKind::Fhir, _) => self.put_each(claim, backoff).await,
            (DestinationKind::Directory, _) => self.write_file(claim, claim.bundle.clone(), backoff).await,
        };
        // A retryable failure past the attempt limit is given up on, keeping what came back.
        match outcome {
            Outcome::Retry { status, detail, .. } if self.config.max_attempts > 0 && claim.attempts >= self.config.max_attempts => {
                Outcome::Dead { status, detail: json!({"gaveUpAfter": claim.attempts, "last": detail}) }
            }
            o => o,
        }
    }

    async fn post_transaction(&self, claim: &Claim, backoff: Backoff) -> Outcome {
        let base = self.config.base_url.as_deref().unwrap_or_default().trim_end_matches('/');
        let mut req = self
            .client
            .post(base)
            .header("content-type", "application/fhir+json")
            .header("accept", "application/fhir+json")
            .body(claim.bundle.clone());
        let retry_at = |extra_ms: Option<i64>| now_ms() + extra_ms.unwrap_or_else(|| backoff.delay_ms(claim.attempts));
        match self.bearer(claim, backoff).await {
            Ok(Some(t)) => req = req.bearer_auth(t),
            Ok(None) => {}
            Err(o) => return o,
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry { status: None, at: retry_at(None), detail: json!({"error": transport_kind(&e)}) },
        };
        let status = resp.status().as_u16();
        let retry_after = retry_after_ms(resp.headers());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Outcome::Delivered { status: Some(status), detail: receipt(&body) };
        }
        if status == 401 {
            // The token may have been revoked or expired early: fetch a new one next time.
            self.tokens.invalidate().await;
        }
        classify_failure(status, retry_after, body, retry_at(None))
    }

    /// For destinations that take no transactions: each entry as its own conditional request,
    /// in Bundle order (the mapper puts referenced resources first), with `urn:uuid:` references
    /// rewritten to the ids the server gave. Any failure stops the attempt; a retry sends every
    /// entry again, which conditional updates make harmless.
    async fn put_each(&self, claim: &Claim, backoff: Backoff) -> Outcome {
        let base = self.config.base_url.as_deref().unwrap_or_default().trim_end_matches('/');
        let Ok(bundle) = serde_json::from_slice::<Value>(&claim.bundle) else {
            return Outcome::Dead { status: None, detail: json!({"error": "stored payload is not JSON"}) };
        };
        let token = match self.bearer(claim, backoff).await {
            Ok(t) => t,
            Err(o) => return o,
        };
        let mut ids: Vec<(String, String)> = Vec::new();
        let mut receipts = Vec::new();
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let mut text = entry["resource"].to_string();
            for (full_url, local) in &ids {
                text = text.replace(&format!("\"{full_url}\""), &format!("\"{local}\""));
            }
            let method = entry["request"]["method"].as_str().unwrap_or("PUT");
            let url = format!("{base}/{}", entry["request"]["url"].as_str().unwrap_or_default());
            let mut req = self
                .client
                .request(if method == "POST" { reqwest::Method::POST } else { reqwest::Method::PUT }, &url)
                .header("content-type", "application/fhir+json")
                .header("accept", "application/fhir+json")
                .body(text);
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    let detail = json!({"error": transport_kind(&e), "done": receipts.len()});
                    return Outcome::Retry { status: None, at: now_ms() + backoff.delay_ms(claim.attempts), detail };
                }
            };
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .or_else(|| resp.headers().get("content-location"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry_after = retry_after_ms(resp.headers());
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if !(200..300).contains(&status) {
                if status == 401 {
                    self.tokens.invalidate().await;
                }
                return classify_failure(status, retry_after, body, now_ms() + backoff.delay_ms(claim.attempts));
            }
            // The server's id: from the body, else from Location (…/Type/id/_history/v).
            let rtype = entry["resource"]["resourceType"].as_str().unwrap_or_default();
            let id = body["id"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| location.as_deref().and_then(|l| l.split('/').skip_while(|s| *s != rtype).nth(1).map(str::to_owned)));
            if let (Some(id), Some(full)) = (id, entry["fullUrl"].as_str()) {
                ids.push((full.to_owned(), format!("{rtype}/{id}")));
            }
            receipts.push(json!({"status": status, "location": location, "etag": body["meta"]["versionId"]}));
        }
        Outcome::Delivered { status: Some(200), detail: json!({"entries": receipts}) }
    }

    /// An IPS document, as a conditional update on its identifier at `[base]/Bundle`: created
    /// the first time, replaced by the same bytes after that.
    async fn put_document(&self, claim: &Claim, backoff: Backoff) -> Outcome {
        let (bytes, url) = match ips_document(&claim.bundle) {
            Ok(d) => d,
            Err(o) => return o,
        };
        let base = self.config.base_url.as_deref().unwrap_or_default().trim_end_matches('/');
        let mut req = self
            .client
            .put(format!("{base}/{url}"))
            .header("content-type", "application/fhir+json")
            .header("accept", "application/fhir+json")
            .body(bytes);
        match self.bearer(claim, backoff).await {
            Ok(Some(t)) => req = req.bearer_auth(t),
            Ok(None) => {}
            Err(o) => return o,
        }
        let retry_at = now_ms() + backoff.delay_ms(claim.attempts);
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry { status: None, at: retry_at, detail: json!({"error": transport_kind(&e)}) },
        };
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = retry_after_ms(resp.headers());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            let detail =
                json!({"entries": [{"status": status, "location": location, "etag": body["meta"]["versionId"], "id": body["id"]}]});
            return Outcome::Delivered { status: Some(status), detail };
        }
        if status == 401 {
            self.tokens.invalidate().await;
        }
        classify_failure(status, retry_after, body, retry_at)
    }

    /// The bearer token to send, if any; without one there is no delivery, and the attempt is
    /// retried (the authorisation server may answer later).
    async fn bearer(&self, claim: &Claim, backoff: Backoff) -> Result<Option<String>, Outcome> {
        self.tokens.token(&self.client).await.map_err(|e| Outcome::Retry {
            status: e.status,
            at: now_ms() + backoff.delay_ms(claim.attempts),
            detail: json!({"error": format!("token: {}", e.message)}),
        })
    }

    async fn write_file(&self, claim: &Claim, bytes: Vec<u8>, backoff: Backoff) -> Outcome {
        let dir = self.config.path.clone().unwrap_or_default();
        let id = &claim.identity;
        let name = crate::files::record_file_name(&id.source_system, &id.record_id, id.record_version);
        let res = tokio::task::spawn_blocking(move || crate::files::write_atomic(&dir, &name, &bytes).map(|_| name)).await;
        match res {
            Ok(Ok(name)) => Outcome::Delivered { status: None, detail: json!({"file": name}) },
            Ok(Err(e)) => Outcome::Retry {
                status: None,
                at: now_ms() + backoff.delay_ms(claim.attempts),
                detail: json!({"error": e.kind().to_string()}),
            },
            Err(_) => {
                Outcome::Retry { status: None, at: now_ms() + backoff.delay_ms(claim.attempts), detail: json!({"error": "interrupted"}) }
            }
        }
    }
}

/// What to keep of a transaction-response: per entry, the status, location (type/id/_history/v)
/// and etag; never the resources it may echo.
fn receipt(body: &Value) -> Value {
    let entries: Vec<Value> = body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let r = &e["response"];
            json!({"status": r["status"], "location": r["location"], "etag": r["etag"]})
        })
        .collect();
    json!({"entries": entries})
}

/// What kind of transport failure it was, for the stored outcome (no URL, no body).
pub(super) fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

/// `Retry-After` in seconds (an HTTP date is not honoured; the backoff applies then).
fn retry_after_ms(h: &reqwest::header::HeaderMap) -> Option<i64> {
    h.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok()).map(|s| s.clamp(0, 86_400) * 1000)
}

/// A non-2xx answer: where the error table says the destination may recover
/// ([`crate::error::destination_may_recover`]: 401, 408, 429, 5xx) another try (at
/// `Retry-After`, else at `backoff_at`); any other status is final, keeping the destination's
/// OperationOutcome.
fn classify_failure(status: u16, retry_after: Option<i64>, body: Value, backoff_at: i64) -> Outcome {
    if crate::error::destination_may_recover(status) {
        Outcome::Retry {
            status: Some(status),
            at: retry_after.map(|r| now_ms() + r).unwrap_or(backoff_at),
            detail: outcome_or_status(body, status),
        }
    } else {
        Outcome::Dead { status: Some(status), detail: outcome_or_status(body, status) }
    }
}

fn outcome_or_status(body: Value, status: u16) -> Value {
    if body["resourceType"] == "OperationOutcome" { body } else { json!({"status": status}) }
}
