//! `prism.lock`: the tuned choices of one prism.toml, committed next to it
//! so that machines without a GPU build the same kernels (sqlx's offline
//! mode is the precedent).
//!
//! One entry per (workload, shape bucket, target arch), keyed by a content
//! hash of everything that decides which kernels the entry stands for:
//! the workload's program and declared dims, the bucket, the arch, prism's
//! version, nvcc's release and the compile flags. It names the chosen
//! instance ([`InstanceId`](super::instances::InstanceId) label) and the
//! fingerprint of its graph, which a build compares with the graph it
//! rebuilds: a mismatch means the search changed since the entry was tuned,
//! so the entry is stale (never used silently). `source = "measured"` entries were timed on `device`;
//! `"model"` entries (an arch no GPU here had) are the cost model's choice.
//!
//! The file is TOML, entries in the prism.toml's order (workload, then
//! arch, then bucket), floats rounded, so a re-tune diffs line by line.
//!
//! ## Integrity
//!
//! The writer seals the file with a `checksum = "<32 hex digits>"` line,
//! the first line that is neither blank nor a comment (right after the
//! header comments), and the reader refuses a file whose checksum is
//! missing, malformed or wrong ([`LockError::Checksum`]) before it looks
//! at anything else. The checksum is [`hash`] of the whole file with the
//! checksum's value cut out: every other byte, comments and the key
//! `checksum = "` itself included. See [`verify`] for why any single-byte
//! substitution is caught with certainty, and why a CRLF checkout still
//! verifies. It detects corruption and hand edits, not tampering: anyone
//! can compute the hash of an edited file.
//!
//! Adding the checksum did not bump [`LOCK_VERSION`]: an older prism reads a
//! sealed lock (it ignores the extra key), and the version takes part in
//! every entry's [`key`], so a bump would have made every committed lock
//! stale. A future format must keep the checksum line as it is, so that
//! this reader gets past it and reports the version instead.

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
    /// The lock exists but cannot be read.
    #[error(
        "cannot read {path}: {source}\nhint: check the file's permissions, or delete it and run `prism tune` on a machine with a GPU"
    )]
    Read {
        /// The prism.lock.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The lock is not valid TOML or not a prism.lock.
    #[error(
        "{path} is not a valid prism.lock: {message}\nhint: restore it from version control, or delete it and run `prism tune` on a machine with a GPU to write it again"
    )]
    Corrupt {
        /// The prism.lock.
        path: PathBuf,
        /// What the TOML parser said.
        message: String,
    },
    /// The checksum line is missing, malformed or does not match the
    /// content: the file was damaged or edited by hand.
    #[error(
        "{path} is corrupt or was edited by hand: {problem}\nhint: restore it from version control (e.g. `git checkout -- {path}`), or run `prism tune` on the prism.toml next to it on a machine with a GPU to write it again; prism.lock is written by `prism tune` only, never by hand"
    )]
    Checksum {
        /// The prism.lock.
        path: PathBuf,
        /// What is wrong with it.
        problem: ChecksumProblem,
    },
    /// The lock was written in another format version.
    #[error(
        "{path} has format version {found}, this prism reads version {LOCK_VERSION}\nhint: run `prism tune` to write it again"
    )]
    Version {
        /// The prism.lock.
        path: PathBuf,
        /// Its format version.
        found: u32,
    },
    /// Two entries have the same key.
    #[error(
        "{path} has two entries with key {key} (workload `{workload}`)\nhint: delete it and run `prism tune` to write it again"
    )]
    Duplicate {
        /// The prism.lock.
        path: PathBuf,
        /// The duplicated key.
        key: String,
        /// The workload of those entries.
        workload: String,
    },
    /// The lock (or the tuning cache) cannot be written.
    #[error(
        "cannot write {path}: {source}\nhint: check that its directory is writable and the disk is not full"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why writing failed.
        #[source]
        source: std::io::Error,
    },
}

