//! Single requests through a destination's own client and credentials (its TLS, its bearer,
//! OAuth2 or SMART token), for the conformance kit: reading a CapabilityStatement, searching by
//! identifier, reading back, deleting, and calling a gateway's API. Deliveries still go through
//! [`super::deliver`]; this only lets the kit ask what a delivery left behind, the way the relay
//! would reach the server.

use std::time::Instant;

use serde_json::Value;

use super::deliver::{Destination, transport_kind};

/// What the target answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// Response headers asked for by the caller, by lower-case name.
    pub headers: Vec<(String, String)>,
    /// Time to the end of the body.
    pub millis: f64,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The request could not be made: no answer at all (never an HTTP status).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer from the target ({0})")]
    Transport(&'static str),
    #[error("no token for the target: {0}")]
    Token(String),
}

impl Destination {
    /// Sends `method` to `path` (relative to the destination's base URL, or absolute), with the
    /// destination's credentials, extra `headers` and an optional `(content type, body)`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Answer, ProbeError> {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!(
                "{}/{}",
                self.config.base_url.as_deref().unwrap_or_default().trim_end_matches('/'),
                path.trim_start_matches('/')
            )
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut req = self.client.request(method, &url).header("accept", "application/fhir+json, application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        match self.tokens.token(&self.client).await {
            Ok(Some(t)) => req = req.bearer_auth(t),
            Ok(None) => {}
            Err(e) => return Err(ProbeError::Token(e.message)),
        }
        let start = Instant::now();
        let resp = req.send().await.map_err(|e| ProbeError::Transport(transport_kind(&e)))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))).collect();
        if status == 401 {
            self.tokens.invalidate().await;
        }
        let bytes = resp.bytes().await.map_err(|e| ProbeError::Transport(transport_kind(&e)))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer { status, body, headers, millis: start.elapsed().as_secs_f64() * 1000.0 })
    }
}
