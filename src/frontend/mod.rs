//! Front end: prism.toml and its expression language, into the IR.
//!
//! [`parse`] turns the text of a prism.toml into a validated [`Spec`]; every
//! problem comes back as a located [`Report`]. [`load`] reads a file first;
//! [`embedded`] parses the bundled prism.toml ([`EMBEDDED_PRISM_TOML`]).
//!
//! The file format and the expression language are described in the
//! README's "prism.toml" and "The expression language" sections.

// Internal, public for prism's tests and fuzzers (the parser round-trip, the
// expression fuzzer): the syntax tree, lexer, parser and the steps from the
// TOML tree to the IR. No stability promise; use `parse` instead.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod ast;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod config;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod dims;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod lexer;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod library;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod lower;
#[doc(hidden)]
#[allow(missing_docs)]
pub mod parser;
#[doc(hidden)]
#[allow(missing_docs)]
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
///
/// Returns the [`Spec`] (the target and every workload as a shape-checked
/// tensor-program graph), or a [`Report`] with one located [`Diagnostic`]
/// per problem (the front end goes on past a broken workload, so one report
/// can list several).
///
/// ```
/// let toml = r#"
/// [target]
/// arch = ["sm_90a"]
///
/// [workload.rms_norm]
/// inputs = { x = "f16[n, d]", w = "f16[d, d]" }
/// program = "matmul(rms_norm(x), w)"
/// dims = { n = "1..=64", d = [1024, 4096] }
/// "#;
/// let spec = prism::frontend::parse("prism.toml", toml).expect("valid");
/// assert_eq!(spec.target.archs[0].to_string(), "sm_90a");
///
/// let w = spec.workload("rms_norm").expect("declared");
/// let d = w.dim("d").expect("declared");
/// assert_eq!((d.values.min(), d.values.max()), (1024, 4096));
/// let out = w.graph.node(w.graph.outputs[0].node);
/// assert_eq!(prism::ir::type_string(out.dtype, &out.shape), "f16[n, d]");
/// ```
///
/// An invalid file gives a report; each diagnostic has a stable code, and
/// the rendered report points at the text:
///
/// ```
/// let toml = r#"
/// [workload.bad]
/// inputs = { x = "f16[n, d]", w = "f16[k, d]" }
/// program = "x @ w"
/// dims = { n = 8, d = 64, k = 32 }
/// "#;
/// let report = prism::frontend::parse("prism.toml", toml).unwrap_err();
/// let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code).collect();
/// assert_eq!(codes, ["shape-mismatch"]);
///
/// let text = report.render(false);
/// assert!(text.contains("error[shape-mismatch]"), "{text}");
/// assert!(text.contains("prism.toml:4:12"), "{text}"); // the `x @ w` in `program`
/// assert!(text.contains("hint: "), "{text}");
/// ```
///
/// [`Diagnostic`]: crate::Diagnostic
pub fn parse(name: &str, source: &str) -> Result<Spec, Report> {
    config::parse_spec(name, source).map_err(|diagnostics| Report {
        path: name.to_string(),
        source: source.to_string(),
        diagnostics,
    })
}

/// Read and validate a prism.toml file: [`parse`] of its text, named by its
/// path. A file that cannot be read is [`Error::Read`], an invalid one
/// [`Error::Invalid`].
pub fn load(path: &Path) -> Result<Spec, Error> {
    let source = std::fs::read_to_string(path).map_err(|e| Error::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(parse(&path.display().to_string(), &source)?)
}

/// The bundled prism.toml, parsed.
///
/// ```
/// let spec = prism::frontend::embedded().expect("the bundled prism.toml is valid");
/// assert!(spec.workload("rms_norm").is_some());
/// assert!(spec.workloads.len() >= 5);
/// ```
pub fn embedded() -> Result<Spec, Report> {
    parse(EMBEDDED_NAME, EMBEDDED_PRISM_TOML)
}
