//! Recursive-descent parser for programs and single expressions.
//!
//! ```text
//! program := stmt (SEP stmt)*
//! stmt    := "let" IDENT "=" expr | IDENT "=" expr | expr
//! expr    := term (("+" | "-") term)*
//! term    := unary (("*" | "/" | "@") unary)*
//! unary   := "-" unary | atom
//! atom    := NUM | IDENT | IDENT "(" args? ")" | "(" expr ")" | "[" (expr ("," expr)*)? "]"
//! args    := arg ("," arg)* ","?      arg := (IDENT "=")? expr
//! ```

use super::ast::{Arg, Expr, ExprKind, Ident, InfixOp, Program, Stmt, StmtKind};
use super::lexer::{Tok, Token, lex};
use super::snippet::Snippet;
use crate::diagnostics::{Diagnostic, Span};

/// Nesting deeper than this is rejected rather than risking the stack: both
/// the parser's own recursion and the depth of the tree it builds (a chain
/// `a + b + c + ...` nests one level per operator, and every later pass
/// recurses over the tree). Unoptimized builds use about 10 KiB of stack per
/// level here, and test threads have 2 MiB.
const MAX_DEPTH: usize = 100;

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Depth of the tree the last parsing method returned.
    tree_depth: usize,
    whole: Span,
}

/// Parse a program (statements separated by newlines or `;`).
pub fn parse_program(snip: &Snippet<'_>) -> Result<Program, Diagnostic> {
    let mut p = Parser::new(snip)?;
    let mut stmts = Vec::new();
    loop {
        while p.peek() == &Tok::Sep {
            p.pos += 1;
        }
        if p.peek() == &Tok::Eof {
            break;
        }
        stmts.push(p.stmt()?);
        match p.peek() {
            Tok::Sep | Tok::Eof => {}
            t => {
                let t = t.describe();
                return Err(p.error_here(
                    "unexpected-token",
                    format!("expected the end of the statement, found {t}"),
                    "put each statement on its own line; did you miss an operator or a comma?",
                ));
            }
        }
    }
    if stmts.is_empty() {
        return Err(
            Diagnostic::new("empty-program", p.whole, "the program is empty")
                .label("no statements")
                .hint("write an expression such as `matmul(rms_norm(x), w)`"),
        );
    }
    Ok(Program { stmts })
}

/// Parse one expression that must fill the whole snippet.
pub fn parse_expr(snip: &Snippet<'_>) -> Result<Expr, Diagnostic> {
    let mut p = Parser::new(snip)?;
    if p.peek() == &Tok::Eof {
        return Err(Diagnostic::new(
            "empty-expression",
            p.whole,
            "expected an expression, found nothing",
        )
        .label("empty")
        .hint("write an expression such as `1/sqrt(d)`"));
    }
    let e = p.expr()?;
    if p.peek() != &Tok::Eof {
        let t = p.peek().describe();
        return Err(p.error_here(
            "unexpected-token",
            format!("expected the end of the expression, found {t}"),
            "a single expression is expected here",
        ));
    }
    Ok(e)
}

