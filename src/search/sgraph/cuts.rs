//! Kernel cuts: programs computed by several graph-defined kernels, each
//! found by the single-kernel enumeration.
//!
//! A *cut* is a program node whose value goes to global memory: one kernel
//! computes it, later kernels read it as an input. Given a cut set, the
//! program splits into *pieces* (each cut node from the workload's inputs
//! and earlier cuts, then the outputs); every piece is a small program of
//! its own, enumerated like a workload (its best kernel, or its split
//! form), and the pieces' kernel graphs are stitched into one, the cut
//! values as intermediates.
//!
//! Cut points are where a single kernel cannot go on (the places the
//! enumeration's loop states refuse): a value some consumer *broadcasts*
//! (a row statistic such as a norm's `rsqrt(mean(x²) + eps)`, needed by
//! every element of its row), a *computed matmul operand* (a tensor-core
//! matmul reads its operands from memory) and a *matmul product* (its
//! consumers may need a loop of their own). Cut sets hold up to
//! [`super::EnumOptions::cuts`] such nodes, smallest sets first, at most
//! [`MAX_CUT_SETS`] of them; identical pieces are enumerated once. The
//! stitched graph is proven and cross-checked as a whole like any other
//! candidate.

use std::collections::{BTreeMap, BTreeSet};

use crate::ir::{DimBindings, Graph, Input, Node, NodeId, Op, Output, Workload};
use crate::ugraph::{
    GlobalTensor, Kernel, KernelBody, KernelGraph, TensorId, TensorRole, workload_tensors,
};

use super::{EnumOptions, Found};

/// Most cut sets tried per workload.
pub const MAX_CUT_SETS: usize = 48;

/// The cut candidates of a program, in node order.
pub fn candidates(g: &Graph) -> Vec<NodeId> {
    let outputs: BTreeSet<NodeId> = g.outputs.iter().map(|o| o.node).collect();
    let computed = |n: NodeId| !matches!(g.node(n).op, Op::Input(_) | Op::Const(_));
    let mut out = BTreeSet::new();
    for (i, node) in g.nodes.iter().enumerate() {
        match &node.op {
            Op::Matmul(a, b) => {
                // The product itself (its consumers may need another loop).
                out.insert(NodeId(i));
                for x in [*a, *b] {
                    if computed(x) && !matches!(g.node(x).op, Op::Reshape(_) | Op::Permute(..)) {
                        out.insert(x);
                    }
                }
            }
            Op::Binary(_, a, b) => {
                for x in [*a, *b] {
                    if computed(x) && broadcast_into(&g.node(x).shape, &node.shape) {
                        out.insert(x);
                    }
                }
            }
            _ => {}
        }
    }
    out.into_iter().filter(|n| !outputs.contains(n)).collect()
}

/// Whether an operand of `shape` is broadcast along some axis of `to`.
fn broadcast_into(shape: &[crate::ir::DimExpr], to: &[crate::ir::DimExpr]) -> bool {
    let off = to.len().saturating_sub(shape.len());
    if shape.is_empty() {
        return false;
    }
    to.iter()
        .enumerate()
        .any(|(i, t)| i < off || (shape[i - off].is_one() && !t.is_one()))
}

/// Cut sets of 1..=`max` candidates, smallest first, in a fixed order.
fn cut_sets(cands: &[NodeId], max: usize) -> Vec<Vec<NodeId>> {
    let mut out: Vec<Vec<NodeId>> = Vec::new();
    let mut layer: Vec<Vec<NodeId>> = vec![vec![]];
    for _ in 0..max {
        let mut next = Vec::new();
        for set in &layer {
            let start = set
                .last()
                .and_then(|l| cands.iter().position(|c| c == l))
                .map_or(0, |p| p + 1);
            for c in &cands[start..] {
                let mut s = set.clone();
                s.push(*c);
                next.push(s);
            }
        }
        out.extend(next.iter().cloned());
        layer = next;
        if out.len() >= MAX_CUT_SETS {
            break;
        }
    }
    out.truncate(MAX_CUT_SETS);
    out
}

