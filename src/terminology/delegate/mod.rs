//! Terminology delegation: codes of code systems the gateway has no content for, asked of a
//! configured FHIR terminology server (`[terminology] servers`, or `mhg validate --tx URL`).
//!
//! The profile validator stays synchronous and free of I/O: before a validation, a **prefetch**
//! pass ([`Delegation::prefetch`]) finds every Coding-shaped object (`system` + `code`) whose
//! system is routed to a server and not loaded here, asks the servers for all of them at once
//! (concurrently, each request bounded by its server's timeout), and hands the validator the
//! verdicts ([`TxAnswers`]); the walk then reports them where it meets the Coding. Why a
//! prefetch rather than blocking calls from inside the walk: the walk keeps its "no I/O"
//! invariant, the codes of one document cost one round of requests rather than one timeout
//! each when a server is down, and nothing blocks inside an async runtime (`$validate` runs the
//! prefetch on the request's task, the walk in `spawn_blocking`).
//!
//! The servers are reached through a port ([`TerminologyPort`]); [`http::HttpPort`] is the
//! real one (`CodeSystem/$validate-code`, and `ValueSet/$validate-code` for bindings to value
//! sets that cannot be expanded here, with a Parameters body, as the FHIR terminology
//! service defines it; the credentials of destinations, [`crate::relay::auth`]). Verdicts are
//! cached on disk ([`cache::DiskCache`], `[terminology] cache_dir`, expiring after
//! `cache_ttl_secs`), keyed by server, system, code and display, so they survive a restart.
//! A server that cannot be reached, is too slow or answers something other than a verdict
//! gives an "unavailable" answer, never cached, which the validator reports as a warning
//! naming the server.
//!
//! Nothing here logs an instance value; the reasons carry the server's URL and HTTP status
//! only.

pub mod cache;
pub mod http;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::validate::profile::Validator;

/// `[terminology]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TxConfig {
    /// Terminology servers, asked in order: the first whose `code_systems` names a system
    /// answers for it.
    pub servers: Vec<ServerConfig>,
    /// Where verdicts are kept (one small JSON file each); relative to the working directory.
    pub cache_dir: PathBuf,
    /// How long a cached verdict is used, seconds (0: the cache is never read).
    pub cache_ttl_secs: u64,
}

impl Default for TxConfig {
    fn default() -> Self {
        TxConfig { servers: Vec::new(), cache_dir: PathBuf::from("data/terminology-cache"), cache_ttl_secs: 7 * 86_400 }
    }
}

/// One `[[terminology.servers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The FHIR base of the terminology server (`https://tx.example/r4`).
    pub url: String,
    /// Code system URLs routed to it; `"*"` routes every system not loaded here.
    pub code_systems: Vec<String>,
    /// Value set URLs whose required and extensible bindings it checks
    /// (`ValueSet/$validate-code`) when they cannot be expanded here; `"*"`: every such one.
    #[serde(default)]
    pub value_sets: Vec<String>,
    /// Longest one request may take, milliseconds (token request included).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Credentials, as for destinations (`{ type = "bearer", token_file = ... }`, `oauth2`, `smart`).
    #[serde(default)]
    pub auth: crate::relay::AuthConfig,
    #[serde(skip)]
    pub env: crate::environment::Env,
}

fn default_timeout_ms() -> u64 {
    5000
}

impl ServerConfig {
    /// A server for every system not loaded here (`mhg validate --tx URL`).
    pub fn catch_all(url: &str) -> ServerConfig {
        ServerConfig {
            url: url.to_owned(),
            code_systems: vec!["*".into()],
            value_sets: vec!["*".into()],
            timeout_ms: default_timeout_ms(),
            auth: Default::default(),
            env: Default::default(),
        }
    }
}

/// A question for a server: is `code` (with `display`, when given) valid in `system`?
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeQuery {
    pub system: String,
    pub code: String,
    pub display: Option<String>,
}

/// A question about a binding: is `system`/`code` in the value set `value_set`?
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VsQuery {
    pub value_set: String,
    pub system: Option<String>,
    pub code: String,
}

impl VsQuery {
    /// The cache's key for it (a [`CodeQuery`] in a namespace of its own).
    fn cache_key(&self) -> CodeQuery {
        CodeQuery {
            system: format!("ValueSet {} {}", self.value_set, self.system.as_deref().unwrap_or("")),
            code: self.code.clone(),
            display: None,
        }
    }
}

/// A server's verdict (`$validate-code`'s `result`, `message` and `display`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub result: bool,
    pub message: Option<String>,
    /// The display the server holds for the code.
    pub display: Option<String>,
}

