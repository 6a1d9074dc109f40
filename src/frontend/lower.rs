//! Lowering a parsed program into the IR: name resolution, builtin calls,
//! library expansion and shape inference, each error located in the source.

use std::collections::HashMap;

use super::ast::{Arg, Expr, ExprKind, Ident, InfixOp, Program, StmtKind};
use super::dims::dim_of;
use super::library;
use crate::diagnostics::{Diagnostic, Span};
use crate::ir::{
    BinaryOp, DimExpr, GraphBuilder, NodeId, ReduceOp, ScalarExpr, ShapeError, UnaryOp,
};

/// A value in the program: a tensor in the graph, or a scalar known once dims are.
#[derive(Clone, Debug)]
pub enum Value {
    Tensor(NodeId),
    Scalar(ScalarExpr),
}

/// Every name callable in a program.
pub const FUNCTIONS: &[&str] = &[
    "matmul",
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "square",
    "silu",
    "gelu",
    "relu",
    "sigmoid",
    "sum",
    "max",
    "mean",
    "transpose",
    "permute",
    "reshape",
    "rms_norm",
    "softmax",
];

const DEFAULT_EPS: f64 = 1e-6;

pub struct Lowerer<'a> {
    pub builder: GraphBuilder,
    names: HashMap<String, (Value, Span)>,
    declared_dim: &'a dyn Fn(&str) -> bool,
    /// Dims met in the program, with where.
    pub dims_used: Vec<(String, Span)>,
}

fn shape_err(e: ShapeError, span: Span) -> Diagnostic {
    let code = match e {
        ShapeError::DtypeMismatch { .. } => "dtype-mismatch",
        ShapeError::Axis { .. } | ShapeError::Permutation { .. } => "bad-axis",
        _ => "shape-mismatch",
    };
    let hint = e.hint();
    Diagnostic::new(code, span, e.to_string())
        .label("here")
        .hint(hint)
}

/// A shape error of a call; a bad axis or permutation is pointed at in the
/// argument that gave it (`axis_args`) rather than at the whole `call`.
fn shape_err_at_axis(e: ShapeError, axis_args: &[Option<&Expr>], call: Span) -> Diagnostic {
    let mut given = axis_args.iter().flatten();
    let span = match &e {
        ShapeError::Axis { axis, .. } => given
            .find(|a| int_arg(Some(a), 0).ok() == Some(*axis))
            .map_or(call, |a| a.span),
        ShapeError::Permutation { .. } => given.next().map_or(call, |a| a.span),
        _ => call,
    };
    shape_err(e, span)
}

#[cold]
fn unknown_op(func: &Ident) -> Diagnostic {
    let name = func.name.as_str();
    let hint = match suggest(name, FUNCTIONS.iter().map(|s| s.to_string())) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("the operators are: {}", FUNCTIONS.join(", ")),
    };
    Diagnostic::new("unknown-op", func.span, format!("unknown op `{name}`"))
        .label("unknown op")
        .hint(hint)
}

/// Largest scalar expression, in nodes. A scalar `let` is copied into every
/// use, so a chain of them (`let a = d * d; let b = a * a; ...`) could
/// otherwise build scalars of any size, and of any depth for the passes that
/// recurse over them.
const MAX_SCALAR_NODES: usize = 100;

fn scalar_nodes(e: &ScalarExpr) -> usize {
    match e {
        ScalarExpr::Lit(_) | ScalarExpr::Dim(_) => 1,
        ScalarExpr::Unary(_, a) => 1 + scalar_nodes(a),
        ScalarExpr::Binary(_, a, b) => 1 + scalar_nodes(a) + scalar_nodes(b),
    }
}

/// `s` as a value, unless it is too large (its operands are within the limit,
/// so it has at most twice as many nodes).
fn bounded_scalar(s: ScalarExpr, span: Span) -> Result<Value, Diagnostic> {
    if scalar_nodes(&s) > MAX_SCALAR_NODES {
        return Err(Diagnostic::new(
            "scalar-too-large",
            span,
            format!(
                "this scalar expression has over {MAX_SCALAR_NODES} operations \
                 once `let` values are substituted"
            ),
        )
        .label("too large")
        .hint("scalars are computed from numbers and dims; simplify the expression"));
    }
    Ok(Value::Scalar(s))
}