impl Parser {
    fn new(snip: &Snippet<'_>) -> Result<Self, Diagnostic> {
        Ok(Parser {
            toks: lex(snip)?,
            pos: 0,
            depth: 0,
            tree_depth: 0,
            whole: snip.value_span,
        })
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos].tok
    }

    fn peek2(&self) -> &Tok {
        &self.toks[(self.pos + 1).min(self.toks.len() - 1)].tok
    }

    fn span(&self) -> Span {
        self.toks[self.pos].span
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn error_here(&self, code: &'static str, msg: String, hint: &str) -> Diagnostic {
        Diagnostic::new(code, self.span(), msg)
            .label("here")
            .hint(hint)
    }

    fn expect(&mut self, want: Tok, hint: &str) -> Result<Token, Diagnostic> {
        if *self.peek() == want {
            return Ok(self.bump());
        }
        let found = self.peek().describe();
        Err(self.error_here(
            "unexpected-token",
            format!("expected {}, found {found}", want.describe()),
            hint,
        ))
    }

    fn ident(&mut self, what: &str) -> Result<Ident, Diagnostic> {
        match self.peek().clone() {
            Tok::Ident(name) => {
                let span = self.bump().span;
                Ok(Ident { name, span })
            }
            t => Err(self.error_here(
                "unexpected-token",
                format!("expected {what}, found {}", t.describe()),
                "names start with a letter or `_`",
            )),
        }
    }

    fn stmt(&mut self) -> Result<Stmt, Diagnostic> {
        if matches!(self.peek(), Tok::Ident(k) if k == "let") {
            self.bump();
            let name = self.ident("a name after `let`")?;
            self.expect(Tok::Eq, "write `let name = expression`")?;
            let expr = self.expr()?;
            return Ok(Stmt {
                kind: StmtKind::Let,
                name,
                expr,
            });
        }
        if matches!(self.peek(), Tok::Ident(_)) && self.peek2() == &Tok::Eq {
            let name = self.ident("an output name")?;
            self.bump();
            let expr = self.expr()?;
            return Ok(Stmt {
                kind: StmtKind::Output,
                name,
                expr,
            });
        }
        let expr = self.expr()?;
        Ok(Stmt {
            kind: StmtKind::Bare,
            name: Ident {
                name: "out".into(),
                span: expr.span,
            },
            expr,
        })
    }

    fn enter(&mut self) -> Result<(), Diagnostic> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(too_deep(self.span()));
        }
        Ok(())
    }

    /// Record that the tree just built is `depth` deep, rejecting it (at
    /// `span`) when that is too deep for the passes that recurse over it.
    fn set_tree_depth(&mut self, depth: usize, span: Span) -> Result<(), Diagnostic> {
        if depth > MAX_DEPTH {
            return Err(too_deep(span));
        }
        self.tree_depth = depth;
        Ok(())
    }

    /// At the end of the input with `open` (a `(` or `[`) still open: say so,
    /// pointing at the bracket that is never closed.
    fn check_closed(&self, open: Span, bracket: char) -> Result<(), Diagnostic> {
        if self.peek() != &Tok::Eof {
            return Ok(());
        }
        let close = if bracket == '(' { ')' } else { ']' };
        Err(Diagnostic::new(
            "unclosed-delimiter",
            open,
            format!("this `{bracket}` is never closed"),
        )
        .label("unclosed")
        .hint(format!("add the matching `{close}`")))
    }

    fn expr(&mut self) -> Result<Expr, Diagnostic> {
        self.enter()?;
        let mut lhs = self.term()?;
        let mut depth = self.tree_depth;
        loop {
            let op = match self.peek() {
                Tok::Plus => InfixOp::Add,
                Tok::Minus => InfixOp::Sub,
                _ => break,
            };
            let op_span = self.bump().span;
            let rhs = self.term()?;
            depth = 1 + depth.max(self.tree_depth);
            self.set_tree_depth(depth, op_span)?;
            lhs = infix(op, lhs, rhs);
        }
        self.tree_depth = depth;
        self.depth -= 1;
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Expr, Diagnostic> {
        let mut lhs = self.unary()?;
        let mut depth = self.tree_depth;
        loop {
            let op = match self.peek() {
                Tok::Star => InfixOp::Mul,
                Tok::Slash => InfixOp::Div,
                Tok::At => InfixOp::Matmul,
                _ => break,
            };
            let op_span = self.bump().span;
            let rhs = self.unary()?;
            depth = 1 + depth.max(self.tree_depth);
            self.set_tree_depth(depth, op_span)?;
            lhs = infix(op, lhs, rhs);
        }
        self.tree_depth = depth;
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, Diagnostic> {
        if self.peek() == &Tok::Minus {
            let start = self.bump().span;
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            self.set_tree_depth(self.tree_depth + 1, start)?;
            let span = start.join(e.span);
            return Ok(Expr {
                kind: ExprKind::Neg(Box::new(e)),
                span,
            });
        }
        self.atom()
    }

    // The recursion runs through `atom`, `call`, `paren` and `list`, so they
    // are kept small (errors are built in separate functions): unoptimized
    // builds give every temporary of a function its own stack slot.
    fn atom(&mut self) -> Result<Expr, Diagnostic> {
        let start = self.span();
        match self.peek() {
            Tok::Num(v, is_int) => {
                let kind = ExprKind::Num(*v, *is_int);
                self.bump();
                self.tree_depth = 1;
                Ok(Expr { kind, span: start })
            }
            Tok::Ident(name) => {
                let name = name.clone();
                self.bump();
                if self.peek() == &Tok::LParen {
                    return self.call(name, start);
                }
                self.tree_depth = 1;
                Ok(Expr {
                    kind: ExprKind::Var(name),
                    span: start,
                })
            }
            Tok::LParen => self.paren(start),
            Tok::LBracket => self.list(start),
            _ => Err(self.expected_expression()),
        }
    }

    /// `name(args)`, with `name` already taken and `(` next.
    fn call(&mut self, func_name: String, start: Span) -> Result<Expr, Diagnostic> {
        let open = self.bump().span;
        let mut args = Vec::new();
        let mut depth = 0;
        while self.peek() != &Tok::RParen {
            self.check_closed(open, '(')?;
            let name = if matches!(self.peek(), Tok::Ident(_)) && self.peek2() == &Tok::Eq {
                let n = self.ident("an argument name")?;
                self.bump();
                Some(n)
            } else {
                None
            };
            let value = self.expr()?;
            depth = depth.max(self.tree_depth);
            args.push(Arg { name, value });
            if self.peek() == &Tok::Comma {
                self.bump();
            } else if self.peek() != &Tok::RParen {
                self.check_closed(open, '(')?;
                return Err(self.expected_separator(&func_name));
            }
        }
        let end = self.bump().span;
        self.set_tree_depth(depth + 1, start)?;
        Ok(Expr {
            kind: ExprKind::Call {
                func: Ident {
                    name: func_name,
                    span: start,
                },
                args,
            },
            span: start.join(end),
        })
    }

    /// `( expr )`, with `(` next.
    fn paren(&mut self, start: Span) -> Result<Expr, Diagnostic> {
        self.bump();
        let e = self.expr()?;
        self.check_closed(start, '(')?;
        let end = self.expect(Tok::RParen, "close the parenthesis")?.span;
        Ok(Expr {
            kind: e.kind,
            span: start.join(end),
        })
    }

    /// `[ items ]`, with `[` next.
    fn list(&mut self, start: Span) -> Result<Expr, Diagnostic> {
        self.bump();
        let mut items = Vec::new();
        let mut depth = 0;
        while self.peek() != &Tok::RBracket {
            self.check_closed(start, '[')?;
            items.push(self.expr()?);
            depth = depth.max(self.tree_depth);
            if self.peek() == &Tok::Comma {
                self.bump();
            } else if self.peek() != &Tok::RBracket {
                self.check_closed(start, '[')?;
                return Err(self.expected_separator(""));
            }
        }
        let end = self.bump().span;
        self.set_tree_depth(depth + 1, start)?;
        Ok(Expr {
            kind: ExprKind::List(items),
            span: start.join(end),
        })
    }

    /// In the arguments of `func`, or in a list when `func` is empty: the
    /// next token is neither `,` nor the closing bracket.
    #[cold]
    #[inline(never)]
    fn expected_separator(&self, func: &str) -> Diagnostic {
        let found = self.peek().describe();
        if func.is_empty() {
            self.error_here(
                "unexpected-token",
                format!("expected `,` or `]` in a list, found {found}"),
                "write lists like [b, 8, 4, 128]",
            )
        } else {
            self.error_here(
                "unexpected-token",
                format!("expected `,` or `)` in the arguments of `{func}`, found {found}"),
                "separate arguments with commas and close the call with `)`",
            )
        }
    }

    #[cold]
    #[inline(never)]
    fn expected_expression(&self) -> Diagnostic {
        self.error_here(
            "unexpected-token",
            format!("expected an expression, found {}", self.peek().describe()),
            "an expression is a name, a number, a call like exp(x), or one in parentheses",
        )
    }
}

fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::new("too-deep", span, "expression nests too deeply")
        .label("here")
        .hint(format!(
            "split it with `let` lines; at most {MAX_DEPTH} levels are allowed \
             (each operator in a chain like `a + b + c` counts as one)"
        ))
}

fn infix(op: InfixOp, lhs: Expr, rhs: Expr) -> Expr {
    let span = lhs.span.join(rhs.span);
    Expr {
        kind: ExprKind::Infix {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
        span,
    }
}
