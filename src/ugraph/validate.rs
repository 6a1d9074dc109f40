//! Structural checks of μGraphs and the symbolic tile shape of every block
//! value.
//!
//! [`validate`] checks a whole [`KernelGraph`]; [`check_block`] checks one
//! block graph and returns its [`BlockInfo`]: the [`Phase`] and the symbolic
//! tile shape ([`TileExtent`] per axis) of every block operator, which code
//! generation and the interpreter build on.
//!
//! Decisions this module makes where the types leave room (the interpreter
//! implements the same):
//!
//! - **Phases.** With a for-loop, `Input`, `Const`, `Running` and every op
//!   whose operands are all `Loop` values run each iteration ([`Phase::Loop`]);
//!   `Accum` and every op reading a `Post` value run once after the loop
//!   ([`Phase::Post`]). A `Post` op may read a `Loop` value only when that
//!   value is loop-invariant (depends on no input with an fmap and no
//!   `Running`); its value is the same in every iteration. Without a for-loop
//!   the body runs once and every op is `Loop`. Block outputs read `Post`
//!   values when there is a for-loop, and (necessarily) `Loop` values when
//!   there is none.
//! - **Tile shapes.** A tile has the rank of its view. A view axis that is the
//!   constant 1 is [`TileExtent::One`]. An axis mapped by grid dim `g` to its
//!   last extent is [`TileExtent::Part`] with the grid dim's tile, to another
//!   extent `One` (one index per block); an fmap axis is `Part` with the loop's
//!   tile; any other axis is [`TileExtent::Full`]. `Part` is normalized: with
//!   tile 1 it is `One`, and when the extent is a constant no larger than the
//!   tile it is `Full` (one tile covers the axis).
//! - **Which partition.** Two `Part` extents are only compatible (broadcast,
//!   matmul contraction, output) when they come from the same grid dim or both
//!   from the for-loop: equal-looking tiles of different partitions clip
//!   differently at the edges. [`TileExtent`] does not record the partition;
//!   [`BlockInfo::input_axes`] does.
//! - **Accumulators.** An `Accum` input must not have a loop-partitioned
//!   (`Part` from the for-loop) axis: its tile would change shape at the last,
//!   clipped iteration. Reduce or matmul the loop axis away first. A
//!   `RescaledSum`'s max accumulator must broadcast to its input's shape.
//! - **Outputs.** Each output's omap maps every grid dim (no replication), to
//!   view axes whose dim equals the grid extent exactly (no broadcast: several
//!   blocks would write one element), so the blocks' tiles cover the tensor
//!   exactly once. Outputs have no fmap.
//! - **Writes.** Graph inputs are never written; every other tensor is written
//!   at most once (Outputs exactly once), by one kernel, which must not read
//!   it.
//! - **Dtypes.** Blocks compute in f32 (f64 in the interpreter) whatever the
//!   tensors' dtypes; the only dtype rule is that a `Matmul` whose operands are
//!   both loaded tiles (`Input` ops) reads tensors of one dtype (tensor-core
//!   operands share an element type).
//! - `Reduce::count` is used by `Mean` only; the other reductions ignore it.
//! - Every map's `imap` has one entry per grid dim; kernel names are C
//!   identifiers, unique in the graph; the `Input(i)` roles number the graph
//!   inputs `0..n` exactly once, the `Output(i)` roles likewise.

use std::collections::HashSet;
use std::fmt;

use serde::Serialize;

use super::types::{
    AccumKind, BlockGraph, BlockOp, GlobalTensor, KernelBody, KernelGraph, Predefined, TensorId,
    TensorRole, TileMap, ValueId,
};
use crate::ir::{DType, DimExpr};

/// The extent of one axis of a tile, symbolically.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum TileExtent {
    /// Size 1: a size-1 data axis, a broadcast axis, a reduced axis, or an
    /// axis walked one index per block.
    One,
    /// The whole data axis.
    Full(DimExpr),
    /// One tile of a partitioned axis (grid or for-loop): `min(tile, extent -
    /// start)` elements, clipped at the edge.
    Part { extent: DimExpr, tile: u32 },
}

impl TileExtent {
    /// Whether the tile has exactly one index along this axis.
    pub fn is_single(&self) -> bool {
        match self {
            TileExtent::One => true,
            TileExtent::Part { tile, .. } => *tile == 1,
            TileExtent::Full(d) => d.is_one(),
        }
    }
}