fn suggest(name: &str, candidates: impl Iterator<Item = String>) -> Option<String> {
    candidates
        .map(|c| (strsim::levenshtein(name, &c), c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min()
        .map(|(_, c)| c)
}

impl<'a> Lowerer<'a> {
    pub fn new(declared_dim: &'a dyn Fn(&str) -> bool) -> Self {
        Lowerer {
            builder: GraphBuilder::new(),
            names: HashMap::new(),
            declared_dim,
            dims_used: Vec::new(),
        }
    }

    /// Bind a name (an input or a `let`), rejecting duplicates.
    pub fn define(&mut self, name: &Ident, value: Value) -> Result<(), Diagnostic> {
        if (self.declared_dim)(&name.name) {
            return Err(Diagnostic::new(
                "duplicate-name",
                name.span,
                format!("`{}` is already a dim", name.name),
            )
            .label("already a dim")
            .hint("give the value another name"));
        }
        if FUNCTIONS.contains(&name.name.as_str())
            || ["let", "true", "false"].contains(&name.name.as_str())
        {
            return Err(Diagnostic::new(
                "reserved-name",
                name.span,
                format!("`{}` is a reserved name", name.name),
            )
            .label("reserved")
            .hint("give the value another name"));
        }
        if self.names.contains_key(&name.name) {
            return Err(Diagnostic::new(
                "duplicate-name",
                name.span,
                format!("`{}` is defined twice", name.name),
            )
            .label("second definition")
            .hint("each input, `let` and output needs its own name"));
        }
        self.names.insert(name.name.clone(), (value, name.span));
        Ok(())
    }

    /// Lower a whole program; returns the outputs in order.
    pub fn program(&mut self, prog: &Program) -> Result<Vec<(String, NodeId)>, Diagnostic> {
        let mut outputs = Vec::new();
        let bare = prog
            .stmts
            .iter()
            .filter(|s| s.kind == StmtKind::Bare)
            .count();
        for s in &prog.stmts {
            if s.kind == StmtKind::Bare && prog.stmts.len() > 1 {
                let last = std::ptr::eq(s, &prog.stmts[prog.stmts.len() - 1]);
                let msg = if bare > 1 {
                    "a program with several statements needs names for its outputs"
                } else if last {
                    "the output of a program with several statements needs a name"
                } else {
                    "this expression's value is not used"
                };
                return Err(Diagnostic::new("unnamed-output", s.expr.span, msg)
                    .label("unnamed")
                    .hint(
                        "write `let name = ...` for an intermediate or `name = ...` for an output",
                    ));
            }
            let v = self.expr(&s.expr)?;
            match s.kind {
                StmtKind::Let => self.define(&s.name, v)?,
                StmtKind::Output | StmtKind::Bare => {
                    let Value::Tensor(id) = v else {
                        return Err(Diagnostic::new(
                            "scalar-output",
                            s.expr.span,
                            "an output must be a tensor",
                        )
                        .label("a scalar")
                        .hint(
                            "outputs are computed from the inputs; scalars alone are constants",
                        ));
                    };
                    if s.kind == StmtKind::Output {
                        self.define(&s.name, Value::Tensor(id))?;
                    }
                    outputs.push((s.name.name.clone(), id));
                }
            }
        }
        if outputs.is_empty() {
            let span = prog.stmts.last().map_or(Span::default(), |s| s.name.span);
            return Err(
                Diagnostic::new("no-output", span, "the program has no output")
                    .label("only `let` statements")
                    .hint("name an output without `let`, e.g. `out = matmul(x, w)`"),
            );
        }
        Ok(outputs)
    }

    /// The inputs nobody used, for an error.
    pub fn unused_inputs(&self, inputs: &[Ident]) -> Vec<Ident> {
        let g = self.builder.graph();
        let mut used = vec![false; g.nodes.len()];
        for n in &g.nodes {
            for o in n.op.operands() {
                used[o.0] = true;
            }
        }
        for o in &g.outputs {
            used[o.node.0] = true;
        }
        inputs
            .iter()
            .filter(|i| match self.names.get(&i.name) {
                Some((Value::Tensor(id), _)) => !used[id.0],
                _ => false,
            })
            .cloned()
            .collect()
    }

    fn tensor(&mut self, e: &Expr, func: &str) -> Result<NodeId, Diagnostic> {
        match self.expr(e)? {
            Value::Tensor(id) => Ok(id),
            Value::Scalar(_) => Err(shape_err(ShapeError::RankZero { op: func.into() }, e.span)),
        }
    }

    pub fn expr(&mut self, e: &Expr) -> Result<Value, Diagnostic> {
        match &e.kind {
            ExprKind::Num(v, _) => Ok(Value::Scalar(ScalarExpr::lit(*v))),
            ExprKind::Var(name) => self.var(name, e.span),
            ExprKind::Neg(a) => self.unary(UnaryOp::Neg, a, e.span),
            ExprKind::Infix { op, lhs, rhs } => match op {
                InfixOp::Add => self.binary(BinaryOp::Add, lhs, rhs, e.span),
                InfixOp::Sub => self.binary(BinaryOp::Sub, lhs, rhs, e.span),
                InfixOp::Mul => self.binary(BinaryOp::Mul, lhs, rhs, e.span),
                InfixOp::Div => self.binary(BinaryOp::Div, lhs, rhs, e.span),
                InfixOp::Matmul => self.matmul(lhs, rhs, e.span),
            },
            ExprKind::List(_) => {
                Err(
                    Diagnostic::new("unexpected-list", e.span, "a list is not a value")
                        .label("list")
                        .hint("lists are arguments of permute(x, [..]) and reshape(x, [..])"),
                )
            }
            ExprKind::Call { func, args } => self.call(e, func, args),
        }
    }

    fn var(&mut self, name: &str, span: Span) -> Result<Value, Diagnostic> {
        if let Some((v, _)) = self.names.get(name) {
            return Ok(v.clone());
        }
        if (self.declared_dim)(name) {
            self.dims_used.push((name.to_string(), span));
            return Ok(Value::Scalar(ScalarExpr::Dim(name.to_string())));
        }
        let hint = if FUNCTIONS.contains(&name) {
            format!("`{name}` is a function: call it, e.g. {name}(x)")
        } else if let Some(s) = suggest(name, self.names.keys().cloned()) {
            format!("did you mean `{s}`?")
        } else {
            let mut known: Vec<&String> = self.names.keys().collect();
            known.sort();
            let known: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "names in scope: {}; dims can be used as numbers too",
                known.join(", ")
            )
        };
        Err(
            Diagnostic::new("unknown-name", span, format!("unknown name `{name}`"))
                .label("not defined")
                .hint(hint),
        )
    }

    fn unary(&mut self, op: UnaryOp, a: &Expr, span: Span) -> Result<Value, Diagnostic> {
        match self.expr(a)? {
            Value::Tensor(id) => Ok(Value::Tensor(self.builder.unary(op, id))),
            Value::Scalar(s) => bounded_scalar(ScalarExpr::Unary(op, Box::new(s)).fold(), span),
        }
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
    ) -> Result<Value, Diagnostic> {
        let (a, b) = (self.expr(lhs)?, self.expr(rhs)?);
        let b_ = &mut self.builder;
        let (x, y) = match (a, b) {
            (Value::Scalar(x), Value::Scalar(y)) => {
                return bounded_scalar(
                    ScalarExpr::Binary(op, Box::new(x), Box::new(y)).fold(),
                    span,
                );
            }
            (Value::Tensor(x), Value::Tensor(y)) => (x, y),
            (Value::Tensor(x), Value::Scalar(s)) => (x, b_.constant(s, b_.dtype(x))),
            (Value::Scalar(s), Value::Tensor(y)) => (b_.constant(s, b_.dtype(y)), y),
        };
        b_.binary(op, x, y)
            .map(Value::Tensor)
            .map_err(|e| shape_err(e, span))
    }

    fn matmul(&mut self, lhs: &Expr, rhs: &Expr, span: Span) -> Result<Value, Diagnostic> {
        let a = self.tensor(lhs, "matmul")?;
        let b = self.tensor(rhs, "matmul")?;
        self.builder
            .matmul(a, b)
            .map(Value::Tensor)
            .map_err(|e| shape_err(e, span))
    }

    // Lowering recurses through `call`; each builtin has a method of its own
    // so that `call`'s stack frame stays small in unoptimized builds, which
    // give every temporary of a function its own slot.
    fn call(&mut self, call: &Expr, func: &Ident, args: &[Arg]) -> Result<Value, Diagnostic> {
        let name = func.name.as_str();
        let span = call.span;
        if let Some(op) = UnaryOp::from_name(name) {
            let a = bind(func, args, &["x"], 1)?;
            return self.unary(op, a.req[0], span);
        }
        if let Some(op) = BinaryOp::from_name(name) {
            let a = bind(func, args, &["a", "b"], 2)?;
            return self.binary(op, a.req[0], a.req[1], span);
        }
        if let Some(op) = ReduceOp::from_name(name) {
            return self.call_reduce(op, func, args, span);
        }
        match name {
            "matmul" => {
                let a = bind(func, args, &["a", "b"], 2)?;
                self.matmul(a.req[0], a.req[1], span)
            }
            "transpose" => self.call_transpose(func, args, span),
            "permute" => self.call_permute(func, args, span),
            "reshape" => self.call_reshape(func, args, span),
            "rms_norm" => self.call_rms_norm(func, args, span),
            "softmax" => self.call_softmax(func, args, span),
            _ => Err(unknown_op(func)),
        }
    }

    fn call_reduce(
        &mut self,
        op: ReduceOp,
        func: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Result<Value, Diagnostic> {
        let a = bind(func, args, &["x", "axis", "keepdim"], 1)?;
        let x = self.tensor(a.req[0], &func.name)?;
        let axis = int_arg(a.opt[0], -1)?;
        let keepdim = bool_arg(a.opt[1], false)?;
        self.builder
            .reduce(op, x, axis, keepdim)
            .map(Value::Tensor)
            .map_err(|e| shape_err_at_axis(e, &[a.opt[0]], span))
    }

    fn call_transpose(
        &mut self,
        func: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Result<Value, Diagnostic> {
        let a = bind(func, args, &["x", "a", "b"], 1)?;
        let x = self.tensor(a.req[0], &func.name)?;
        let (p, q) = (int_arg(a.opt[0], -2)?, int_arg(a.opt[1], -1)?);
        self.builder
            .transpose(x, p, q)
            .map(Value::Tensor)
            .map_err(|e| shape_err_at_axis(e, &[a.opt[0], a.opt[1]], span))
    }

    fn call_permute(
        &mut self,
        func: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Result<Value, Diagnostic> {
        let a = bind(func, args, &["x", "dims"], 2)?;
        let x = self.tensor(a.req[0], &func.name)?;
        let perm = list_arg(a.req[1], "permute(x, [0, 2, 1])")?
            .iter()
            .map(|e| int_arg(Some(e), 0))
            .collect::<Result<Vec<_>, _>>()?;
        self.builder
            .permute(x, &perm)
            .map(Value::Tensor)
            .map_err(|e| shape_err_at_axis(e, &[Some(a.req[1])], span))
    }

    fn call_reshape(
        &mut self,
        func: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Result<Value, Diagnostic> {
        let a = bind(func, args, &["x", "shape"], 2)?;
        let x = self.tensor(a.req[0], &func.name)?;
        let items = list_arg(a.req[1], "reshape(x, [b, 8, 4, 128])")?;
        let mut used = Vec::new();
        let shape = items
            .iter()
            .map(|e| dim_of(e, self.declared_dim, &mut used))
            .collect::<Result<Vec<DimExpr>, _>>()?;
        self.dims_used.extend(used);
        self.builder
            .reshape(x, shape)
            .map(Value::Tensor)
            .map_err(|e| shape_err(e, span))
    }

    fn call_rms_norm(
        &mut self,
        func: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Result<Value, Diagnostic> {
        let a = bind(func, args, &["x", "g", "eps"], 1)?;
        let x = self.tensor(a.req[0], &func.name)?;
        let g = match a.opt[0] {
            Some(e) => Some(self.tensor(e, &func.name)?),
            None => None,
        };
        let eps = match a.opt[1] {
            Some(e) => self.scalar(e, "eps")?,
            None => ScalarExpr::lit(DEFAULT_EPS),
        };
        library::rms_norm(&mut self.builder, x, g, eps)
            .map(Value::Tensor)
            .map_err(|e| shape_err(e, span))
    }

    fn call_softmax(
        &mut self,
        func: &Ident,
        args: &[Arg],
        span: Span,
    ) -> Result<Value, Diagnostic> {
        let a = bind(func, args, &["x", "axis"], 1)?;
        let x = self.tensor(a.req[0], &func.name)?;
        library::softmax(&mut self.builder, x, int_arg(a.opt[0], -1)?)
            .map(Value::Tensor)
            .map_err(|e| shape_err_at_axis(e, &[a.opt[0]], span))
    }

    /// Lower an expression that must be a scalar (`eps`, `init` values).
    pub fn scalar(&mut self, e: &Expr, what: &str) -> Result<ScalarExpr, Diagnostic> {
        match self.expr(e)? {
            Value::Scalar(s) => Ok(s),
            Value::Tensor(_) => Err(Diagnostic::new(
                "expected-scalar",
                e.span,
                format!("`{what}` must be a scalar"),
            )
            .label("a tensor")
            .hint("write a number or an expression over dims, e.g. 1e-6 or 1/d")),
        }
    }
}

/// Call arguments matched to a signature: the required ones, then the optional
/// ones (absent or given), each in signature order.
struct Bound<'e> {
    req: Vec<&'e Expr>,
    opt: Vec<Option<&'e Expr>>,
}

/// Match call arguments to parameter names; the first `required` are mandatory.
fn bind<'e>(
    func: &Ident,
    args: &'e [Arg],
    params: &[&str],
    required: usize,
) -> Result<Bound<'e>, Diagnostic> {
    let sig = format!("{}({})", func.name, params.join(", "));
    let mut out: Vec<Option<&Expr>> = vec![None; params.len()];
    for (i, a) in args.iter().enumerate() {
        let slot = match &a.name {
            None => {
                if let Some(kw) = args[..i].iter().find_map(|a| a.name.as_ref()) {
                    return Err(Diagnostic::new(
                        "positional-after-keyword",
                        a.value.span,
                        format!(
                            "positional argument after the keyword argument `{}`",
                            kw.name
                        ),
                    )
                    .label("positional argument")
                    .hint(format!(
                        "put positional arguments first, or name this one; the signature is {sig}"
                    )));
                }
                if i >= params.len() {
                    return Err(Diagnostic::new(
                        "wrong-arity",
                        a.value.span,
                        format!(
                            "`{}` takes at most {} argument{}, got {}",
                            func.name,
                            params.len(),
                            if params.len() == 1 { "" } else { "s" },
                            args.len()
                        ),
                    )
                    .label("extra argument")
                    .hint(format!("the signature is {sig}")));
                }
                i
            }
            Some(n) => params.iter().position(|p| *p == n.name).ok_or_else(|| {
                Diagnostic::new(
                    "unknown-argument",
                    n.span,
                    format!("`{}` has no argument named `{}`", func.name, n.name),
                )
                .label("unknown argument")
                .hint(format!("the signature is {sig}"))
            })?,
        };
        if out[slot].is_some() {
            let span = a
                .name
                .as_ref()
                .map_or(a.value.span, |n| n.span.join(a.value.span));
            return Err(Diagnostic::new(
                "duplicate-argument",
                span,
                format!("argument `{}` given twice", params[slot]),
            )
            .label("given again")
            .hint(format!("the signature is {sig}")));
        }
        out[slot] = Some(&a.value);
    }
    if let Some(missing) = (0..required).find(|&i| out[i].is_none()) {
        return Err(Diagnostic::new(
            "wrong-arity",
            func.span,
            format!(
                "`{}` needs {required} argument{}, got {}",
                func.name,
                if required == 1 { "" } else { "s" },
                args.len()
            ),
        )
        .label(format!("missing `{}`", params[missing]))
        .hint(format!("the signature is {sig}")));
    }
    // Every required slot is filled, so `req` has exactly `required` entries.
    let opt = out.split_off(required);
    Ok(Bound {
        req: out.into_iter().flatten().collect(),
        opt,
    })
}

fn int_arg(e: Option<&Expr>, default: i64) -> Result<i64, Diagnostic> {
    let Some(e) = e else { return Ok(default) };
    match &e.kind {
        ExprKind::Num(v, true) => Ok(*v as i64),
        ExprKind::Neg(inner) => match inner.kind {
            ExprKind::Num(v, true) => Ok(-(v as i64)),
            _ => Err(not_int(e)),
        },
        _ => Err(not_int(e)),
    }
}

fn not_int(e: &Expr) -> Diagnostic {
    Diagnostic::new(
        "expected-integer",
        e.span,
        format!("expected an integer, found `{e}`"),
    )
    .label("not an integer literal")
    .hint("axes are integer literals; negative ones count from the end (-1 is the last axis)")
}

fn bool_arg(e: Option<&Expr>, default: bool) -> Result<bool, Diagnostic> {
    let Some(e) = e else { return Ok(default) };
    match &e.kind {
        ExprKind::Var(v) if v == "true" => Ok(true),
        ExprKind::Var(v) if v == "false" => Ok(false),
        _ => Err(Diagnostic::new(
            "expected-bool",
            e.span,
            format!("expected true or false, found `{e}`"),
        )
        .label("not a boolean")
        .hint("write keepdim=true or keepdim=false")),
    }
}

fn list_arg<'e>(e: &'e Expr, example: &str) -> Result<&'e [Expr], Diagnostic> {
    match &e.kind {
        ExprKind::List(items) => Ok(items),
        _ => Err(Diagnostic::new(
            "expected-list",
            e.span,
            format!("expected a list, found `{e}`"),
        )
        .label("not a list")
        .hint(format!("write it like {example}"))),
    }
}
