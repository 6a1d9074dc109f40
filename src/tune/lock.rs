//! `prism.lock`: the tuned choices of one prism.toml, committed next to it
//! so that machines without a GPU build the same kernels (sqlx's offline
//! mode is the precedent).
//!
//! One entry per (workload, shape bucket, target arch), keyed by a content
//! hash of everything that decides which kernels the entry stands for:
//! the workload's program and declared dims, the bucket, the arch, prism's
//! version, nvcc's release and the compile flags. It names the chosen
//! instance ([`InstanceId`] label) and the fingerprint of its graph, which
//! a build compares with the graph it rebuilds: a mismatch means the
//! search changed since the entry was tuned, so the entry is stale (never
//! used silently). `source = "measured"` entries were timed on `device`;
//! `"model"` entries (an arch no GPU here had) are the cost model's choice.
//!
//! The file is TOML, entries in the prism.toml's order (workload, then
//! arch, then bucket), floats rounded, so a re-tune diffs line by line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::buckets::ShapeBucket;
use crate::ir::{Arch, Workload};

/// Bumped when the format or the meaning of an entry changes.
pub const LOCK_VERSION: u32 = 1;

/// The lock's file name, next to prism.toml.
pub const LOCK_FILE: &str = "prism.lock";

/// Where an entry's choice came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Timed on a GPU of this arch: the fastest correct instance.
    Measured,
    /// No GPU of this arch was present: the cost model's first choice.
    Model,
}

/// One tuned choice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub workload: String,
    /// [`ShapeBucket::label`].
    pub bucket: String,
    /// `sm_90a`.
    pub arch: String,
    /// The content key ([`key`]).
    pub key: String,
    /// The chosen instance ([`super::instances::InstanceId::label`]).
    pub instance: String,
    /// Fingerprint of its kernel graph.
    pub graph: String,
    pub source: Source,
    /// Measured median time of the chosen instance, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub micros: Option<f64>,
    /// The cost model's first choice and its measured time, µs (what an
    /// untuned build would run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_micros: Option<f64>,
    /// The GPU it was measured on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// A whole lock file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub version: u32,
    /// nvcc's release the entries were compiled with.
    pub nvcc: String,
    #[serde(default, rename = "entry")]
    pub entries: Vec<Entry>,
}

/// Why a lock cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid prism.lock: {message}\nhint: delete it and run `prism tune` on a machine with a GPU to write it again"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "{path} has format version {found}, this prism reads version {LOCK_VERSION}\nhint: run `prism tune` to write it again"
    )]
    Version { path: PathBuf, found: u32 },
    #[error(
        "{path} has two entries with key {key} (workload `{workload}`)\nhint: delete it and run `prism tune` to write it again"
    )]
    Duplicate {
        path: PathBuf,
        key: String,
        workload: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// 128-bit FNV-1a of `text`, hex (the search cache's fingerprint).
pub fn hash(text: &str) -> String {
    crate::search::cache::fingerprint(text)
}

/// The content key of a tuned choice: the workload's program and declared
/// dims, the bucket, the arch, prism's version, nvcc's release and the
/// compile flags.
pub fn key(w: &Workload, bucket: &ShapeBucket, arch: &Arch, nvcc: &str) -> String {
    let dims: Vec<String> = w
        .dims
        .iter()
        .map(|d| format!("{}={:?}", d.name, d.values))
        .collect();
    hash(&format!(
        "prism.lock v{LOCK_VERSION}\nprism {}\nnvcc {nvcc} {}\narch {arch}\nworkload {}\ndims {}\nbucket {}\nprogram {:?}",
        env!("CARGO_PKG_VERSION"),
        crate::nvcc::FLAGS.join(" "),
        w.name,
        dims.join(" "),
        bucket.label(),
        w.graph,
    ))
}

/// The lock next to a prism.toml.
pub fn path_for(toml: &Path) -> PathBuf {
    toml.parent()
        .unwrap_or_else(|| Path::new("."))
        .join(LOCK_FILE)
}

impl Lock {
    pub fn new(nvcc: &str) -> Self {
        Lock {
            version: LOCK_VERSION,
            nvcc: nvcc.to_string(),
            entries: Vec::new(),
        }
    }

    /// Parse a lock's text (`path` for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Lock, LockError> {
        #[derive(Deserialize)]
        struct Head {
            version: Option<u32>,
        }
        let corrupt = |message: String| LockError::Corrupt {
            path: path.to_path_buf(),
            message,
        };
        let head: Head = toml::from_str(text).map_err(|e| corrupt(e.message().to_string()))?;
        match head.version {
            None => return Err(corrupt("no `version`".into())),
            Some(v) if v != LOCK_VERSION => {
                return Err(LockError::Version {
                    path: path.to_path_buf(),
                    found: v,
                });
            }
            Some(_) => {}
        }
        let lock: Lock = toml::from_str(text).map_err(|e| corrupt(e.message().to_string()))?;
        let mut keys = std::collections::HashSet::new();
        for e in &lock.entries {
            if !keys.insert(e.key.as_str()) {
                return Err(LockError::Duplicate {
                    path: path.to_path_buf(),
                    key: e.key.clone(),
                    workload: e.workload.clone(),
                });
            }
        }
        Ok(lock)
    }

    /// The lock at `path`, `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(&text, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The file's text: a header comment, then the entries as they are
    /// ordered (the tuner orders them), times rounded to 0.1 µs.
    pub fn render(&self) -> String {
        let mut copy = self.clone();
        for e in &mut copy.entries {
            let round = |v: &mut Option<f64>| {
                if let Some(x) = v {
                    *x = (*x * 10.0).round() / 10.0;
                }
            };
            round(&mut e.micros);
            round(&mut e.model_micros);
        }
        let body = toml::to_string(&copy).unwrap_or_default();
        format!(
            "# prism.lock: the tuned kernel instance of every workload, shape bucket and GPU\n\
             # architecture of the prism.toml next to it. Written by `prism tune`; do not edit.\n\
             # `prism tune --check` says whether it is complete and up to date.\n\n{body}"
        )
    }

    /// Write the lock to `path` (unchanged files are not touched).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let text = self.render();
        if std::fs::read(path).is_ok_and(|old| old == text.as_bytes()) {
            return Ok(());
        }
        std::fs::write(path, text).map_err(|source| LockError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The entry with `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}
