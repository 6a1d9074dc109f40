//! A CPU interpreter of μGraphs in exact (f64) arithmetic: the semantics code
//! generation must reproduce, checked against the reference interpreter of
//! the tensor program.
//!
//! Kernels run in order. A block kernel runs every block of its grid (the
//! block index along a grid dim decomposes row-major over its extents, the
//! last one in tiles of `tile`); each block runs its for-loop iterations
//! (once without a for-loop): it gathers each input's tile (clipped at the
//! edges, index 0 along broadcast axes), evaluates the `Loop` ops in order and
//! updates its accumulators as it reaches them; after the loop it evaluates
//! the `Post` ops and scatters its outputs (see [`super::validate`] for the
//! phases). Accumulators start with the first iteration's value; a
//! `RescaledSum` rescales by `exp(m_prev - m_cur)` of its max accumulator's
//! values before and after the iteration (1 when they are equal, so `-inf`
//! rows stay NaN-free). `Reduce` keeps the reduced axis with size 1; `Mean`
//! divides by `count` at the dims, or by the tile's extent without one.
//! Tensors other than inputs start as NaN, so an element no kernel wrote is
//! visible. Blocks run in parallel and write disjoint tiles, which are applied
//! in block order: results do not depend on the thread count.

mod block;

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::types::{BlockOp, KernelBody, KernelGraph, Predefined, TensorRole};
use super::validate::{UGraphError, validate_infos};
use crate::ir::{DimBindings, DimEvalError, DimExpr};
use crate::reference::Tensor;

/// Why a μGraph could not be run.
#[derive(Debug, thiserror::Error)]
pub enum InterpError {
    #[error("invalid μGraph: {0}")]
    Invalid(#[from] UGraphError),
    #[error(transparent)]
    Dim(#[from] DimEvalError),
    #[error("{what} is {expr} = {value} at these dims; sizes are at least 1")]
    BadDim {
        what: String,
        expr: String,
        value: i64,
    },
    #[error("expected {expected} inputs, got {got}")]
    InputCount { expected: usize, got: usize },
    #[error(
        "input {index} (`{name}`) has shape {got:?}, but the graph expects {expected:?} at these dims"
    )]
    InputShape {
        index: usize,
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("input {index} has {len} elements, but its shape {shape:?} says otherwise")]
    MalformedInput {
        index: usize,
        len: usize,
        shape: Vec<usize>,
    },
    #[error("{what} ({shape:?}) is too large to interpret")]
    TooLarge { what: String, shape: Vec<usize> },
    /// Tiles disagreed at run time; validation is meant to rule this out.
    #[error("kernel `{kernel}`: {message}")]
    Runtime { kernel: String, message: String },
}

/// Largest tensor (and grid) the interpreter accepts, in elements (blocks).
const MAX_ELEMENTS: usize = 1 << 32;

/// `e` at `dims` as a size (at least 1).
fn size(e: &DimExpr, dims: &DimBindings, what: impl Fn() -> String) -> Result<usize, InterpError> {
    let v = e.eval(dims)?;
    usize::try_from(v)
        .ok()
        .filter(|&u| u >= 1)
        .ok_or_else(|| InterpError::BadDim {
            what: what(),
            expr: e.to_string(),
            value: v,
        })
}

/// Concrete shape, bounded by [`MAX_ELEMENTS`].
fn shape_at(
    dims_of: &[DimExpr],
    dims: &DimBindings,
    what: &str,
) -> Result<Vec<usize>, InterpError> {
    let shape = dims_of
        .iter()
        .enumerate()
        .map(|(a, d)| size(d, dims, || format!("axis {a} of {what}")))
        .collect::<Result<Vec<_>, _>>()?;
    match shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
        Some(n) if n <= MAX_ELEMENTS => Ok(shape),
        _ => Err(InterpError::TooLarge {
            what: what.to_string(),
            shape,
        }),
    }
}

