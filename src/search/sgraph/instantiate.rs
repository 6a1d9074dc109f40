//! A term and its loop map → concrete μGraphs: the mapping instantiation.
//!
//! Axis identities come from dimension matching over the term (a union-find
//! over every value's axes: operands of an elementwise operator agree
//! axis by axis where neither broadcasts, a matmul's contraction axes
//! agree). Grid dims partition the first output's axes; which axes are
//! partitioned is enumerated, and the grid dims are always assigned from
//! the innermost partitioned axis outwards (x, y, then z over all the
//! rest): permuting grid dims gives the same kernel, so only this order is
//! built (symmetry breaking). Every input and output then maps each grid
//! dim to its axes of the same identity, or is replicated along it.
//! Tile sizes are the heuristics of the direct lowering until tuning lands.

use crate::ir::{BinaryOp, DimExpr, ScalarExpr, Workload};
use std::collections::BTreeMap;

use crate::ugraph::lower::{
    ELEMENTWISE_TILE, MatmulTiles, REDUCE_TILE, matmul_params, matmul_tiles, max_value,
};
use crate::ugraph::validate::{TileExtent, check_block};
use crate::ugraph::{
    AccumKind, BlockGraph, BlockOp, BlockOutput, ForLoop, GlobalTensor, GridDim, Kernel,
    KernelBody, KernelGraph, LaunchParams, TensorId, TileMap, ValueId, workload_tensors,
};
use crate::verify::lang::{Red, Un, dim_scalar};
use crate::verify::shape::infer;
use crate::verify::{Data, Node};
use egg::Language;

use super::states::{LoopMap, State, is_constant};
use super::terms::Term;

/// Static shared memory a block may use (what the generated kernels
/// declare; larger tiles need dynamic shared memory, which the code
/// generator does not emit yet).
pub const SHARED_BYTES_PER_BLOCK: u64 = 48 * 1024;

/// A union-find over axis identities.
#[derive(Default)]
struct Axes {
    parent: Vec<usize>,
}

impl Axes {
    fn fresh(&mut self) -> usize {
        self.parent.push(self.parent.len());
        self.parent.len() - 1
    }
    fn find(&mut self, mut a: usize) -> usize {
        while self.parent[a] != a {
            self.parent[a] = self.parent[self.parent[a]];
            a = self.parent[a];
        }
        a
    }
    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[a.max(b)] = a.min(b);
        }
    }
}

fn shape(d: &Data) -> &[DimExpr] {
    d.tensor().map_or(&[], |t| t.shape.as_slice())
}

/// Broadcast two axis lists (numpy rules over the shapes), joining the
/// axes that match.
fn broadcast(ax: &mut Axes, a: (&[usize], &[DimExpr]), b: (&[usize], &[DimExpr])) -> Vec<usize> {
    let r = a.0.len().max(b.0.len());
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let pick = |x: (&[usize], &[DimExpr])| {
            let off = r - x.0.len();
            (i >= off).then(|| (x.0[i - off], x.1[i - off].clone()))
        };
        out.push(match (pick(a), pick(b)) {
            (Some((p, dp)), Some((q, dq))) => {
                if dp == dq {
                    ax.union(p, q);
                    p
                } else if dp.is_one() {
                    q
                } else {
                    p
                }
            }
            (Some((p, _)), None) | (None, Some((p, _))) => p,
            (None, None) => ax.fresh(),
        });
    }
    out
}

fn scalar(t: &Term, i: usize) -> Option<ScalarExpr> {
    let kid = |k: usize| -> Option<ScalarExpr> {
        let c = t.nodes[i].node.children().get(k)?;
        scalar(t, usize::from(*c))
    };
    Some(match &t.nodes[i].node {
        Node::Lit(l) => ScalarExpr::lit(l.value()),
        Node::Dim(d) => dim_scalar(d),
        Node::Unary(Un::Recip, _) => ScalarExpr::Binary(
            BinaryOp::Div,
            Box::new(ScalarExpr::lit(1.0)),
            Box::new(kid(0)?),
        ),
        Node::Unary(u, _) => ScalarExpr::Unary(u.ir()?, Box::new(kid(0)?)),
        Node::Binary(op, _) => ScalarExpr::Binary(*op, Box::new(kid(0)?), Box::new(kid(1)?)),
        _ => return None,
    })
}

