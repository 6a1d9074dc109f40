//! The CUDA device library (headers under cuda/), embedded by build.rs so a
//! downstream build can write it next to generated kernels without a prism
//! checkout.

use std::path::Path;

include!(concat!(env!("OUT_DIR"), "/device_library.rs"));

/// Write every header under `dir` (e.g. `dir/prism/common.cuh`), so that
/// `nvcc -I dir` finds them. Returns the paths written.
pub fn write_to(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for (rel, text) in DEVICE_LIBRARY {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}
