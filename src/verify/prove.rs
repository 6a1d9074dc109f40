//! Equality saturation: [`prove`] puts both sides in one e-graph, runs the
//! rules until the two roots share an e-class or a limit stops it.
//!
//! Determinism: egg is built with its `deterministic` feature (insertion-
//! ordered maps, so e-classes are visited in the same order on every
//! platform), the scheduler is deterministic and the node and iteration
//! limits are checked at fixed points, so the same pair and limits give the
//! same verdict and the same counts on every run and machine. The time limit is only a safety net: a
//! run it stops may end at a different point on another run (so may its
//! verdict); the defaults are chosen so that it never triggers on the
//! test-suite's programs.

use std::time::Duration;

use egg::{Id, RecExpr, Runner, StopReason as EggStop};
use serde::Serialize;

use super::lang::Node;
use super::rules::{Rule, rules};
use super::shape::{Data, ShapeAnalysis, TensorEGraph, TensorInfo, infer};
use crate::ir::type_string;

/// Bounds of one saturation run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Stop once the e-graph holds more e-nodes than this (the primary bound).
    pub nodes: usize,
    /// Stop after this many iterations (each applies every rule once).
    pub iterations: usize,
    /// Safety net; a run it stops is not reproducible.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nodes: 20_000,
            iterations: 30,
            time: Duration::from_secs(30),
        }
    }
}

/// Why a run stopped without a proof.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// No rule can add anything: the rules cannot prove it at all.
    Saturated,
    NodeLimit,
    IterationLimit,
    TimeLimit,
    Other(String),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Saturated => write!(
                f,
                "saturated: the rules cannot rewrite one side into the other"
            ),
            StopReason::NodeLimit => write!(f, "e-node limit reached"),
            StopReason::IterationLimit => write!(f, "iteration limit reached"),
            StopReason::TimeLimit => write!(f, "time limit reached"),
            StopReason::Other(s) => write!(f, "{s}"),
        }
    }
}

/// Size of a finished run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub iterations: usize,
    /// Rule applications that changed the e-graph.
    pub rewrites: usize,
    /// E-nodes at the end.
    pub nodes: usize,
    pub classes: usize,
}

/// The outcome of [`prove`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// The rules rewrite one side into the other: equal over the reals.
    Equivalent {
        iterations: usize,
        rewrites: usize,
        nodes: usize,
    },
    /// No proof within the limits. Not a disproof.
    Unknown {
        reason: StopReason,
        /// The rule set is exhausted (no limit was hit).
        saturated: bool,
        iterations: usize,
        rewrites: usize,
        nodes: usize,
    },
}

impl Verdict {
    pub fn is_equivalent(&self) -> bool {
        matches!(self, Verdict::Equivalent { .. })
    }
}

/// Why a proof could not be attempted (or must not be trusted).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProveError {
    #[error("the {side} side is ill-typed: {message}")]
    IllTyped { side: &'static str, message: String },
    #[error("the sides differ in type: {lhs} vs {rhs}")]
    TypeMismatch { lhs: String, rhs: String },
    #[error("the rule set is malformed: {0}")]
    Rules(String),
    #[error("internal error, the e-graph became inconsistent: {}", .0.join("; "))]
    Inconsistent(Vec<String>),
}

/// The type of a term (its root), checking every node.
pub fn type_of(expr: &RecExpr<Node>) -> Result<TensorInfo, String> {
    let mut data: Vec<Data> = Vec::with_capacity(expr.as_ref().len());
    for n in expr.as_ref() {
        let d = infer(n, |c| &data[usize::from(c)])?;
        data.push(d);
    }
    match data.pop() {
        Some(Data::Tensor(t)) => Ok(t),
        Some(other) => Err(format!("the root is not a tensor: {other:?}")),
        None => Err("empty term".into()),
    }
}

/// A saturated (or stopped) e-graph with the roots of the terms put in.
pub struct Saturation {
    pub egraph: TensorEGraph,
    pub roots: Vec<Id>,
    pub stop: StopReason,
    pub stats: Stats,
}

