//! Files written for people and systems that import them: atomically, or not at all, and
//! private to the gateway's user.
//!
//! Invariant: every folder this module creates is `0700` and every file `0600`, whatever the
//! umask (they hold patient data: the store, outbox Bundles, converted output, the keys file).

use std::path::Path;

/// Creates `dir` and its missing parents as `0700` (folders that already exist keep their mode:
/// `/var/lib` is not ours to change).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Makes an existing file readable and writable by its owner only.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    let _ = path;
    Ok(())
}

/// Options that create a file as `0600` (the umask can only take more away), for writing.
fn private_options(truncate: bool) -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// Creates `path` empty as `0600` if it does not exist; makes it `0600` if it does.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    private_options(false).open(path)?;
    make_private(path)
}

/// `s` made safe as part of a file name: `[A-Za-z0-9._-]`, anything else `_`, no leading dot.
fn safe_name(s: &str) -> String {
    let n: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    n.trim_start_matches('.').to_owned()
}

/// The file of a record's Bundle, for directory destinations and `mhg convert --out`:
/// `<sourceSystem>~<recordId>.v<version>.json`. The whole identity is in the name (two systems'
/// `R-1` are two files); `~` never comes out of [`safe_name`], so the parts cannot run into each
/// other; and when either part had to be rewritten, a digest of the exact identity follows, so
/// two identities that rewrite alike still get two files. A name never leaves its folder.
pub fn record_file_name(source_system: &str, record_id: &str, version: i64) -> String {
    let (src, rid) = (safe_name(source_system), safe_name(record_id));
    let exact = src == source_system && rid == record_id && !src.is_empty() && !rid.is_empty();
    let tag = if exact {
        String::new()
    } else {
        use sha2::Digest;
        let d = sha2::Sha256::digest(serde_json::json!([source_system, record_id]).to_string().as_bytes());
        format!("-{}", d.iter().take(4).map(|b| format!("{b:02x}")).collect::<String>())
    };
    format!("{src}~{rid}{tag}.v{version}.json")
}

/// Write to a temporary name, fsync, rename into place, fsync the folder: a reader never sees a
/// half-written Bundle, and a crash leaves either the old file or the new one. The file is
/// `0600`, the folder (when made here) `0700`.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    private_dir(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = private_options(true).open(&tmp)?;
        make_private(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
    }

    #[test]
    fn file_names_carry_the_whole_identity() {
        use super::record_file_name as name;
        assert_eq!(name("emr-ke", "R-1", 2), "emr-ke~R-1.v2.json");
        assert_ne!(name("emr-ke", "R-1", 2), name("emr-ug", "R-1", 2));
        // Rewritten parts get a digest of the exact identity.
        assert_ne!(name("a/b", "R", 1), name("a_b", "R", 1));
        for n in [name("a/b", "R", 1), name("..", "../x", 1), name("", "", 1)] {
            assert!(!n.contains('/') && !n.starts_with('.'), "{n}");
        }
    }

    #[test]
    fn folders_and_files_are_private() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        super::write_atomic(&dir, "x.json", b"{}").unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        assert_eq!(mode(&dir.join("x.json")), 0o600);
        let f = t.path().join("open.db");
        std::fs::write(&f, b"").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        super::private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
    }
}
