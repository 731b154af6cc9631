//! The gate in front of every guarded route: concurrency limit, authentication, per-client rate
//! limit and request timeout, in that order; then the scope the route declares where it is
//! defined ([`needs`], 403 naming the scope). Each refusal is its own 4xx / 429 OperationOutcome
//! (with `WWW-Authenticate` or `Retry-After` where HTTP expects one). Public routes
//! (`GET /health`, `GET /ready`, `GET /fhir/metadata`, `GET /openapi.json`) pass without
//! credentials or limits, so that probes keep answering under load. Connections themselves are
//! limited before any request is read (`super::serve`: header and idle timeouts, a cap).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::AppState;
use crate::auth::limits::RateLimiter;
use crate::auth::{Auth, Caller, Credentials, Refusal, Scope};
use crate::error::{Issue, RejectKind, Rejection};

/// The SHA-256 fingerprint of the client certificate of a TLS connection (set by the TLS
/// listener on each request).
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<str>);

/// Set by the listener on each request that came over TLS (the console marks its cookie
/// `Secure` then).
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

pub struct Guard {
    pub auth: Arc<Auth>,
    pub rate: RateLimiter,
    pub in_flight: Arc<Semaphore>,
    pub max_in_flight: usize,
    pub timeout: Duration,
}

impl Guard {
    /// No authentication, no limits: for tests and embedding.
    pub fn open() -> Guard {
        Guard::new(Arc::new(Auth::disabled()), 0, 0, 0, Duration::from_secs(0))
    }

    /// `max_in_flight` 0 and `timeout` 0 mean unlimited; `rate` 0 means no rate limit.
    pub fn new(auth: Arc<Auth>, rate: u32, burst: u32, max_in_flight: usize, timeout: Duration) -> Guard {
        let permits = if max_in_flight == 0 { Semaphore::MAX_PERMITS } else { max_in_flight };
        Guard { auth, rate: RateLimiter::new(rate, burst), in_flight: Arc::new(Semaphore::new(permits)), max_in_flight, timeout }
    }
}

fn refuse(kind: RejectKind, code: &'static str, text: impl Into<String>) -> Response {
    Rejection::one(kind, Issue::new(code, text)).into_response()
}

fn with_header(mut r: Response, name: header::HeaderName, value: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(name, v);
    }
    r
}

/// `X-API-Key: …`, `Authorization: Bearer …` or `Authorization: ApiKey …`.
fn credentials(req: &Request) -> Result<Credentials<'_>, ()> {
    if let Some(k) = req.headers().get("x-api-key") {
        return k.to_str().map(|s| Credentials::Bearer(s.trim())).map_err(|_| ());
    }
    let Some(a) = req.headers().get(header::AUTHORIZATION) else { return Ok(Credentials::None) };
    let a = a.to_str().map_err(|_| ())?;
    let (scheme, value) = a.split_once(' ').ok_or(())?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("apikey") {
        Ok(Credentials::Bearer(value.trim()))
    } else {
        Err(())
    }
}

pub async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let g = st.guard.clone();
    let Ok(_permit) = g.in_flight.clone().try_acquire_owned() else {
        tracing::warn!(stage = "http", limit = g.max_in_flight, "too many requests in progress: refused");
        return with_header(
            refuse(
                RejectKind::Overloaded,
                "throttled",
                format!("more than {} requests in progress on this gateway; retry shortly", g.max_in_flight),
            ),
            header::RETRY_AFTER,
            "1".into(),
        );
    };
    let cert = req.extensions().get::<PeerCertificate>().map(|p| p.0.clone());
    let caller = match credentials(&req) {
        Err(()) => Err(Refusal::Invalid("the Authorization header is not 'Bearer <token>' or 'ApiKey <key>'")),
        Ok(c) => g.auth.authenticate(cert.as_deref(), c),
    };
    let caller: Caller = match caller {
        Ok(c) => c,
        Err(r) => {
            let (code, text) = match r {
                Refusal::Missing => ("login", "authentication required: send an API key (X-API-Key) or a bearer token"),
                Refusal::Expired => ("expired", "the token has expired"),
                Refusal::Invalid(t) => ("security", t),
            };
            tracing::info!(stage = "auth", reason = code, "call refused: not authenticated");
            return with_header(
                refuse(RejectKind::Unauthenticated, code, text),
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"mhg\", ApiKey realm=\"mhg\"".into(),
            );
        }
    };
    if let Err(wait) = g.rate.check(&caller.name) {
        tracing::info!(stage = "auth", client = %caller.name, "call refused: rate limit");
        return with_header(
            refuse(
                RejectKind::RateLimited,
                "throttled",
                "this client's request rate limit is exceeded; retry after the time given",
            ),
            header::RETRY_AFTER,
            wait.to_string(),
        );
    }
    req.extensions_mut().insert(caller);
    if g.timeout.is_zero() {
        return next.run(req).await;
    }
    match tokio::time::timeout(g.timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(stage = "http", timeout_ms = g.timeout.as_millis() as u64, "request timed out");
            refuse(RejectKind::Timeout, "timeout", format!("the request took longer than {} ms", g.timeout.as_millis()))
        }
    }
}

/// The scope a route needs, as the route declares it (`needs` in the router).
#[derive(Clone, Copy, Debug)]
pub enum ScopeRule {
    Is(Scope),
    /// `GET /submissions`: `submissions:read`, but `admin` when the query asks for dead letters,
    /// decoded as the handler decodes it (`state=dead%2Dletter` is `state=dead-letter`).
    DeadLettersAreAdmin,
}

impl ScopeRule {
    fn scope(self, query: Option<&str>) -> Scope {
        match self {
            ScopeRule::Is(s) => s,
            ScopeRule::DeadLettersAreAdmin => {
                let dead = query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "state" && v == "dead-letter"));
                if dead { Scope::Admin } else { Scope::SubmissionsRead }
            }
        }
    }
}

type ScopeFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;
type ScopeCheck = fn(State<ScopeRule>, Request, Next) -> ScopeFuture;

/// The layer a route puts on itself to need a scope: after the guard authenticated the caller,
/// a caller without it gets 403 naming the scope.
pub fn needs(rule: ScopeRule) -> axum::middleware::FromFnLayer<ScopeCheck, ScopeRule, (State<ScopeRule>, Request)> {
    let check: ScopeCheck = |State(rule), req, next| Box::pin(check_scope(rule, req, next));
    axum::middleware::from_fn_with_state(rule, check)
}

async fn check_scope(rule: ScopeRule, req: Request, next: Next) -> Response {
    let scope = rule.scope(req.uri().query());
    // The guard in front put the caller there; without one, nothing passes (fail closed).
    let Some(caller) = req.extensions().get::<Caller>() else {
        return refuse(RejectKind::Forbidden, "forbidden", format!("this call needs the scope '{}'", scope.as_str()));
    };
    if !caller.has(scope) {
        tracing::info!(stage = "auth", client = %caller.name, scope = scope.as_str(), "call refused: scope missing");
        return refuse(RejectKind::Forbidden, "forbidden", format!("this client lacks the scope '{}'", scope.as_str()));
    }
    next.run(req).await
}
