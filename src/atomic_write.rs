//! Writing a file so that a reader, or a process killed halfway, sees its
//! old content or its new content, never part of one: the prism.lock, the
//! device library headers that parallel nvcc runs read, the search cache,
//! the build report and its data.

use std::io::Write as _;
use std::path::Path;

/// Write `bytes` to `path`, leaving an unchanged file alone: through a
/// temporary file in the same directory (`.<name>.<pid>-<n>.tmp`, unique per
/// process and call), flushed to disk, then renamed over `path`. On failure
/// the temporary file is removed and `path` is untouched.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
