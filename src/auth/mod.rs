//! Who may call: inbound authentication and authorisation.
//!
//! A caller is identified by one of:
//! - an **API key** (`X-API-Key: mhg_…`, or `Authorization: Bearer mhg_…`), of which only the
//!   SHA-256 is stored: in the keys file (`auth.keys_file`, managed with `mhg keys`) or in the
//!   configuration (`[[auth.clients]] key_sha256`). Keys are 256 random bits, so a fast hash is
//!   enough: nothing to brute-force, unlike a password;
//! - a **JWT bearer token** from a configured issuer (`[[auth.jwt]]`): signature checked against
//!   the issuer's JWKS file or shared secret, `iss`, `aud`, `exp` and `nbf` checked, scopes from
//!   `scope` / `scp`;
//! - a **client certificate** (mTLS, `server.tls`), by its SHA-256 fingerprint
//!   (`[[auth.clients]] cert_sha256`).
//!
//! Each caller has scopes ([`Scope`]) and, optionally, the destinations and programmes it may
//! submit for. Routes name the scope they need where they are defined (`crate::http`); `GET /health`,
//! `GET /ready` and `GET /fhir/metadata` need none.
//!
//! Invariants: no key, token or secret is ever logged or put into an answer; a refusal says what
//! is missing (credentials, a scope), never which part of a presented credential was wrong
//! beyond "expired" / "not valid".

mod error;
pub mod jwt;
pub mod keys;
pub mod limits;

pub use error::AuthError;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// What a caller may do. `admin` implies every other scope; `records:write` implies `convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `POST /fhir/$convert`.
    Convert,
    /// `POST /records`.
    RecordsWrite,
    /// `GET /submissions/{id}`, `GET /submissions/{id}/audit`, `GET /submissions`.
    SubmissionsRead,
    /// `POST /fhir/$validate`, `POST /fhir/{type}/$validate`.
    Validate,
    /// `GET /metrics`.
    Metrics,
    /// Replay and dead letters (`POST /submissions/{id}/$replay`, `GET /submissions?state=dead-letter`).
    Admin,
    /// `GET`/`POST /fhir/Patient/$summary`: a person's IPS document, for receiving clinics.
    SummaryRead,
}

pub const ALL_SCOPES: [&str; 7] = ["convert", "records:write", "submissions:read", "validate", "metrics", "admin", "summary:read"];

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "convert" => Scope::Convert,
            "records:write" => Scope::RecordsWrite,
            "submissions:read" => Scope::SubmissionsRead,
            "validate" => Scope::Validate,
            "metrics" => Scope::Metrics,
            "admin" => Scope::Admin,
            "summary:read" => Scope::SummaryRead,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Convert => "convert",
            Scope::RecordsWrite => "records:write",
            Scope::SubmissionsRead => "submissions:read",
            Scope::Validate => "validate",
            Scope::Metrics => "metrics",
            Scope::Admin => "admin",
            Scope::SummaryRead => "summary:read",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// An authenticated caller, as handlers see it (a request extension).
#[derive(Clone)]
pub struct Caller {
    /// The client's name (an API key's name, a token's client id, a certificate's client): a
    /// system, not a person. Goes into the audit trail as the submitter.
    pub name: Arc<str>,
    scopes: u8,
    /// Destinations this caller may submit for (`None`: any).
    pub destinations: Option<Arc<[String]>>,
    /// Programmes this caller may submit for (`None`: any).
    pub programmes: Option<Arc<[String]>>,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").field("name", &self.name).field("scopes", &self.scope_names()).finish()
    }
}

impl Caller {
    pub fn new(name: &str, scopes: &[Scope]) -> Caller {
        Caller { name: name.into(), scopes: scopes.iter().fold(0, |a, s| a | s.bit()), destinations: None, programmes: None }
    }

    /// The caller of a gateway started with `--insecure-no-auth`: may do everything.
    pub fn anonymous() -> Caller {
        Caller::new("anonymous", &[Scope::Admin])
    }

    pub fn has(&self, s: Scope) -> bool {
        let admin = self.scopes & Scope::Admin.bit() != 0;
        let implied = s == Scope::Convert && self.scopes & Scope::RecordsWrite.bit() != 0;
        admin || implied || self.scopes & s.bit() != 0
    }