impl fmt::Display for TileExtent {
    /// `1`, `d`, or `n/4` for tiles of 4 of `n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TileExtent::One => write!(f, "1"),
            TileExtent::Full(d) => write!(f, "{d}"),
            TileExtent::Part { extent, tile } => write!(f, "{extent}/{tile}"),
        }
    }
}

/// `[n/4, d]`.
pub fn shape_string(shape: &[TileExtent]) -> String {
    let parts: Vec<String> = shape.iter().map(|e| e.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// When a block operator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Every for-loop iteration (or once, without a for-loop).
    Loop,
    /// Once after the for-loop: `Accum` and whatever reads a `Post` value.
    Post,
}

/// How a view axis of a tile map is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum AxisRole {
    /// Not partitioned: the tile spans the whole axis.
    Whole,
    /// A size-1 axis mapped to a grid extent: every block reads index 0.
    Broadcast,
    /// Mapped to extent `component` of grid dim `dim`: in tiles of the grid
    /// dim's tile when it is the last extent, one index per block otherwise.
    Grid { dim: usize, component: usize },
    /// Walked by the for-loop in tiles of the loop's tile.
    Loop,
}

/// What [`check_block`] derives for a valid block graph; vectors indexed by
/// op, input or output.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockInfo {
    pub phases: Vec<Phase>,
    /// Tile shape of every op's value.
    pub shapes: Vec<Vec<TileExtent>>,
    /// Whether a `Loop` op's value changes between iterations (depends on an
    /// input with an fmap or on `Running`). Always true for `Post` ops.
    pub loop_variant: Vec<bool>,
    /// Per block input, the role of each view axis.
    pub input_axes: Vec<Vec<AxisRole>>,
    /// Per block output, the role of each view axis (never `Loop`/`Broadcast`).
    pub output_axes: Vec<Vec<AxisRole>>,
}

