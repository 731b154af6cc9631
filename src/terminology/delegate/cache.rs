//! Terminology verdicts on disk: one small JSON file per (server, system, code, display), named
//! by the SHA-256 of that key, holding the verdict and when it was had. A verdict older than
//! the TTL is not used (and is replaced by the next answer). Files are written to a temporary
//! name and renamed, so a crash leaves no half verdict. A verdict read once is kept in memory
//! too. Only verdicts are cached, never "unavailable".
//!
//! A cache directory that cannot be written is not an error: the verdict is then only kept in
//! memory for the process's life.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CodeQuery, Verdict};

#[derive(Serialize, Deserialize)]
struct Entry {
    /// Unix milliseconds when the server answered.
    at: i64,
    server: String,
    system: String,
    verdict: Verdict,
}

pub struct DiskCache {
    dir: PathBuf,
    ttl_ms: i64,
    memory: RwLock<HashMap<String, (i64, Verdict)>>,
    clock: fn() -> i64,
}

impl DiskCache {
    pub fn new(dir: PathBuf, ttl_secs: u64) -> DiskCache {
        DiskCache {
            dir,
            ttl_ms: i64::try_from(ttl_secs).unwrap_or(i64::MAX / 1000).saturating_mul(1000),
            memory: RwLock::default(),
            clock: crate::calendar::now_ms,
        }
    }

    /// Replaces the clock (Unix milliseconds), for tests of expiry.
    pub fn with_clock(mut self, clock: fn() -> i64) -> DiskCache {
        self.clock = clock;
        self
    }

    fn key(server: &str, q: &CodeQuery) -> String {
        let mut h = Sha256::new();
        for part in [server, &q.system, &q.code] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        match &q.display {
            Some(d) => {
                h.update([1]);
                h.update(d.as_bytes());
            }
            None => h.update([2]),
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn fresh(&self, at: i64) -> bool {
        (self.clock)().saturating_sub(at) < self.ttl_ms
    }

    /// A verdict younger than the TTL, from memory or disk.
    pub fn get(&self, server: &str, q: &CodeQuery) -> Option<Verdict> {
        if self.ttl_ms <= 0 {
            return None;
        }
        let key = Self::key(server, q);
        if let Some((at, v)) = self.memory.read().ok()?.get(&key) {
            if self.fresh(*at) {
                return Some(v.clone());
            }
        }
        let bytes = std::fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        let e: Entry = serde_json::from_slice(&bytes).ok()?;
        if !self.fresh(e.at) || e.server != server || e.system != q.system {
            return None;
        }
        if let Ok(mut m) = self.memory.write() {
            m.insert(key, (e.at, e.verdict.clone()));
        }
        Some(e.verdict)
    }

    pub fn put(&self, server: &str, q: &CodeQuery, verdict: &Verdict) {
        let key = Self::key(server, q);
        let at = (self.clock)();
        if let Ok(mut m) = self.memory.write() {
            m.insert(key.clone(), (at, verdict.clone()));
        }
        let e = Entry { at, server: server.to_owned(), system: q.system.clone(), verdict: verdict.clone() };
        let Ok(bytes) = serde_json::to_vec(&e) else { return };
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let tmp = self.dir.join(format!("{key}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, bytes).is_ok() && std::fs::rename(&tmp, self.dir.join(format!("{key}.json"))).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(code: &str) -> CodeQuery {
        CodeQuery { system: "http://x".into(), code: code.into(), display: None }
    }

    static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_000_000);
    fn now() -> i64 {
        NOW.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn a_verdict_survives_a_new_cache_on_the_same_folder_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let ok = Verdict { result: true, message: None, display: Some("A".into()) };
        DiskCache::new(dir.path().into(), 60).with_clock(now).put("http://tx", &q("a"), &ok);
        let again = DiskCache::new(dir.path().into(), 60).with_clock(now);
        assert_eq!(again.get("http://tx", &q("a")), Some(ok.clone()), "read back from disk");
        assert_eq!(again.get("http://other", &q("a")), None, "keyed by server");
        assert_eq!(again.get("http://tx", &q("b")), None, "and by code");
        let with_display = CodeQuery { display: Some("A".into()), ..q("a") };
        assert_eq!(again.get("http://tx", &with_display), None, "and by display");
        NOW.fetch_add(61_000, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(again.get("http://tx", &q("a")), None, "expired in memory");
        assert_eq!(DiskCache::new(dir.path().into(), 60).with_clock(now).get("http://tx", &q("a")), None, "and on disk");
        assert_eq!(DiskCache::new(dir.path().into(), 0).get("http://tx", &q("a")), None);
    }
}
