//! The unpartitioned meaning of a μGraph as a tensor program, so the
//! algebraic verifier ([`crate::verify`]) can compare it with the workload's
//! program.
//!
//! Each block graph is read as if one block ran the whole tensors: inputs
//! are their (reshaping) views, a tile matmul contracting the for-loop axis
//! is the full matmul, a reduction over the loop axis followed by its
//! accumulator is the full reduction. Grid and loop maps are not modelled:
//! the proof covers the algebra of a candidate (e.g. the norm moved after
//! the matmul), the numeric cross-check covers its maps. A block graph whose
//! meaning needs more (online softmax, accumulating a value that still
//! spans the loop axis) is reported as not expressible.

use crate::ir::{DType, Graph, GraphBuilder, NodeId, ReduceOp, Workload};
use crate::ugraph::{AccumKind, BlockOp, KernelBody, KernelGraph, Predefined, TensorRole};

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The tensor program a μGraph computes, with `w`'s input names.
pub fn unpartitioned(w: &Workload, g: &KernelGraph) -> Result<Graph, String> {
    let mut b = GraphBuilder::new();
    let mut node_of: Vec<Option<NodeId>> = vec![None; g.tensors.len()];
    // Inputs in argument order, so names and order match the program.
    let mut inputs: Vec<(usize, usize)> = g
        .tensors
        .iter()
        .enumerate()
        .filter_map(|(t, x)| match x.role {
            TensorRole::Input(i) => Some((i, t)),
            _ => None,
        })
        .collect();
    inputs.sort();
    for (_, t) in inputs {
        let x = &g.tensors[t];
        node_of[t] = Some(b.input(&x.name, x.dtype, x.shape.clone()));
    }
    for k in &g.kernels {
        match &k.body {
            KernelBody::Predefined(Predefined::SplitCombine { partials, output }) => {
                let p =
                    node_of[partials.0].ok_or("a kernel reads a tensor before it is written")?;
                let s = b.reduce(ReduceOp::Sum, p, 0, false).map_err(err)?;
                node_of[output.0] = Some(s);
            }
            KernelBody::Block(bg) => {
                // Per block op: its node and the loop axis it still spans
                // (counted from the last axis).
                let mut vals: Vec<(NodeId, Option<usize>)> = Vec::with_capacity(bg.ops.len());
                let dtype: DType = bg
                    .outputs
                    .first()
                    .map(|o| g.tensors[o.map.tensor.0].dtype)
                    .unwrap_or(DType::F32);
                for op in &bg.ops {
                    let v = match op {
                        BlockOp::Input(i) => {
                            let m = &bg.inputs[*i];
                            let t = node_of[m.tensor.0]
                                .ok_or("a kernel reads a tensor before it is written")?;
                            let n = b.reshape(t, m.view.clone()).map_err(err)?;
                            (n, m.fmap.map(|a| m.view.len() - 1 - a))
                        }
                        BlockOp::Const(c) => (b.constant(c.clone(), dtype), None),
                        BlockOp::Unary(u, a) => (b.unary(*u, vals[a.0].0), vals[a.0].1),
                        BlockOp::Binary(op, x, y) => {
                            let (lx, ly) = (vals[x.0].1, vals[y.0].1);
                            if lx.is_some() && ly.is_some() && lx != ly {
                                return Err("operands span the loop along different axes".into());
                            }
                            let n = b.binary(*op, vals[x.0].0, vals[y.0].0).map_err(err)?;
                            (n, lx.or(ly))
                        }
                        BlockOp::Permute(a, perm) => {
                            if vals[a.0].1.is_some() {
                                return Err("a permute of a loop-variant tile".into());
                            }
                            let p: Vec<i64> = perm.iter().map(|x| *x as i64).collect();
                            (b.permute(vals[a.0].0, &p).map_err(err)?, None)
                        }
                        BlockOp::Matmul(x, y) => {
                            let (lx, ly) = (vals[x.0].1, vals[y.0].1);
                            // Either both operands walk k with the loop (the
                            // accumulated matmul is the full one) or neither does.
                            if !matches!((lx, ly), (Some(0), Some(1)) | (None, None)) {
                                return Err("a tile matmul not contracting the loop axis".into());
                            }
                            (b.matmul(vals[x.0].0, vals[y.0].0).map_err(err)?, None)
                        }
                        BlockOp::Reduce {
                            op,
                            input,
                            axis,
                            count,
                        } => {
                            let (x, l) = vals[input.0];
                            let rank = b.shape(x).len();
                            let from_end = rank - 1 - axis;
                            let full = b.shape(x)[*axis].clone();
                            let n = match op {
                                ReduceOp::Mean => {
                                    if count.as_ref().is_some_and(|c| *c != full) {
                                        return Err("a mean over part of an axis".into());
                                    }
                                    b.reduce(ReduceOp::Mean, x, *axis as i64, true)
                                        .map_err(err)?
                                }
                                op => b.reduce(*op, x, *axis as i64, true).map_err(err)?,
                            };
                            (n, l.filter(|a| *a != from_end))
                        }
                        BlockOp::Accum { kind, input } => {
                            let (x, l) = vals[input.0];
                            if l.is_some() {
                                return Err(
                                    "an accumulator of a value spanning the loop axis".into()
                                );
                            }
                            match kind {
                                AccumKind::Sum | AccumKind::Max => (x, None),
                                AccumKind::RescaledSum { .. } => {
                                    return Err(
                                        "online-softmax accumulators are not modelled yet".into()
                                    );
                                }
                            }
                        }
                        BlockOp::Running(_) => {
                            return Err("running accumulator values are not modelled yet".into());
                        }
                    };
                    vals.push(v);
                }
                for o in &bg.outputs {
                    let t = &g.tensors[o.map.tensor.0];
                    let n = b.reshape(vals[o.value.0].0, t.shape.clone()).map_err(err)?;
                    node_of[o.map.tensor.0] = Some(n);
                }
            }
        }
    }
    let mut outputs: Vec<(usize, usize)> = g
        .tensors
        .iter()
        .enumerate()
        .filter_map(|(t, x)| match x.role {
            TensorRole::Output(j) => Some((j, t)),
            _ => None,
        })
        .collect();
    outputs.sort();
    for (j, t) in outputs {
        let n = node_of[t].ok_or("an output is never written")?;
        let name = w
            .graph
            .outputs
            .get(j)
            .map(|o| o.name.as_str())
            .unwrap_or("out");
        b.output(name, n);
    }
    Ok(b.finish())
}