/// A structural error. `kernel` is the kernel's name (`(block)` from
/// [`check_block`]); `at` names the place: `input 1`, `output 0`, `op 5`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum UGraphError {
    #[error("tensor roles: {0}")]
    Roles(String),
    #[error("kernel #{index} is named `{name}`: {why}")]
    KernelName {
        index: usize,
        name: String,
        why: &'static str,
    },
    #[error("kernel `{kernel}`, {at}: tensor #{tensor} does not exist (the graph has {count})")]
    TensorOutOfRange {
        kernel: String,
        at: String,
        tensor: usize,
        count: usize,
    },
    #[error(
        "kernel `{kernel}`, {at}: the view of `{tensor}` has {view_count} elements, the tensor has {tensor_count}"
    )]
    ViewCount {
        kernel: String,
        at: String,
        tensor: String,
        view_count: DimExpr,
        tensor_count: DimExpr,
    },
    #[error("kernel `{kernel}` reads `{tensor}` before any kernel writes it")]
    ReadBeforeWrite { kernel: String, tensor: String },
    #[error("kernel `{kernel}` writes `{tensor}`, a graph input")]
    WriteToInput { kernel: String, tensor: String },
    #[error("kernel `{kernel}` writes `{tensor}`, which is already written")]
    WrittenTwice { kernel: String, tensor: String },
    #[error("output `{tensor}` is never written")]
    OutputNotWritten { tensor: String },
    #[error("kernel `{kernel}` reads `{tensor}`, which it also writes")]
    ReadsOwnOutput { kernel: String, tensor: String },
    #[error("kernel `{kernel}` has {count} grid dims; at most 3")]
    TooManyGridDims { kernel: String, count: usize },
    #[error("kernel `{kernel}`: grid dim {dim} has no extents")]
    EmptyGridDim { kernel: String, dim: usize },
    #[error("kernel `{kernel}`: {at} has tile 0; tiles are at least 1")]
    ZeroTile { kernel: String, at: String },
    #[error("kernel `{kernel}`, {at}: {why}")]
    MapArity {
        kernel: String,
        at: String,
        why: String,
    },
    #[error("kernel `{kernel}`, {at}: axis {axis} is out of range for rank {rank}")]
    AxisOutOfRange {
        kernel: String,
        at: String,
        axis: usize,
        rank: usize,
    },
    #[error("kernel `{kernel}`, {at}: view axis {axis} is partitioned more than once")]
    AxisPartitionedTwice {
        kernel: String,
        at: String,
        axis: usize,
    },
    #[error(
        "kernel `{kernel}`, {at}: view axis {axis} has dim {dim}, but grid dim {grid_dim} walks extent {extent}; they must be equal (or the dim the constant 1, to broadcast)"
    )]
    GridExtent {
        kernel: String,
        at: String,
        axis: usize,
        dim: DimExpr,
        grid_dim: usize,
        extent: DimExpr,
    },
    #[error(
        "kernel `{kernel}`, {at}: fmap axis {axis} has dim {dim}, but the for-loop walks extent {extent}"
    )]
    LoopExtent {
        kernel: String,
        at: String,
        axis: usize,
        dim: DimExpr,
        extent: DimExpr,
    },
    #[error("kernel `{kernel}`, {at}: {why}")]
    Fmap {
        kernel: String,
        at: String,
        why: &'static str,
    },
    #[error(
        "kernel `{kernel}`, output {output}: grid dim {grid_dim} {why}, so several blocks would write one tile"
    )]
    OutputNotPartitioned {
        kernel: String,
        output: usize,
        grid_dim: usize,
        why: &'static str,
    },
    #[error(
        "kernel `{kernel}`, output {output}: the value's tile is {value}, the output's tile {tile}"
    )]
    OutputShape {
        kernel: String,
        output: usize,
        value: String,
        tile: String,
    },
    #[error(
        "kernel `{kernel}`, output {output}: writes a loop value; with a for-loop outputs are written after the loop"
    )]
    OutputPhase { kernel: String, output: usize },
    #[error("kernel `{kernel}`, {at}: operand %{operand} does not precede it")]
    OperandOrder {
        kernel: String,
        at: String,
        operand: usize,
    },
    #[error("kernel `{kernel}`, op {op}: block input {index} does not exist ({count} inputs)")]
    InputIndex {
        kernel: String,
        op: usize,
        index: usize,
        count: usize,
    },
    #[error("kernel `{kernel}`, op {op}: tiles {left} and {right} do not broadcast")]
    Broadcast {
        kernel: String,
        op: usize,
        left: String,
        right: String,
    },
    #[error("kernel `{kernel}`, op {op}: {perm:?} is not a permutation of 0..{rank}")]
    Permutation {
        kernel: String,
        op: usize,
        perm: Vec<usize>,
        rank: usize,
    },
    #[error("kernel `{kernel}`, op {op}: matmul operand tile {shape} has rank < 2")]
    MatmulRank {
        kernel: String,
        op: usize,
        shape: String,
    },
    #[error("kernel `{kernel}`, op {op}: matmul contraction extents differ: {left} vs {right}")]
    MatmulInner {
        kernel: String,
        op: usize,
        left: String,
        right: String,
    },
    #[error("kernel `{kernel}`, op {op}: matmul of a {left} tile and a {right} tile")]
    DtypeMismatch {
        kernel: String,
        op: usize,
        left: DType,
        right: DType,
    },
    #[error("kernel `{kernel}`, op {op}: accumulator in a block without a for-loop")]
    AccumWithoutLoop { kernel: String, op: usize },
    #[error(
        "kernel `{kernel}`, op {op}: accumulator of a value computed after the loop (%{input})"
    )]
    AccumOfPost {
        kernel: String,
        op: usize,
        input: usize,
    },
    #[error(
        "kernel `{kernel}`, op {op}: accumulator of tile {shape}, which has a loop-partitioned axis"
    )]
    AccumLoopAxis {
        kernel: String,
        op: usize,
        shape: String,
    },
    #[error("kernel `{kernel}`, op {op}: running value of %{operand}, which is not an accumulator")]
    Running {
        kernel: String,
        op: usize,
        operand: usize,
    },
    #[error("kernel `{kernel}`, op {op}: rescaled sum's max %{max} is not a Max accumulator")]
    RescaleMax {
        kernel: String,
        op: usize,
        max: usize,
    },
    #[error(
        "kernel `{kernel}`, op {op}: runs after the loop but reads %{operand}, which changes every iteration"
    )]
    PostReadsVariant {
        kernel: String,
        op: usize,
        operand: usize,
    },
    #[error("kernel `{kernel}`: the for-loop is split over grid dim {grid_dim}, which {why}")]
    LoopSplit {
        kernel: String,
        grid_dim: usize,
        why: &'static str,
    },
    #[error(
        "kernel `{kernel}`: split-combine partials have shape {partials}, the output {output}; partials must be [splits, ..output]"
    )]
    SplitCombineShape {
        kernel: String,
        partials: String,
        output: String,
    },
}

/// Which partition a `Part` extent comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Src {
    None,
    Grid(usize),
    Loop,
}

