//! A piece of text taken out of a TOML string value (a program, an input
//! type), with the way back to positions in the file.

use crate::diagnostics::Span;

/// Text of a TOML string value and where it sits in the file.
#[derive(Clone, Debug)]
pub struct Snippet<'a> {
    pub text: &'a str,
    /// Span of the whole TOML value, quotes included.
    pub value_span: Span,
    /// File offset of `text[0]` when the file holds `text` verbatim; `None`
    /// when escapes make offsets differ (then errors point at the whole value).
    base: Option<usize>,
}

impl<'a> Snippet<'a> {
    /// `source[value_span]` is the TOML string literal whose decoded value is `text`.
    pub fn new(source: &str, value_span: Span, text: &'a str) -> Self {
        let raw = source.get(value_span.range()).unwrap_or("");
        let base = ["\"\"\"", "'''", "\"", "'"].iter().find_map(|q| {
            let inner = raw.strip_prefix(q)?.strip_suffix(q)?;
            // A newline right after an opening triple quote is not part of the value.
            let (skip, inner) = if q.len() == 3 {
                if let Some(rest) = inner.strip_prefix("\r\n") {
                    (2, rest)
                } else if let Some(rest) = inner.strip_prefix('\n') {
                    (1, rest)
                } else {
                    (0, inner)
                }
            } else {
                (0, inner)
            };
            (inner == text).then_some(value_span.start + q.len() + skip)
        });
        Snippet {
            text,
            value_span,
            base,
        }
    }

    /// A snippet not taken from a file (tests, programmatic use).
    pub fn detached(text: &'a str) -> Self {
        Snippet {
            text,
            value_span: Span::new(0, text.len()),
            base: Some(0),
        }
    }

    /// File span of `text[start..end]`.
    pub fn span(&self, start: usize, end: usize) -> Span {
        match self.base {
            Some(b) => Span::new(b + start, b + end),
            None => self.value_span,
        }
    }
}

impl<'a> Snippet<'a> {
    /// The part `text[start..end]`, keeping the way back to the file.
    pub fn sub(&self, start: usize, end: usize) -> Snippet<'a> {
        Snippet {
            text: &self.text[start..end],
            value_span: self.span(start, end),
            base: self.base.map(|b| b + start),
        }
    }
}
