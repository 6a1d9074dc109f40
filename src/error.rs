//! The library's error type.

use std::path::PathBuf;

use crate::diagnostics::Report;

pub use crate::reference::EvalError;

/// Why the front end (or the CPU reference interpreter) failed.
///
/// [`frontend::load`](crate::frontend::load) returns it: a file that cannot
/// be read, or one whose content is invalid. Its message (`Display`) is what
/// to show a user; an [`Error::Invalid`] prints every located diagnostic.
///
/// ```
/// let err = prism::frontend::load(std::path::Path::new("no/such/prism.toml")).unwrap_err();
/// assert!(matches!(err, prism::Error::Read { .. }));
/// assert!(err.to_string().starts_with("cannot read no/such/prism.toml"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read.
    #[error("cannot read {}: {source}\nhint: check the path, or run without one to use the bundled prism.toml", path.display())]
    Read {
        /// The path given.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The prism.toml has errors: every one, located.
    #[error("{0}")]
    Invalid(#[from] Report),
    /// The CPU reference interpreter could not evaluate a workload.
    #[error(transparent)]
    Eval(#[from] crate::reference::EvalError),
}

impl std::error::Error for Report {}