/// A tile extent with its partition.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ax {
    ext: TileExtent,
    src: Src,
}

const ONE: Ax = Ax {
    ext: TileExtent::One,
    src: Src::None,
};

fn plain(shape: &[Ax]) -> Vec<TileExtent> {
    shape.iter().map(|a| a.ext.clone()).collect()
}

fn show(shape: &[Ax]) -> String {
    shape_string(&plain(shape))
}

fn dims_string(dims: &[DimExpr]) -> String {
    let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

pub(crate) fn product(dims: &[DimExpr]) -> DimExpr {
    dims.iter().fold(DimExpr::constant(1), |acc, d| acc.mul(d))
}

/// Numpy broadcasting of tile shapes (aligned at the last axis).
fn broadcast(a: &[Ax], b: &[Ax]) -> Option<Vec<Ax>> {
    let rank = a.len().max(b.len());
    let at = |s: &[Ax], i: usize| {
        if i + s.len() >= rank {
            s[i + s.len() - rank].clone()
        } else {
            ONE
        }
    };
    (0..rank)
        .map(|i| {
            let (x, y) = (at(a, i), at(b, i));
            if x == y || y.ext == TileExtent::One {
                Some(x)
            } else if x.ext == TileExtent::One {
                Some(y)
            } else {
                None
            }
        })
        .collect()
}

/// Checks one block graph against the kernel graph's tensors.
struct Checker<'a> {
    kernel: &'a str,
    block: &'a BlockGraph,
    tensors: &'a [GlobalTensor],
}

