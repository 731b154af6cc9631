//! Console sessions: signing in with an API key or a JWT (checked by the gateway's own
//! authenticator, `crate::auth`, exactly as the API checks them), the session cookie, the
//! per-route scope ([`needs`]) and the checks against cross-site requests ([`check_post`]).
//!
//! A session is a random 256-bit id in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over
//! HTTPS), scoped to `/console`, valid for [`TTL_MS`] (and never past a JWT's own `exp`). The
//! server keeps, per session, the caller (client name, scopes, restrictions), its expiry and its
//! anti-forgery token, in process memory under the SHA-256 of the id: no key or token is kept or
//! sent back, and a restart signs everyone out. A session belongs to the authenticator that made
//! it (another gateway in the same process does not accept it).
//!
//! It does not know pages: it hands handlers a [`Session`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::html;
use crate::auth::{Caller, Credentials, Scope};
use crate::http::AppState;
use crate::http::guard::OverTls;

/// How long a session lasts.
pub const TTL_MS: i64 = 8 * 3600 * 1000;
/// At most this many live sessions (the oldest expiring are dropped first).
const MAX_SESSIONS: usize = 10_000;
pub const COOKIE: &str = "mhg_console";
/// The largest form the console reads.
pub const MAX_FORM: usize = 256 * 1024;

/// A signed-in console user, as handlers see it (a request extension).
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    /// The anti-forgery token every form of this session carries.
    pub csrf: String,
    expires_ms: i64,
    /// Which authenticator signed it in (the address of the gateway's `Auth`).
    auth: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("caller", &self.caller).finish_non_exhaustive()
    }
}

impl Session {
    pub fn who(&self) -> html::Who<'_> {
        html::Who { name: &self.caller.name, admin: self.caller.has(Scope::Admin), csrf: &self.csrf }
    }
}

fn sessions() -> &'static Mutex<HashMap<String, Session>> {
    static S: OnceLock<Mutex<HashMap<String, Session>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashMap::new()))
}

fn auth_id(st: &AppState) -> usize {
    Arc::as_ptr(&st.guard.auth) as usize
}

fn random_hex() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE && !v.is_empty()).then(|| v.to_owned())
    })
}

/// The live session a request's cookie names, if any.
pub fn lookup(st: &AppState, headers: &HeaderMap) -> Option<Session> {
    let id = cookie_value(headers)?;
    let key = crate::auth::sha256_hex(id.as_bytes());
    let now = crate::calendar::now_ms();
    let mut map = sessions().lock().ok()?;
    match map.get(&key) {
        Some(s) if s.expires_ms > now && s.auth == auth_id(st) => Some(s.clone()),
        Some(s) if s.expires_ms <= now => {
            map.remove(&key);
            None
        }
        _ => None,
    }
}

/// Starts a session; the `Set-Cookie` value.
fn start(st: &AppState, caller: Caller, expires_ms: i64, tls: bool) -> String {
    let id = random_hex();
    let now = crate::calendar::now_ms();
    if let Ok(mut map) = sessions().lock() {
        map.retain(|_, s| s.expires_ms > now);
        while map.len() >= MAX_SESSIONS {
            let Some(k) = map.iter().min_by_key(|(_, s)| s.expires_ms).map(|(k, _)| k.clone()) else { break };
            map.remove(&k);
        }
        map.insert(
            crate::auth::sha256_hex(id.as_bytes()),
            Session { caller, csrf: random_hex(), expires_ms, auth: auth_id(st) },
        );
    }
    let secure = if tls { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        ((expires_ms - now) / 1000).max(1)
    )
}

/// A JWT's `exp` (unix seconds), read after the authenticator verified the token.
fn jwt_expiry_ms(token: &str) -> Option<i64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["exp"].as_i64().map(|s| s.saturating_mul(1000))
}

pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// An HTML answer with a status.
pub fn html_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r
}

/// A page saying why not, for a signed-in user (403, 400, 404) or not (`who` None).
pub fn refusal(status: StatusCode, title: &str, text: &str, who: Option<&Session>) -> Response {
    let body = format!("{}<p><a href=\"/console\">Back to the overview</a></p>", html::notice("error", text));
    html_response(status, html::page(title, who.map(|s| s.who()).as_ref(), "", &body))
}

/// Whether a state-changing request comes from this console's own pages: its `Origin` (or,
/// without one, `Sec-Fetch-Site`) must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if let Some(o) = headers.get(header::ORIGIN) {
        let o = o.to_str().unwrap_or("");
        let bare = o.strip_prefix("https://").or_else(|| o.strip_prefix("http://"));
        return !host.is_empty() && bare == Some(host);
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(s) => s == "same-origin" || s == "none",
        None => true,
    }
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a posted form (`application/x-www-form-urlencoded`) as name/value pairs, and checks it
/// came from this session's own page: same origin, and the session's anti-forgery token.
pub async fn check_post(session: &Session, req: Request) -> Result<Vec<(String, String)>, Response> {
    let form = read_form(req).await?;
    let token = form.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or("");
    if !equal(token, &session.csrf) {
        tracing::info!(stage = "console", client = %session.caller.name, "form refused: anti-forgery token missing or wrong");
        return Err(refusal(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form did not come from this console session (anti-forgery token missing or wrong). Reload the page and try again.",
            Some(session),
        ));
    }
    Ok(form)
}

