//! Located error messages: `file:line:col`, the offending text underlined, and
//! a hint that says what to do. Rendering is codespan-reporting's.

use std::fmt;
use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Config};
use serde::Serialize;

/// Byte range in a source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub fn join(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

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
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Stable name of the kind of problem, e.g. `unknown-op`.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    /// Short text under the underline.
    pub label: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
            label: String::new(),
            hint: None,
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one file, with the file's text to show them in.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub path: String,
    pub source: String,
    pub diagnostics: Vec<Diagnostic>,
}

/// A diagnostic with its position resolved, for `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct LocatedDiagnostic {
    pub code: &'static str,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub text: String,
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

    /// Render for a terminal, with colours when `color` is set.
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