fn run(
    exprs: &[&RecExpr<Node>],
    limits: &Limits,
    rules: &[Rule],
    stop_when_first_two_equal: bool,
) -> Result<Saturation, ProveError> {
    let mut runner = Runner::<Node, ShapeAnalysis>::new(ShapeAnalysis::default())
        .with_node_limit(limits.nodes)
        .with_iter_limit(limits.iterations)
        .with_time_limit(limits.time);
    for e in exprs {
        runner = runner.with_expr(e);
    }
    if stop_when_first_two_equal && exprs.len() >= 2 {
        runner = runner.with_hook(|r| {
            if r.egraph.find(r.roots[0]) == r.egraph.find(r.roots[1]) {
                Err("proved".into())
            } else {
                Ok(())
            }
        });
    }
    let runner = runner.run(rules);
    let stop = match &runner.stop_reason {
        Some(EggStop::Saturated) | None => StopReason::Saturated,
        Some(EggStop::NodeLimit(_)) => StopReason::NodeLimit,
        Some(EggStop::IterationLimit(_)) => StopReason::IterationLimit,
        Some(EggStop::TimeLimit(_)) => StopReason::TimeLimit,
        Some(EggStop::Other(s)) => StopReason::Other(s.clone()),
    };
    let stats = Stats {
        iterations: runner.iterations.len(),
        rewrites: runner
            .iterations
            .iter()
            .map(|i| i.applied.values().sum::<usize>())
            .sum(),
        nodes: runner.egraph.total_number_of_nodes(),
        classes: runner.egraph.number_of_classes(),
    };
    if !runner.egraph.analysis.conflicts.is_empty() {
        return Err(ProveError::Inconsistent(
            runner.egraph.analysis.conflicts.clone(),
        ));
    }
    Ok(Saturation {
        roots: runner.roots.clone(),
        egraph: runner.egraph,
        stop,
        stats,
    })
}

/// Saturate the e-graph of some terms (no early stop). For tests of the
/// rules and for later stages that search the e-graph.
pub fn saturate(exprs: &[&RecExpr<Node>], limits: &Limits) -> Result<Saturation, ProveError> {
    for (i, e) in exprs.iter().enumerate() {
        type_of(e).map_err(|message| ProveError::IllTyped {
            side: if i == 0 { "first" } else { "other" },
            message,
        })?;
    }
    run(exprs, limits, rules().map_err(ProveError::Rules)?, false)
}

/// Try to prove `lhs = rhs` over the reals with the rule set of
/// [`rules`]. Both must have the same shape and dtype.
pub fn prove(
    lhs: &RecExpr<Node>,
    rhs: &RecExpr<Node>,
    limits: &Limits,
) -> Result<Verdict, ProveError> {
    prove_with(lhs, rhs, limits, rules().map_err(ProveError::Rules)?)
}

/// [`prove`] with another rule set (e.g. [`rules`] plus rules for a
/// language extension).
pub fn prove_with(
    lhs: &RecExpr<Node>,
    rhs: &RecExpr<Node>,
    limits: &Limits,
    rules: &[Rule],
) -> Result<Verdict, ProveError> {
    let lt = type_of(lhs).map_err(|message| ProveError::IllTyped {
        side: "left",
        message,
    })?;
    let rt = type_of(rhs).map_err(|message| ProveError::IllTyped {
        side: "right",
        message,
    })?;
    let dtype_differs = matches!((lt.dtype, rt.dtype), (Some(a), Some(b)) if a != b);
    if lt.shape != rt.shape || dtype_differs {
        let show = |t: &TensorInfo| match t.dtype {
            Some(d) => type_string(d, &t.shape),
            None => format!("constant{:?}", t.shape),
        };
        return Err(ProveError::TypeMismatch {
            lhs: show(&lt),
            rhs: show(&rt),
        });
    }
    let s = run(&[lhs, rhs], limits, rules, true)?;
    let Stats {
        iterations,
        rewrites,
        nodes,
        ..
    } = s.stats;
    if s.egraph.find(s.roots[0]) == s.egraph.find(s.roots[1]) {
        return Ok(Verdict::Equivalent {
            iterations,
            rewrites,
            nodes,
        });
    }
    let saturated = s.stop == StopReason::Saturated;
    Ok(Verdict::Unknown {
        reason: s.stop,
        saturated,
        iterations,
        rewrites,
        nodes,
    })
}
