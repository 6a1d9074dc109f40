//! One block kernel: every block (in parallel), each running its for-loop.

use std::borrow::Cow;

use rayon::prelude::*;

use super::{InterpError, MAX_ELEMENTS, shape_at, size};
use crate::ir::{DimBindings, ReduceOp};
use crate::reference::{Tensor, kernels};
use crate::ugraph::types::{AccumKind, BlockGraph, BlockOp, TileMap, ValueId, split_range};
use crate::ugraph::validate::{AxisRole, BlockInfo, Phase};

/// Values one block writes into one tensor.
pub(super) struct Write {
    pub tensor: usize,
    pub offsets: Vec<usize>,
    pub data: Vec<f64>,
}

/// A tile map at concrete dims.
struct MapAt {
    tensor: usize,
    view: Vec<usize>,
    strides: Vec<usize>,
    roles: Vec<AxisRole>,
}

/// A grid dim at concrete dims.
struct GridAt {
    tile: usize,
    /// Blocks along each extent: one per index, the last in tiles.
    counts: Vec<usize>,
    blocks: usize,
}

struct Kernel<'a> {
    name: &'a str,
    block: &'a BlockGraph,
    info: &'a BlockInfo,
    store: &'a [Cow<'a, Tensor>],
    grid: Vec<GridAt>,
    iters: usize,
    loop_tile: usize,
    /// The grid dim the loop is split over, and its number of splits.
    split: Option<(usize, usize)>,
    inputs: Vec<MapAt>,
    outputs: Vec<MapAt>,
    /// Per op: a `Const`'s value or a `Mean`'s count (0 otherwise).
    scalars: Vec<f64>,
}

/// Row-major strides.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Numpy broadcasting of concrete shapes.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

/// Flat offsets, in row-major order of the box, of the elements of the box
/// `(start, len)` per axis in a tensor with `strides`.
fn box_offsets(strides: &[usize], bx: &[(usize, usize)]) -> Vec<usize> {
    let n: usize = bx.iter().map(|&(_, l)| l).product();
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return out;
    }
    let mut off: usize = bx.iter().zip(strides).map(|(&(s, _), &st)| s * st).sum();
    let mut idx = vec![0usize; bx.len()];
    loop {
        out.push(off);
        let mut a = bx.len();
        loop {
            if a == 0 {
                return out;
            }
            a -= 1;
            idx[a] += 1;
            off += strides[a];
            if idx[a] < bx[a].1 {
                break;
            }
            off -= strides[a] * bx[a].1;
            idx[a] = 0;
        }
    }
}

/// Maximum that propagates NaN (like the reference's reductions).
fn nan_max(m: f64, v: f64) -> f64 {
    if m.is_nan() || v.is_nan() {
        f64::NAN
    } else {
        m.max(v)
    }
}