    pub fn scope_names(&self) -> Vec<&'static str> {
        ALL_SCOPES.iter().copied().filter(|n| Scope::parse(n).is_some_and(|s| self.scopes & s.bit() != 0)).collect()
    }

    pub fn may_submit_to(&self, destination: &str) -> bool {
        self.destinations.as_ref().is_none_or(|d| d.iter().any(|x| x == destination))
    }

    pub fn may_submit_programme(&self, programme: &str) -> bool {
        self.programmes.as_ref().is_none_or(|p| p.iter().any(|x| x == programme))
    }

    /// Whether this caller may read a submission of `programme` for `destinations`: reads are
    /// scoped exactly as writes are (the programme allowed, and every destination).
    pub fn may_read<'a>(&self, programme: &str, mut destinations: impl Iterator<Item = &'a str>) -> bool {
        self.may_submit_programme(programme) && destinations.all(|d| self.may_submit_to(d))
    }

    /// Whether this caller may read the summary of a record of `programme` that was routed to
    /// `destinations`: the programme allowed, and at least one of the destinations (a clinic
    /// limited to its own destination sees the persons whose records were destined for it, even
    /// when the same record also went to the ministry's server).
    pub fn may_read_summary<'a>(&self, programme: &str, mut destinations: impl Iterator<Item = &'a str>) -> bool {
        self.may_submit_programme(programme) && (self.destinations.is_none() || destinations.any(|d| self.may_submit_to(d)))
    }

    /// Whether this caller is limited to some destinations or programmes.
    pub fn is_restricted(&self) -> bool {
        self.destinations.is_some() || self.programmes.is_some()
    }
}

fn parse_scopes(names: &[String], ctx: &str) -> Result<Vec<Scope>, AuthError> {
    names
        .iter()
        .map(|n| {
            Scope::parse(n)
                .ok_or_else(|| AuthError::config(ctx, format!("unknown scope '{n}' (expected one of {})", ALL_SCOPES.join(", "))))
        })
        .collect()
}

/// `[auth]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Authentication on (the default). `mhg serve --insecure-no-auth` turns it off.
    pub enabled: bool,
    /// Where API key hashes live (`mhg keys`); created with a first admin key on first start.
    pub keys_file: PathBuf,
    /// Clients named in the configuration (API key hash or certificate fingerprint).
    pub clients: Vec<ClientConfig>,
    /// Trusted JWT issuers.
    pub jwt: Vec<jwt::IssuerConfig>,
    /// Where `secret_env` names are looked up (set by the configuration; not a key).
    #[serde(skip)]
    pub env: crate::environment::Env,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            enabled: true,
            keys_file: PathBuf::from("data/keys.json"),
            clients: Vec::new(),
            jwt: Vec::new(),
            env: Default::default(),
        }
    }
}

/// `[[auth.clients]]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub name: String,
    /// Hex SHA-256 of the client's API key (`mhg keys hash` prints it).
    pub key_sha256: Option<String>,
    /// Hex SHA-256 fingerprint of the client's certificate (DER), for mTLS.
    pub cert_sha256: Option<String>,
    pub scopes: Vec<String>,
    pub destinations: Option<Vec<String>>,
    pub programmes: Option<Vec<String>>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig").field("name", &self.name).field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

/// Hex SHA-256 of a key or certificate.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn check_hex64(v: &str, ctx: &str) -> Result<String, AuthError> {
    let v = v.trim().to_ascii_lowercase().replace(':', "");
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(v)
    } else {
        Err(AuthError::config(ctx, "expected 64 hexadecimal digits (a SHA-256)"))
    }
}

/// What a request presented.
pub enum Credentials<'a> {
    None,
    /// An API key or a JWT (told apart by shape).
    Bearer(&'a str),
}

/// Why a caller was refused. The texts are safe to return: they carry no credential material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials (401, `login`).
    Missing,
    /// Credentials that are not valid: unknown key, bad signature, wrong issuer or audience (401, `security`).
    Invalid(&'static str),
    /// A token past its expiry (401, `expired`).
    Expired,
}

struct KeysState {
    modified: Option<SystemTime>,
    by_hash: HashMap<String, Caller>,
}

/// The authenticator, built once at start-up and shared.
pub struct Auth {
    enabled: bool,
    configured: HashMap<String, Caller>,
    certs: HashMap<String, Caller>,
    keys_file: PathBuf,
    keys: RwLock<KeysState>,
    /// Seconds since the epoch of the last look at the keys file's modification time.
    last_check: std::sync::atomic::AtomicU64,
    issuers: Vec<jwt::Issuer>,
}

impl Auth {
    /// Authentication off: every caller is [`Caller::anonymous`].
    pub fn disabled() -> Auth {
        Auth {
            enabled: false,
            configured: HashMap::new(),
            certs: HashMap::new(),
            keys_file: PathBuf::new(),
            keys: RwLock::new(KeysState { modified: None, by_hash: HashMap::new() }),
            last_check: 0.into(),
            issuers: Vec::new(),
        }
    }

    pub fn from_config(cfg: &AuthConfig) -> Result<Auth, AuthError> {
        Self::build(cfg, true)
    }