async fn read_form(req: Request) -> Result<Vec<(String, String)>, Response> {
    if !same_origin(req.headers()) {
        tracing::info!(stage = "console", "form refused: cross-site request");
        return Err(refusal(StatusCode::FORBIDDEN, "Refused", "Cross-site form posts are refused.", None));
    }
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), MAX_FORM).await else {
        return Err(refusal(StatusCode::PAYLOAD_TOO_LARGE, "Refused", "The form is too large.", None));
    };
    Ok(form_urlencoded::parse(&bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
}

type NeedsFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;
type NeedsCheck = fn(State<(AppState, Scope)>, Request, Next) -> NeedsFuture;
type NeedsLayer = axum::middleware::FromFnLayer<NeedsCheck, (AppState, Scope), (State<(AppState, Scope)>, Request)>;

/// The layer a console route puts on itself to need a scope: without a session, the sign-in
/// page (303); with one lacking the scope, 403 naming it.
pub fn needs(st: &AppState, scope: Scope) -> NeedsLayer {
    let check: NeedsCheck = |State((st, scope)), req, next| Box::pin(check_session(st, scope, req, next));
    axum::middleware::from_fn_with_state((st.clone(), scope), check)
}

/// Without a session: a page is sent to sign in (303), a form post is refused (401).
fn no_session(req: &Request) -> Response {
    if req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD {
        return redirect("/console/sign-in");
    }
    let body = format!("{}<p><a href=\"/console/sign-in\">Sign in</a></p>", html::notice("error", "Sign in first."));
    html_response(StatusCode::UNAUTHORIZED, html::page("Sign in first", None, "", &body))
}

async fn check_session(st: AppState, scope: Scope, mut req: Request, next: Next) -> Response {
    let Some(s) = lookup(&st, req.headers()) else { return no_session(&req) };
    if !s.caller.has(scope) {
        tracing::info!(stage = "console", client = %s.caller.name, scope = scope.as_str(), "page refused: scope missing");
        let text = format!("This client lacks the scope '{}' this page needs.", scope.as_str());
        return refusal(StatusCode::FORBIDDEN, "Not allowed", &text, Some(&s));
    }
    req.extensions_mut().insert(s);
    next.run(req).await
}

fn sign_in_page(message: Option<&str>, auth_on: bool) -> String {
    let note = message.map(|m| html::notice("error", m)).unwrap_or_default();
    let off = if auth_on {
        String::new()
    } else {
        html::notice("warning", "Authentication is off on this gateway (--insecure-no-auth): any sign-in is accepted.")
    };
    let body = format!(
        "{note}{off}<p>Sign in with an API key of this gateway, or a JWT from one of its configured issuers. \
         Give one of the two.</p>\
         <form method=\"post\" action=\"/console/sign-in\" class=\"sign-in\">\
         <p><label for=\"key\">API key</label><input type=\"password\" id=\"key\" name=\"key\" autocomplete=\"off\" autofocus></p>\
         <p><label for=\"token\">or JWT</label><textarea id=\"token\" name=\"token\" rows=\"3\" autocomplete=\"off\"></textarea></p>\
         <p><button type=\"submit\">Sign in</button></p></form>"
    );
    html::page("Sign in", None, "", &body)
}

pub async fn sign_in_form(State(st): State<AppState>) -> Response {
    html_response(StatusCode::OK, sign_in_page(None, st.guard.auth.enabled()))
}

pub async fn sign_in(State(st): State<AppState>, req: Request) -> Response {
    let tls = req.extensions().get::<OverTls>().is_some();
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let field = |n: &str| form.iter().find(|(k, v)| k == n && !v.trim().is_empty()).map(|(_, v)| v.trim().to_owned());
    let (given, is_token) = match (field("key"), field("token")) {
        (Some(k), _) => (Some(k), false),
        (None, Some(t)) => (Some(t), true),
        (None, None) => (None, false),
    };
    let creds = given.as_deref().map(Credentials::Bearer).unwrap_or(Credentials::None);
    let auth_on = st.guard.auth.enabled();
    match st.guard.auth.authenticate(None, creds) {
        Ok(caller) => {
            let now = crate::calendar::now_ms();
            let mut expires = now + TTL_MS;
            if is_token || given.as_deref().is_some_and(crate::auth::jwt::looks_like_jwt) {
                if let Some(exp) = given.as_deref().and_then(jwt_expiry_ms) {
                    expires = expires.min(exp);
                }
            }
            tracing::info!(stage = "console", client = %caller.name, "signed in");
            let cookie = start(&st, caller, expires, tls);
            let mut r = redirect("/console");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(_) => {
            tracing::info!(stage = "console", "sign-in refused");
            let text = if given.is_none() { "Give an API key or a JWT." } else { "That API key or token was not accepted." };
            html_response(StatusCode::UNAUTHORIZED, sign_in_page(Some(text), auth_on))
        }
    }
}

pub async fn sign_out(State(st): State<AppState>, req: Request) -> Response {
    let Some(s) = lookup(&st, req.headers()) else { return no_session(&req) };
    let id = cookie_value(req.headers());
    if let Err(r) = check_post(&s, req).await {
        return r;
    }
    if let (Some(id), Ok(mut map)) = (id, sessions().lock()) {
        map.remove(&crate::auth::sha256_hex(id.as_bytes()));
    }
    let mut r = redirect("/console/sign-in");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("mhg_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}