/// Why a server gave no verdict (transport, timeout, HTTP status): no instance data in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

/// A terminology server, as the validator's delegation sees one.
#[async_trait::async_trait]
pub trait TerminologyPort: Send + Sync {
    /// `CodeSystem/$validate-code` for one code.
    async fn validate_code(&self, q: &CodeQuery) -> Result<Verdict, Unavailable>;

    /// `ValueSet/$validate-code` for one code.
    async fn validate_vs_code(&self, q: &VsQuery) -> Result<Verdict, Unavailable>;
}

/// What the prefetch found for one code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Checked { server: String, verdict: Verdict },
    Unavailable { server: String, reason: String },
}

/// The answers for one validation, by (system, code, display).
#[derive(Debug, Default, Clone)]
pub struct TxAnswers {
    map: HashMap<CodeQuery, Answer>,
    value_sets: HashMap<VsQuery, Answer>,
}

impl TxAnswers {
    pub fn get(&self, system: &str, code: &str, display: Option<&str>) -> Option<&Answer> {
        self.map.get(&CodeQuery { system: system.to_owned(), code: code.to_owned(), display: display.map(str::to_owned) })
    }

    /// The verdict on a code in a value set (bindings the validator cannot expand).
    pub fn get_vs(&self, value_set: &str, system: Option<&str>, code: &str) -> Option<&Answer> {
        self.value_sets.get(&VsQuery { value_set: value_set.to_owned(), system: system.map(str::to_owned), code: code.to_owned() })
    }

    pub fn len(&self) -> usize {
        self.map.len() + self.value_sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty() && self.value_sets.is_empty()
    }
}

struct Server {
    url: String,
    systems: Vec<String>,
    value_sets: Vec<String>,
    timeout: Duration,
    port: Arc<dyn TerminologyPort>,
}

/// The configured servers and the cache.
pub struct Delegation {
    servers: Vec<Server>,
    cache: cache::DiskCache,
}

impl std::fmt::Debug for Delegation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegation").field("servers", &self.servers.iter().map(|s| &s.url).collect::<Vec<_>>()).finish()
    }
}

/// Most requests in flight at once for one prefetch.
const CONCURRENCY: usize = 8;

impl Delegation {
    /// The delegation `cfg` describes (`None` when it names no server).
    pub fn from_config(cfg: &TxConfig) -> Result<Option<Delegation>, String> {
        if cfg.servers.is_empty() {
            return Ok(None);
        }
        let mut servers = Vec::new();
        for (i, s) in cfg.servers.iter().enumerate() {
            let port = http::HttpPort::new(&format!("terminology.servers[{i}]"), s)?;
            servers.push(Server {
                url: port.base().to_owned(),
                systems: s.code_systems.clone(),
                value_sets: s.value_sets.clone(),
                timeout: Duration::from_millis(s.timeout_ms),
                port: Arc::new(port),
            });
        }
        Ok(Some(Delegation {
            servers,
            cache: cache::DiskCache::new(cfg.cache_dir.clone(), cfg.cache_ttl_secs),
        }))
    }

    /// A delegation of the code systems `systems` to one server through any port (tests, other
    /// transports); no value sets.
    pub fn with_port(url: &str, systems: Vec<String>, timeout: Duration, port: Arc<dyn TerminologyPort>, cache: cache::DiskCache) -> Self {
        Delegation { servers: vec![Server { url: url.to_owned(), value_sets: Vec::new(), systems, timeout, port }], cache }
    }

    /// Which server answers for `system`, if any: one naming it, else one with `"*"` when the
    /// validator has no content for it (UCUM never: its grammar is checked offline).
    fn route(&self, v: &Validator, system: &str) -> Option<usize> {
        if system == crate::validate::profile::ucum::SYSTEM || !system.contains(':') {
            return None;
        }
        if let Some(i) = self.servers.iter().position(|s| s.systems.iter().any(|x| x == system)) {
            return Some(i);
        }
        let wild = self.servers.iter().position(|s| s.systems.iter().any(|x| x == "*"))?;
        (v.code_system(system).is_none() && !v.is_value_set(system) && !v.is_supplement(system)).then_some(wild)
    }

