//! The CUDA device library (headers under cuda/), embedded by build.rs so a
//! downstream build can write it next to generated kernels without a prism
//! checkout.

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/device_library.rs"));

/// Write every header under `dir` (e.g. `dir/prism/common.cuh`), so that
/// `nvcc -I dir` finds them. Returns the paths of the headers.
///
/// Safe while other threads or processes compile against `dir` (prism
/// bench and the tuner compile workloads in parallel, each writing the
/// library first): a header whose content is already right is left alone,
/// and any other is written atomically (`crate::atomic_write`), so a reader
/// sees the old or the new header, never a truncated one. (A plain rewrite
/// once made nvcc fail on an H200 with "namespace prism has no member
/// FlashPartial".)
pub fn write_to(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for (rel, text) in DEVICE_LIBRARY {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::atomic_write::write(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}
