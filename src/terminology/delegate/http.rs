//! The terminology port over HTTP: `POST {base}/CodeSystem/$validate-code` with a Parameters
//! body (`url`, `code`, `display`), `Accept: application/fhir+json`, and the credentials of
//! destinations ([`crate::relay::auth::TokenSource`]: bearer, OAuth2 client credentials, SMART
//! Backend Services). A 200 Parameters with a boolean `result` is a verdict; anything else
//! (transport error, timeout, another status or body) is [`Unavailable`], naming only the cause
//! and status.

use std::time::Duration;

use serde_json::{Value, json};

use super::{CodeQuery, ServerConfig, TerminologyPort, Unavailable, Verdict, VsQuery};
use crate::relay::auth::TokenSource;

pub struct HttpPort {
    base: String,
    client: reqwest::Client,
    tokens: TokenSource,
}

impl HttpPort {
    /// `at` names the server in configuration errors (`terminology.servers[0]`).
    pub fn new(at: &str, cfg: &ServerConfig) -> Result<HttpPort, String> {
        let base = cfg.url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("{at}.url: expected an http:// or https:// FHIR base, got '{}'", cfg.url));
        }
        if cfg.code_systems.is_empty() {
            return Err(format!("{at}.code_systems: name at least one code system URL (or \"*\")"));
        }
        if cfg.timeout_ms == 0 {
            return Err(format!("{at}.timeout_ms: must be above 0"));
        }
        crate::relay::install_tls();
        let tokens = TokenSource::named(at, &cfg.auth, &cfg.env)?;
        let t = Duration::from_millis(cfg.timeout_ms);
        // The timeout proper is the prefetch's (token request included); the client's is a
        // backstop a second later.
        let client = reqwest::Client::builder()
            .timeout(t + Duration::from_secs(1))
            .connect_timeout(t)
            .user_agent(concat!("mhg/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("{at}: cannot build the HTTP client: {e}"))?;
        Ok(HttpPort { base, client, tokens })
    }

    pub fn base(&self) -> &str {
        &self.base
    }
}

/// The verdict in a `$validate-code` answer, if it is one.
pub fn verdict_of(p: &Value) -> Option<Verdict> {
    if p["resourceType"] != "Parameters" {
        return None;
    }
    let params = p["parameter"].as_array()?;
    let find = |n: &str| params.iter().find(|x| x["name"] == n);
    let result = find("result")?["valueBoolean"].as_bool()?;
    let s = |n: &str| find(n).and_then(|x| x["valueString"].as_str()).map(str::to_owned);
    Some(Verdict { result, message: s("message"), display: s("display") })
}

#[async_trait::async_trait]
impl TerminologyPort for HttpPort {
    async fn validate_code(&self, q: &CodeQuery) -> Result<Verdict, Unavailable> {
        let mut params = vec![json!({"name": "url", "valueUri": q.system}), json!({"name": "code", "valueCode": q.code})];
        if let Some(d) = &q.display {
            params.push(json!({"name": "display", "valueString": d}));
        }
        self.ask("CodeSystem", params).await
    }

    async fn validate_vs_code(&self, q: &VsQuery) -> Result<Verdict, Unavailable> {
        let mut params = vec![json!({"name": "url", "valueUri": q.value_set}), json!({"name": "code", "valueCode": q.code})];
        if let Some(s) = &q.system {
            params.push(json!({"name": "system", "valueUri": s}));
        }
        self.ask("ValueSet", params).await
    }
}

impl HttpPort {
    /// `POST {base}/{resource}/$validate-code` with these parameters.
    async fn ask(&self, resource: &str, params: Vec<Value>) -> Result<Verdict, Unavailable> {
        let body = json!({"resourceType": "Parameters", "parameter": params});
        let token = self.tokens.token(&self.client).await.map_err(|e| Unavailable(e.message))?;
        let mut req = self
            .client
            .post(format!("{}/{resource}/$validate-code", self.base))
            .header("content-type", "application/fhir+json")
            .header("accept", "application/fhir+json")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| Unavailable(if e.is_timeout() { "timeout".into() } else { "unreachable".into() }))?;
        let status = resp.status().as_u16();
        if status == 401 {
            self.tokens.invalidate().await;
        }
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        match verdict_of(&v) {
            Some(verdict) if status == 200 => Ok(verdict),
            _ => Err(Unavailable(format!("answered HTTP {status} without a $validate-code result"))),
        }
    }
}