    /// Which server checks bindings to `value_set` (one the validator cannot expand), if any.
    fn route_vs(&self, value_set: &str) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| s.value_sets.iter().any(|x| x == value_set))
            .or_else(|| self.servers.iter().position(|s| s.value_sets.iter().any(|x| x == "*")))
    }

    /// The verdicts for every routed Coding in `roots`, from the cache or the servers; with
    /// `profiles` (validated against as well), every routed binding the validator cannot
    /// expand (found by a first walk that reports nothing).
    pub async fn prefetch(&self, v: &Validator, roots: &[&Value], profiles: &[&str]) -> TxAnswers {
        self.ask(self.plan(v, roots, profiles)).await
    }

    /// The first half of [`Self::prefetch`], synchronous (CPU only, and the cache's reads: run
    /// it off the async workers when value sets are routed, as it walks the resources): what
    /// the cache answers, and what is left to ask.
    pub fn plan(&self, v: &Validator, roots: &[&Value], profiles: &[&str]) -> Plan {
        let mut wanted: Vec<(usize, CodeQuery)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for root in roots {
            collect(root, 0, &mut |system, code, display| {
                // A system loaded here is checked locally.
                if v.code_system(system).is_some() {
                    return;
                }
                let Some(i) = self.route(v, system) else { return };
                let q = CodeQuery { system: system.to_owned(), code: code.to_owned(), display: display.map(str::to_owned) };
                if seen.insert(q.clone()) {
                    wanted.push((i, q));
                }
            });
        }
        let mut answers = TxAnswers::default();
        let mut ask_vs = Vec::new();
        if self.servers.iter().any(|s| !s.value_sets.is_empty()) {
            let mut seen = std::collections::HashSet::new();
            for root in roots {
                for q in v.tx_wanted(root, profiles) {
                    let Some(i) = self.route_vs(&q.value_set) else { continue };
                    if !seen.insert(q.clone()) {
                        continue;
                    }
                    let server = &self.servers[i];
                    match self.cache.get(&server.url, &q.cache_key()) {
                        Some(verdict) => {
                            answers.value_sets.insert(q, Answer::Checked { server: server.url.clone(), verdict });
                        }
                        None => ask_vs.push((i, Ask::Vs(q))),
                    }
                }
            }
        }
        let mut ask = Vec::new();
        for (i, q) in wanted {
            let server = &self.servers[i];
            match self.cache.get(&server.url, &q) {
                Some(verdict) => {
                    answers.map.insert(q, Answer::Checked { server: server.url.clone(), verdict });
                }
                None => ask.push((i, Ask::Cs(q))),
            }
        }
        ask.extend(ask_vs);
        Plan { answers, ask }
    }

    /// The second half of [`Self::prefetch`]: asks the servers what the plan left open.
    pub async fn ask(&self, plan: Plan) -> TxAnswers {
        let Plan { mut answers, ask } = plan;
        let down: Vec<AtomicBool> = self.servers.iter().map(|_| AtomicBool::new(false)).collect();
        for chunk in ask.chunks(CONCURRENCY) {
            let calls = chunk.iter().map(|(i, q)| {
                let server = &self.servers[*i];
                let down = &down[*i];
                async move {
                    if down.load(Ordering::Relaxed) {
                        return Err(Unavailable("not asked: it failed earlier in this validation".into()));
                    }
                    let call = async {
                        match q {
                            Ask::Cs(q) => server.port.validate_code(q).await,
                            Ask::Vs(q) => server.port.validate_vs_code(q).await,
                        }
                    };
                    let r = match tokio::time::timeout(server.timeout, call).await {
                        Ok(r) => r,
                        Err(_) => Err(Unavailable(format!("no answer within {} ms", server.timeout.as_millis()))),
                    };
                    if r.is_err() {
                        down.store(true, Ordering::Relaxed);
                    }
                    r
                }
            });
            let results = join_all(calls).await;
            for ((i, q), r) in chunk.iter().zip(results) {
                let url = self.servers[*i].url.clone();
                let key = match q {
                    Ask::Cs(q) => q.clone(),
                    Ask::Vs(q) => q.cache_key(),
                };
                let answer = match r {
                    Ok(verdict) => {
                        self.cache.put(&url, &key, &verdict);
                        Answer::Checked { server: url, verdict }
                    }
                    Err(Unavailable(reason)) => Answer::Unavailable { server: url, reason },
                };
                match q {
                    Ask::Cs(q) => answers.map.insert(q.clone(), answer),
                    Ask::Vs(q) => answers.value_sets.insert(q.clone(), answer),
                };
            }
        }
        answers
    }

    /// [`Self::prefetch`] for raw JSON (a document, or NDJSON lines); what does not parse is
    /// left to the validator to report.
    pub async fn prefetch_bytes(&self, v: &Validator, bytes: &[u8], ndjson: bool, profiles: &[&str]) -> TxAnswers {
        self.ask(self.plan_bytes(v, bytes, ndjson, profiles)).await
    }

    /// [`Self::plan`] for raw JSON.
    pub fn plan_bytes(&self, v: &Validator, bytes: &[u8], ndjson: bool, profiles: &[&str]) -> Plan {
        let bytes = crate::ingest::reader::strip_bom(bytes);
        let values: Vec<Value> = if ndjson {
            crate::validate::document::ndjson_lines(bytes).filter_map(|(_, l)| serde_json::from_slice(l).ok()).collect()
        } else {
            serde_json::from_slice(bytes).ok().into_iter().collect()
        };
        let refs: Vec<&Value> = values.iter().collect();
        self.plan(v, &refs, profiles)
    }
}

