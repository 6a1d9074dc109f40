//! Equivalence verification of tensor programs.
//!
//! Two halves:
//! - **algebraic** (`prove`): both programs go into one e-graph (egg) over
//!   a tensor-level language ([`lang`]) whose e-classes carry their symbolic
//!   shape ([`shape`]); sound rewrite rules (`rules`) are applied until the
//!   two roots meet (a proof over the reals, for every value of the symbolic
//!   dims) or a limit stops the run (`Unknown`, never a disproof);
//! - **numeric** ([`counterexample`]): both programs are evaluated by the
//!   reference interpreter in f64 on random inputs at small dims; a
//!   difference is a disproof.
//!
//! `prism equiv FILE` ([`equiv_file`]) runs the numeric check first (cheap),
//! then the proof.
//!
//! Extending it: new operators are a [`lang::Node`] variant, an arm of
//! [`shape::infer`] and the rules that mention them; attribute values
//! (axes, grid dims, sizes) are leaf children, so rules can bind them.

pub mod equiv_file;
pub mod lang;
pub mod numeric;
pub mod prove;
pub mod rules;
pub mod shape;

pub use lang::{ConvertError, Node, from_graph, to_graph};
pub use numeric::{Counterexample, NumericCheck, REL_L2_THRESHOLD, counterexample, numeric_check};
pub use prove::{
    Limits, ProveError, Saturation, Stats, StopReason, Verdict, prove, prove_with, saturate,
};
pub use rules::{Rule, rules};
pub use shape::{Data, ShapeAnalysis, TensorEGraph, TensorInfo};

/// A term of the verifier's language (the root is the last node).
pub type Expr = egg::RecExpr<Node>;

/// Prove that output `lo` of `lg` equals output `ro` of `rg`.
pub fn prove_graphs(
    lg: &crate::ir::Graph,
    lo: crate::ir::NodeId,
    rg: &crate::ir::Graph,
    ro: crate::ir::NodeId,
    limits: &Limits,
) -> Result<Verdict, ProveError> {
    let conv = |side: &'static str, g, o| {
        from_graph(g, o).map_err(|e| ProveError::IllTyped {
            side,
            message: e.to_string(),
        })
    };
    prove(&conv("left", lg, lo)?, &conv("right", rg, ro)?, limits)
}
