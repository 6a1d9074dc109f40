//! Shared pieces of kernel emission: parameters, block-index decomposition,
//! tile addressing, and elementwise evaluation of block operators at a tile
//! position.

use std::collections::HashMap;
use std::fmt::Write;

use crate::ir::{BinaryOp, DType, DimExpr, ScalarExpr, UnaryOp};
use crate::ugraph::validate::TileExtent;
use crate::ugraph::{BlockGraph, BlockOp, GlobalTensor, TensorId, TileMap, ValueId};

/// A dim expression as C source over the kernel's `d_<name>` parameters.
pub fn dim(e: &DimExpr) -> String {
    e.render(|s| format!("d_{s}"))
}

pub fn c_type(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "__half",
        DType::BF16 => "__nv_bfloat16",
        DType::F32 => "float",
    }
}

/// A constant scalar expression as a C `float` (computed in double).
pub fn scalar(e: &ScalarExpr) -> String {
    format!("((float)({}))", scalar_f64(e))
}

fn scalar_f64(e: &ScalarExpr) -> String {
    match e {
        ScalarExpr::Lit(l) => {
            let v = l.0;
            if v.is_finite() {
                format!("{v:e}")
            } else if v.is_nan() {
                "(0.0/0.0)".into()
            } else if v > 0.0 {
                "(1.0/0.0)".into()
            } else {
                "(-1.0/0.0)".into()
            }
        }
        ScalarExpr::Dim(d) => format!("((double)d_{d})"),
        ScalarExpr::Unary(op, a) => {
            let a = scalar_f64(a);
            match op {
                UnaryOp::Neg => format!("(-{a})"),
                UnaryOp::Exp => format!("exp({a})"),
                UnaryOp::Log => format!("log({a})"),
                UnaryOp::Sqrt => format!("sqrt({a})"),
                UnaryOp::Rsqrt => format!("(1.0 / sqrt({a}))"),
                UnaryOp::Square => format!("({a} * {a})"),
                UnaryOp::Silu => format!("({a} / (1.0 + exp(-{a})))"),
                UnaryOp::Gelu => format!("(0.5 * {a} * (1.0 + erf({a} * 0.70710678118654752)))"),
                UnaryOp::Relu => format!("fmax({a}, 0.0)"),
                UnaryOp::Sigmoid => format!("(1.0 / (1.0 + exp(-{a})))"),
            }
        }
        ScalarExpr::Binary(op, a, b) => {
            format!("({} {} {})", scalar_f64(a), op.symbol(), scalar_f64(b))
        }
    }
}

pub fn unary(op: UnaryOp, a: &str) -> String {
    format!("prism::op::{}({a})", op.name())
}

pub fn binary(op: BinaryOp, a: &str, b: &str) -> String {
    format!("({a} {} {b})", op.symbol())
}

/// Where a view axis of a tile map starts in this block and how many
/// elements the tile has along it.
#[derive(Clone, Debug)]
pub struct AxisTile {
    pub start: String,
    /// Tile extent (C expression); "1" for single-index axes.
    pub size: String,
    /// Whether the local index along this axis is always 0.
    pub single: bool,
}

