//! Syntax tree of the expression language, and its printer (the printer's
//! output parses back to the same tree).

use std::fmt;

use crate::diagnostics::Span;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InfixOp {
    Add,
    Sub,
    Mul,
    Div,
    Matmul,
}

impl InfixOp {
    pub fn symbol(self) -> &'static str {
        match self {
            InfixOp::Add => "+",
            InfixOp::Sub => "-",
            InfixOp::Mul => "*",
            InfixOp::Div => "/",
            InfixOp::Matmul => "@",
        }
    }

    /// Binding strength: `+ -` bind looser than `* / @`.
    pub fn precedence(self) -> u8 {
        match self {
            InfixOp::Add | InfixOp::Sub => 1,
            InfixOp::Mul | InfixOp::Div | InfixOp::Matmul => 2,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    /// `Some` for a keyword argument `name=value`.
    pub name: Option<Ident>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A literal; `true` when written as an integer.
    Num(f64, bool),
    Var(String),
    Call {
        func: Ident,
        args: Vec<Arg>,
    },
    Infix {
        op: InfixOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
    List(Vec<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StmtKind {
    /// `let name = expr`: an intermediate value.
    Let,
    /// `name = expr`: a named output.
    Output,
    /// A bare expression: the program's only output, named `out`.
    Bare,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub name: Ident,
    pub expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub stmts: Vec<Stmt>,
}

impl Expr {
    /// The same tree with every span zeroed, to compare trees by structure.
    pub fn without_spans(&self) -> Expr {
        let kind = match &self.kind {
            ExprKind::Call { func, args } => ExprKind::Call {
                func: Ident {
                    name: func.name.clone(),
                    span: Span::default(),
                },
                args: args
                    .iter()
                    .map(|a| Arg {
                        name: a.name.as_ref().map(|n| Ident {
                            name: n.name.clone(),
                            span: Span::default(),
                        }),
                        value: a.value.without_spans(),
                    })
                    .collect(),
            },
            ExprKind::Infix { op, lhs, rhs } => ExprKind::Infix {
                op: *op,
                lhs: Box::new(lhs.without_spans()),
                rhs: Box::new(rhs.without_spans()),
            },
            ExprKind::Neg(e) => ExprKind::Neg(Box::new(e.without_spans())),
            ExprKind::List(v) => ExprKind::List(v.iter().map(Expr::without_spans).collect()),
            k => k.clone(),
        };
        Expr {
            kind,
            span: Span::default(),
        }
    }

    fn precedence(&self) -> u8 {
        match &self.kind {
            ExprKind::Infix { op, .. } => op.precedence(),
            ExprKind::Neg(_) => 3,
            _ => 4,
        }
    }
}

impl Program {
    pub fn without_spans(&self) -> Program {
        Program {
            stmts: self
                .stmts
                .iter()
                .map(|s| Stmt {
                    kind: s.kind,
                    name: Ident {
                        name: s.name.name.clone(),
                        span: Span::default(),
                    },
                    expr: s.expr.without_spans(),
                })
                .collect(),
        }
    }
}

fn write_num(f: &mut fmt::Formatter<'_>, v: f64, is_int: bool) -> fmt::Result {
    if is_int {
        write!(f, "{}", v as i64)
    } else {
        // `{:?}` always shows a fraction or exponent, so it reads back as a float.
        write!(f, "{v:?}")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Num(v, is_int) => write_num(f, *v, *is_int),
            ExprKind::Var(name) => f.write_str(name),
            ExprKind::Call { func, args } => {
                write!(f, "{}(", func.name)?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    if let Some(n) = &a.name {
                        write!(f, "{}=", n.name)?;
                    }
                    write!(f, "{}", a.value)?;
                }
                f.write_str(")")
            }
            ExprKind::Infix { op, lhs, rhs } => {
                let p = op.precedence();
                if lhs.precedence() < p {
                    write!(f, "({lhs})")?;
                } else {
                    write!(f, "{lhs}")?;
                }
                write!(f, " {} ", op.symbol())?;
                // Left-associative: a right operand of equal precedence needs parentheses.
                if rhs.precedence() <= p {
                    write!(f, "({rhs})")
                } else {
                    write!(f, "{rhs}")
                }
            }
            ExprKind::Neg(e) => {
                if e.precedence() < 3 {
                    write!(f, "-({e})")
                } else {
                    write!(f, "-{e}")
                }
            }
            ExprKind::List(items) => {
                f.write_str("[")?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.stmts {
            match s.kind {
                StmtKind::Let => writeln!(f, "let {} = {}", s.name.name, s.expr)?,
                StmtKind::Output => writeln!(f, "{} = {}", s.name.name, s.expr)?,
                StmtKind::Bare => writeln!(f, "{}", s.expr)?,
            }
        }
        Ok(())
    }
}
