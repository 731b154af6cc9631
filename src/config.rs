//! Configuration: embedded defaults, then an optional TOML file, then environment variables
//! (`MHG_<SECTION>_<KEY>`, e.g. `MHG_SERVER_LISTEN`). Unknown keys are errors that name the file
//! and the key; so are values of the wrong type.
//!
//! The environment is read through a map ([`Config::load_from`]) so tests pass their own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::GatewayError;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: Server,
    pub mappings: Mappings,
    pub limits: Limits,
    pub log: Log,
    /// Where accepted records are kept until delivered.
    pub store: StoreConfig,
    /// Where records go. When none is configured, one `directory` destination named `outbox`
    /// writes Bundles under `data/outbox` (the embedded default).
    pub destinations: Option<Vec<crate::relay::DestinationConfig>>,
    pub relay: crate::relay::worker::RelayConfig,
    /// `Patient/$summary` for clinics that pull: how long the gateway keeps what it needs.
    pub summary: Summary,
    /// Who may call (on by default).
    pub auth: crate::auth::AuthConfig,
    /// The profile validator: definitions beyond the shipped ones, and whether produced
    /// Bundles must pass it.
    pub validation: Validation,
    /// Terminology servers codes of unloaded code systems are delegated to, and their cache.
    pub terminology: crate::terminology::delegate::TxConfig,
    /// Folder holding `conformance/` (and the default `mappings/`); found automatically when
    /// empty (see [`Config::home`]).
    pub home: Option<PathBuf>,
    /// The environment the configuration was read with (`MHG_ADMIN_KEY`, `*_env` secrets).
    #[serde(skip)]
    pub env: crate::environment::Env,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Address and port to listen on.
    pub listen: String,
    /// HTTPS (and optionally client certificates) instead of plain HTTP.
    pub tls: Option<crate::http::tls::TlsConfig>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Mappings {
    /// The mapping directory (with `mappings.json`); `<home>/mappings` when unset.
    pub dir: Option<PathBuf>,
    /// Override directories applied in order (e.g. national vaccine codes).
    pub overrides: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deepest JSON nesting accepted (a record needs 6).
    pub max_depth: usize,
    /// Most records in one request.
    pub max_records: usize,
    /// Longest a request may take, seconds (0: no limit). Answer: 408.
    pub request_timeout_secs: u64,
    /// Most requests in progress at once on the gateway (0: no limit). Answer: 429.
    pub max_concurrent_requests: usize,
    /// Requests per second each client may make, sustained (0: no limit). Answer: 429.
    pub rate_per_second: u32,
    /// Requests a client may make in a burst above its sustained rate.
    pub rate_burst: u32,
    /// Longest a client may take to send a request's headers, seconds (0: no limit); counted
    /// from the connection's start for its first request. The connection is then closed.
    pub header_read_timeout_secs: u64,
    /// Longest a connection may stay open between requests with nothing sent, seconds (0: no
    /// limit). The connection is then closed.
    pub idle_timeout_secs: u64,
    /// Most connections open at once (0: no limit of its own); always kept below the
    /// process's open-file limit. A connection above it is closed at once.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Validation {
    /// FHIR packages (`.tgz` or unpacked folders) loaded after the shipped ones in
    /// `<home>/conformance/packages`, e.g. a national base.
    pub packages: Vec<PathBuf>,
    /// Loose definition files (StructureDefinition, ValueSet, CodeSystem, or a Bundle of them).
    pub load: Vec<PathBuf>,
    /// Every produced Bundle must pass the profile validator (an error refuses the record
    /// with 422). `false` keeps only the JSON-schema gate.
    pub profile_gate: bool,
    /// Extensions whose definition is not loaded are errors (as the HL7 validator reports them)
    /// rather than warnings (FHIR lets a receiver ignore them).
    pub unknown_extension_errors: bool,
    /// Relative references (`Patient/1`) must resolve inside what is validated (a Bundle's
    /// entries, a Parameters' resources): for receivers that take only self-contained
    /// submissions. Off by default: a reference to a resource the receiver holds is normal.
    pub check_references: bool,
    /// URL prefixes whose extensions may be unknown without a finding (a national base's
    /// `https://fhir.example.gov/StructureDefinition/`; `any`: all), as HL7's `-extension`.
    pub extension_domains: Vec<String>,
}