/// The kernel being emitted: parameter names, grid decomposition.
pub struct Emitter<'a> {
    pub block: &'a BlockGraph,
    pub tensors: &'a [GlobalTensor],
    pub dims: &'a [String],
    /// Tensors passed as parameters, in order, and whether each is written.
    pub params: Vec<(TensorId, bool)>,
    /// `grid_start[g][j]`: C variable holding the start of component `j` of grid dim `g`.
    pub grid_start: Vec<Vec<String>>,
    /// Dims with one declared value (templates that need compile-time
    /// sizes may specialize on them).
    pub fixed: crate::ir::DimBindings,
    /// Dynamic shared memory the kernel is launched with (bytes; 0: none).
    pub dynamic_shared: u32,
    /// Split-K across blocks ([`crate::codegen::Launch::split_k`]), set by
    /// the matmul template. The kernel then takes the counters and the
    /// workspace after its tensors.
    pub split_k: Option<crate::codegen::SplitK>,
    /// `__launch_bounds__`'s minimum blocks per SM (`None`: not given, and
    /// ptxas may cap registers for occupancy, spilling to do so).
    pub min_blocks: Option<u32>,
    /// Consecutive blocks walk grid y (a matmul's row tiles) before x:
    /// the blocks that share B's column tile run together and read it
    /// from DRAM once while it is in L2 (set for warpgroup-MMA matmuls,
    /// whose B may not fit in L2: a gated MLP at n = 2048 took 1027 µs
    /// instead of 1120 µs on an H200,
    /// bench/results/wgmma-raster-h200-session13.txt).
    pub column_major: bool,
    /// The flash-decoding combine kernel that follows this (partial)
    /// kernel, with the slots of its inputs, to be fused into its last
    /// block per row tile; its output tensor is then a parameter of this
    /// kernel too. Only the flash template takes it
    /// ([`super::attention::flash_partial`]).
    pub combine: Option<(&'a BlockGraph, crate::ugraph::flash::CombineSlots)>,
    /// Blocks per thread block cluster along grid x, y, z
    /// (`PRISM_CLUSTER_DIMS`; `None`: no clusters). Set by the flash
    /// template for a cluster combine (the splits along x) and by the
    /// matmul template for split-K across a cluster (the splits along z).
    pub cluster: Option<[u32; 3]>,
    /// Tensor maps the kernel takes (after the split-K pointers), set by
    /// the matmul template for a TMA main loop; the
    /// kernel then also runs one producer warp beyond its launch
    /// parameters' threads.
    pub tensor_maps: Vec<crate::codegen::TensorMapPlan>,
    pub code: String,
    tmp: usize,
    depth: usize,
}

impl<'a> Emitter<'a> {
    pub fn new(block: &'a BlockGraph, tensors: &'a [GlobalTensor], dims: &'a [String]) -> Self {
        let mut params: Vec<(TensorId, bool)> = Vec::new();
        for m in &block.inputs {
            if !params.iter().any(|(t, _)| *t == m.tensor) {
                params.push((m.tensor, false));
            }
        }
        let mut em = Emitter {
            block,
            tensors,
            dims,
            params,
            grid_start: Vec::new(),
            fixed: crate::ir::DimBindings::new(),
            dynamic_shared: 0,
            split_k: None,
            min_blocks: None,
            column_major: false,
            combine: None,
            cluster: None,
            tensor_maps: Vec::new(),
            code: String::new(),
            tmp: 0,
            depth: 0,
        };
        for o in &block.outputs {
            em.add_written_param(o.map.tensor);
        }
        em
    }

    /// Pass `t` as a written parameter (marking it written if it is read).
    pub fn add_written_param(&mut self, t: TensorId) {
        match self.params.iter_mut().find(|(p, _)| *p == t) {
            Some(p) => p.1 = true,
            None => self.params.push((t, true)),
        }
    }

    pub fn fresh(&mut self, prefix: &str) -> String {
        self.tmp += 1;
        format!("{prefix}{}", self.tmp)
    }

    /// Append a statement, indented by the braces open before it.
    pub fn line(&mut self, s: &str) {
        if s.starts_with('}') {
            self.depth = self.depth.saturating_sub(1);
        }
        let _ = writeln!(self.code, "{}{s}", "    ".repeat(self.depth + 1));
        if s.ends_with('{') {
            self.depth += 1;
        }
    }

    pub fn pointer(&self, t: TensorId) -> String {
        format!("p{}", t.0)
    }

    /// `extern "C" __global__ void name(...)` with `__launch_bounds__` (and
    /// the cluster size, when it has one).
    pub fn signature(&self, name: &str, threads: u32) -> String {
        let mut ps: Vec<String> = self
            .params
            .iter()
            .map(|(t, written)| {
                let ty = c_type(self.tensors[t.0].dtype);
                let c = if *written { "" } else { "const " };
                format!("{c}{ty}* __restrict__ {}", self.pointer(*t))
            })
            .collect();
        if self.split_k.is_some() {
            ps.push("unsigned int* __restrict__ splitk_counters".into());
            ps.push("float* __restrict__ splitk_workspace".into());
        }
        for i in 0..self.tensor_maps.len() {
            ps.push(format!("const __grid_constant__ prism::TensorMap tmap{i}"));
        }
        ps.extend(self.dims.iter().map(|d| format!("long long d_{d}")));
        let bounds = match self.min_blocks {
            Some(b) => format!("{threads}, {b}"),
            None => threads.to_string(),
        };
        let cluster = self.cluster.map_or(String::new(), |[x, y, z]| {
            format!("PRISM_CLUSTER_DIMS({x}, {y}, {z}) ")
        });
        format!(
            "extern \"C\" __global__ void {cluster}__launch_bounds__({bounds}) {name}({})",
            ps.join(", ")
        )
    }

