//! The library's error type.

use std::path::PathBuf;

use crate::diagnostics::Report;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}\nhint: check the path, or run without one to use the bundled prism.toml", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(#[from] Report),
    #[error(transparent)]
    Eval(#[from] crate::reference::EvalError),
}

impl std::error::Error for Report {}
