//! Symbolic dims in prism.toml: their declared values (`"1..=64"`,
//! `[1024, 4096]`), dim expressions (`h*q`), and input types (`f16[n, d]`).

use std::collections::BTreeSet;

use toml::de::DeValue;

use super::ast::{Expr, ExprKind, InfixOp};
use super::parser::parse_expr;
use super::snippet::Snippet;
use crate::diagnostics::{Diagnostic, Span};
use crate::ir::{DType, DimExpr, DimValues};

/// Largest coefficient in a dim expression (integer literals are below 2^53;
/// anything larger came from overflowing arithmetic).
const MAX_DIM_COEFFICIENT: u64 = 1 << 53;

/// Largest dim value: kernels index with 32-bit signed integers.
pub const MAX_DIM: i64 = i32::MAX as i64;

fn check_value(v: i64, span: Span) -> Result<i64, Diagnostic> {
    if !(1..=MAX_DIM).contains(&v) {
        return Err(Diagnostic::new(
            "bad-dim-value",
            span,
            format!("dim value {v} is out of range"),
        )
        .label("out of range")
        .hint(format!("dim values must lie in 1..={MAX_DIM}")));
    }
    Ok(v)
}

/// The TOML type of `v` with its article, for messages: "an integer", "a string".
pub(super) fn a_type(v: &DeValue<'_>) -> String {
    let t = v.type_str();
    let article = if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {t}")
}

fn int_of(v: &DeValue<'_>) -> Option<i64> {
    let i = v.as_integer()?;
    i64::from_str_radix(i.as_str(), i.radix()).ok()
}

/// `n = 8`, `n = [8, 16]` or `n = "1..=64"`.
pub fn parse_dim_values(
    source: &str,
    value: &DeValue<'_>,
    span: Span,
) -> Result<DimValues, Diagnostic> {
    let usage = "write a list like [1024, 4096], a single value like 8, or a range like \"1..=64\"";
    if let Some(v) = int_of(value) {
        return Ok(DimValues::List(vec![check_value(v, span)?]));
    }
    if let Some(items) = value.as_array() {
        if items.is_empty() {
            return Err(Diagnostic::new(
                "empty-dim-values",
                span,
                "the list of dim values is empty",
            )
            .label("empty list")
            .hint("list at least one value"));
        }
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for item in items.iter() {
            let s: Span = item.span().into();
            let v = int_of(item.get_ref()).ok_or_else(|| {
                Diagnostic::new("bad-dim-value", s, "dim values must be integers")
                    .label(format!("{} here", item.get_ref().type_str()))
                    .hint(usage)
            })?;
            let v = check_value(v, s)?;
            if !seen.insert(v) {
                return Err(Diagnostic::new(
                    "duplicate-dim-value",
                    s,
                    format!("value {v} is listed twice"),
                )
                .label("duplicate")
                .hint("list each value once"));
            }
            out.push(v);
        }
        out.sort_unstable();
        return Ok(DimValues::List(out));
    }
    if let Some(text) = value.as_str() {
        let snip = Snippet::new(source, span, text);
        return parse_range(&snip);
    }
    Err(Diagnostic::new(
        "bad-dim-value",
        span,
        format!("expected dim values, found {}", a_type(value)),
    )
    .label("not dim values")
    .hint(usage))
}

fn parse_range(snip: &Snippet<'_>) -> Result<DimValues, Diagnostic> {
    let text = snip.text;
    let whole = snip.span(0, text.len());
    let bad = || {
        Diagnostic::new("bad-range", whole, format!("`{text}` is not a range"))
            .label("not a range")
            .hint("write an inclusive range like \"1..=64\" or a half-open one like \"1..65\"")
    };
    let (lo_s, hi_s, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        return Err(bad());
    };
    let num = |s: &str| s.trim().replace('_', "").parse::<i64>().ok();
    let (Some(lo), Some(hi)) = (num(lo_s), num(hi_s)) else {
        return Err(bad());
    };
    let hi = if inclusive { hi } else { hi.saturating_sub(1) };
    if hi < lo {
        return Err(
            Diagnostic::new("empty-range", whole, format!("the range `{text}` is empty"))
                .label("no values")
                .hint("the upper end must not be below the lower end"),
        );
    }
    check_value(lo, whole)?;
    check_value(hi, whole)?;
    if lo == hi {
        return Ok(DimValues::List(vec![lo]));
    }
    Ok(DimValues::Range { lo, hi })
}