    /// Decompose blockIdx into the start of every grid component.
    pub fn decompose_grid(&mut self) {
        let grid = self.block.grid.clone();
        let column = self.column_major && grid.len() >= 2;
        if column {
            self.line("const long long b_lin = (long long)blockIdx.y * gridDim.x + blockIdx.x;");
        }
        for (g, gd) in grid.iter().enumerate() {
            let axis = ["x", "y", "z"][g];
            let b = format!("b_{axis}");
            let index = match g {
                0 if column => "b_lin / gridDim.y".to_string(),
                1 if column => "b_lin % gridDim.y".to_string(),
                _ => format!("(long long)blockIdx.{axis}"),
            };
            self.line(&format!("long long {b} = {index};"));
            let k = gd.extents.len();
            let mut starts = vec![String::new(); k];
            for j in (0..k).rev() {
                let e = dim(&gd.extents[j]);
                let v = format!("g{g}_{j}");
                if j == k - 1 && gd.tile > 1 {
                    let t = gd.tile;
                    self.line(&format!(
                        "const long long {v} = ({b} % (({e} + {t}LL - 1) / {t}LL)) * {t}LL;"
                    ));
                    self.line(&format!("{b} /= (({e} + {t}LL - 1) / {t}LL);"));
                } else {
                    self.line(&format!("const long long {v} = {b} % {e};"));
                    self.line(&format!("{b} /= {e};"));
                }
                starts[j] = v;
            }
            self.grid_start.push(starts);
        }
    }

    /// Per view axis of `map`: its start in this block and its tile extent.
    /// The for-loop axis starts at `loop_start` with extent `loop_size`.
    pub fn axis_tiles(&self, map: &TileMap, loop_start: &str, loop_size: &str) -> Vec<AxisTile> {
        let mut out: Vec<AxisTile> = map
            .view
            .iter()
            .map(|d| AxisTile {
                start: "0".into(),
                size: dim(d),
                single: d.is_one(),
            })
            .collect();
        for (g, entry) in map.imap.iter().enumerate() {
            let Some(axes) = entry else { continue };
            let gd = &self.block.grid[g];
            for (j, &a) in axes.iter().enumerate() {
                if map.view[a].is_one() {
                    out[a] = AxisTile {
                        start: "0".into(),
                        size: "1".into(),
                        single: true,
                    };
                    continue;
                }
                let start = self.grid_start[g][j].clone();
                let last = j + 1 == axes.len();
                out[a] = if last && gd.tile > 1 {
                    let e = dim(&gd.extents[j]);
                    AxisTile {
                        size: format!("min({}LL, {e} - {start})", gd.tile),
                        start,
                        single: false,
                    }
                } else {
                    AxisTile {
                        start,
                        size: "1".into(),
                        single: true,
                    }
                };
            }
        }
        if let Some(a) = map.fmap {
            out[a] = AxisTile {
                start: loop_start.into(),
                size: loop_size.into(),
                single: false,
            };
        }
        out
    }

    /// Row-major strides of a view, as C expressions.
    pub fn strides(view: &[DimExpr]) -> Vec<String> {
        let mut s = vec!["1LL".to_string(); view.len()];
        for a in (0..view.len().saturating_sub(1)).rev() {
            s[a] = format!("({} * {})", dim(&view[a + 1]), s[a + 1]);
        }
        s
    }

    /// The element offset of tile-local index `local` (one C expression per
    /// view axis) in `map`'s tensor.
    pub fn offset(&self, map: &TileMap, tiles: &[AxisTile], local: &[String]) -> String {
        let strides = Self::strides(&map.view);
        let terms: Vec<String> = (0..map.view.len())
            .filter(|a| !(map.view[*a].is_one()))
            .map(|a| {
                let l = if tiles[a].single {
                    "0"
                } else {
                    local[a].as_str()
                };
                let idx = match (tiles[a].start.as_str(), l) {
                    ("0", l) => l.to_string(),
                    (s, "0") => s.to_string(),
                    (s, l) => format!("({s} + {l})"),
                };
                format!("{idx} * {}", strides[a])
            })
            .collect();
        if terms.is_empty() {
            "0".into()
        } else {
            terms.join(" + ")
        }
    }
}