/// What is wrong with a lock's checksum ([`LockError::Checksum`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChecksumProblem {
    /// The file is not UTF-8 text.
    #[error("it is not UTF-8 text")]
    NotUtf8,
    /// Some lines end in CRLF and others in LF, or a carriage return stands
    /// alone.
    #[error(
        "its line endings are mixed (some CRLF, some LF, or a lone carriage return on line {line})"
    )]
    LineEndings {
        /// The first line (1-based) whose ending differs.
        line: usize,
    },
    /// No line other than comments and blank lines.
    #[error("it holds nothing but comments, not even a `checksum` line")]
    Empty,
    /// The first line after the comments is not a checksum.
    #[error(
        "it has no `checksum` line: the first line after the header comments, line {line}, is `{found}`"
    )]
    Missing {
        /// That line (1-based).
        line: usize,
        /// Its text.
        found: String,
    },
    /// The first line after the comments is a checksum line, but not
    /// `checksum = "<32 lowercase hex digits>"`.
    #[error("line {line} should be `checksum = \"<32 lowercase hex digits>\"`, found `{found}`")]
    Malformed {
        /// That line (1-based).
        line: usize,
        /// Its text.
        found: String,
    },
    /// The content does not hash to the recorded checksum.
    #[error("its checksum is {recorded} but its content hashes to {computed}")]
    Mismatch {
        /// The checksum the file records.
        recorded: String,
        /// The hash of its content.
        computed: String,
    },
}

/// 128-bit FNV-1a of `text`, hex (the search cache's fingerprint: two 64-bit
/// FNV-1a lanes with different offset bases).
pub fn hash(text: &str) -> String {
    crate::search::cache::fingerprint(text)
}

/// What precedes the checksum's value on its line.
const CHECKSUM_KEY: &str = "checksum = \"";

/// Digits of a checksum ([`hash`]).
const CHECKSUM_DIGITS: usize = 32;

/// Whether a (newline-less) line is skipped when looking for the checksum
/// line: blank (empty) or a comment.
fn header_line(line: &str) -> bool {
    line.is_empty() || line.starts_with('#')
}

/// `text` with CRLF line endings turned into LF: unchanged when it holds no
/// carriage return; otherwise every line must end in CRLF and no carriage
/// return may stand elsewhere (what git's `autocrlf` makes of an LF file).
///
/// Why this keeps every single-byte substitution detectable: the writer
/// writes LF only. A substitution that brings in or removes a `\r` or a
/// `\n` next to one leaves either a lone `\r`, or a bare LF among CRLF
/// endings, or one CRLF among LF endings (a lock has many lines), and all
/// three are refused here. Any other substitution in a consistent file
/// maps to exactly one substituted byte at the same place of the
/// normalised text, which [`verify`]'s hash catches. (A plain
/// `replace("\r\n", "\n")` would not do: turning the byte before an LF
/// into `\r` would delete that byte from the hashed text instead.)
fn normalise_newlines(text: &str) -> Result<std::borrow::Cow<'_, str>, ChecksumProblem> {
    if !text.contains('\r') {
        return Ok(std::borrow::Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut line = 1;
    for (i, &b) in bytes.iter().enumerate() {
        let ok = match b {
            b'\r' => bytes.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && bytes[i - 1] == b'\r',
            _ => true,
        };
        if !ok {
            return Err(ChecksumProblem::LineEndings { line });
        }
        if b == b'\n' {
            line += 1;
        }
    }
    Ok(std::borrow::Cow::Owned(text.replace("\r\n", "\n")))
}

/// Where the checksum's value lies in LF-normalised `text`: the byte range
/// of its digits, and the recorded value.
fn locate_checksum(text: &str) -> Result<(std::ops::Range<usize>, &str), ChecksumProblem> {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let body = line.strip_suffix('\n').unwrap_or(line);
        if header_line(body) {
            offset += line.len();
            continue;
        }
        let value = body
            .strip_prefix(CHECKSUM_KEY)
            .and_then(|rest| rest.strip_suffix('"'))
            .filter(|v| {
                v.len() == CHECKSUM_DIGITS
                    && v.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            });
        return match value {
            Some(v) => {
                let start = offset + CHECKSUM_KEY.len();
                Ok((start..start + CHECKSUM_DIGITS, v))
            }
            None if !body.starts_with("checksum") => Err(ChecksumProblem::Missing {
                line: i + 1,
                found: body.chars().take(80).collect(),
            }),
            None => Err(ChecksumProblem::Malformed {
                line: i + 1,
                found: body.chars().take(80).collect(),
            }),
        };
    }
    Err(ChecksumProblem::Empty)
}