/// Turn an expression into a dim: integers, declared dims, `+ - *` and exact `/`.
/// `declared` says whether a name is a declared dim; `used` collects the dims met.
pub fn dim_of(
    e: &Expr,
    declared: &dyn Fn(&str) -> bool,
    used: &mut Vec<(String, Span)>,
) -> Result<DimExpr, Diagnostic> {
    match &e.kind {
        ExprKind::Num(v, true) => Ok(DimExpr::constant(*v as i64)),
        ExprKind::Num(..) => {
            Err(
                Diagnostic::new("bad-dim", e.span, "a dim must be a whole number")
                    .label("fractional")
                    .hint("dims are integers or named dims such as n"),
            )
        }
        ExprKind::Var(name) => {
            if !declared(name) {
                return Err(Diagnostic::new(
                    "unbound-dim",
                    e.span,
                    format!("dim `{name}` has no declared values"),
                )
                .label("unbound dim")
                .hint(format!(
                    "declare it under dims, e.g. {name} = [1024] or {name} = \"1..=64\""
                )));
            }
            used.push((name.clone(), e.span));
            Ok(DimExpr::symbol(name))
        }
        ExprKind::Neg(a) => Ok(dim_of(a, declared, used)?.neg()),
        ExprKind::Infix { op, lhs, rhs } => {
            let (a, b) = (dim_of(lhs, declared, used)?, dim_of(rhs, declared, used)?);
            let r = match op {
                InfixOp::Add => Ok(a.add(&b)),
                InfixOp::Sub => Ok(a.sub(&b)),
                InfixOp::Mul => Ok(a.mul(&b)),
                // x / -1 is -x; div_exact would overflow on the remainder
                // of a saturated coefficient (i64::MIN % -1).
                InfixOp::Div if b.as_constant() == Some(-1) => Ok(a.neg()),
                InfixOp::Div => a.div_exact(&b).ok_or_else(|| {
                    Diagnostic::new(
                        "inexact-dim",
                        e.span,
                        format!("`{a}` is not divisible by `{b}` for every value"),
                    )
                    .label("inexact division")
                    .hint("declare the quotient as a dim of its own")
                }),
                InfixOp::Matmul => {
                    Err(
                        Diagnostic::new("bad-dim", e.span, "`@` is not allowed in a dim")
                            .label("here")
                            .hint("dims use + - * and exact /"),
                    )
                }
            }?;
            if r.max_abs_coefficient() > MAX_DIM_COEFFICIENT {
                return Err(Diagnostic::new(
                    "dim-overflow",
                    e.span,
                    "this dim expression is too large",
                )
                .label("too large")
                .hint(format!(
                    "coefficients of dim expressions must stay below 2^53 ({MAX_DIM_COEFFICIENT})"
                )));
            }
            Ok(r)
        }
        _ => Err(
            Diagnostic::new("bad-dim", e.span, format!("`{e}` is not a dim expression"))
                .label("not a dim")
                .hint("dims are integers, named dims, and + - * / over them"),
        ),
    }
}

/// A parsed input type, `f16[n, d]` or `[n, d]` (the target's default dtype).
pub struct InputType {
    pub dtype: DType,
    pub shape: Vec<DimExpr>,
    pub dims_used: Vec<(String, Span)>,
}

pub fn parse_input_type(
    snip: &Snippet<'_>,
    default: DType,
    declared: &dyn Fn(&str) -> bool,
) -> Result<InputType, Diagnostic> {
    let text = snip.text;
    let whole = snip.span(0, text.len());
    let Some(open) = text.find('[') else {
        return Err(
            Diagnostic::new("bad-type", whole, format!("`{text}` is not a tensor type"))
                .label("missing [dims]")
                .hint("write a type like \"f16[n, d]\""),
        );
    };
    let name = text[..open].trim();
    let dtype = if name.is_empty() {
        default
    } else {
        let start = text.len() - text.trim_start().len();
        let name_span = snip.span(start, start + name.len());
        name.parse::<DType>().map_err(|_| {
            Diagnostic::new(
                "unknown-dtype",
                name_span,
                format!("unknown dtype `{name}`"),
            )
            .label("unknown dtype")
            .hint("use f16, bf16 or f32")
        })?
    };
    let list = parse_expr(&snip.sub(open, text.len()))?;
    let ExprKind::List(items) = &list.kind else {
        return Err(
            Diagnostic::new("bad-type", whole, format!("`{text}` is not a tensor type"))
                .label("expected [dims] after the dtype")
                .hint("write a type like \"f16[n, d]\""),
        );
    };
    let mut dims_used = Vec::new();
    let shape = items
        .iter()
        .map(|e| dim_of(e, declared, &mut dims_used))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(InputType {
        dtype,
        shape,
        dims_used,
    })
}
