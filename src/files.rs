//! Files written for people and systems that import them: atomically, or not at all.

use std::path::Path;

/// Write to a temporary name, fsync, rename into place, fsync the folder: a reader never sees a
/// half-written Bundle, and a crash leaves either the old file or the new one.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}
