//! Tokens of the expression language.

use super::snippet::Snippet;
use crate::diagnostics::{Diagnostic, Span};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A numeric literal and whether it was written as an integer.
    Num(f64, bool),
    Plus,
    Minus,
    Star,
    Slash,
    At,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    /// Statement separator: a newline outside brackets, or `;`.
    Sep,
    Eof,
}

impl Tok {
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Num(v, _) => format!("number `{v}`"),
            Tok::Plus => "`+`".into(),
            Tok::Minus => "`-`".into(),
            Tok::Star => "`*`".into(),
            Tok::Slash => "`/`".into(),
            Tok::At => "`@`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::LBracket => "`[`".into(),
            Tok::RBracket => "`]`".into(),
            Tok::Comma => "`,`".into(),
            Tok::Eq => "`=`".into(),
            Tok::Sep => "end of statement".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Split `snip` into tokens. `#` starts a comment to the end of the line.
pub fn lex(snip: &Snippet<'_>) -> Result<Vec<Token>, Diagnostic> {
    let text = snip.text;
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut depth: i32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = |t: Tok| Token {
            tok: t,
            span: snip.span(start, start + 1),
        };
        match c {
            b' ' | b'\t' | b'\r' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'\n' | b';' => {
                if depth == 0 || c == b';' {
                    out.push(single(Tok::Sep));
                }
                i += 1;
            }
            b'+' | b'-' | b'*' | b'/' | b'@' | b',' | b'=' => {
                let t = match c {
                    b'+' => Tok::Plus,
                    b'-' => Tok::Minus,
                    b'*' => Tok::Star,
                    b'/' => Tok::Slash,
                    b'@' => Tok::At,
                    b',' => Tok::Comma,
                    _ => Tok::Eq,
                };
                out.push(single(t));
                i += 1;
            }
            b'(' | b'[' => {
                depth += 1;
                out.push(single(if c == b'(' {
                    Tok::LParen
                } else {
                    Tok::LBracket
                }));
                i += 1;
            }
            b')' | b']' => {
                depth -= 1;
                out.push(single(if c == b')' {
                    Tok::RParen
                } else {
                    Tok::RBracket
                }));
                i += 1;
            }
            b'0'..=b'9' | b'.' => {
                let mut is_int = c != b'.';
                while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'.' {
                    is_int = false;
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                    let save = i;
                    i += 1;
                    if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                        i += 1;
                    }
                    if i < bytes.len() && bytes[i].is_ascii_digit() {
                        is_int = false;
                        while i < bytes.len() && bytes[i].is_ascii_digit() {
                            i += 1;
                        }
                    } else {
                        i = save;
                    }
                }
                let lit = text[start..i].replace('_', "");
                let span = snip.span(start, i);
                let value: f64 = lit.parse().map_err(|_| {
                    Diagnostic::new(
                        "bad-number",
                        span,
                        format!("`{}` is not a number", &text[start..i]),
                    )
                    .label("not a number")
                    .hint("write numbers like 2, 0.5 or 1e-6")
                })?;
                if !value.is_finite() {
                    // `1e400` parses as infinity.
                    return Err(Diagnostic::new(
                        "bad-number",
                        span,
                        format!("`{}` is too large", &text[start..i]),
                    )
                    .label("too large")
                    .hint("numbers must be finite 64-bit floats (below about 1.8e308)"));
                }
                // Compare the digits, not the f64: 2^53 + 1 rounds to 2^53.
                if is_int && !lit.parse::<u64>().is_ok_and(|v| v <= 1 << 53) {
                    return Err(Diagnostic::new(
                        "bad-number",
                        span,
                        "integer literal is too large",
                    )
                    .label("too large")
                    .hint("integers must be at most 2^53 = 9007199254740992"));
                }
                out.push(Token {
                    tok: Tok::Num(value, is_int),
                    span,
                });
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(text[start..i].to_string()),
                    span: snip.span(start, i),
                });
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                let span = snip.span(start, start + ch.len_utf8());
                let hint = match ch {
                    '^' => "there is no power operator; use square(x) or sqrt(x)",
                    '{' | '}' => "group with ( ) and write lists with [ ]",
                    _ => "the language has identifiers, numbers, + - * / @, ( ), [ ], `,` and `=`",
                };
                return Err(Diagnostic::new(
                    "unexpected-character",
                    span,
                    format!("unexpected character `{ch}`"),
                )
                .label("not allowed here")
                .hint(hint));
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        span: snip.span(text.len(), text.len()),
    });
    Ok(out)
}