/// `text` sealed: a `checksum = "<hash>"` line inserted before its first
/// line that is neither blank nor a comment (at the end when there is
/// none), the hash taken over the result with the value left empty. The
/// inverse of [`verify`]; [`Lock::render`] seals what it writes. `text`
/// must use LF line endings and hold no checksum line.
pub fn seal(text: &str) -> String {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        if !header_line(body) {
            break;
        }
        at += line.len();
    }
    let (head, tail) = text.split_at(at);
    let sep = if head.is_empty() || head.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let open = format!("{head}{sep}{CHECKSUM_KEY}");
    let close = format!("\"\n{tail}");
    let digest = hash(&format!("{open}{close}"));
    format!("{open}{digest}{close}")
}

/// Check the checksum of a lock's text ([`seal`]): LF-normalised (see
/// `normalise_newlines`), the first line that is neither blank nor a
/// comment must be `checksum = "<32 lowercase hex digits>"`, and the text
/// with those digits cut out must [`hash`] to them. Returns the normalised
/// text.
///
/// Every single-byte substitution of a sealed file is refused, not just
/// with high probability: one in the digits makes them malformed or names
/// another hash of unchanged content; one that moves, breaks or hides the
/// checksum line (a comment's `#`, a newline before it, the key, the
/// quotes) makes it malformed or missing; anything else changes exactly
/// one byte of the hashed text without moving the digits, and each 64-bit
/// FNV-1a lane, `h = (h ^ byte) * prime mod 2^64` with an odd prime, is a
/// bijection of the state for every byte, so two texts of one length that
/// differ in one byte always hash differently.
pub fn verify(text: &str) -> Result<std::borrow::Cow<'_, str>, ChecksumProblem> {
    let text = normalise_newlines(text)?;
    let (range, recorded) = locate_checksum(&text)?;
    let computed = hash(&format!("{}{}", &text[..range.start], &text[range.end..]));
    if computed != recorded {
        return Err(ChecksumProblem::Mismatch {
            recorded: recorded.to_string(),
            computed,
        });
    }
    Ok(text)
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
    /// Every entry's chosen instance label by (workload, bucket label,
    /// arch): what a re-tune times again beside the model's top-k
    /// ([`super::tuner::TuneOptions::incumbents`]).
    pub fn choices(&self) -> std::collections::BTreeMap<(String, String, String), String> {
        self.entries
            .iter()
            .map(|e| {
                (
                    (e.workload.clone(), e.bucket.clone(), e.arch.clone()),
                    e.instance.clone(),
                )
            })
            .collect()
    }

    pub fn new(nvcc: &str) -> Self {
        Lock {
            version: LOCK_VERSION,
            nvcc: nvcc.to_string(),
            entries: Vec::new(),
        }
    }

    /// Parse a lock's text (`path` for messages): its checksum first
    /// ([`verify`]), then the TOML.
    pub fn parse(text: &str, path: &Path) -> Result<Lock, LockError> {
        #[derive(Deserialize)]
        struct Head {
            version: Option<u32>,
        }
        let verified = verify(text).map_err(|problem| LockError::Checksum {
            path: path.to_path_buf(),
            problem,
        })?;
        let text: &str = &verified;
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

    /// Parse a lock file's bytes (`path` for messages): not UTF-8 is a
    /// [`LockError::Checksum`] too.
    pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Lock, LockError> {
        let text = std::str::from_utf8(bytes).map_err(|_| LockError::Checksum {
            path: path.to_path_buf(),
            problem: ChecksumProblem::NotUtf8,
        })?;
        Lock::parse(text, path)
    }

    /// The lock at `path`, `None` when there is none.
    pub fn read(path: &Path) -> Result<Option<Lock>, LockError> {
        match std::fs::read(path) {
            Ok(bytes) => Lock::parse_bytes(&bytes, path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(LockError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The file's text: a header comment, the checksum ([`seal`]), then
    /// the entries as they are ordered (the tuner orders them), times
    /// rounded to 0.1 µs.
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
        seal(&format!(
            "# prism.lock: the tuned kernel instance of every workload, shape bucket and GPU\n\
             # architecture of the prism.toml next to it. Written by `prism tune`; do not edit.\n\
             # `prism tune --check` says whether it is complete and up to date.\n\
             # `checksum` covers every other byte of this file: builds refuse a lock edited by hand.\n\n{body}"
        ))
    }

    /// Write the lock to `path` (unchanged files are not touched),
    /// atomically: the text goes to a temporary file in the same directory,
    /// which is flushed to disk and then renamed over `path`, so a reader,
    /// or a `prism tune` killed halfway, sees the old file or the new one,
    /// never a part of one.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        crate::atomic_write::write(path, self.render().as_bytes()).map_err(|source| {
            LockError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// The entry with `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}
