//! The CPU reference interpreter: the oracle every later stage is checked
//! against.
//!
//! [`eval`] runs any graph for concrete dims, either exactly in f64
//! ([`Precision::F64`]) or as a GPU kernel would in the declared dtypes: every
//! operator's result rounded to its dtype, reductions and matmuls accumulated
//! in f32 ([`Precision::Declared`]).

pub mod kernels;
pub mod random;
pub mod tensor;

pub use random::random_inputs;
pub use tensor::{Comparison, Tensor, compare, compare_outputs};

use std::borrow::Cow;

use rayon::prelude::*;

use crate::ir::{DimBindings, DimEvalError, Graph, Op};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Exact arithmetic in f64.
    F64,
    /// Each result rounded to its dtype; f32 accumulation.
    Declared,
}

/// Why the CPU reference interpreter could not evaluate a graph.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A dim expression has no value at these dims, or overflows.
    #[error(transparent)]
    Dim(#[from] DimEvalError),
    /// A dim (or a size computed from dims) is below 1.
    #[error("dim {dim} = {value} is not a valid size (sizes are at least 1)")]
    BadDim {
        /// The dim or size expression.
        dim: String,
        /// Its value.
        value: i64,
    },
    /// The wrong number of input tensors was given.
    #[error("expected {expected} inputs, got {got}")]
    InputCount {
        /// Inputs of the graph.
        expected: usize,
        /// Tensors given.
        got: usize,
    },
    /// An input tensor's shape differs from the graph's at these dims.
    #[error("input `{name}` has shape {got:?}, but the graph expects {expected:?} at these dims")]
    InputShape {
        /// The input.
        name: String,
        /// Its shape at these dims.
        expected: Vec<usize>,
        /// The tensor's shape.
        got: Vec<usize>,
    },
    /// A tensor of this shape has more elements than the interpreter
    /// evaluates.
    #[error("tensor of shape {0:?} is too large to evaluate")]
    TooLarge(Vec<usize>),
    /// An input's `init` is not a positive standard deviation at these dims.
    #[error("init of input `{input}` is {std}, not a positive standard deviation")]
    BadInit {
        /// The input.
        input: String,
        /// The value of its `init` expression.
        std: f64,
    },
    /// The graph breaks an invariant of [`Graph`] (a bug, not user input).
    #[error("malformed graph: {0}")]
    Malformed(&'static str),
}

/// Largest tensor the interpreter will allocate (elements).
const MAX_ELEMENTS: usize = 1 << 32;

/// Concrete shape of every node at `dims`.
pub fn shapes_at(graph: &Graph, dims: &DimBindings) -> Result<Vec<Vec<usize>>, EvalError> {
    graph
        .nodes
        .iter()
        .map(|n| {
            let shape =
                n.shape
                    .iter()
                    .map(|d| {
                        let v = d.eval(dims)?;
                        usize::try_from(v).ok().filter(|&u| u >= 1).ok_or_else(|| {
                            EvalError::BadDim {
                                dim: d.to_string(),
                                value: v,
                            }
                        })
                    })
                    .collect::<Result<Vec<usize>, EvalError>>()?;
            let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            match count {
                Some(c) if c <= MAX_ELEMENTS => Ok(shape),
                _ => Err(EvalError::TooLarge(shape)),
            }
        })
        .collect()
}

/// Evaluate `graph` at `dims` on `inputs` (in [`Graph::inputs`] order);
/// returns the outputs in [`Graph::outputs`] order.
pub fn eval(
    graph: &Graph,
    dims: &DimBindings,
    inputs: &[Tensor],
    precision: Precision,
) -> Result<Vec<Tensor>, EvalError> {
    if inputs.len() != graph.inputs.len() {
        return Err(EvalError::InputCount {
            expected: graph.inputs.len(),
            got: inputs.len(),
        });
    }
    let shapes = shapes_at(graph, dims)?;
    // Free each value after its last use.
    let mut last_use = vec![0usize; graph.nodes.len()];
    for (i, n) in graph.nodes.iter().enumerate() {
        for o in n.op.operands() {
            last_use[o.0] = i;
        }
    }
    for o in &graph.outputs {
        last_use[o.node.0] = usize::MAX;
    }
    let acc32 = precision == Precision::Declared;
    // Inputs are borrowed, never copied: decode-attention caches are gigabytes.
    let mut values: Vec<Option<Cow<'_, Tensor>>> = vec![None; graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        let get = |id: crate::ir::NodeId| {
            values[id.0]
                .as_deref()
                .ok_or(EvalError::Malformed("operand used before definition"))
        };
        let out_shape = &shapes[i];
        let t = match &node.op {
            Op::Input(k) => {
                let t = &inputs[*k];
                if &t.shape != out_shape {
                    return Err(EvalError::InputShape {
                        name: graph.inputs[*k].name.clone(),
                        expected: out_shape.clone(),
                        got: t.shape.clone(),
                    });
                }
                // Values not representable in the input's dtype are rounded,
                // as storing them in device memory would.
                if acc32
                    && t.data
                        .par_iter()
                        .any(|&v| node.dtype.round(v).to_bits() != v.to_bits())
                {
                    Cow::Owned(round_to(t.clone(), node.dtype))
                } else {
                    Cow::Borrowed(t)
                }
            }
            Op::Const(s) => {
                let v = s.eval(dims)?;
                Cow::Owned(Tensor::scalar(if acc32 { node.dtype.round(v) } else { v }))
            }
            op => {
                let t = compute(op, &get, out_shape, acc32)?;
                Cow::Owned(
                    if acc32 && !matches!(op, Op::Permute(..) | Op::Reshape(_)) {
                        round_to(t, node.dtype)
                    } else {
                        t
                    },
                )
            }
        };
        values[i] = Some(t);
        for o in node.op.operands() {
            if last_use[o.0] == i {
                values[o.0] = None;
            }
        }
    }
    graph
        .outputs
        .iter()
        .map(|o| {
            values[o.node.0]
                .clone()
                .map(Cow::into_owned)
                .ok_or(EvalError::Malformed("output not computed"))
        })
        .collect()
}