    fn build(cfg: &AuthConfig, read_keys: bool) -> Result<Auth, AuthError> {
        if !cfg.enabled {
            return Ok(Auth::disabled());
        }
        let mut configured = HashMap::new();
        let mut certs = HashMap::new();
        for (i, c) in cfg.clients.iter().enumerate() {
            let ctx = format!("auth.clients[{i}]");
            let mut caller = Caller::new(&c.name, &parse_scopes(&c.scopes, &ctx)?);
            caller.destinations = c.destinations.clone().map(Into::into);
            caller.programmes = c.programmes.clone().map(Into::into);
            if c.key_sha256.is_none() && c.cert_sha256.is_none() {
                return Err(AuthError::config(&ctx, "give key_sha256 (an API key) or cert_sha256 (a client certificate)"));
            }
            if let Some(h) = &c.key_sha256 {
                configured.insert(check_hex64(h, &format!("{ctx}.key_sha256"))?, caller.clone());
            }
            if let Some(h) = &c.cert_sha256 {
                certs.insert(check_hex64(h, &format!("{ctx}.cert_sha256"))?, caller);
            }
        }
        let issuers = cfg
            .jwt
            .iter()
            .enumerate()
            .map(|(i, j)| jwt::Issuer::new(j, &cfg.env).map_err(|e| AuthError::config(&format!("auth.jwt[{i}]"), e)))
            .collect::<Result<Vec<_>, _>>()?;
        let auth = Auth {
            enabled: true,
            configured,
            certs,
            keys_file: cfg.keys_file.clone(),
            keys: RwLock::new(KeysState { modified: None, by_hash: HashMap::new() }),
            last_check: 0.into(),
            issuers,
        };
        if read_keys {
            auth.reload_keys(true)?;
        }
        Ok(auth)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// True when nobody could ever call: no clients, no issuers, no keys in the keys file.
    pub fn has_no_clients(&self) -> bool {
        self.configured.is_empty()
            && self.certs.is_empty()
            && self.issuers.is_empty()
            && self.keys.read().map(|k| k.by_hash.is_empty()).unwrap_or(true)
    }

    /// Re-reads the keys file when it changed (checked at most once a second), so that
    /// `mhg keys add` / `revoke` take effect without a restart.
    fn reload_keys(&self, force: bool) -> Result<(), AuthError> {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(crate::calendar::now_ms().div_euclid(1000)).unwrap_or(0);
        if !force && self.last_check.swap(now, Ordering::Relaxed) == now {
            return Ok(());
        }
        let modified = std::fs::metadata(&self.keys_file).and_then(|m| m.modified()).ok();
        if !force && self.keys.read().map(|k| k.modified == modified).unwrap_or(false) {
            return Ok(());
        }
        let by_hash = match modified {
            None => HashMap::new(),
            Some(_) => keys::KeysFile::read(&self.keys_file)?.callers()?,
        };
        if let Ok(mut k) = self.keys.write() {
            *k = KeysState { modified, by_hash };
        }
        Ok(())
    }

    /// Who is calling, from a client certificate fingerprint and/or presented credentials.
    pub fn authenticate(&self, cert_sha256: Option<&str>, creds: Credentials<'_>) -> Result<Caller, Refusal> {
        if !self.enabled {
            return Ok(Caller::anonymous());
        }
        match creds {
            Credentials::Bearer(token) => {
                if jwt::looks_like_jwt(token) && !self.issuers.is_empty() {
                    return jwt::verify(&self.issuers, token);
                }
                let hash = sha256_hex(token.as_bytes());
                if let Some(c) = self.configured.get(&hash) {
                    return Ok(c.clone());
                }
                if let Err(e) = self.reload_keys(false) {
                    tracing::warn!(stage = "auth", error = %e, "keys file unreadable: keeping the keys loaded before");
                }
                match self.keys.read().ok().and_then(|k| k.by_hash.get(&hash).cloned()) {
                    Some(c) => Ok(c),
                    None => Err(Refusal::Invalid("the API key or token is not valid")),
                }
            }
            Credentials::None => match cert_sha256.and_then(|f| self.certs.get(f)) {
                Some(c) => Ok(c.clone()),
                None => Err(Refusal::Missing),
            },
        }
    }
}

/// Checks `[auth]` as configuration (scopes, hashes, issuers and their key files), without
/// reading the keys file.
pub fn check_config(cfg: &AuthConfig) -> Result<(), AuthError> {
    Auth::build(cfg, false).map(|_| ())
}

/// First start on the embedded defaults: nobody could call, so make an admin key, store its
/// hash, and hand the key back (to be printed once). `MHG_ADMIN_KEY`, when set, is used instead
/// of a random key (for automated set-ups).
pub fn bootstrap_admin(cfg: &AuthConfig, given: Option<&str>) -> Result<Option<String>, AuthError> {
    let auth = Auth::from_config(cfg)?;
    if !auth.enabled() || !auth.has_no_clients() {
        return Ok(None);
    }
    let key = match given {
        Some(k) if k.len() >= 32 => k.to_owned(),
        Some(_) => return Err(AuthError::config("MHG_ADMIN_KEY", "an API key needs at least 32 characters")),
        None => keys::generate(),
    };
    let mut file = keys::KeysFile::read(&cfg.keys_file)?;
    file.add("admin", &key, &["admin".to_owned()], None, None)?;
    file.write(&cfg.keys_file)?;
    Ok(Some(key))
}