impl Default for Validation {
    fn default() -> Self {
        Validation {
            packages: Vec::new(),
            load: Vec::new(),
            profile_gate: true,
            unknown_extension_errors: false,
            check_references: false,
            extension_domains: Vec::new(),
        }
    }
}

/// `[summary]`: serving `GET`/`POST /fhir/Patient/$summary`.
#[derive(Debug, Clone, Copy, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Summary {
    /// Days the newest version of each record is kept for `$summary`, counted from its
    /// acceptance. 0 (the default) keeps nothing beyond the relay's own retention, and every
    /// `$summary` answers 404.
    pub retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite://PATH` (embedded, the default) or `postgres://USER@HOST/DB` (replicas).
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { url: "sqlite://data/mhg.db".into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info` or `mhg=debug`.
    pub level: String,
}

impl Default for Server {
    fn default() -> Self {
        Server { listen: "127.0.0.1:8080".into(), tls: None }
    }
}
impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_depth: 32,
            max_records: 10_000,
            request_timeout_secs: 60,
            max_concurrent_requests: 1024,
            rate_per_second: 2_000,
            rate_burst: 4_000,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 4096,
        }
    }
}
impl Default for Log {
    fn default() -> Self {
        Log { format: "text".into(), level: "info".into() }
    }
}

fn cfg_err(file: &str, message: impl Into<String>) -> GatewayError {
    GatewayError::Config { file: file.to_owned(), message: message.into() }
}

impl Config {
    /// Defaults, then `file` (if any), then `env`.
    pub fn load_from(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, GatewayError> {
        let mut table: toml::Table = match file {
            Some(f) => {
                let name = f.display().to_string();
                let text = std::fs::read_to_string(f).map_err(|e| cfg_err(&name, format!("cannot read: {e}")))?;
                text.parse().map_err(|e: toml::de::Error| cfg_err(&name, e.message().to_owned()))?
            }
            None => toml::Table::new(),
        };
        // Environment overrides, for the keys that exist.
        const ENV_KEYS: &[(&str, &str, &str, bool)] = &[
            ("MHG_SERVER_LISTEN", "server", "listen", false),
            ("MHG_MAPPINGS_DIR", "mappings", "dir", false),
            ("MHG_LIMITS_MAX_BODY_BYTES", "limits", "max_body_bytes", true),
            ("MHG_LIMITS_MAX_DEPTH", "limits", "max_depth", true),
            ("MHG_LIMITS_MAX_RECORDS", "limits", "max_records", true),
            ("MHG_LIMITS_REQUEST_TIMEOUT_SECS", "limits", "request_timeout_secs", true),
            ("MHG_LIMITS_MAX_CONCURRENT_REQUESTS", "limits", "max_concurrent_requests", true),
            ("MHG_LIMITS_RATE_PER_SECOND", "limits", "rate_per_second", true),
            ("MHG_LIMITS_RATE_BURST", "limits", "rate_burst", true),
            ("MHG_LIMITS_HEADER_READ_TIMEOUT_SECS", "limits", "header_read_timeout_secs", true),
            ("MHG_LIMITS_IDLE_TIMEOUT_SECS", "limits", "idle_timeout_secs", true),
            ("MHG_LIMITS_MAX_CONNECTIONS", "limits", "max_connections", true),
            ("MHG_AUTH_KEYS_FILE", "auth", "keys_file", false),
            ("MHG_LOG_FORMAT", "log", "format", false),
            ("MHG_LOG_LEVEL", "log", "level", false),
            ("MHG_STORE_URL", "store", "url", false),
            ("MHG_VALIDATION_PROFILE_GATE", "validation", "profile_gate", false),
            ("MHG_SUMMARY_RETENTION_DAYS", "summary", "retention_days", true),
        ];
        for (var, section, key, numeric) in ENV_KEYS {
            if let Some(v) = env.get(*var) {
                let value = if *var == "MHG_VALIDATION_PROFILE_GATE" {
                    toml::Value::Boolean(v.parse().map_err(|_| cfg_err(var, "expected true or false"))?)
                } else if *numeric {
                    toml::Value::Integer(v.parse().map_err(|_| cfg_err(var, "expected a whole number"))?)
                } else {
                    toml::Value::String(v.clone())
                };
                let sec = table.entry(section.to_string()).or_insert_with(|| toml::Value::Table(Default::default()));
                match sec.as_table_mut() {
                    Some(t) => {
                        t.insert(key.to_string(), value);
                    }
                    None => return Err(cfg_err(var, format!("[{section}] is not a table in the configuration file"))),
                }
            }
        }
        if let Some(h) = env.get("MHG_HOME") {
            table.insert("home".into(), toml::Value::String(h.clone()));
        }
        let name = file.map(|f| f.display().to_string()).unwrap_or_else(|| "environment".into());
        let mut cfg: Config = Config::deserialize(toml::Value::Table(table)).map_err(|e| cfg_err(&name, e.message().to_owned()))?;
        // Whatever names a variable looks it up here, never in the process environment.
        let env = crate::environment::Env::new(env.clone());
        cfg.auth.env = env.clone();
        for d in cfg.destinations.iter_mut().flatten() {
            d.env = env.clone();
        }
        for s in cfg.terminology.servers.iter_mut() {
            s.env = env.clone();
        }
        cfg.env = env;
        if !matches!(cfg.log.format.as_str(), "text" | "json") {
            return Err(cfg_err(&name, "log.format: expected \"text\" or \"json\""));
        }
        if let Some(ds) = &cfg.destinations {
            let mut seen = std::collections::HashSet::new();
            for d in ds {
                d.check().map_err(|m| cfg_err(&name, m))?;
                if !seen.insert(d.name.clone()) {
                    return Err(cfg_err(&name, format!("destinations: the name '{}' is used twice", d.name)));
                }
            }
        }
        crate::auth::check_config(&cfg.auth).map_err(|m| cfg_err(&name, m.to_string()))?;
        crate::terminology::delegate::Delegation::from_config(&cfg.terminology).map_err(|m| cfg_err(&name, m))?;
        if let Some(t) = &cfg.server.tls {
            crate::http::tls::server_config(t).map_err(|m| cfg_err(&name, m))?;
        }
        if cfg.summary.retention_days > 36_500 {
            return Err(cfg_err(&name, "summary.retention_days: at most 36500 (100 years); 0 turns $summary off"));
        }
        if cfg.limits.max_depth < 8 {
            return Err(cfg_err(&name, "limits.max_depth: a record needs at least 8 levels"));
        }
        Ok(cfg)
    }

    /// Where `mappings/` and `conformance/` live: `home` as configured, or as `cli` found it at
    /// start-up (`cli::find_home`), else the source tree this binary was built from.
    pub fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
    }

    pub fn mappings_dir(&self) -> PathBuf {
        self.mappings.dir.clone().unwrap_or_else(|| self.home().join("mappings"))
    }

    pub fn conformance_dir(&self) -> PathBuf {
        self.home().join("conformance")
    }

    /// The configured destinations, or the embedded default (`outbox`, a folder).
    pub fn destinations(&self) -> Vec<crate::relay::DestinationConfig> {
        match &self.destinations {
            Some(d) => d.clone(),
            None => vec![crate::relay::DestinationConfig {
                path: Some(PathBuf::from("data/outbox")),
                ..crate::relay::DestinationConfig::new("outbox", crate::relay::DestinationKind::Directory)
            }],
        }
    }

    pub fn pipeline(&self) -> Result<crate::pipeline::Pipeline, GatewayError> {
        let validator = self.validator(&[], &[])?;
        let mut p = crate::pipeline::Pipeline::load_with(
            &self.mappings_dir(),
            &self.mappings.overrides,
            &self.conformance_dir(),
            self.limits.max_depth,
            std::sync::Arc::new(validator),
        )?;
        p.profile_gate = self.validation.profile_gate;
        p.tx = self.delegation()?.map(std::sync::Arc::new);
        Ok(p)
    }

    /// The terminology delegation `[terminology]` describes (None without servers).
    pub fn delegation(&self) -> Result<Option<crate::terminology::delegate::Delegation>, GatewayError> {
        crate::terminology::delegate::Delegation::from_config(&self.terminology)
            .map_err(|message| GatewayError::Config { file: "configuration".into(), message })
    }

    /// The profile validator: shipped packages, configured packages and files, then `extra_*`
    /// (from the command line). Relative paths are taken from the current directory.
    pub fn validator(
        &self,
        extra_packages: &[PathBuf],
        extra_load: &[PathBuf],
    ) -> Result<crate::validate::profile::Validator, GatewayError> {
        let packages: Vec<PathBuf> = self.validation.packages.iter().chain(extra_packages).cloned().collect();
        let load: Vec<PathBuf> = self.validation.load.iter().chain(extra_load).cloned().collect();
        let v = crate::validate::profile::load::load(&self.conformance_dir().join("packages"), &packages, &load)?;
        for d in self.unserved_dependencies(&v) {
            tracing::warn!(package = %d.package, needs = %d.needs, "a package's dependency is not loaded: profiles using its definitions will find them unknown");
        }
        Ok(v.with_unknown_extension_errors(self.validation.unknown_extension_errors)
            .with_references_checked(self.validation.check_references)
            .with_extension_domains(self.validation.extension_domains.clone()))
    }

    /// Dependencies of the packages added to the shipped ones that no loaded package serves.
    /// The shipped set's own gap is known and documented (IPS 2.0.0 names IPA 1.1.0, which is
    /// not on npm; nothing the gateway checks needs it).
    pub fn unserved_dependencies(&self, v: &crate::validate::profile::Validator) -> Vec<crate::validate::packages::Dependency> {
        let shipped = self.conformance_dir().join("packages");
        let p = v.packages();
        p.missing_dependencies()
            .into_iter()
            .filter(|d| {
                let name = d.package.split('#').next().unwrap_or_default();
                p.origin_of(name).is_some_and(|o| !o.starts_with(&shipped))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    /// Secrets named by `*_env` come from the map the configuration was read with, never from
    /// the process environment (which the test does not set).
    #[test]
    fn variables_come_from_the_env_map() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mhg.toml");
        std::fs::write(
            &file,
            "[[destinations]]\nname = \"moh\"\nkind = \"fhir\"\nbase_url = \"https://fhir.example/r4\"\nauth = { type = \"bearer\", token_env = \"MOH_TOKEN_FOR_TEST\" }\n",
        )
        .unwrap();
        let env: HashMap<String, String> =
            [("MOH_TOKEN_FOR_TEST", "t0ken"), ("MHG_ADMIN_KEY", "mhg_k")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let cfg = super::Config::load_from(Some(&file), &env).unwrap();
        assert_eq!(cfg.env.get("MHG_ADMIN_KEY"), Some("mhg_k"));
        let d = &cfg.destinations.as_ref().unwrap()[0];
        assert_eq!(d.env.get("MOH_TOKEN_FOR_TEST"), Some("t0ken"));
        assert!(crate::relay::deliver::Destination::new(d.clone()).is_ok(), "the token resolves from the map");
        let mut without = d.clone();
        without.env = Default::default();
        assert!(crate::relay::deliver::Destination::new(without).is_err(), "and from nowhere else");
        assert!(!format!("{:?}", cfg.env).contains("t0ken"));
    }

    #[test]
    fn terminology_servers_are_checked_when_the_configuration_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mhg.toml");
        let read = |text: &str| {
            std::fs::write(&file, text).unwrap();
            super::Config::load_from(Some(&file), &HashMap::new()).map_err(|e| e.to_string())
        };
        let ok = read("[terminology]\ncache_ttl_secs = 60\n[[terminology.servers]]\nurl = \"https://tx.example/r4\"\ncode_systems = [\"http://snomed.info/sct\"]\n").unwrap();
        assert_eq!(ok.terminology.servers[0].timeout_ms, 5000, "the default timeout");
        assert!(ok.delegation().unwrap().is_some());
        let e = read("[[terminology.servers]]\nurl = \"tx.example\"\ncode_systems = [\"*\"]\n").unwrap_err();
        assert!(e.contains("terminology.servers[0].url"), "{e}");
        let e = read("[[terminology.servers]]\nurl = \"https://tx.example\"\ncode_systems = [\"*\"]\nauth = { type = \"bearer\", token_env = \"NOT_SET_ANYWHERE\" }\n").unwrap_err();
        assert!(e.contains("terminology.servers[0].auth.token_env"), "{e}");
        assert!(read("[[terminology.servers]]\nurl = \"https://tx.example\"\ncode_systems = [\"*\"]\ntimeout = 3\n").is_err());
        assert!(super::Config::load_from(None, &HashMap::new()).unwrap().delegation().unwrap().is_none());
    }
}
