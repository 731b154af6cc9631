//! The keys file: API key hashes with their client name, scopes and restrictions. JSON, written
//! atomically with owner-only permissions. The keys themselves are shown once, when made, and
//! never stored.
//!
//! ```json
//! {"keys": [{"name": "admin", "sha256": "…", "scopes": ["admin"], "created": "2026-11-21T18:00:00Z"}]}
//! ```

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{AuthError, Caller, parse_scopes, sha256_hex};

/// A new API key: `mhg_` and 256 random bits, base64url.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes);
    format!("mhg_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    pub name: String,
    pub sha256: String,
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programmes: Option<Vec<String>>,
    #[serde(default)]
    pub created: String,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry").field("name", &self.name).field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    pub keys: Vec<KeyEntry>,
}

impl KeysFile {
    /// The file's keys; an absent file has none.
    pub fn read(path: &Path) -> Result<KeysFile, AuthError> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| AuthError::NotKeysFile { path: path.to_owned(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
            Err(source) => Err(AuthError::Read { path: path.to_owned(), source }),
        }
    }

    pub fn write(&self, path: &Path) -> Result<(), AuthError> {
        let write_err = |source| AuthError::Write { path: path.to_owned(), source };
        let text = serde_json::to_vec_pretty(self).map_err(|e| write_err(e.into()))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| write_err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name")))?;
        crate::files::write_atomic(dir, name, &text).map_err(write_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }

    /// Adds a key under `name` (names are unique: revoke first to replace).
    pub fn add(
        &mut self,
        name: &str,
        key: &str,
        scopes: &[String],
        destinations: Option<Vec<String>>,
        programmes: Option<Vec<String>>,
    ) -> Result<(), AuthError> {
        if name.is_empty() || name.len() > 100 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b)) {
            return Err(AuthError::Refused("a client name is 1 to 100 letters, digits, '-', '_', '.' or '@'".into()));
        }
        if self.keys.iter().any(|k| k.name == name) {
            return Err(AuthError::Refused(format!("a key named '{name}' exists already (revoke it first)")));
        }
        if scopes.is_empty() {
            return Err(AuthError::Refused("give at least one scope".into()));
        }
        parse_scopes(scopes, "scopes")?;
        self.keys.push(KeyEntry {
            name: name.to_owned(),
            sha256: sha256_hex(key.as_bytes()),
            scopes: scopes.to_vec(),
            destinations,
            programmes,
            created: crate::calendar::rfc3339(crate::calendar::now_ms()),
        });
        Ok(())
    }

    /// Removes the key named `name`; false when there was none.
    pub fn revoke(&mut self, name: &str) -> bool {
        let before = self.keys.len();
        self.keys.retain(|k| k.name != name);
        self.keys.len() != before
    }

    pub(super) fn callers(&self) -> Result<HashMap<String, Caller>, AuthError> {
        let mut out = HashMap::new();
        for (i, k) in self.keys.iter().enumerate() {
            let ctx = format!("keys[{i}]");
            let mut c = Caller::new(&k.name, &parse_scopes(&k.scopes, &ctx)?);
            c.destinations = k.destinations.clone().map(Into::into);
            c.programmes = k.programmes.clone().map(Into::into);
            out.insert(super::check_hex64(&k.sha256, &format!("{ctx}.sha256"))?, c);
        }
        Ok(out)
    }
}