/// Every dim the graph refers to must be bound to a value of at least 1.
fn check_dims(graph: &KernelGraph, dims: &DimBindings) -> Result<(), InterpError> {
    let mut used = BTreeSet::new();
    let mut add = |e: &DimExpr| used.extend(e.symbols());
    for t in &graph.tensors {
        t.shape.iter().for_each(&mut add);
    }
    let mut scalar_dims = Vec::new();
    for k in &graph.kernels {
        let KernelBody::Block(b) = &k.body else {
            continue;
        };
        b.grid.iter().flat_map(|g| &g.extents).for_each(&mut add);
        if let Some(f) = &b.forloop {
            add(&f.extent);
        }
        for m in b.inputs.iter().chain(b.outputs.iter().map(|o| &o.map)) {
            m.view.iter().for_each(&mut add);
        }
        for op in &b.ops {
            match op {
                BlockOp::Reduce { count: Some(c), .. } => add(c),
                BlockOp::Const(s) => s.dims(&mut scalar_dims),
                _ => {}
            }
        }
    }
    used.extend(scalar_dims);
    for s in used {
        let v = *dims
            .get(&s)
            .ok_or_else(|| DimEvalError::Unbound(s.clone()))?;
        if v < 1 {
            return Err(InterpError::BadDim {
                what: format!("dim `{s}`"),
                expr: s.clone(),
                value: v,
            });
        }
    }
    Ok(())
}

/// Run `graph` at `dims` on `inputs` (ordered by `TensorRole::Input` index);
/// returns the outputs ordered by `TensorRole::Output` index.
pub fn run(
    graph: &KernelGraph,
    dims: &DimBindings,
    inputs: &[Tensor],
) -> Result<Vec<Tensor>, InterpError> {
    let infos = validate_infos(graph)?;
    check_dims(graph, dims)?;
    let n_inputs = graph
        .tensors
        .iter()
        .filter(|t| matches!(t.role, TensorRole::Input(_)))
        .count();
    if inputs.len() != n_inputs {
        return Err(InterpError::InputCount {
            expected: n_inputs,
            got: inputs.len(),
        });
    }
    let mut store: Vec<Cow<'_, Tensor>> = Vec::with_capacity(graph.tensors.len());
    for t in &graph.tensors {
        let shape = shape_at(&t.shape, dims, &format!("tensor `{}`", t.name))?;
        store.push(match t.role {
            TensorRole::Input(i) => {
                let x = &inputs[i];
                if x.shape != shape {
                    return Err(InterpError::InputShape {
                        index: i,
                        name: t.name.clone(),
                        expected: shape,
                        got: x.shape.clone(),
                    });
                }
                if x.data.len() != shape.iter().product::<usize>() {
                    return Err(InterpError::MalformedInput {
                        index: i,
                        len: x.data.len(),
                        shape,
                    });
                }
                Cow::Borrowed(x)
            }
            _ => {
                let n = shape.iter().product();
                Cow::Owned(Tensor {
                    shape,
                    data: vec![f64::NAN; n],
                })
            }
        });
    }
    for (kernel, info) in graph.kernels.iter().zip(&infos) {
        let runtime = |message: String| InterpError::Runtime {
            kernel: kernel.name.clone(),
            message,
        };
        match (&kernel.body, info) {
            (KernelBody::Block(b), Some(info)) => {
                let writes = block::run_block(&kernel.name, b, info, &store, dims)?;
                for w in writes {
                    let dst = store[w.tensor].to_mut();
                    for (&o, &v) in w.offsets.iter().zip(&w.data) {
                        *dst.data
                            .get_mut(o)
                            .ok_or_else(|| runtime(format!("write at {o} out of range")))? = v;
                    }
                }
            }
            (KernelBody::Predefined(Predefined::SplitCombine { partials, output }), _) => {
                let p = &store[partials.0];
                let out_shape = store[output.0].shape.clone();
                if p.shape.get(1..) != Some(&out_shape[..]) {
                    return Err(runtime(format!(
                        "partials {:?} do not match the output {out_shape:?}",
                        p.shape
                    )));
                }
                let n: usize = out_shape.iter().product();
                let mut sum = vec![0.0; n];
                for chunk in p.data.chunks(n.max(1)) {
                    sum.iter_mut().zip(chunk).for_each(|(s, &x)| *s += x);
                }
                store[output.0].to_mut().data = sum;
            }
            (KernelBody::Block(_), None) => {
                return Err(runtime("no block info".into()));
            }
        }
    }
    let n_outputs = graph
        .tensors
        .iter()
        .filter(|t| matches!(t.role, TensorRole::Output(_)))
        .count();
    let mut outputs: Vec<Option<Tensor>> = vec![None; n_outputs];
    for (t, data) in graph.tensors.iter().zip(store) {
        if let TensorRole::Output(j) = t.role
            && let Some(slot) = outputs.get_mut(j)
        {
            *slot = Some(data.into_owned());
        }
    }
    outputs
        .into_iter()
        .enumerate()
        .map(|(j, o)| {
            o.ok_or_else(|| InterpError::Runtime {
                kernel: String::new(),
                message: format!("output {j} missing"),
            })
        })
        .collect()
}
