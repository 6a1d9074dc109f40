//! The search's choices, cached outside OUT_DIR (`<target>/prism/search/`)
//! so every build profile, `cargo check` and the IDE reuse them.
//!
//! An entry maps a content key of (workload program and dims, prism version
//! and source fingerprint, device library) to the chosen strategy and its graph's fingerprint. A
//! cached choice only selects which verified candidate to rebuild (a
//! lowering, or a rank in the deterministic enumeration), and the rebuilt
//! graph must match the fingerprint, so a stale or corrupt entry can cost
//! time, never correctness: unreadable, malformed, other-version or
//! mismatching entries are misses and are overwritten.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ir::Workload;

use super::strategies::Strategy;

/// Bumped when the entry format or the meaning of a strategy changes.
pub const CACHE_VERSION: u32 = 3;

#[derive(Serialize, Deserialize)]
struct Entry {
    version: u32,
    prism: String,
    workload: String,
    strategy: Strategy,
    /// Fingerprint of the chosen graph: a rebuilt graph that differs (a
    /// searched candidate's rank can move when the enumeration changes)
    /// is a miss.
    graph: String,
}

/// 128-bit FNV-1a (two 64-bit lanes with different offsets), hex.
pub fn fingerprint(text: &str) -> String {
    let lane = |offset: u64| {
        text.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016x}{:016x}",
        lane(0xcbf2_9ce4_8422_2325),
        lane(0x6c62_272e_07bb_0142)
    )
}

/// The fingerprint of a kernel graph (of its full debug form).
pub fn graph_fingerprint(g: &crate::ugraph::KernelGraph) -> String {
    fingerprint(&format!("{g:?}"))
}

include!(concat!(env!("OUT_DIR"), "/source_hash.rs"));

/// The content key of a workload's search: the program and dims, and the
/// prism that searched (version and a fingerprint of its sources, so a
/// changed search never reuses an older one's choices).
pub fn key(w: &Workload) -> String {
    let text = format!(
        "prism {} ({:x})\ndevice library {:x}\ncache {CACHE_VERSION}\n{:?}\n{:?}",
        env!("CARGO_PKG_VERSION"),
        SOURCE_HASH,
        crate::device_library::DEVICE_LIBRARY_HASH,
        w.graph,
        w.dims
    );
    fingerprint(&text)
}

/// A cache folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// `<target>/prism/search` for a build script's OUT_DIR: the nearest
    /// ancestor holding cargo's `CACHEDIR.TAG` is the target folder.
    pub fn for_out_dir(out_dir: &Path) -> Option<Cache> {
        out_dir
            .ancestors()
            .find(|a| a.join("CACHEDIR.TAG").is_file())
            .map(|target| Cache::new(target.join("prism").join("search")))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, w: &Workload) -> PathBuf {
        self.dir.join(format!("{}-{}.json", w.name, key(w)))
    }

    /// The cached choice for `w` and its graph's fingerprint, if a valid
    /// entry exists.
    pub fn get(&self, w: &Workload) -> Option<(Strategy, String)> {
        let text = std::fs::read_to_string(self.path(w)).ok()?;
        let e: Entry = serde_json::from_str(&text).ok()?;
        (e.version == CACHE_VERSION && e.prism == env!("CARGO_PKG_VERSION") && e.workload == w.name)
            .then_some((e.strategy, e.graph))
    }

    /// Record the choice for `w` (written to a temporary file and renamed,
    /// so a reader never sees half an entry).
    pub fn put(
        &self,
        w: &Workload,
        strategy: Strategy,
        graph: &crate::ugraph::KernelGraph,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let entry = Entry {
            version: CACHE_VERSION,
            prism: env!("CARGO_PKG_VERSION").to_string(),
            workload: w.name.clone(),
            strategy,
            graph: graph_fingerprint(graph),
        };
        let text = serde_json::to_string_pretty(&entry).map_err(std::io::Error::other)?;
        crate::atomic_write::write(&self.path(w), (text + "\n").as_bytes())
    }
}