impl Checker<'_> {
    fn k(&self) -> String {
        self.kernel.to_string()
    }

    fn tensor(&self, at: &str, id: TensorId) -> Result<&GlobalTensor, UGraphError> {
        self.tensors
            .get(id.0)
            .ok_or_else(|| UGraphError::TensorOutOfRange {
                kernel: self.k(),
                at: at.to_string(),
                tensor: id.0,
                count: self.tensors.len(),
            })
    }

    fn grid(&self) -> Result<(), UGraphError> {
        let b = self.block;
        if b.grid.len() > 3 {
            return Err(UGraphError::TooManyGridDims {
                kernel: self.k(),
                count: b.grid.len(),
            });
        }
        for (g, gd) in b.grid.iter().enumerate() {
            if gd.extents.is_empty() {
                return Err(UGraphError::EmptyGridDim {
                    kernel: self.k(),
                    dim: g,
                });
            }
            if gd.tile == 0 {
                return Err(UGraphError::ZeroTile {
                    kernel: self.k(),
                    at: format!("grid dim {g}"),
                });
            }
        }
        if b.forloop.as_ref().is_some_and(|f| f.tile == 0) {
            return Err(UGraphError::ZeroTile {
                kernel: self.k(),
                at: "the for-loop".into(),
            });
        }
        if let Some(g) = b.forloop.as_ref().and_then(|f| f.split) {
            let split = |why| UGraphError::LoopSplit {
                kernel: self.k(),
                grid_dim: g,
                why,
            };
            let gd = b.grid.get(g).ok_or(split("does not exist"))?;
            let constant = match gd.extents.as_slice() {
                [e] => e.as_constant().is_some_and(|c| c >= 1),
                _ => false,
            };
            if !constant || gd.tile != 1 {
                return Err(split(
                    "must have one constant extent (the number of splits) and tile 1",
                ));
            }
        }
        Ok(())
    }

    /// The tile extent of a view axis of size `v` with `role`.
    fn axis(&self, role: AxisRole, v: &DimExpr) -> Ax {
        let part = |tile: u32, src: Src| {
            if tile <= 1 {
                ONE
            } else if v.as_constant().is_some_and(|c| c <= i64::from(tile)) {
                Ax {
                    ext: TileExtent::Full(v.clone()),
                    src: Src::None,
                }
            } else {
                Ax {
                    ext: TileExtent::Part {
                        extent: v.clone(),
                        tile,
                    },
                    src,
                }
            }
        };
        if v.is_one() {
            return ONE;
        }
        match role {
            AxisRole::Whole => Ax {
                ext: TileExtent::Full(v.clone()),
                src: Src::None,
            },
            AxisRole::Broadcast => ONE,
            AxisRole::Grid { dim, component } => {
                let gd = &self.block.grid[dim];
                if component + 1 == gd.extents.len() {
                    part(gd.tile, Src::Grid(dim))
                } else {
                    ONE
                }
            }
            AxisRole::Loop => part(self.block.forloop.as_ref().map_or(1, |f| f.tile), Src::Loop),
        }
    }

    /// Roles and tile shape of a tile map.
    fn map(
        &self,
        at: &str,
        map: &TileMap,
        output: Option<usize>,
    ) -> Result<(Vec<AxisRole>, Vec<Ax>), UGraphError> {
        let t = self.tensor(at, map.tensor)?;
        let (vc, tc) = (product(&map.view), product(&t.shape));
        if vc != tc {
            return Err(UGraphError::ViewCount {
                kernel: self.k(),
                at: at.into(),
                tensor: t.name.clone(),
                view_count: vc,
                tensor_count: tc,
            });
        }
        let grid = &self.block.grid;
        let arity = |why: String| UGraphError::MapArity {
            kernel: self.k(),
            at: at.into(),
            why,
        };
        if map.imap.len() != grid.len() {
            return Err(arity(format!(
                "imap has {} entries for {} grid dims",
                map.imap.len(),
                grid.len()
            )));
        }
        let rank = map.view.len();
        let mut roles = vec![AxisRole::Whole; rank];
        let mut used = vec![false; rank];
        let claim = |axis: usize, used: &mut Vec<bool>| {
            if axis >= rank {
                return Err(UGraphError::AxisOutOfRange {
                    kernel: self.k(),
                    at: at.into(),
                    axis,
                    rank,
                });
            }
            if std::mem::replace(&mut used[axis], true) {
                return Err(UGraphError::AxisPartitionedTwice {
                    kernel: self.k(),
                    at: at.into(),
                    axis,
                });
            }
            Ok(())
        };
        for (g, (entry, gd)) in map.imap.iter().zip(grid).enumerate() {
            let Some(axes) = entry else {
                if let Some(output) = output {
                    return Err(UGraphError::OutputNotPartitioned {
                        kernel: self.k(),
                        output,
                        grid_dim: g,
                        why: "is not mapped (replicated)",
                    });
                }
                continue;
            };
            if axes.len() != gd.extents.len() {
                return Err(arity(format!(
                    "imap of grid dim {g} lists {} axes for {} extents",
                    axes.len(),
                    gd.extents.len()
                )));
            }
            let split = self.block.forloop.as_ref().and_then(|f| f.split);
            for (j, (&a, e)) in axes.iter().zip(&gd.extents).enumerate() {
                claim(a, &mut used)?;
                let v = &map.view[a];
                if output.is_none() && split == Some(g) && !v.is_one() {
                    return Err(UGraphError::LoopSplit {
                        kernel: self.k(),
                        grid_dim: g,
                        why: "splits the loop, so it cannot also partition an input",
                    });
                }
                if v == e {
                    roles[a] = AxisRole::Grid {
                        dim: g,
                        component: j,
                    };
                } else if v.is_one() {
                    if let Some(output) = output {
                        return Err(UGraphError::OutputNotPartitioned {
                            kernel: self.k(),
                            output,
                            grid_dim: g,
                            why: "is mapped to a broadcast (size-1) axis",
                        });
                    }
                    roles[a] = AxisRole::Broadcast;
                } else {
                    return Err(UGraphError::GridExtent {
                        kernel: self.k(),
                        at: at.into(),
                        axis: a,
                        dim: v.clone(),
                        grid_dim: g,
                        extent: e.clone(),
                    });
                }
            }
        }
        if let Some(a) = map.fmap {
            let fmap = |why| UGraphError::Fmap {
                kernel: self.k(),
                at: at.into(),
                why,
            };
            if output.is_some() {
                return Err(fmap("outputs have no fmap"));
            }
            let Some(fl) = &self.block.forloop else {
                return Err(fmap("fmap in a block without a for-loop"));
            };
            claim(a, &mut used)?;
            if map.view[a] != fl.extent {
                return Err(UGraphError::LoopExtent {
                    kernel: self.k(),
                    at: at.into(),
                    axis: a,
                    dim: map.view[a].clone(),
                    extent: fl.extent.clone(),
                });
            }
            roles[a] = AxisRole::Loop;
        }
        let shape = roles
            .iter()
            .zip(&map.view)
            .map(|(&r, v)| self.axis(r, v))
            .collect();
        Ok((roles, shape))
    }

    fn check(&self) -> Result<BlockInfo, UGraphError> {
        self.grid()?;
        let b = self.block;
        let mut input_axes = Vec::new();
        let mut input_shapes = Vec::new();
        for (i, m) in b.inputs.iter().enumerate() {
            let (roles, shape) = self.map(&format!("input {i}"), m, None)?;
            input_axes.push(roles);
            input_shapes.push(shape);
        }
        let n = b.ops.len();
        let mut shapes: Vec<Vec<Ax>> = Vec::with_capacity(n);
        let mut phases: Vec<Phase> = Vec::with_capacity(n);
        let mut variant: Vec<bool> = Vec::with_capacity(n);
        for (k, op) in b.ops.iter().enumerate() {
            for o in op.operands() {
                if o.0 >= k {
                    return Err(UGraphError::OperandOrder {
                        kernel: self.k(),
                        at: format!("op {k}"),
                        operand: o.0,
                    });
                }
            }
            let (shape, phase, var) = self.op(k, op, &input_shapes, &shapes, &phases, &variant)?;
            shapes.push(shape);
            phases.push(phase);
            variant.push(var);
        }
        let mut output_axes = Vec::new();
        let mut written = HashSet::new();
        for (j, out) in b.outputs.iter().enumerate() {
            let v = out.value.0;
            if v >= n {
                return Err(UGraphError::OperandOrder {
                    kernel: self.k(),
                    at: format!("output {j}"),
                    operand: v,
                });
            }
            let (roles, tile) = self.map(&format!("output {j}"), &out.map, Some(j))?;
            if b.forloop.is_some() && phases[v] == Phase::Loop {
                return Err(UGraphError::OutputPhase {
                    kernel: self.k(),
                    output: j,
                });
            }
            if tile != shapes[v] {
                return Err(UGraphError::OutputShape {
                    kernel: self.k(),
                    output: j,
                    value: show(&shapes[v]),
                    tile: show(&tile),
                });
            }
            let name = || self.tensors[out.map.tensor.0].name.clone();
            if !written.insert(out.map.tensor) {
                return Err(UGraphError::WrittenTwice {
                    kernel: self.k(),
                    tensor: name(),
                });
            }
            if b.inputs.iter().any(|m| m.tensor == out.map.tensor) {
                return Err(UGraphError::ReadsOwnOutput {
                    kernel: self.k(),
                    tensor: name(),
                });
            }
            output_axes.push(roles);
        }
        Ok(BlockInfo {
            phases,
            shapes: shapes.iter().map(|s| plain(s)).collect(),
            loop_variant: variant,
            input_axes,
            output_axes,
        })
    }

    /// Shape, phase and loop-variance of op `k`.
    fn op(
        &self,
        k: usize,
        op: &BlockOp,
        input_shapes: &[Vec<Ax>],
        shapes: &[Vec<Ax>],
        phases: &[Phase],
        variant: &[bool],
    ) -> Result<(Vec<Ax>, Phase, bool), UGraphError> {
        let b = self.block;
        let kernel = self.k();
        let bcast_err = |l: &[Ax], r: &[Ax]| UGraphError::Broadcast {
            kernel: self.k(),
            op: k,
            left: show(l),
            right: show(r),
        };
        let shape = match op {
            BlockOp::Input(i) => {
                let s = input_shapes.get(*i).ok_or(UGraphError::InputIndex {
                    kernel,
                    op: k,
                    index: *i,
                    count: b.inputs.len(),
                })?;
                return Ok((s.clone(), Phase::Loop, b.inputs[*i].fmap.is_some()));
            }
            BlockOp::Const(_) => return Ok((vec![], Phase::Loop, false)),
            BlockOp::Accum { kind, input } => {
                if b.forloop.is_none() {
                    return Err(UGraphError::AccumWithoutLoop { kernel, op: k });
                }
                if phases[input.0] == Phase::Post {
                    return Err(UGraphError::AccumOfPost {
                        kernel,
                        op: k,
                        input: input.0,
                    });
                }
                let s = &shapes[input.0];
                if s.iter().any(|a| a.src == Src::Loop) {
                    return Err(UGraphError::AccumLoopAxis {
                        kernel,
                        op: k,
                        shape: show(s),
                    });
                }
                if let AccumKind::RescaledSum { max } = kind {
                    let is_max = matches!(
                        b.ops[max.0],
                        BlockOp::Accum {
                            kind: AccumKind::Max,
                            ..
                        }
                    );
                    if !is_max {
                        return Err(UGraphError::RescaleMax {
                            kernel,
                            op: k,
                            max: max.0,
                        });
                    }
                    let m = &shapes[max.0];
                    if broadcast(m, s).as_deref() != Some(s.as_slice()) {
                        return Err(bcast_err(m, s));
                    }
                }
                return Ok((s.clone(), Phase::Post, true));
            }
            BlockOp::Running(a) => {
                if !matches!(b.ops[a.0], BlockOp::Accum { .. }) {
                    return Err(UGraphError::Running {
                        kernel,
                        op: k,
                        operand: a.0,
                    });
                }
                return Ok((shapes[a.0].clone(), Phase::Loop, true));
            }
            BlockOp::Unary(_, a) => shapes[a.0].clone(),
            BlockOp::Permute(a, perm) => {
                let s = &shapes[a.0];
                let mut seen = vec![false; s.len()];
                let ok = perm.len() == s.len()
                    && perm
                        .iter()
                        .all(|&p| p < s.len() && !std::mem::replace(&mut seen[p], true));
                if !ok {
                    return Err(UGraphError::Permutation {
                        kernel,
                        op: k,
                        perm: perm.clone(),
                        rank: s.len(),
                    });
                }
                perm.iter().map(|&p| s[p].clone()).collect()
            }
            BlockOp::Binary(_, x, y) => {
                let (l, r) = (&shapes[x.0], &shapes[y.0]);
                broadcast(l, r).ok_or_else(|| bcast_err(l, r))?
            }
            BlockOp::Matmul(x, y) => self.matmul(k, *x, *y, shapes)?,
            BlockOp::Reduce { input, axis, .. } => {
                let mut s = shapes[input.0].clone();
                let rank = s.len();
                let slot = s.get_mut(*axis).ok_or(UGraphError::AxisOutOfRange {
                    kernel,
                    at: format!("op {k}"),
                    axis: *axis,
                    rank,
                })?;
                *slot = ONE;
                s
            }
        };
        let operands = op.operands();
        let post = operands.iter().any(|o| phases[o.0] == Phase::Post);
        if post {
            if let Some(o) = operands
                .iter()
                .find(|o| phases[o.0] == Phase::Loop && variant[o.0])
            {
                return Err(UGraphError::PostReadsVariant {
                    kernel: self.k(),
                    op: k,
                    operand: o.0,
                });
            }
            return Ok((shape, Phase::Post, true));
        }
        let var = operands.iter().any(|o| variant[o.0]);
        Ok((shape, Phase::Loop, var))
    }

    fn matmul(
        &self,
        k: usize,
        x: ValueId,
        y: ValueId,
        shapes: &[Vec<Ax>],
    ) -> Result<Vec<Ax>, UGraphError> {
        let (l, r) = (&shapes[x.0], &shapes[y.0]);
        for s in [l, r] {
            if s.len() < 2 {
                return Err(UGraphError::MatmulRank {
                    kernel: self.k(),
                    op: k,
                    shape: show(s),
                });
            }
        }
        let (rl, rr) = (l.len(), r.len());
        if l[rl - 1] != r[rr - 2] {
            return Err(UGraphError::MatmulInner {
                kernel: self.k(),
                op: k,
                left: show(l),
                right: show(r),
            });
        }
        let loaded = |v: ValueId| match self.block.ops[v.0] {
            BlockOp::Input(i) => self
                .block
                .inputs
                .get(i)
                .and_then(|m| self.tensors.get(m.tensor.0))
                .map(|t| t.dtype),
            _ => None,
        };
        if let (Some(a), Some(c)) = (loaded(x), loaded(y))
            && a != c
        {
            return Err(UGraphError::DtypeMismatch {
                kernel: self.k(),
                op: k,
                left: a,
                right: c,
            });
        }
        let mut out =
            broadcast(&l[..rl - 2], &r[..rr - 2]).ok_or_else(|| UGraphError::Broadcast {
                kernel: self.k(),
                op: k,
                left: show(l),
                right: show(r),
            })?;
        out.push(l[rl - 2].clone());
        out.push(r[rr - 1].clone());
        Ok(out)
    }
}