/// The block input reading workload input `name` through `view` with
/// these maps (shared when an identical one exists).
fn block_input(
    w: &Workload,
    inputs: &mut Vec<TileMap>,
    name: &str,
    view: Vec<DimExpr>,
    imap: Vec<Option<Vec<usize>>>,
    fmap: Option<usize>,
) -> Result<BlockOp, Prune> {
    let t = w
        .graph
        .inputs
        .iter()
        .position(|x| x.name == name)
        .ok_or("unknown input")?;
    let map = TileMap {
        tensor: TensorId(t),
        view,
        imap,
        fmap,
    };
    let k = inputs.iter().position(|m| *m == map).unwrap_or_else(|| {
        inputs.push(map);
        inputs.len() - 1
    });
    Ok(BlockOp::Input(k))
}

/// Why an instance was not built (the key of the search's pruning counts).
pub type Prune = String;

/// The block graphs of `term` under `loops`, one per grid assignment, each
/// checked structurally and against the shared-memory limit.
/// A kernel with a for-loop also gives its split form ([`super::split`]).
pub fn instances(w: &Workload, term: &Term, loops: &LoopMap) -> Vec<Result<KernelGraph, Prune>> {
    match Builder::new(w, term, loops) {
        Ok(b) => b.variants(),
        Err(e) => vec![Err(e)],
    }
}

pub(super) struct Builder<'a> {
    pub(super) w: &'a Workload,
    term: &'a Term,
    loops: &'a LoopMap,
    pub(super) data: Vec<Data>,
    axes: Vec<Vec<usize>>,
    uf: Axes,
    /// Per output: (term node of the value, its view).
    pub(super) outputs: Vec<(usize, Vec<DimExpr>)>,
    /// The kernel graph's tensors: the workload's inputs and outputs.
    pub(super) tensors: Vec<GlobalTensor>,
}

/// One built kernel and what its split form needs.
pub(super) struct Built {
    pub(super) block: BlockGraph,
    pub(super) info: crate::ugraph::validate::BlockInfo,
    /// Per `Accum` op (by op index): the term node it accumulates.
    pub(super) accum_nodes: BTreeMap<usize, usize>,
}

