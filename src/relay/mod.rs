//! Stage 5, **relay**: deliveries from the queue to the destinations, durably.
//!
//! One worker per destination leases due deliveries from the store, sends them (a FHIR
//! transaction, or a file), and records the outcome:
//! - success (2xx): the destination's resource ids and versions are kept;
//! - retryable (network error, timeout, and the statuses `error::destination_may_recover`
//!   names: 401, 408, 429, 5xx): tried again after exponential backoff
//!   with jitter, or after the destination's `Retry-After`; a destination that keeps failing
//!   trips its breaker and is left alone for a while;
//! - permanent (any other 4xx): dead letter, keeping the destination's OperationOutcome, until
//!   an operator replays it.
//!
//! Invariant (vector's rule): a delivery is marked done only after the destination said so.
//! Nothing here logs record content: ids, destinations, statuses and counts only. Only this
//! module knows reqwest.

pub mod auth;
pub mod deliver;
pub mod probe;
pub mod worker;

pub use auth::AuthConfig;

use serde::Deserialize;

pub use worker::Relay;

/// Installs the process-wide rustls crypto provider (ring) that every HTTPS client and server of
/// the gateway uses. Idempotent.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A destination as configured (`[[destinations]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Unique name; appears in statuses, audit and logs.
    pub name: String,
    pub kind: DestinationKind,
    /// FHIR server base URL (kind `fhir`).
    pub base_url: Option<String>,
    /// Folder for Bundles (kind `directory`).
    pub path: Option<std::path::PathBuf>,
    /// FHIR version the destination speaks (only 4.0.1 is produced).
    #[serde(default = "default_fhir_version")]
    pub fhir_version: String,
    /// What the destination gets: `transaction` (the default) or `ips`, the record's IPS
    /// document (a `fhir` destination PUTs it to `[base]/Bundle?identifier=…`, so sending it again
    /// changes nothing; a `directory` destination writes it as the record's file).
    #[serde(default)]
    pub format: crate::pipeline::Format,
    /// Profiles the destination requires its records to meet.
    #[serde(default)]
    pub profiles: Vec<String>,
    /// Which records go there: destination countries (ISO alpha-3); empty = any.
    #[serde(default)]
    pub countries: Vec<String>,
    /// Which records go there: programmes; empty = any.
    #[serde(default)]
    pub programmes: Vec<String>,
    /// Deliveries in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Timeout of one attempt, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Whether the destination takes transaction Bundles; when false, each entry is sent as its
    /// own conditional request, in order, with references rewritten to the server's ids.
    #[serde(default = "default_true")]
    pub transactions: bool,
    /// Attempts before a retryable failure becomes a dead letter; 0 = keep trying.
    #[serde(default)]
    pub max_attempts: i64,
    /// Outbound authentication.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Private CA and client certificate.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Where `*_env` secret names are looked up (set by the configuration; not a key).
    #[serde(skip)]
    pub env: crate::environment::Env,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    Fhir,
    Directory,
}

/// TLS towards a destination (`tls = { ... }`): a private CA to trust instead of the public
/// roots, and a client certificate for mutual TLS. PEM files.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Trust only this CA (PEM), e.g. a ministry's private CA.
    pub ca_file: Option<std::path::PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS.
    pub client_cert_file: Option<std::path::PathBuf>,
    /// Its private key (PEM).
    pub client_key_file: Option<std::path::PathBuf>,
}

fn default_fhir_version() -> String {
    "4.0.1".into()
}
fn default_true() -> bool {
    true
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout() -> u64 {
    30
}

impl DestinationConfig {
    /// A destination with every optional key at its default (as an empty TOML table gives).
    pub fn new(name: &str, kind: DestinationKind) -> Self {
        DestinationConfig {
            name: name.to_owned(),
            kind,
            base_url: None,
            path: None,
            fhir_version: default_fhir_version(),
            format: crate::pipeline::Format::Transaction,
            profiles: Vec::new(),
            countries: Vec::new(),
            programmes: Vec::new(),
            concurrency: default_concurrency(),
            timeout_secs: default_timeout(),
            transactions: true,
            max_attempts: 0,
            auth: AuthConfig::None,
            tls: TlsConfig::default(),
            env: crate::environment::Env::default(),
        }
    }

    /// Whether a record for `country` and `programme` goes to this destination.
    pub fn takes(&self, country: &str, programme: &str) -> bool {
        (self.countries.is_empty() || self.countries.iter().any(|c| c == country))
            && (self.programmes.is_empty() || self.programmes.iter().any(|p| p == programme))
    }

    /// Checks the parts that depend on each other; names the destination and the key.
    pub fn check(&self) -> Result<(), String> {
        let ok_name = !self.name.is_empty() && self.name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !ok_name {
            return Err(format!("destinations.name '{}': use letters, digits, '-', '_', '.'", self.name));
        }
        let n = &self.name;
        match self.kind {
            DestinationKind::Fhir => match &self.base_url {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => {}
                _ => return Err(format!("destinations[{n}].base_url: a fhir destination needs an http(s) URL")),
            },
            DestinationKind::Directory if self.path.is_none() => {
                return Err(format!("destinations[{n}].path: a directory destination needs a folder"));
            }
            DestinationKind::Directory => {}
        }
        if self.fhir_version != "4.0.1" {
            return Err(format!("destinations[{n}].fhir_version: only 4.0.1 is produced"));
        }
        if self.format == crate::pipeline::Format::Html {
            return Err(format!("destinations[{n}].format: expected \"transaction\" or \"ips\""));
        }
        if self.concurrency == 0 || self.concurrency > 256 {
            return Err(format!("destinations[{n}].concurrency: expected 1 to 256"));
        }
        if let AuthConfig::Bearer { token_file: None, token_env: None } = self.auth {
            return Err(format!("destinations[{n}].auth: bearer needs token_file or token_env"));
        }
        if self.tls.client_cert_file.is_some() != self.tls.client_key_file.is_some() {
            return Err(format!("destinations[{n}].tls: client_cert_file and client_key_file go together"));
        }
        Ok(())
    }
}
