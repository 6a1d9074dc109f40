//! Front end: prism.toml and its expression language, into the IR.
//!
//! [`parse`] turns the text of a prism.toml into a validated [`Spec`]; every
//! problem comes back as a located [`Report`].

pub mod ast;
pub mod config;
pub mod dims;
pub mod lexer;
pub mod library;
pub mod lower;
pub mod parser;
pub mod snippet;

use std::path::Path;

use crate::diagnostics::Report;
use crate::error::Error;
use crate::ir::Spec;

/// The bundled prism.toml: Prism's five evaluation workloads and the
/// real-model ones. The CLI uses it when no file is given.
pub const EMBEDDED_PRISM_TOML: &str = include_str!("../../prism.toml");

/// Name the embedded file goes by in messages.
pub const EMBEDDED_NAME: &str = "<embedded prism.toml>";

/// Parse and validate the text of a prism.toml named `name` (for messages).
pub fn parse(name: &str, source: &str) -> Result<Spec, Report> {
    config::parse_spec(name, source).map_err(|diagnostics| Report {
        path: name.to_string(),
        source: source.to_string(),
        diagnostics,
    })
}

/// Read and validate a prism.toml file.
pub fn load(path: &Path) -> Result<Spec, Error> {
    let source = std::fs::read_to_string(path).map_err(|e| Error::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(parse(&path.display().to_string(), &source)?)
}

/// The bundled prism.toml, parsed.
pub fn embedded() -> Result<Spec, Report> {
    parse(EMBEDDED_NAME, EMBEDDED_PRISM_TOML)
}