impl<'a> Builder<'a> {
    fn new(w: &'a Workload, term: &'a Term, loops: &'a LoopMap) -> Result<Self, Prune> {
        let mut data: Vec<Data> = Vec::with_capacity(term.nodes.len());
        for n in &term.nodes {
            let d = infer(&n.node, |c| &data[usize::from(c)])
                .map_err(|_| "ill-typed term".to_string())?;
            data.push(d);
        }
        let mut uf = Axes::default();
        let mut axes: Vec<Vec<usize>> = Vec::with_capacity(term.nodes.len());
        for (i, n) in term.nodes.iter().enumerate() {
            let kid = |k: usize| usize::from(n.node.children()[k]);
            let a = match &n.node {
                Node::Unary(..) => axes[kid(0)].clone(),
                Node::Binary(..) => {
                    let (p, q) = (kid(0), kid(1));
                    let (pa, qa) = (axes[p].clone(), axes[q].clone());
                    broadcast(&mut uf, (&pa, shape(&data[p])), (&qa, shape(&data[q])))
                }
                Node::Matmul(_) => {
                    let (p, q) = (kid(0), kid(1));
                    let (pa, qa) = (axes[p].clone(), axes[q].clone());
                    let (rp, rq) = (pa.len(), qa.len());
                    if rp < 2 || rq < 2 {
                        return Err("ill-typed term".into());
                    }
                    uf.union(pa[rp - 1], qa[rq - 2]);
                    let mut out = broadcast(
                        &mut uf,
                        (&pa[..rp - 2], &shape(&data[p])[..rp - 2]),
                        (&qa[..rq - 2], &shape(&data[q])[..rq - 2]),
                    );
                    out.push(pa[rp - 2]);
                    out.push(qa[rq - 1]);
                    out
                }
                Node::Reduce(_, [ax, x]) => {
                    let mut a = axes[usize::from(*x)].clone();
                    if let Data::Int(k) = data[usize::from(*ax)]
                        && let Some(slot) = usize::try_from(k).ok().and_then(|k| a.get_mut(k))
                    {
                        *slot = uf.fresh();
                    }
                    a
                }
                Node::Permute([p, x]) => {
                    let a = &axes[usize::from(*x)];
                    match &data[usize::from(*p)] {
                        Data::Perm(perm) => {
                            perm.iter().filter_map(|&j| a.get(j).copied()).collect()
                        }
                        _ => return Err("ill-typed term".into()),
                    }
                }
                Node::Reshape(_) => {
                    // A view: new axis identities (an output reshape keeps
                    // its operand's, see `outputs`).
                    shape(&data[i]).iter().map(|_| uf.fresh()).collect()
                }
                _ => shape(&data[i]).iter().map(|_| uf.fresh()).collect(),
            };
            axes.push(a);
        }
        let mut outputs = Vec::new();
        for &r in &term.roots {
            let n = &term.nodes[r].node;
            let out = match n {
                Node::Reshape([_, x])
                    if !matches!(term.nodes[usize::from(*x)].node, Node::Input(_)) =>
                {
                    let x = usize::from(*x);
                    (x, shape(&data[x]).to_vec())
                }
                _ => (r, shape(&data[r]).to_vec()),
            };
            outputs.push(out);
        }
        Ok(Builder {
            w,
            term,
            loops,
            data,
            axes,
            uf,
            outputs,
            tensors: workload_tensors(w),
        })
    }