/// Check one block graph; `tensors` are its kernel graph's tensors.
pub fn check_block(block: &BlockGraph, tensors: &[GlobalTensor]) -> Result<BlockInfo, UGraphError> {
    check_named("(block)", block, tensors)
}

fn check_named(
    kernel: &str,
    block: &BlockGraph,
    tensors: &[GlobalTensor],
) -> Result<BlockInfo, UGraphError> {
    Checker {
        kernel,
        block,
        tensors,
    }
    .check()
}

/// Check a whole kernel graph.
pub fn validate(graph: &KernelGraph) -> Result<(), UGraphError> {
    validate_infos(graph).map(|_| ())
}

fn roles(tensors: &[GlobalTensor]) -> Result<(), UGraphError> {
    let (mut ins, mut outs) = (Vec::new(), Vec::new());
    for t in tensors {
        match t.role {
            TensorRole::Input(i) => ins.push(i),
            TensorRole::Output(i) => outs.push(i),
            TensorRole::Intermediate => {}
        }
    }
    for (what, mut v) in [("input", ins), ("output", outs)] {
        v.sort_unstable();
        if v.iter().enumerate().any(|(i, &x)| i != x) {
            return Err(UGraphError::Roles(format!(
                "{what} indices {v:?} are not 0..{} each once",
                v.len()
            )));
        }
    }
    Ok(())
}