/// Run one block kernel; returns its writes in block order.
pub(super) fn run_block(
    name: &str,
    block: &BlockGraph,
    info: &BlockInfo,
    store: &[Cow<'_, Tensor>],
    dims: &DimBindings,
) -> Result<Vec<Write>, InterpError> {
    let mut grid = Vec::with_capacity(block.grid.len());
    for (g, gd) in block.grid.iter().enumerate() {
        let extents = shape_at(&gd.extents, dims, &format!("grid dim {g} of `{name}`"))?;
        let tile = gd.tile.max(1) as usize;
        let mut counts = extents.clone();
        if let Some(last) = counts.last_mut() {
            *last = last.div_ceil(tile);
        }
        let blocks = counts.iter().product();
        grid.push(GridAt {
            tile,
            counts,
            blocks,
        });
    }
    let total = grid
        .iter()
        .try_fold(1usize, |acc, g| acc.checked_mul(g.blocks))
        .filter(|&t| t <= MAX_ELEMENTS)
        .ok_or_else(|| InterpError::TooLarge {
            what: format!("the grid of `{name}`"),
            shape: grid.iter().map(|g| g.blocks).collect(),
        })?;
    let (iters, loop_tile) = match &block.forloop {
        Some(f) => {
            let extent = size(&f.extent, dims, || format!("the for-loop of `{name}`"))?;
            let tile = f.tile.max(1) as usize;
            let iters = extent.div_ceil(tile);
            if iters > MAX_ELEMENTS {
                return Err(InterpError::TooLarge {
                    what: format!("the for-loop of `{name}`"),
                    shape: vec![iters],
                });
            }
            (iters, tile)
        }
        None => (1, 1),
    };
    let split = block
        .forloop
        .as_ref()
        .and_then(|f| f.split)
        .and_then(|g| grid.get(g).map(|gd| (g, gd.blocks)));
    let map_at = |m: &TileMap, roles: &[AxisRole], what: String| -> Result<MapAt, InterpError> {
        let view = shape_at(&m.view, dims, &what)?;
        Ok(MapAt {
            tensor: m.tensor.0,
            strides: strides(&view),
            view,
            roles: roles.to_vec(),
        })
    };
    let inputs = block
        .inputs
        .iter()
        .zip(&info.input_axes)
        .enumerate()
        .map(|(i, (m, r))| map_at(m, r, format!("the view of input {i} of `{name}`")))
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = block
        .outputs
        .iter()
        .zip(&info.output_axes)
        .enumerate()
        .map(|(j, (o, r))| map_at(&o.map, r, format!("the view of output {j} of `{name}`")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut scalars = vec![0.0; block.ops.len()];
    for (k, op) in block.ops.iter().enumerate() {
        scalars[k] = match op {
            BlockOp::Const(s) => s.eval(dims)?,
            BlockOp::Reduce {
                op: ReduceOp::Mean,
                count: Some(c),
                ..
            } => size(c, dims, || format!("the count of op {k} of `{name}`"))? as f64,
            _ => 0.0,
        };
    }
    let kernel = Kernel {
        name,
        block,
        info,
        store,
        grid,
        iters,
        loop_tile,
        split,
        inputs,
        outputs,
        scalars,
    };
    let per_block = (0..total)
        .into_par_iter()
        .map(|b| kernel.run(b))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(per_block.into_iter().flatten().collect())
}

impl Kernel<'_> {
    fn err(&self, message: String) -> InterpError {
        InterpError::Runtime {
            kernel: self.name.to_string(),
            message,
        }
    }

    /// Index along each extent of each grid dim of block `b`.
    fn coords(&self, mut b: usize) -> Vec<Vec<usize>> {
        let mut out = vec![Vec::new(); self.grid.len()];
        for (g, gd) in self.grid.iter().enumerate().rev() {
            let mut c = b % gd.blocks.max(1);
            b /= gd.blocks.max(1);
            let mut idx = vec![0; gd.counts.len()];
            for (j, &n) in gd.counts.iter().enumerate().rev() {
                idx[j] = c % n.max(1);
                c /= n.max(1);
            }
            out[g] = idx;
        }
        out
    }

    /// `(start, len)` per view axis of the tile of `map` in block `coords`,
    /// iteration `it`.
    fn tile_box(
        &self,
        map: &MapAt,
        coords: &[Vec<usize>],
        it: usize,
    ) -> Result<Vec<(usize, usize)>, InterpError> {
        let clip = |start: usize, tile: usize, v: usize| {
            if start < v {
                Ok((start, tile.min(v - start)))
            } else {
                Err(self.err(format!("tile start {start} outside an axis of {v}")))
            }
        };
        map.roles
            .iter()
            .zip(&map.view)
            .map(|(role, &v)| match *role {
                AxisRole::Whole => Ok((0, v)),
                AxisRole::Broadcast => Ok((0, 1)),
                AxisRole::Grid { dim, component } => {
                    let (gd, idx) = (&self.grid[dim], coords[dim][component]);
                    if component + 1 == gd.counts.len() {
                        clip(idx * gd.tile, gd.tile, v)
                    } else {
                        clip(idx, 1, v)
                    }
                }
                AxisRole::Loop => clip(it * self.loop_tile, self.loop_tile, v),
            })
            .collect()
    }

    fn gather(&self, map: &MapAt, coords: &[Vec<usize>], it: usize) -> Result<Tensor, InterpError> {
        let bx = self.tile_box(map, coords, it)?;
        let src = &self.store[map.tensor].data;
        let data = box_offsets(&map.strides, &bx)
            .into_iter()
            .map(|o| src.get(o).copied())
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| self.err("tile outside its tensor".into()))?;
        Ok(Tensor {
            shape: bx.iter().map(|&(_, l)| l).collect(),
            data,
        })
    }

    /// Run block `b`: its for-loop, the `Post` ops, and its output tiles.
    fn run(&self, b: usize) -> Result<Vec<Write>, InterpError> {
        let coords = self.coords(b);
        let ops = &self.block.ops;
        let (phases, variant) = (&self.info.phases, &self.info.loop_variant);
        let mut env: Vec<Option<Tensor>> = vec![None; ops.len()];
        let mut acc: Vec<Option<Tensor>> = vec![None; ops.len()];
        let mut prev: Vec<Option<Tensor>> = vec![None; ops.len()];
        let (begin, end) = match self.split {
            Some((g, splits)) => {
                let j = coords[g].first().copied().unwrap_or(0);
                let (b, e) = split_range(self.iters as u64, splits as u64, j as u64);
                (b as usize, e as usize)
            }
            None => (0, self.iters),
        };
        for it in begin..end {
            for (k, op) in ops.iter().enumerate() {
                if phases[k] == Phase::Post {
                    if let BlockOp::Accum { kind, input } = op {
                        self.update(k, *kind, *input, &env, &mut acc, &mut prev)?;
                    }
                    continue;
                }
                if it > begin && !variant[k] {
                    continue;
                }
                env[k] = Some(self.eval(k, op, &env, &acc, &coords, it)?);
            }
        }
        if begin == end && self.block.forloop.is_some() {
            // An empty split: evaluate the body once for the tile shapes and
            // leave every accumulator at its identity.
            for (k, op) in ops.iter().enumerate() {
                if phases[k] == Phase::Post {
                    if let BlockOp::Accum { kind, input } = op {
                        let x = env[input.0].as_ref().ok_or_else(|| {
                            self.err(format!("op {k}: input %{} has no value", input.0))
                        })?;
                        let identity = match kind {
                            AccumKind::Max => f64::NEG_INFINITY,
                            _ => 0.0,
                        };
                        acc[k] = Some(Tensor {
                            shape: x.shape.clone(),
                            data: vec![identity; x.data.len()],
                        });
                    }
                    continue;
                }
                env[k] = Some(self.eval(k, op, &env, &acc, &coords, 0)?);
            }
        }
        for (k, op) in ops.iter().enumerate() {
            if phases[k] == Phase::Post {
                env[k] = Some(match op {
                    BlockOp::Accum { .. } => acc[k]
                        .take()
                        .ok_or_else(|| self.err(format!("op {k}: accumulator never updated")))?,
                    _ => self.eval(k, op, &env, &acc, &coords, 0)?,
                });
            }
        }
        let mut writes = Vec::with_capacity(self.outputs.len());
        for (j, (out, map)) in self.block.outputs.iter().zip(&self.outputs).enumerate() {
            let v = env[out.value.0]
                .as_ref()
                .ok_or_else(|| self.err(format!("output {j}: value not computed")))?;
            let bx = self.tile_box(map, &coords, 0)?;
            let lens: Vec<usize> = bx.iter().map(|&(_, l)| l).collect();
            if lens != v.shape {
                return Err(self.err(format!(
                    "output {j}: value tile {:?}, output tile {lens:?}",
                    v.shape
                )));
            }
            writes.push(Write {
                tensor: map.tensor,
                offsets: box_offsets(&map.strides, &bx),
                data: v.data.clone(),
            });
        }
        Ok(writes)
    }

    /// The value of a non-accumulator op.
    fn eval(
        &self,
        k: usize,
        op: &BlockOp,
        env: &[Option<Tensor>],
        acc: &[Option<Tensor>],
        coords: &[Vec<usize>],
        it: usize,
    ) -> Result<Tensor, InterpError> {
        let get = |v: &ValueId| {
            env[v.0]
                .as_ref()
                .ok_or_else(|| self.err(format!("op {k}: operand %{} has no value", v.0)))
        };
        let shapes_err = |a: &Tensor, b: &Tensor| {
            self.err(format!(
                "op {k}: tiles {:?} and {:?} do not fit",
                a.shape, b.shape
            ))
        };
        Ok(match op {
            BlockOp::Input(i) => {
                let map = self
                    .inputs
                    .get(*i)
                    .ok_or_else(|| self.err(format!("op {k}: no input {i}")))?;
                self.gather(map, coords, it)?
            }
            BlockOp::Const(_) => Tensor::scalar(self.scalars[k]),
            BlockOp::Unary(u, a) => {
                let u = *u;
                kernels::map(get(a)?, move |x| u.apply(x))
            }
            BlockOp::Permute(a, perm) => {
                let t = get(a)?;
                let mut sorted = perm.clone();
                sorted.sort_unstable();
                if !sorted.iter().copied().eq(0..t.shape.len()) {
                    return Err(self.err(format!("op {k}: {perm:?} permutes a {:?} tile", t.shape)));
                }
                kernels::permute(t, perm)
            }
            BlockOp::Binary(bop, x, y) => {
                let (x, y) = (get(x)?, get(y)?);
                let s = broadcast(&x.shape, &y.shape).ok_or_else(|| shapes_err(x, y))?;
                let bop = *bop;
                kernels::zip(x, y, &s, move |p, q| bop.apply(p, q))
            }
            BlockOp::Matmul(x, y) => {
                let (a, b) = (get(x)?, get(y)?);
                let (ra, rb) = (a.shape.len(), b.shape.len());
                if ra < 2 || rb < 2 || a.shape[ra - 1] != b.shape[rb - 2] {
                    return Err(shapes_err(a, b));
                }
                let mut s = broadcast(&a.shape[..ra - 2], &b.shape[..rb - 2])
                    .ok_or_else(|| shapes_err(a, b))?;
                s.push(a.shape[ra - 2]);
                s.push(b.shape[rb - 1]);
                kernels::matmul(a, b, &s, false)
            }
            BlockOp::Reduce {
                op: r,
                input,
                axis,
                count,
            } => {
                let t = get(input)?;
                if *axis >= t.shape.len() {
                    return Err(self.err(format!("op {k}: axis {axis} of a {:?} tile", t.shape)));
                }
                if *r == ReduceOp::Mean && count.is_some() {
                    let c = self.scalars[k];
                    let s = kernels::reduce(t, ReduceOp::Sum, *axis, true, false);
                    kernels::map(&s, move |x| x / c)
                } else {
                    kernels::reduce(t, *r, *axis, true, false)
                }
            }
            BlockOp::Running(a) => acc[a.0]
                .clone()
                .ok_or_else(|| self.err(format!("op {k}: accumulator %{} not updated", a.0)))?,
            BlockOp::Accum { .. } => {
                return Err(self.err(format!("op {k}: accumulator evaluated as a value")));
            }
        })
    }

    /// Fold this iteration's value of accumulator `k`'s input into it.
    fn update(
        &self,
        k: usize,
        kind: AccumKind,
        input: ValueId,
        env: &[Option<Tensor>],
        acc: &mut [Option<Tensor>],
        prev: &mut [Option<Tensor>],
    ) -> Result<(), InterpError> {
        let x = env[input.0]
            .as_ref()
            .ok_or_else(|| self.err(format!("op {k}: input %{} has no value", input.0)))?;
        let old = acc[k].take();
        if kind == AccumKind::Max {
            prev[k] = old.clone();
        }
        let new = match old {
            None => x.clone(),
            Some(a) => {
                if a.shape != x.shape {
                    return Err(self.err(format!(
                        "op {k}: accumulator {:?} of a {:?} tile",
                        a.shape, x.shape
                    )));
                }
                let shape = a.shape.clone();
                match kind {
                    AccumKind::Sum => kernels::zip(&a, x, &shape, |p, q| p + q),
                    AccumKind::Max => kernels::zip(&a, x, &shape, nan_max),
                    AccumKind::RescaledSum { max } => {
                        let (Some(mp), Some(mc)) = (&prev[max.0], &acc[max.0]) else {
                            return Err(self.err(format!("op {k}: max %{} not updated", max.0)));
                        };
                        if mp.shape != mc.shape
                            || broadcast(&mc.shape, &shape).as_ref() != Some(&shape)
                        {
                            return Err(self.err(format!(
                                "op {k}: max {:?} does not fit the sum {shape:?}",
                                mc.shape
                            )));
                        }
                        let factor = kernels::zip(mp, mc, &mc.shape, |p, c| {
                            if p == c { 1.0 } else { (p - c).exp() }
                        });
                        let scaled = kernels::zip(&a, &factor, &shape, |p, f| p * f);
                        kernels::zip(&scaled, x, &shape, |p, q| p + q)
                    }
                }
            }
        };
        acc[k] = Some(new);
        Ok(())
    }
}
