//! The operator console at `/console`: server-rendered HTML pages over the store and the
//! gateway's own figures, for the people who run a gateway.
//!
//! - `GET /console/sign-in`, `POST /console/sign-in` (`key` or `token`), `POST /console/sign-out`
//!   ([`session`]).
//! - `GET /console`: the overview ([`overview`]); `GET /console/submissions` and
//!   `GET /console/submissions/{id}` ([`submissions`]); `GET /console/dead-letters`,
//!   `POST /console/dead-letters/replay`, `GET /console/callers` ([`dead`]).
//! - `GET /console/assets/{console.css,console.js}`: the stylesheet and the one script, built
//!   into the binary (no CDN, no fonts, no build step).
//!
//! Every page reads without JavaScript; the script only refreshes the overview's figures. Every
//! answer carries a strict `Content-Security-Policy` (nothing inline, nothing from elsewhere, no
//! framing), `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin` (with `no-referrer` browsers post `Origin: null`) and, for pages,
//! `Cache-Control: no-store`. Pages show ids, states, codes, counts and OperationOutcomes: never
//! a record's content (a Bundle is shown by its shape only), and no URL carries more than ids
//! and filter values.
//!
//! The console does not pass the API's guard (it has no credentials headers): each route names
//! the scope it needs beside its path ([`session::needs`]), as the API's routes do. It knows
//! axum and HTML; what it shows comes from `crate::queue` (`browse`) and `crate::ops`.

// A refusal here is a whole page (`Response`), returned once per request: its size does not
// matter, boxing it would only add noise.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};

use crate::auth::Scope;
use crate::http::AppState;

mod dead;
pub mod html;
mod overview;
pub mod session;
mod submissions;

use session::{Session, needs};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The Content-Security-Policy of every console answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router(state: &AppState) -> Router<AppState> {
    let read = || needs(state, Scope::SubmissionsRead);
    let admin = || needs(state, Scope::Admin);
    Router::new()
        .route("/console", get(overview::page).route_layer(read()))
        .route("/console/sign-in", get(session::sign_in_form).post(session::sign_in))
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/submissions", get(submissions::list).route_layer(read()))
        .route("/console/submissions/{id}", get(submissions::one).route_layer(read()))
        .route("/console/dead-letters", get(dead::list).route_layer(admin()))
        .route("/console/dead-letters/replay", post(dead::replay).route_layer(admin()))
        .route("/console/callers", get(dead::callers).route_layer(admin()))
        .route("/console/assets/console.css", get(|| async { asset(CSS, "text/css; charset=utf-8") }))
        .route("/console/assets/console.js", get(|| async { asset(JS, "text/javascript; charset=utf-8") }))
        .method_not_allowed_fallback(|| async {
            session::refusal(StatusCode::METHOD_NOT_ALLOWED, "Not allowed", "This page does not take this method.", None)
        })
        .layer(axum::middleware::from_fn(headers))
}

fn asset(text: &'static str, kind: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// The security headers of every console answer.
async fn headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// The store, or a page saying the console needs one.
fn store<'a>(st: &'a AppState, s: &Session) -> Result<&'a crate::queue::Store, Response> {
    st.relay.as_ref().map(|r| &r.store).ok_or_else(|| {
        session::refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "No store",
            "This gateway runs without a store ([store] url).",
            Some(s),
        )
    })
}

/// The page for a store that did not answer.
fn unavailable(s: &Session, e: &crate::error::GatewayError) -> Response {
    tracing::error!(stage = "console", error = %e, "store failed");
    session::refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        "Store unavailable",
        "The store did not answer; retry shortly.",
        Some(s),
    )
}
