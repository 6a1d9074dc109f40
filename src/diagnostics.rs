//! Located error messages: `file:line:col`, the offending text underlined, and
//! a hint that says what to do. Rendering is codespan-reporting's.
//!
//! The front end reports every problem of a prism.toml as a [`Diagnostic`]
//! (a stable [`code`](Diagnostic::code), a message, a [`Span`], a label and a
//! hint), collected with the file's text in a [`Report`], which renders them
//! for a terminal ([`Report::render`]) or locates them for JSON
//! ([`Report::located`]).

use std::fmt;
use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Config};
use serde::Serialize;

/// Byte range in a source file.
///
/// ```
/// use prism::Span;
///
/// let a = Span::new(4, 7);
/// let b = Span::from(10..12);
/// assert_eq!(a.join(b), Span::new(4, 12));
/// assert_eq!(&"let h = x"[a.range()], "h =");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The bytes `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// `start..end`, to index the source text.
    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

impl From<Range<usize>> for Span {
    fn from(r: Range<usize>) -> Self {
        Span::new(r.start, r.end)
    }
}

/// One problem in a source file.
///
/// ```
/// use prism::{Diagnostic, Span};
///
/// let d = Diagnostic::new("unknown-op", Span::new(0, 4), "unknown op `relo`")
///     .label("not an operator")
///     .hint("did you mean `relu`?");
/// assert_eq!(d.code, "unknown-op");
/// assert_eq!(d.hint.as_deref(), Some("did you mean `relu`?"));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Stable name of the kind of problem, e.g. `unknown-op`. Codes do not
    /// change between versions; match on them, not on messages.
    pub code: &'static str,
    /// What is wrong, in one line.
    pub message: String,
    /// Where: the bytes to underline.
    pub span: Span,
    /// Short text under the underline.
    pub label: String,
    /// What to do about it, when prism knows.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with no label and no hint.
    pub fn new(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
            label: String::new(),
            hint: None,
        }
    }

    /// With this text under the underline.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// With this hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one file, with the file's text to show them in.
///
/// [`frontend::parse`](crate::frontend::parse) returns one for an invalid
/// prism.toml; its `Display` is [`Report::render`] without colours.
///
/// ```
/// let toml = r#"
/// [workload.w]
/// inputs = { x = "f16[n]" }
/// program = "relo(x)"
/// dims = { n = 8 }
/// "#;
/// let report = prism::frontend::parse("prism.toml", toml).unwrap_err();
/// let d = &report.diagnostics[0];
/// assert_eq!(d.code, "unknown-op");
/// assert_eq!(report.line_col(d.span.start), (4, 12)); // `relo` in `program = "relo(x)"`
///
/// let located = report.located();
/// assert_eq!((located[0].line, located[0].column), (4, 12));
/// assert_eq!(located[0].text, "relo");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The file's name, as messages show it.
    pub path: String,
    /// The file's text.
    pub source: String,
    /// The problems, in the order found.
    pub diagnostics: Vec<Diagnostic>,
}

/// A diagnostic with its position resolved, for `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct LocatedDiagnostic {
    /// [`Diagnostic::code`].
    pub code: &'static str,
    /// [`Diagnostic::message`].
    pub message: String,
    /// [`Report::path`].
    pub file: String,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (in characters) of the span's start.
    pub column: usize,
    /// The source text the span covers.
    pub text: String,
    /// [`Diagnostic::hint`].
    pub hint: Option<String>,
}

impl Report {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.source, offset);
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// Every diagnostic with its line, column and text resolved (what
    /// `prism check --json` prints).
    pub fn located(&self) -> Vec<LocatedDiagnostic> {
        self.diagnostics
            .iter()
            .map(|d| {
                let (line, column) = self.line_col(d.span.start);
                let end = floor_char_boundary(&self.source, d.span.end.max(d.span.start));
                let start = floor_char_boundary(&self.source, d.span.start);
                LocatedDiagnostic {
                    code: d.code,
                    message: d.message.clone(),
                    file: self.path.clone(),
                    line,
                    column,
                    text: self.source[start..end].to_string(),
                    hint: d.hint.clone(),
                }
            })
            .collect()
    }

    fn to_codespan(&self, d: &Diagnostic) -> CsDiagnostic<()> {
        let start = floor_char_boundary(&self.source, d.span.start);
        let end = floor_char_boundary(&self.source, d.span.end).max(start);
        let mut notes = Vec::new();
        if let Some(h) = &d.hint {
            notes.push(format!("hint: {h}"));
        }
        CsDiagnostic::error()
            .with_message(&d.message)
            .with_code(d.code)
            .with_labels(vec![Label::primary((), start..end).with_message(&d.label)])
            .with_notes(notes)
    }

    /// Render for a terminal, with colours when `color` is set: per
    /// diagnostic `error[code]: message`, the `file:line:col`, the line with
    /// the span underlined and labelled, and the hint.
    ///
    /// ```
    /// let toml = "[workload.w]\ninputs = { x = \"f16[n]\" }\nprogram = \"relo(x)\"\ndims = { n = 8 }\n";
    /// let report = prism::frontend::parse("prism.toml", toml).unwrap_err();
    /// let text = report.render(false);
    /// assert!(text.starts_with("error[unknown-op]: unknown op `relo`"), "{text}");
    /// assert!(text.contains("prism.toml:3:12"), "{text}");
    /// assert!(text.contains("^^^^"), "{text}"); // `relo` underlined
    /// assert!(text.contains("hint: "), "{text}");
    /// assert_eq!(text, report.to_string());
    /// ```
    pub fn render(&self, color: bool) -> String {
        let file = SimpleFile::new(&self.path, &self.source);
        let config = Config::default();
        let mut out = String::new();
        for d in &self.diagnostics {
            let cs = self.to_codespan(d);
            if color {
                let mut buf = term::termcolor::Buffer::ansi();
                if term::emit_to_write_style(&mut buf, &config, &file, &cs).is_ok() {
                    out.push_str(&String::from_utf8_lossy(buf.as_slice()));
                    continue;
                }
            }
            match term::emit_into_string(&config, &file, &cs) {
                Ok(s) => out.push_str(&s),
                Err(_) => out.push_str(&format!("error[{}]: {}\n", d.code, d.message)),
            }
        }
        out
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