fn kernel_name(index: usize, name: &str, seen: &mut HashSet<String>) -> Result<(), UGraphError> {
    let bad = |why| UGraphError::KernelName {
        index,
        name: name.to_string(),
        why,
    };
    let mut chars = name.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return Err(bad("not a C identifier"));
    }
    if !seen.insert(name.to_string()) {
        return Err(bad("another kernel has this name"));
    }
    Ok(())
}

/// [`validate`], returning each block kernel's [`BlockInfo`] (`None` for
/// pre-defined kernels).
pub(crate) fn validate_infos(graph: &KernelGraph) -> Result<Vec<Option<BlockInfo>>, UGraphError> {
    let tensors = &graph.tensors;
    roles(tensors)?;
    let mut seen = HashSet::new();
    let mut written: Vec<bool> = tensors
        .iter()
        .map(|t| matches!(t.role, TensorRole::Input(_)))
        .collect();
    let mut infos = Vec::with_capacity(graph.kernels.len());
    for (index, kernel) in graph.kernels.iter().enumerate() {
        let name = kernel.name.as_str();
        kernel_name(index, name, &mut seen)?;
        let (info, reads, writes) = match &kernel.body {
            KernelBody::Block(b) => {
                let info = check_named(name, b, tensors)?;
                let reads: Vec<TensorId> = b.inputs.iter().map(|m| m.tensor).collect();
                let writes: Vec<TensorId> = b.outputs.iter().map(|o| o.map.tensor).collect();
                (Some(info), reads, writes)
            }
            KernelBody::Predefined(Predefined::SplitCombine { partials, output }) => {
                split_combine(name, *partials, *output, tensors)?;
                (None, vec![*partials], vec![*output])
            }
        };
        for r in reads {
            if !written[r.0] {
                return Err(UGraphError::ReadBeforeWrite {
                    kernel: name.into(),
                    tensor: tensors[r.0].name.clone(),
                });
            }
        }
        for w in writes {
            let t = &tensors[w.0];
            if matches!(t.role, TensorRole::Input(_)) {
                return Err(UGraphError::WriteToInput {
                    kernel: name.into(),
                    tensor: t.name.clone(),
                });
            }
            if std::mem::replace(&mut written[w.0], true) {
                return Err(UGraphError::WrittenTwice {
                    kernel: name.into(),
                    tensor: t.name.clone(),
                });
            }
        }
        infos.push(info);
    }
    for (t, w) in tensors.iter().zip(&written) {
        if matches!(t.role, TensorRole::Output(_)) && !w {
            return Err(UGraphError::OutputNotWritten {
                tensor: t.name.clone(),
            });
        }
    }
    Ok(infos)
}

fn split_combine(
    kernel: &str,
    partials: TensorId,
    output: TensorId,
    tensors: &[GlobalTensor],
) -> Result<(), UGraphError> {
    let get = |id: TensorId, at: &str| {
        tensors
            .get(id.0)
            .ok_or_else(|| UGraphError::TensorOutOfRange {
                kernel: kernel.into(),
                at: at.into(),
                tensor: id.0,
                count: tensors.len(),
            })
    };
    let (p, o) = (get(partials, "partials")?, get(output, "output")?);
    if partials == output {
        return Err(UGraphError::ReadsOwnOutput {
            kernel: kernel.into(),
            tensor: o.name.clone(),
        });
    }
    if p.shape.is_empty() || p.shape[1..] != o.shape[..] {
        return Err(UGraphError::SplitCombineShape {
            kernel: kernel.into(),
            partials: dims_string(&p.shape),
            output: dims_string(&o.shape),
        });
    }
    Ok(())
}
