//! A piece of text taken out of a TOML string value (a program, an input
//! type), with the way back to positions in the file.

use std::sync::Arc;

use crate::diagnostics::Span;

/// How offsets in the decoded text map back to the file.
#[derive(Clone, Debug)]
enum Map {
    /// The file holds the text verbatim from this offset on.
    Verbatim(usize),
    /// Escapes make offsets differ: for every byte of the whole decoded
    /// value, the file span of the character or escape it came from, and the
    /// file offset just past the value's last character. `shift` is where
    /// this snippet's text starts in the whole value.
    Escaped {
        spans: Arc<[(usize, usize)]>,
        end: usize,
        shift: usize,
    },
    /// No way back: errors point at the whole value.
    Whole,
}

/// Text of a TOML string value and where it sits in the file.
#[derive(Clone, Debug)]
pub struct Snippet<'a> {
    pub text: &'a str,
    /// Span of the whole TOML value, quotes included.
    pub value_span: Span,
    map: Map,
}

impl<'a> Snippet<'a> {
    /// `source[value_span]` is the TOML string literal whose decoded value is `text`.
    pub fn new(source: &str, value_span: Span, text: &'a str) -> Self {
        let raw = source.get(value_span.range()).unwrap_or("");
        let map = ["\"\"\"", "'''", "\"", "'"]
            .iter()
            .find_map(|q| {
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
                let base = value_span.start + q.len() + skip;
                if inner == text {
                    return Some(Map::Verbatim(base));
                }
                if !q.starts_with('"') {
                    return None;
                }
                let (decoded, spans) = decode_basic(inner, base, q.len() == 3)?;
                (decoded == text).then(|| Map::Escaped {
                    spans: spans.into(),
                    end: base + inner.len(),
                    shift: 0,
                })
            })
            .unwrap_or(Map::Whole);
        Snippet {
            text,
            value_span,
            map,
        }
    }

    /// A snippet not taken from a file (tests, programmatic use).
    pub fn detached(text: &'a str) -> Self {
        Snippet {
            text,
            value_span: Span::new(0, text.len()),
            map: Map::Verbatim(0),
        }
    }

    /// File span of `text[start..end]`.
    pub fn span(&self, start: usize, end: usize) -> Span {
        match &self.map {
            Map::Verbatim(b) => Span::new(b + start, b + end),
            Map::Escaped {
                spans,
                end: e,
                shift,
            } => {
                let at = |i: usize| spans.get(shift + i).map_or(*e, |s| s.0);
                let from = at(start);
                if end > start {
                    let to = spans.get(shift + end - 1).map_or(*e, |s| s.1);
                    Span::new(from, to.max(from))
                } else {
                    Span::new(from, from)
                }
            }
            Map::Whole => self.value_span,
        }
    }

    /// The part `text[start..end]`, keeping the way back to the file.
    pub fn sub(&self, start: usize, end: usize) -> Snippet<'a> {
        let map = match &self.map {
            Map::Verbatim(b) => Map::Verbatim(b + start),
            Map::Escaped {
                spans,
                end: e,
                shift,
            } => Map::Escaped {
                spans: spans.clone(),
                end: *e,
                shift: shift + start,
            },
            Map::Whole => Map::Whole,
        };
        Snippet {
            text: &self.text[start..end],
            value_span: self.span(start, end),
            map,
        }
    }
}

/// Decode the inside of a TOML basic string (`"..."`, or `"""..."""` when
/// `multiline`) that starts at file offset `base`. Returns the text and, for
/// each of its bytes, the file span of the character or escape it came from.
/// `None` for anything not understood; the caller checks the result against
/// the TOML parser's own decoding.
fn decode_basic(raw: &str, base: usize, multiline: bool) -> Option<(String, Vec<(usize, usize)>)> {
    let mut out = String::new();
    let mut spans = Vec::new();
    let mut chars = raw.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let decoded = if c == '\\' {
            let (_, e) = chars.next()?;
            match e {
                'b' => '\u{8}',
                't' => '\t',
                'n' => '\n',
                'f' => '\u{c}',
                'r' => '\r',
                'e' => '\u{1b}',
                '"' => '"',
                '\\' => '\\',
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let mut v = 0u32;
                    for _ in 0..n {
                        v = v * 16 + chars.next()?.1.to_digit(16)?;
                    }
                    char::from_u32(v)?
                }
                ' ' | '\t' | '\r' | '\n' if multiline => {
                    // Line-ending backslash: drop all whitespace up to the
                    // next non-whitespace character.
                    while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
                    continue;
                }
                _ => return None,
            }
        } else {
            c
        };
        let end = chars.peek().map_or(raw.len(), |(j, _)| *j);
        out.push(decoded);
        for _ in 0..decoded.len_utf8() {
            spans.push((base + i, base + end));
        }
    }
    Some((out, spans))
}
