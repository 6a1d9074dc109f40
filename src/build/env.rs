//! The environment a build reads, captured once so that tests (and tools)
//! can inject values instead of mutating the process environment.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

/// Every environment variable [`crate::build::Build`] may read. All but
/// `OUT_DIR` (which cargo sets per build) get a `cargo::rerun-if-env-changed`.
pub const ENV_VARS: &[&str] = &[
    "PRISM_NVCC",
    "NVCC",
    "CUDA_HOME",
    "CUDA_PATH",
    "PATH",
    "CUDA_COMPUTE_CAP",
    "NUM_JOBS",
    "DOCS_RS",
    "PRISM_OFFLINE",
    "PRISM_UPDATE_LOCK",
    "OUT_DIR",
];

/// Variables that cargo sets itself; a change to them needs no rerun request.
const CARGO_SET: &[&str] = &["OUT_DIR"];

/// A snapshot of [`ENV_VARS`], with overrides.
///
/// [`Build::from_toml`](super::Build::from_toml) captures the process's
/// values; [`Build::env`](super::Build::env),
/// [`Build::env_remove`](super::Build::env_remove) and
/// [`Build::with_env`](super::Build::with_env) change them without touching
/// the process environment.
///
/// ```
/// use prism::build::Env;
///
/// let mut env = Env::empty();
/// env.set("CUDA_COMPUTE_CAP", "90");
/// env.set("NUM_JOBS", "");
/// assert_eq!(env.get("CUDA_COMPUTE_CAP"), Some(std::ffi::OsStr::new("90")));
/// assert_eq!(env.get_nonempty("NUM_JOBS"), None); // set, but empty
/// env.remove("CUDA_COMPUTE_CAP");
/// assert_eq!(env.get("CUDA_COMPUTE_CAP"), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    vars: BTreeMap<String, OsString>,
}

impl Env {
    /// The current process's values of [`ENV_VARS`].
    pub fn capture() -> Self {
        let vars = ENV_VARS
            .iter()
            .filter_map(|k| std::env::var_os(k).map(|v| (k.to_string(), v)))
            .collect();
        Env { vars }
    }

    /// No variables at all.
    pub fn empty() -> Self {
        Env::default()
    }

    /// Give `key` (one of [`ENV_VARS`]) the value `value`.
    pub fn set(&mut self, key: &str, value: impl Into<OsString>) {
        self.vars.insert(key.to_string(), value.into());
    }

    /// Treat `key` as unset.
    pub fn remove(&mut self, key: &str) {
        self.vars.remove(key);
    }

    /// The value of `key`, `None` when unset. `key` must be one of
    /// [`ENV_VARS`] (checked in debug builds).
    pub fn get(&self, key: &str) -> Option<&OsStr> {
        debug_assert!(ENV_VARS.contains(&key), "{key} is not in ENV_VARS");
        self.vars.get(key).map(OsString::as_os_str)
    }

    /// The value of `key` unless it is unset or empty.
    pub fn get_nonempty(&self, key: &str) -> Option<&OsStr> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// The variables whose changes must rerun the build script.
    pub fn rerun_vars() -> impl Iterator<Item = &'static str> {
        ENV_VARS.iter().copied().filter(|v| !CARGO_SET.contains(v))
    }
}