    /// Every grid assignment: a non-empty set of the first output's axes
    /// (of extent other than 1), assigned x, y, z from the innermost.
    fn variants(mut self) -> Vec<Result<KernelGraph, Prune>> {
        let Some((first, view)) = self.outputs.first().cloned() else {
            return vec![Err("no outputs".into())];
        };
        let candidates: Vec<usize> = (0..view.len()).filter(|&a| !view[a].is_one()).collect();
        if candidates.is_empty() || candidates.len() > 6 {
            return vec![Err("grid: no output axis to partition".into())];
        }
        let mut out = Vec::new();
        for mask in 1u32..(1 << candidates.len()) {
            let chosen: Vec<usize> = candidates
                .iter()
                .enumerate()
                .filter(|(b, _)| mask & (1 << b) != 0)
                .map(|(_, a)| *a)
                .collect();
            let classes: Vec<usize> = chosen
                .iter()
                .map(|&a| self.axes[first][a])
                .collect::<Vec<_>>()
                .into_iter()
                .map(|c| self.uf.find(c))
                .collect();
            match self.build(&view, &chosen, &classes) {
                Ok(built) => {
                    let split = built.block.forloop.is_some().then(|| self.split(&built));
                    out.push(Ok(self.single(built)));
                    out.extend(split);
                }
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }

    /// The kernel graph of one unsplit kernel.
    fn single(&self, built: Built) -> KernelGraph {
        KernelGraph {
            tensors: self.tensors.clone(),
            kernels: vec![Kernel {
                name: format!("{}_k0_sgraph", self.w.name),
                body: KernelBody::Block(built.block),
            }],
        }
    }

    pub(super) fn class(&mut self, node: usize, axis: usize) -> usize {
        let c = self.axes[node][axis];
        self.uf.find(c)
    }

    /// The imap of a value: per grid dim (its identities), the axes of the
    /// value with those identities, `None` when it has none of them.
    pub(super) fn imap(
        &mut self,
        node: usize,
        grid: &[Vec<usize>],
    ) -> Result<Vec<Option<Vec<usize>>>, Prune> {
        let rank = self.axes[node].len();
        let mut out = Vec::new();
        for g in grid {
            let mut found = Vec::new();
            for &c in g {
                if let Some(a) = (0..rank).find(|&a| self.class(node, a) == c) {
                    found.push(a);
                }
            }
            if found.is_empty() {
                out.push(None);
            } else if found.len() == g.len() {
                out.push(Some(found));
            } else {
                return Err("grid: a tensor holds part of a grid dim's axes".into());
            }
        }
        Ok(out)
    }

    fn build(
        &mut self,
        view: &[DimExpr],
        chosen: &[usize],
        classes: &[usize],
    ) -> Result<Built, Prune> {
        let w = self.w;
        let term = self.term;
        let r = view.len();
        // Online softmax (a rescaled sum) runs on the flash-attention
        // template's tiles: 16 or 64 rows, 64 keys per iteration.
        let online = term.nodes.iter().any(|n| n.state == Some(State::Rescaled));
        // Grid dims from the innermost chosen axis: x, y, then z (the rest).
        // An online-softmax kernel keeps a grid dim free for its split:
        // x, then y over the rest.
        let single = if online { 1 } else { 2 };
        let mut grid_axes: Vec<Vec<usize>> = Vec::new();
        let mut grid_classes: Vec<Vec<usize>> = Vec::new();
        for (k, (&a, &c)) in chosen.iter().zip(classes).rev().enumerate() {
            if k < single {
                grid_axes.push(vec![a]);
                grid_classes.push(vec![c]);
            } else {
                if grid_axes.len() <= single {
                    grid_axes.push(vec![]);
                    grid_classes.push(vec![]);
                }
                grid_axes[single].insert(0, a);
                grid_classes[single].insert(0, c);
            }
        }
        // Tiles: a matmul contracting the loop axis makes a tensor-core
        // kernel; otherwise elementwise tiles along the last axis.
        let mm = term.nodes.iter().enumerate().find(|(_, n)| {
            matches!(n.node, Node::Matmul(_)) && n.state.is_some_and(State::accumulates)
        });
        let (tiles, params) = match mm {
            Some((i, _)) if online => {
                let s = shape(&self.data[i]);
                let rows = s.len().checked_sub(2).map_or(1, |k| max_value(&s[k], w));
                let bm = if rows <= 16 { 16 } else { 64 };
                let warps_m = (bm / 16).clamp(1, 4);
                let t = MatmulTiles {
                    bm,
                    bn: 64,
                    bk: crate::ugraph::flash::KEY_TILE,
                    warps_m,
                    warps_n: 4 / warps_m,
                    stages: 2,
                    warps_k: 1,
                };
                (Some(t), matmul_params(t))
            }
            Some((i, _)) => {
                let s = shape(&self.data[i]);
                let m = s
                    .get(s.len().saturating_sub(2))
                    .cloned()
                    .unwrap_or_else(|| DimExpr::constant(1));
                let dtype = w
                    .graph
                    .inputs
                    .first()
                    .map(|x| x.dtype)
                    .unwrap_or(crate::ir::DType::F16);
                let t = matmul_tiles(max_value(&m, w), dtype);
                (Some(t), matmul_params(t))
            }
            None => (None, LaunchParams::default()),
        };
        let grid: Vec<GridDim> = grid_axes
            .iter()
            .enumerate()
            .map(|(g, axes)| {
                let last = axes.last().copied().unwrap_or(0);
                let tile = match (g, tiles) {
                    (_, Some(t)) if online && last + 2 == r => t.bm,
                    (0, Some(t)) if last + 1 == r => t.bn,
                    (1, Some(t)) if last + 2 == r => t.bm,
                    (0, None) if last + 1 == r => ELEMENTWISE_TILE,
                    _ => 1,
                };
                GridDim {
                    extents: axes.iter().map(|&a| view[a].clone()).collect(),
                    tile,
                }
            })
            .collect();
        let tensors = self.tensors.clone();
        // The loop.
        let mut forloop: Option<ForLoop> = None;
        for (name, axis) in self.loops {
            if let (Some(a), Some(x)) = (axis, w.graph.inputs.iter().find(|x| &x.name == name)) {
                let tile = tiles.map_or(REDUCE_TILE, |t| t.bk);
                forloop.get_or_insert_with(|| ForLoop::new(x.shape[*a].clone(), tile));
            }
        }
        // Block operators, with common subexpressions shared.
        let mut inputs: Vec<TileMap> = Vec::new();
        let mut ops: Vec<BlockOp> = Vec::new();
        let mut value: Vec<Option<ValueId>> = vec![None; term.nodes.len()];
        fn push(ops: &mut Vec<BlockOp>, op: BlockOp) -> ValueId {
            if let Some(i) = ops.iter().position(|o| *o == op) {
                return ValueId(i);
            }
            ops.push(op);
            ValueId(ops.len() - 1)
        }
        let output_nodes: Vec<usize> = self.outputs.iter().map(|(n, _)| *n).collect();
        let mut accum_nodes: BTreeMap<usize, usize> = BTreeMap::new();
        let mut only_reshaped = vec![true; term.nodes.len()];
        for n in &term.nodes {
            if !matches!(n.node, Node::Reshape(_)) {
                for c in n.node.children() {
                    only_reshaped[usize::from(*c)] = false;
                }
            }
        }
        for &r in &term.roots {
            only_reshaped[r] = false;
        }
        // The `Max` accumulator whose running value the loop reads.
        let mut running: Option<ValueId> = None;
        for i in 0..term.nodes.len() {
            let node = &term.nodes[i].node;
            let Some(state) = term.nodes[i].state else {
                continue;
            };
            if is_constant(&self.data[i]) {
                continue;
            }
            // Operand values; constants become `Const` where a block
            // operator reads them.
            let operand = |k: usize, ops: &mut Vec<BlockOp>| -> Result<ValueId, Prune> {
                let c = usize::from(node.children()[k]);
                if is_constant(&self.data[c]) {
                    let s = scalar(term, c).ok_or("constant not expressible")?;
                    return Ok(push(ops, BlockOp::Const(s.fold())));
                }
                value[c].ok_or_else(|| "reshape inside a block".to_string())
            };
            let op = match node {
                // An input read only through reshapes is read as their views.
                Node::Input(_) if only_reshaped[i] => continue,
                Node::Input(leaf) => {
                    let fmap = self.loops.get(&leaf.name).copied().flatten();
                    let imap = self.imap(i, &grid_classes)?;
                    block_input(w, &mut inputs, &leaf.name, leaf.shape.clone(), imap, fmap)?
                }
                Node::Reshape([_, x]) => {
                    let x = usize::from(*x);
                    let Node::Input(leaf) = &term.nodes[x].node else {
                        if output_nodes
                            .iter()
                            .any(|&o| term.roots.contains(&i) && o == x)
                        {
                            continue;
                        }
                        return Err("reshape inside a block".into());
                    };
                    if self.loops.get(&leaf.name).copied().flatten().is_some() {
                        return Err("reshape of a loop-walked input".into());
                    }
                    let imap = self.imap(i, &grid_classes)?;
                    let view = shape(&self.data[i]).to_vec();
                    block_input(w, &mut inputs, &leaf.name, view, imap, None)?
                }
                Node::Unary(Un::Recip, _) => {
                    let a = operand(0, &mut ops)?;
                    let one = push(&mut ops, BlockOp::Const(ScalarExpr::lit(1.0)));
                    BlockOp::Binary(BinaryOp::Div, one, a)
                }
                Node::Unary(u, _) => {
                    BlockOp::Unary(u.ir().ok_or("operator")?, operand(0, &mut ops)?)
                }
                Node::Binary(op, _) => {
                    let a = operand(0, &mut ops)?;
                    BlockOp::Binary(*op, a, operand(1, &mut ops)?)
                }
                Node::Matmul(_) => {
                    let a = operand(0, &mut ops)?;
                    BlockOp::Matmul(a, operand(1, &mut ops)?)
                }
                Node::Reduce(red, [ax, _]) => {
                    let Data::Int(axis) = self.data[usize::from(*ax)] else {
                        return Err("ill-typed term".into());
                    };
                    BlockOp::Reduce {
                        op: red.ir(),
                        input: operand(1, &mut ops)?,
                        axis: usize::try_from(axis).map_err(|_| "ill-typed term")?,
                        count: None,
                    }
                }
                Node::Permute([p, _]) => {
                    let Data::Perm(perm) = &self.data[usize::from(*p)] else {
                        return Err("ill-typed term".into());
                    };
                    BlockOp::Permute(operand(1, &mut ops)?, perm.clone())
                }
                _ => return Err("operator".into()),
            };
            let mut v = push(&mut ops, op);
            let kind = match state {
                State::Partial(Red::Sum) => Some(AccumKind::Sum),
                State::Partial(Red::Max) => Some(AccumKind::Max),
                State::Rescaled => Some(AccumKind::RescaledSum {
                    max: running.ok_or("a rescaled sum without a running maximum")?,
                }),
                State::Running => Some(AccumKind::Max),
                _ => None,
            };
            if let Some(kind) = kind {
                v = push(&mut ops, BlockOp::Accum { kind, input: v });
                accum_nodes.insert(v.0, i);
                if state == State::Running {
                    if running.is_some_and(|r| r != v) {
                        return Err("more than one running maximum".into());
                    }
                    running = Some(v);
                    v = push(&mut ops, BlockOp::Running(v));
                }
            }
            value[i] = Some(v);
        }
        // Outputs.
        let mut outputs = Vec::new();
        let first_out = w.graph.inputs.len();
        for (j, (node, oview)) in self.outputs.clone().into_iter().enumerate() {
            let v = if is_constant(&self.data[node]) {
                return Err("a constant output".into());
            } else {
                value[node].ok_or("output value missing")?
            };
            let imap = self.imap(node, &grid_classes)?;
            outputs.push(BlockOutput {
                value: v,
                map: TileMap {
                    tensor: TensorId(first_out + j),
                    view: oview,
                    imap,
                    fmap: None,
                },
            });
        }
        let block = BlockGraph {
            grid,
            forloop,
            inputs,
            ops,
            outputs,
            params,
        };
        let info = check_block(&block, &tensors).map_err(|e| {
            let d = format!("{e:?}");
            let name: String = d.chars().take_while(|c| c.is_alphanumeric()).collect();
            format!("invalid μGraph ({name})")
        })?;
        // Shared memory, per pipeline stage: a tensor-core kernel streams
        // its left operand and one right operand at a time through one
        // staged buffer (the matmul template runs one main loop per right
        // operand); other kernels stage every input tile they read.
        let dims = w.max_point();
        let bytes: u64 = match tiles {
            Some(t) => {
                let size = tensors.first().map_or(2, |x| x.dtype.size() as u64);
                u64::from(t.bm * t.bk + t.bk * t.bn) * size
            }
            None => {
                let mut bytes: u64 = 0;
                for (k, op) in block.ops.iter().enumerate() {
                    if let BlockOp::Input(i) = op {
                        let elems: u64 = info.shapes[k]
                            .iter()
                            .map(|e| match e {
                                TileExtent::One => 1,
                                TileExtent::Part { tile, .. } => u64::from(*tile),
                                TileExtent::Full(d) => {
                                    d.eval(&dims).unwrap_or(i64::MAX).max(0) as u64
                                }
                            })
                            .fold(1u64, u64::saturating_mul);
                        let size = tensors[block.inputs[*i].tensor.0].dtype.size() as u64;
                        bytes = bytes.saturating_add(elems.saturating_mul(size));
                    }
                }
                bytes
            }
        };
        if bytes.saturating_mul(u64::from(block.params.stages.max(1))) > SHARED_BYTES_PER_BLOCK {
            return Err("shared memory per block".into());
        }
        if running.is_some() {
            crate::ugraph::online::covariance(&block, &info.shapes)
                .map_err(|_| "online softmax: not shift-covariant".to_string())?;
        }
        Ok(Built {
            block,
            info,
            accum_nodes,
        })
    }
}