/// A value held in a C variable, addressed by a function of the local index.
pub type Bound<'e> = Box<dyn Fn(&[String]) -> String + 'e>;

/// Evaluates block operators elementwise at a tile position, memoizing
/// values per (op, index) so shared subexpressions are computed once.
pub struct Evaluator<'e> {
    /// Tile shape of every op.
    pub shapes: &'e [Vec<TileExtent>],
    /// Tile geometry of every block input.
    pub input_tiles: Vec<Vec<AxisTile>>,
    /// Values that are already C variables (accumulators, row statistics):
    /// evaluated by name, indexed by the given function of the local index.
    pub bound: HashMap<ValueId, Bound<'e>>,
    memo: HashMap<(ValueId, Vec<String>), String>,
}

impl<'e> Evaluator<'e> {
    pub fn new(shapes: &'e [Vec<TileExtent>], input_tiles: Vec<Vec<AxisTile>>) -> Self {
        Evaluator {
            shapes,
            input_tiles,
            bound: HashMap::new(),
            memo: HashMap::new(),
        }
    }

    /// Local index of an operand of shape `shape` for a result indexed by
    /// `local` (numpy broadcasting, aligned at the last axis).
    fn operand_index(&self, operand: ValueId, local: &[String]) -> Vec<String> {
        let shape = &self.shapes[operand.0];
        let off = local.len() - shape.len().min(local.len());
        shape
            .iter()
            .enumerate()
            .map(|(a, e)| {
                if e.is_single() {
                    "0".to_string()
                } else {
                    local.get(off + a).cloned().unwrap_or_else(|| "0".into())
                }
            })
            .collect()
    }

    /// Forget computed values (when leaving the C scope they live in).
    pub fn clear_memo(&mut self) {
        self.memo.clear();
    }

    /// A C expression (usually a variable) with the value of `v` at `local`.
    /// Statements are appended to `em`.
    pub fn value(
        &mut self,
        em: &mut Emitter,
        v: ValueId,
        local: &[String],
    ) -> Result<String, String> {
        let key = (v, local.to_vec());
        if let Some(s) = self.memo.get(&key) {
            return Ok(s.clone());
        }
        if let Some(f) = self.bound.get(&v) {
            return Ok(f(local));
        }
        let op = em.block.ops[v.0].clone();
        let expr = match &op {
            BlockOp::Input(i) => {
                let map = em.block.inputs[*i].clone();
                let tiles = self.input_tiles[*i].clone();
                let idx = self.operand_index(v, local);
                let off = em.offset(&map, &tiles, &idx);
                format!("prism::to_float({}[{off}])", em.pointer(map.tensor))
            }
            BlockOp::Const(c) => scalar(c),
            BlockOp::Unary(u, a) => {
                let idx = self.operand_index(*a, local);
                let a = self.value(em, *a, &idx)?;
                unary(*u, &a)
            }
            BlockOp::Binary(b, x, y) => {
                let ix = self.operand_index(*x, local);
                let iy = self.operand_index(*y, local);
                let x = self.value(em, *x, &ix)?;
                // A division by a constant is a product with its reciprocal
                // (computed in double): an IEEE f32 division is a multi-
                // instruction sequence with a slow-path branch, and it sat on
                // every score of the flash partials (`/ sqrt(128)`); the
                // product is within 1.5 ulp of it.
                if *b == BinaryOp::Div
                    && let Some(BlockOp::Const(c)) = em.block.ops.get(y.0)
                {
                    format!("({x} * ((float)(1.0 / {})))", scalar_f64(c))
                } else {
                    let y = self.value(em, *y, &iy)?;
                    binary(*b, &x, &y)
                }
            }
            BlockOp::Permute(a, perm) => {
                let mut idx = vec!["0".to_string(); perm.len()];
                for (i, p) in perm.iter().enumerate() {
                    idx[*p] = local.get(i).cloned().unwrap_or_else(|| "0".into());
                }
                let idx = self.operand_index(*a, &idx);
                self.value(em, *a, &idx)?
            }
            other => return Err(format!("operator {other:?} is not elementwise here")),
        };
        let name = em.fresh("v");
        em.line(&format!("const float {name} = {expr};"));
        self.memo.insert(key, name.clone());
        Ok(name)
    }
}