/// What a prefetch found in the cache, and what it must ask.
pub struct Plan {
    answers: TxAnswers,
    ask: Vec<(usize, Ask)>,
}

/// One request of a prefetch.
enum Ask {
    Cs(CodeQuery),
    Vs(VsQuery),
}

/// Runs the futures together on the current task (no spawning: the futures borrow).
async fn join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Every Coding-shaped object (string `system` and `code`, no `value`/`unit`: not a Quantity).
fn collect(v: &Value, depth: usize, f: &mut dyn FnMut(&str, &str, Option<&str>)) {
    if depth > 64 {
        return;
    }
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(s)), Some(Value::String(c))) = (m.get("system"), m.get("code")) {
                if !m.contains_key("value") && !m.contains_key("unit") {
                    f(s, c, m.get("display").and_then(Value::as_str));
                }
            }
            for x in m.values() {
                collect(x, depth + 1, f);
            }
        }
        Value::Array(a) => {
            for x in a {
                collect(x, depth + 1, f);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Knows `a`, is down when told so, counts the calls.
    struct Fake {
        calls: std::sync::atomic::AtomicUsize,
        down: AtomicBool,
    }

    #[async_trait::async_trait]
    impl TerminologyPort for Fake {
        async fn validate_code(&self, q: &CodeQuery) -> Result<Verdict, Unavailable> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if self.down.load(Ordering::Relaxed) {
                return Err(Unavailable("unreachable".into()));
            }
            Ok(Verdict { result: q.code == "a", message: None, display: None })
        }

        async fn validate_vs_code(&self, _: &VsQuery) -> Result<Verdict, Unavailable> {
            Err(Unavailable("no value sets here".into()))
        }
    }

    #[tokio::test]
    async fn verdicts_are_asked_once_and_unavailability_is_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let fake = Arc::new(Fake { calls: Default::default(), down: AtomicBool::new(true) });
        let d = Delegation::with_port(
            "http://tx",
            vec!["http://x".into()],
            Duration::from_secs(5),
            fake.clone(),
            cache::DiskCache::new(dir.path().into(), 60),
        );
        let v = Validator::new(Arc::new(crate::validate::packages::Packages::new()));
        let r = json!({"resourceType": "Observation", "code": {"coding": [{"system": "http://x", "code": "a"}, {"system": "http://x", "code": "b"},
            {"system": "http://elsewhere", "code": "c"}]}, "component": [{"code": {"coding": [{"system": "http://x", "code": "a"}]}}]});
        let down = d.prefetch(&v, &[&r], &[]).await;
        assert_eq!(down.len(), 2, "two distinct routed codes; the unrouted system is not asked");
        assert!(matches!(down.get("http://x", "a", None), Some(Answer::Unavailable { server, .. }) if server == "http://tx"));
        assert!(fake.calls.load(Ordering::Relaxed) <= 2);
        fake.down.store(false, Ordering::Relaxed);
        let up = d.prefetch(&v, &[&r], &[]).await;
        assert!(
            matches!(up.get("http://x", "a", None), Some(Answer::Checked { verdict, .. }) if verdict.result),
            "asked again"
        );
        assert!(matches!(up.get("http://x", "b", None), Some(Answer::Checked { verdict, .. }) if !verdict.result));
        let before = fake.calls.load(Ordering::Relaxed);
        let again = d.prefetch(&v, &[&r], &[]).await;
        assert_eq!(fake.calls.load(Ordering::Relaxed), before, "from the cache");
        assert_eq!(again.get("http://x", "b", None), up.get("http://x", "b", None));
    }

    #[test]
    fn codings_are_collected_and_quantities_are_not() {
        let r = json!({"resourceType": "Observation", "code": {"coding": [{"system": "http://x", "code": "a", "display": "A"}]},
            "valueQuantity": {"value": 1, "system": "http://y", "code": "mg"}, "component": [{"code": {"coding": [{"system": "http://z", "code": "b"}]}}]});
        let mut got = Vec::new();
        collect(&r, 0, &mut |s, c, d| got.push(format!("{s}|{c}|{d:?}")));
        assert_eq!(got, ["http://x|a|Some(\"A\")", "http://z|b|None"]);
    }
}