/// Round every element to `dtype`, in parallel.
fn round_to(mut t: Tensor, dtype: crate::ir::DType) -> Tensor {
    t.data
        .par_iter_mut()
        .with_min_len(1 << 14)
        .for_each(|v| *v = dtype.round(*v));
    t
}

/// One operator other than an input or a constant.
fn compute<'v>(
    op: &Op,
    get: &dyn Fn(crate::ir::NodeId) -> Result<&'v Tensor, EvalError>,
    out_shape: &[usize],
    acc32: bool,
) -> Result<Tensor, EvalError> {
    Ok(match op {
        Op::Input(_) | Op::Const(_) => {
            return Err(EvalError::Malformed("input or constant in compute"));
        }
        Op::Unary(u, a) => {
            let u = *u;
            if acc32 {
                kernels::map(get(*a)?, move |x| u.apply_f32(x as f32) as f64)
            } else {
                kernels::map(get(*a)?, move |x| u.apply(x))
            }
        }
        Op::Binary(b, x, y) => {
            let b = *b;
            if acc32 {
                kernels::zip(get(*x)?, get(*y)?, out_shape, move |p, q| {
                    b.apply_f32(p as f32, q as f32) as f64
                })
            } else {
                kernels::zip(get(*x)?, get(*y)?, out_shape, move |p, q| b.apply(p, q))
            }
        }
        Op::Matmul(a, b) => kernels::matmul(get(*a)?, get(*b)?, out_shape, acc32),
        Op::Reduce {
            op,
            input,
            axis,
            keepdim,
        } => kernels::reduce(get(*input)?, *op, *axis, *keepdim, acc32),
        Op::Permute(a, perm) => kernels::permute(get(*a)?, perm),
        Op::Reshape(a) => Tensor {
            shape: out_shape.to_vec(),
            data: get(*a)?.data.clone(),
        },
    })
}
