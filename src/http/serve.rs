//! Serving connections: one accept loop for plain HTTP (HTTP/1.1) and HTTPS (HTTP/1.1 and
//! HTTP/2 by ALPN, see [`super::tls`]), driving hyper itself, with the limits that keep clients
//! from starving the gateway (`[limits]`):
//!
//! - `max_connections`: connections open at once. Above it a new connection is closed at once
//!   (plain HTTP: after a best-effort 503 OperationOutcome), so that the listen backlog never
//!   fills with stale connections and the connections already open (a prober's keep-alive one
//!   among them) keep being served. The cap in force stays below the process's open-file limit
//!   ([`connection_cap`]), so that `accept` itself, the store and the relay never run out of
//!   descriptors.
//! - `header_read_timeout_secs`: how long a client may take to send a request's headers, counted
//!   from the connection's start for its first request and from the first byte of each later
//!   one (HTTP/1). Slow-header ("slowloris") and silent connections are closed after it.
//! - `idle_timeout_secs`: how long a connection may stay open between requests with nothing
//!   read or written (HTTP/1 keep-alive; HTTP/2 with no stream open).
//!
//! hyper's own `header_read_timeout` is not used: its clock also runs while a keep-alive
//! connection waits for its next request, so it would close idle connections after the header
//! timeout and leave no room for a longer idle timeout. A small watchdog per connection reads
//! what the connection's I/O and its requests record instead ([`Activity`]).
//!
//! A request in progress is the guard's business (`limits.request_timeout_secs`, 408), not this
//! module's. Each closing is counted (`mhg_connections_closed_total{reason}`) and logged at most
//! once per [`LOG_EVERY`] per reason, with the count since the last line; no client address is
//! logged.
//!
//! Only this module (and `tls.rs`) names hyper's server types; `cli/serve.rs` calls [`serve`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use super::guard::{OverTls, PeerCertificate};

/// The connection limits of `[limits]`. A zero duration means no such timeout.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Longest a client may take to send a request's headers (the TLS handshake too).
    pub header_read_timeout: Duration,
    /// Longest a connection may stay open with no request in progress and no byte moving.
    pub idle_timeout: Duration,
    /// Most connections open at once (already lowered by [`connection_cap`]).
    pub max_connections: usize,
}

impl ConnLimits {
    /// From `[limits]`: seconds (0: none) and the configured cap, lowered to fit the process's
    /// open-file limit ([`connection_cap`]).
    pub fn new(header_read_timeout_secs: u64, idle_timeout_secs: u64, max_connections: usize) -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_secs(header_read_timeout_secs),
            idle_timeout: Duration::from_secs(idle_timeout_secs),
            max_connections: connection_cap(max_connections, open_file_limit()),
        }
    }
}

/// The defaults of `[limits]`: 10 s for headers, 60 s idle, 4096 connections.
impl Default for ConnLimits {
    fn default() -> ConnLimits {
        ConnLimits::new(10, 60, 4096)
    }
}