/// The piece of `g` computing `roots`: every node they reach, stopping at
/// workload inputs and at `cuts` (which become inputs named `c{node}`).
fn piece(g: &Graph, roots: &[(String, NodeId)], cuts: &BTreeSet<NodeId>) -> (Graph, Vec<Source>) {
    let mut reach = BTreeSet::new();
    let mut stack: Vec<NodeId> = roots.iter().map(|r| r.1).collect();
    let root_set: BTreeSet<NodeId> = stack.iter().copied().collect();
    while let Some(n) = stack.pop() {
        if !reach.insert(n) {
            continue;
        }
        if cuts.contains(&n) && !root_set.contains(&n) {
            continue;
        }
        stack.extend(g.node(n).op.operands());
    }
    let mut inputs: Vec<Input> = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    let mut map: BTreeMap<NodeId, NodeId> = BTreeMap::new();
    let mut nodes: Vec<Node> = Vec::new();
    // Workload inputs first (by index), then cut values (by node).
    let mut leaves: Vec<(NodeId, Source)> = Vec::new();
    for &n in &reach {
        match g.node(n).op {
            Op::Input(i) => leaves.push((n, Source::Input(i))),
            _ if cuts.contains(&n) && !root_set.contains(&n) => leaves.push((n, Source::Cut(n))),
            _ => {}
        }
    }
    leaves.sort_by_key(|(_, s)| *s);
    for (n, s) in leaves {
        let node = g.node(n);
        let name = match s {
            Source::Input(i) => g.inputs[i].name.clone(),
            Source::Cut(c) => format!("c{}", c.0),
        };
        inputs.push(Input {
            name,
            dtype: node.dtype,
            shape: node.shape.clone(),
        });
        map.insert(n, NodeId(nodes.len()));
        nodes.push(Node {
            op: Op::Input(inputs.len() - 1),
            shape: node.shape.clone(),
            dtype: node.dtype,
        });
        sources.push(s);
    }
    for &n in &reach {
        if map.contains_key(&n) {
            continue;
        }
        let node = g.node(n);
        let m = |x: &NodeId| map.get(x).copied().unwrap_or(*x);
        let op = match &node.op {
            Op::Unary(u, a) => Op::Unary(*u, m(a)),
            Op::Binary(b, x, y) => Op::Binary(*b, m(x), m(y)),
            Op::Matmul(x, y) => Op::Matmul(m(x), m(y)),
            Op::Reduce {
                op,
                input,
                axis,
                keepdim,
            } => Op::Reduce {
                op: *op,
                input: m(input),
                axis: *axis,
                keepdim: *keepdim,
            },
            Op::Permute(a, p) => Op::Permute(m(a), p.clone()),
            Op::Reshape(a) => Op::Reshape(m(a)),
            other => other.clone(),
        };
        map.insert(n, NodeId(nodes.len()));
        nodes.push(Node {
            op,
            shape: node.shape.clone(),
            dtype: node.dtype,
        });
    }
    let outputs = roots
        .iter()
        .map(|(name, n)| Output {
            name: name.clone(),
            node: map[n],
        })
        .collect();
    (
        Graph {
            inputs,
            nodes,
            outputs,
        },
        sources,
    )
}

/// A piece's outputs: (name, program node).
type Roots = Vec<(String, NodeId)>;

/// Where a piece's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Input(usize),
    Cut(NodeId),
}

/// Multi-kernel candidates of `w`: per cut set, the pieces' best kernels
/// stitched together. `enumerate_piece` enumerates one piece (without
/// cuts). Returns the graphs found and the number of cut sets tried.
pub fn cut_candidates(
    w: &Workload,
    point: &DimBindings,
    opts: &EnumOptions,
    enumerate_piece: &dyn Fn(&Workload) -> Option<Found>,
) -> (Vec<Found>, usize) {
    let g = &w.graph;
    let sets = cut_sets(&candidates(g), opts.cuts);
    let mut memo: BTreeMap<String, Option<Found>> = BTreeMap::new();
    let mut out = Vec::new();
    for set in &sets {
        let cuts: BTreeSet<NodeId> = set.iter().copied().collect();
        // Pieces in node order: each cut, then the outputs.
        let mut pieces: Vec<(Roots, Option<NodeId>)> = set
            .iter()
            .map(|c| (vec![(format!("c{}", c.0), *c)], Some(*c)))
            .collect();
        pieces.push((
            g.outputs.iter().map(|o| (o.name.clone(), o.node)).collect(),
            None,
        ));
        let mut built: Vec<(Found, Vec<Source>, Option<NodeId>)> = Vec::new();
        for (roots, cut) in &pieces {
            let (pg, sources) = piece(g, roots, &cuts);
            let key = format!("{pg:?}");
            let found = memo
                .entry(key)
                .or_insert_with(|| {
                    let pw = Workload {
                        name: format!("{}_piece", w.name),
                        description: None,
                        init: sources
                            .iter()
                            .map(|s| match s {
                                Source::Input(i) => w.init.get(*i).cloned().flatten(),
                                Source::Cut(_) => None,
                            })
                            .collect(),
                        graph: pg,
                        dims: w.dims.clone(),
                        points: w.points.clone(),
                        tolerance: w.tolerance,
                    };
                    enumerate_piece(&pw)
                })
                .clone();
            match found {
                Some(f) => built.push((f, sources, *cut)),
                None => break,
            }
        }
        if built.len() != pieces.len() {
            continue;
        }
        if let Some(f) = stitch(w, &built) {
            let micros = super::super::strategies::cost(&f.graph, point).micros;
            out.push(Found { micros, ..f });
        }
    }
    (out, sets.len())
}

/// One kernel graph from the pieces' graphs.
fn stitch(w: &Workload, pieces: &[(Found, Vec<Source>, Option<NodeId>)]) -> Option<Found> {
    let mut tensors: Vec<GlobalTensor> = workload_tensors(w);
    let mut cut_tensor: BTreeMap<NodeId, TensorId> = BTreeMap::new();
    let mut kernels: Vec<Kernel> = Vec::new();
    let mut terms = Vec::new();
    let mut loops = Vec::new();
    for (k, (f, sources, cut)) in pieces.iter().enumerate() {
        let mut map: Vec<TensorId> = Vec::with_capacity(f.graph.tensors.len());
        for t in &f.graph.tensors {
            let id = match t.role {
                TensorRole::Input(i) => match sources.get(i)? {
                    Source::Input(x) => TensorId(*x),
                    Source::Cut(c) => *cut_tensor.get(c)?,
                },
                TensorRole::Output(j) => match cut {
                    Some(c) => {
                        let n = w.graph.node(*c);
                        tensors.push(GlobalTensor {
                            name: format!("{}_c{}", w.name, c.0),
                            shape: n.shape.clone(),
                            dtype: n.dtype,
                            role: TensorRole::Intermediate,
                        });
                        let id = TensorId(tensors.len() - 1);
                        cut_tensor.insert(*c, id);
                        id
                    }
                    None => TensorId(w.graph.inputs.len() + j),
                },
                TensorRole::Intermediate => {
                    tensors.push(GlobalTensor {
                        name: format!("{}_p{k}_{}", w.name, t.name),
                        ..t.clone()
                    });
                    TensorId(tensors.len() - 1)
                }
            };
            map.push(id);
        }
        for kernel in &f.graph.kernels {
            let mut body = kernel.body.clone();
            remap(&mut body, &map);
            kernels.push(Kernel {
                name: format!("{}_k{}_sgraph", w.name, kernels.len()),
                body,
            });
        }
        terms.extend(f.term.iter().cloned());
        loops.push(f.loops.clone());
    }
    Some(Found {
        graph: KernelGraph { tensors, kernels },
        term: terms,
        loops: loops.join(" | "),
        micros: 0.0,
    })
}

fn remap(body: &mut KernelBody, map: &[TensorId]) {
    match body {
        KernelBody::Block(b) => {
            for m in b
                .inputs
                .iter_mut()
                .chain(b.outputs.iter_mut().map(|o| &mut o.map))
            {
                m.tensor = map[m.tensor.0];
            }
        }
        KernelBody::Predefined(crate::ugraph::Predefined::SplitCombine { partials, output }) => {
            *partials = map[partials.0];
            *output = map[output.0];
        }
    }
}