/// At most one log line per reason in this interval: a flood must not become a flood of logs.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// The soft open-file limit of this process (`RLIMIT_NOFILE`), read from `/proc/self/limits`;
/// `None` where that cannot be read or says "unlimited".
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// The connection cap in force: `configured` (0: no cap of its own), lowered so that
/// connections leave descriptors free below `open_files` for the listener, the store, the
/// relay's outbound connections and the files it writes: a quarter of the limit, between 32
/// and 256.
pub fn connection_cap(configured: usize, open_files: Option<u64>) -> usize {
    let configured = if configured == 0 { usize::MAX } else { configured };
    match open_files {
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let reserve = (n / 4).clamp(32, 256);
            configured.min(n.saturating_sub(reserve)).max(1)
        }
        None => configured.min(Semaphore::MAX_PERMITS),
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown` completes, then
/// lets open connections finish (up to 30 s).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if acceptor.is_none() {
        builder = builder.http1_only();
    }
    // The watchdog below times headers; hyper's own timer would also close idle connections.
    builder.http1().header_read_timeout(None);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let tcp = match conn {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        tracing::warn!(stage = "http", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    if acceptor.is_none() {
                        // Best effort and never waiting: the request itself is not read.
                        let _ = tcp.try_write(over_capacity());
                    }
                    drop(tcp);
                    Reason::ConnectionLimit.count(limits.max_connections as u64);
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let app = app.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _slot = slot;
                    let Some(acceptor) = acceptor else {
                        drive(tcp, true, None, false, app, &builder, watcher, limits).await;
                        return;
                    };
                    let handshake = if limits.header_read_timeout.is_zero() { Duration::from_secs(10) } else { limits.header_read_timeout };
                    let tls = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        // A failed handshake (no or bad client certificate, not TLS) is the
                        // client's problem; nothing about it is worth more than a debug line.
                        Ok(Err(e)) => {
                            tracing::debug!(stage = "tls", error = %e, "handshake failed");
                            return;
                        }
                        Err(_) => {
                            Reason::HeaderTimeout.count(handshake.as_secs());
                            return;
                        }
                    };
                    let session = tls.get_ref().1;
                    let h1 = session.alpn_protocol() != Some(b"h2".as_slice());
                    let peer = session
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| PeerCertificate(crate::auth::sha256_hex(c.as_ref()).into()));
                    drive(tls, h1, peer, true, app, &builder, watcher, limits).await;
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
    Ok(())
}

/// The answer to a connection above the cap (plain HTTP): a 503 OperationOutcome.
fn over_capacity() -> &'static [u8] {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| {
        let body = serde_json::json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "transient",
            "details": {"text": "too many connections open on this gateway; retry shortly"}}]})
        .to_string();
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/fhir+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

/// Serves one connection until it ends, the watchdog closes it, or shutdown asks it to finish.
#[allow(clippy::too_many_arguments)]
async fn drive<I>(
    io: I,
    h1: bool,
    peer: Option<PeerCertificate>,
    over_tls: bool,
    app: Router,
    builder: &hyper_util::server::conn::auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    limits: ConnLimits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new(h1));
    let busy = activity.clone();
    let svc = hyper::service::service_fn(move |mut req: axum::http::Request<Incoming>| {
        if let Some(p) = &peer {
            req.extensions_mut().insert(p.clone());
        }
        if over_tls {
            req.extensions_mut().insert(OverTls);
        }
        let request = InFlight::start(busy.clone());
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await;
            drop(request);
            resp
        }
    });
    let conn = builder.serve_connection(TokioIo::new(Watched { io, activity: activity.clone() }), svc);
    let conn = watcher.watch(conn.into_owned());
    tokio::select! {
        _ = conn => {}
        reason = watchdog(&activity, limits) => {
            // Dropping the connection closes it.
            let limit = match reason {
                Reason::HeaderTimeout => limits.header_read_timeout.as_secs(),
                _ => limits.idle_timeout.as_secs(),
            };
            reason.count(limit);
        }
    }
}

/// Why a connection was closed by this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    ConnectionLimit = 0,
    HeaderTimeout = 1,
    IdleTimeout = 2,
}

/// Per reason: closings since the last log line, and when that line was written (ms since
/// [`uptime_ms`]'s start; `u64::MAX`: never).
static TALLY: [(AtomicU64, AtomicU64); 3] = [
    (AtomicU64::new(0), AtomicU64::new(u64::MAX)),
    (AtomicU64::new(0), AtomicU64::new(u64::MAX)),
    (AtomicU64::new(0), AtomicU64::new(u64::MAX)),
];

fn uptime_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Reason {
    fn label(self) -> &'static str {
        match self {
            Reason::ConnectionLimit => "connection-limit",
            Reason::HeaderTimeout => "header-timeout",
            Reason::IdleTimeout => "idle-timeout",
        }
    }

    /// Counts one closing; logs the first, then at most one line per [`LOG_EVERY`].
    fn count(self, limit: u64) {
        crate::ops::inc("mhg_connections_closed_total", &[("reason", self.label())], 1);
        let (count, last) = &TALLY[self as usize];
        count.fetch_add(1, Ordering::Relaxed);
        let now = uptime_ms();
        let before = last.load(Ordering::Relaxed);
        if before != u64::MAX && now.saturating_sub(before) < LOG_EVERY.as_millis() as u64 {
            return;
        }
        if last.compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        let closed = count.swap(0, Ordering::Relaxed);
        let reason = self.label();
        match self {
            Reason::ConnectionLimit => tracing::warn!(
                stage = "http",
                reason,
                closed,
                max_connections = limit,
                "connection limit reached: new connections closed (limits.max_connections)"
            ),
            Reason::HeaderTimeout => tracing::warn!(
                stage = "http",
                reason,
                closed,
                timeout_secs = limit,
                "clients too slow to send request headers: connections closed (limits.header_read_timeout_secs)"
            ),
            Reason::IdleTimeout => tracing::debug!(
                stage = "http",
                reason,
                closed,
                timeout_secs = limit,
                "idle connections closed (limits.idle_timeout_secs)"
            ),
        }
    }
}

/// What a connection has been doing, as its I/O and its requests record it, read by its
/// watchdog. Times are milliseconds since the connection started.
struct Activity {
    started: Instant,
    /// The last byte read or written, or the end of the last request.
    last_io: AtomicU64,
    /// When the request head now being read began ([`NO_HEAD`]: none is being read).
    head_since: AtomicU64,
    /// Requests handed to the router and not answered yet.
    in_flight: AtomicUsize,
    /// HTTP/1: bytes arriving between requests begin a request head. HTTP/2 multiplexes, and
    /// its frames (PING, SETTINGS) flow between requests: only its idle time counts.
    h1: bool,
}

const NO_HEAD: u64 = u64::MAX;

impl Activity {
    fn new(h1: bool) -> Activity {
        Activity {
            started: Instant::now(),
            last_io: AtomicU64::new(0),
            // A new HTTP/1 connection owes its first request's head from the start.
            head_since: AtomicU64::new(if h1 { 0 } else { NO_HEAD }),
            in_flight: AtomicUsize::new(0),
            h1,
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        if self.h1 && self.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self.head_since.compare_exchange(NO_HEAD, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn wrote(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// When the connection is due to be closed, and why; `None`: not while a request is in
    /// progress, or no timeout applies.
    fn deadline(&self, limits: &ConnLimits) -> Option<(u64, Reason)> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let head = self.head_since.load(Ordering::Relaxed);
        if head != NO_HEAD && !limits.header_read_timeout.is_zero() {
            return Some((head + limits.header_read_timeout.as_millis() as u64, Reason::HeaderTimeout));
        }
        if limits.idle_timeout.is_zero() {
            return None;
        }
        Some((self.last_io.load(Ordering::Relaxed) + limits.idle_timeout.as_millis() as u64, Reason::IdleTimeout))
    }
}

/// One request in progress on a connection, from the router's call to its answer (the answer's
/// body then streams as I/O activity).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(a: Arc<Activity>) -> InFlight {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        a.head_since.store(NO_HEAD, Ordering::Relaxed);
        InFlight(a)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.wrote();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Completes when the connection is due to be closed, with the reason.
async fn watchdog(a: &Activity, limits: ConnLimits) -> Reason {
    // A request in progress (or no timeout at all): look again later.
    let recheck =
        [limits.idle_timeout, limits.header_read_timeout].into_iter().filter(|d| !d.is_zero()).min().unwrap_or(Duration::from_secs(3600));
    loop {
        match a.deadline(&limits) {
            Some((due, reason)) => {
                let now = a.now();
                if now >= due {
                    return reason;
                }
                tokio::time::sleep(Duration::from_millis(due - now)).await;
            }
            None => tokio::time::sleep(recheck).await,
        }
    }
}

/// A connection's byte stream, recording its activity.
struct Watched<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.wrote();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
