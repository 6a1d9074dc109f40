//! The kernel shapes code generation knows, each recognized from a block
//! graph's structure:
//!
//! - [`elementwise`]: no for-loop; elementwise operators (and tile
//!   permutes); threads stride over the output tile.
//! - [`loop_reduce`]: one output element per block, a for-loop whose
//!   iterations are reduced (sum, mean, max) into accumulators; threads keep
//!   partial results and a block reduction combines them.
//! - [`matmul`]: a tile matmul accumulated over the for-loop on tensor cores
//!   (`prism::TileGemm`), optional per-row statistics of the left operand
//!   (the fused rms_norm), and an elementwise epilogue; with split-K
//!   across blocks (`LaunchParams::split_k`) the blocks of a tile share K
//!   and the last to finish adds their sums before the epilogue.

use crate::ir::{DimExpr, ReduceOp};
use crate::ugraph::validate::{BlockInfo, Phase, TileExtent};
use crate::ugraph::{AccumKind, BlockOp, ValueId};

use super::emit::{Emitter, Evaluator, c_type, dim};

type Result<T> = std::result::Result<T, String>;

pub(super) fn elementwise_op(op: &BlockOp) -> bool {
    matches!(
        op,
        BlockOp::Input(_)
            | BlockOp::Const(_)
            | BlockOp::Unary(..)
            | BlockOp::Binary(..)
            | BlockOp::Permute(..)
    )
}

pub(super) fn input_tiles(
    em: &Emitter,
    loop_start: &str,
    loop_size: &str,
) -> Vec<Vec<super::emit::AxisTile>> {
    em.block
        .inputs
        .iter()
        .map(|m| em.axis_tiles(m, loop_start, loop_size))
        .collect()
}

pub(super) fn store(
    em: &mut Emitter,
    out: usize,
    value: &str,
    local: &[String],
    tiles: &[super::emit::AxisTile],
) {
    let map = em.block.outputs[out].map.clone();
    let ty = c_type(em.tensors[map.tensor.0].dtype);
    let off = em.offset(&map, tiles, local);
    em.line(&format!(
        "{}[{off}] = prism::from_float<{ty}>({value});",
        em.pointer(map.tensor)
    ));
}

/// The number of elements of the first output's tile, as a C expression.
pub(super) fn output_tile_elems(em: &Emitter) -> String {
    let sizes: Vec<String> = em
        .axis_tiles(&em.block.outputs[0].map, "0", "0")
        .into_iter()
        .map(|t| if t.single { "1".to_string() } else { t.size })
        .collect();
    if sizes.is_empty() {
        "1LL".to_string()
    } else {
        sizes.join(" * ")
    }
}

/// Open a loop of the threads striding over the elements of the first
/// output's tile; returns the local index (one C expression per axis).
/// Close it with `}`.
pub(super) fn stride_output_tile(em: &mut Emitter) -> Vec<String> {
    let count = output_tile_elems(em);
    em.line(&format!("const long long tile_elems = {count};"));
    em.line("for (long long li = threadIdx.x; li < tile_elems; li += blockDim.x) {");
    output_tile_index(em, "li")
}

/// Decompose the flat index `flat` (a C expression) over the first output's
/// tile, row-major; returns the local index (one C expression per axis).
pub(super) fn output_tile_index(em: &mut Emitter, flat: &str) -> Vec<String> {
    let out_tiles = em.axis_tiles(&em.block.outputs[0].map, "0", "0");
    em.line(&format!("long long rest = {flat};"));
    let mut local = vec!["0".to_string(); out_tiles.len()];
    for a in (0..out_tiles.len()).rev() {
        if !out_tiles[a].single {
            let size = &out_tiles[a].size;
            em.line(&format!(
                "const long long l{a} = rest % ({size}); rest /= ({size});"
            ));
            local[a] = format!("l{a}");
        }
    }
    em.line("(void)rest;");
    local
}

/// Threads stride over the elements of the output tile.
pub fn elementwise(em: &mut Emitter, info: &BlockInfo) -> Result<()> {
    let b = em.block;
    if b.forloop.is_some() || !b.ops.iter().all(elementwise_op) {
        return Err("not an elementwise block graph".into());
    }
    let shape0 = &info.shapes[b.outputs[0].value.0];
    if b.outputs.iter().any(|o| &info.shapes[o.value.0] != shape0) {
        return Err("elementwise outputs of different tile shapes".into());
    }
    let local = stride_output_tile(em);
    let mut ev = Evaluator::new(&info.shapes, input_tiles(em, "0", "0"));
    for (o, out) in b.outputs.iter().enumerate() {
        let out_tiles_o = em.axis_tiles(&out.map, "0", "0");
        let v = ev.value(em, out.value, &local)?;
        store(em, o, &v, &local, &out_tiles_o);
    }
    em.line("}");
    Ok(())
}

/// A reduction accumulated over the for-loop.
struct LoopAccum {
    accum: ValueId,
    kind: AccumKind,
    reduce_input: ValueId,
    /// `1 / count` scaling for a mean.
    count: Option<crate::ir::DimExpr>,
}

fn loop_accums(em: &Emitter, info: &BlockInfo) -> Result<Vec<LoopAccum>> {
    let b = em.block;
    let mut out = Vec::new();
    for (i, op) in b.ops.iter().enumerate() {
        if let BlockOp::Accum { kind, input } = op {
            let BlockOp::Reduce {
                op: rop,
                input: rin,
                count,
                ..
            } = &b.ops[input.0]
            else {
                return Err("an accumulator of something other than a reduction".into());
            };
            let ok = matches!(
                (kind, rop),
                (AccumKind::Sum, ReduceOp::Sum | ReduceOp::Mean) | (AccumKind::Max, ReduceOp::Max)
            );
            if !ok {
                return Err(format!("accumulator {kind:?} of a {rop} reduction"));
            }
            if *rop == ReduceOp::Mean && count.is_none() {
                return Err("a tile mean without a data count".into());
            }
            let _ = info;
            out.push(LoopAccum {
                accum: ValueId(i),
                kind: *kind,
                reduce_input: *rin,
                count: if *rop == ReduceOp::Mean {
                    count.clone()
                } else {
                    None
                },
            });
        }
    }
    Ok(out)
}

/// One block per output element; threads walk the whole loop axis.
pub fn loop_reduce(em: &mut Emitter, info: &BlockInfo) -> Result<()> {
    let b = em.block;
    let Some(fl) = &b.forloop else {
        return Err("no for-loop".into());
    };
    if fl.split.is_some() {
        return Err("a split for-loop".into());
    }
    for (i, op) in b.ops.iter().enumerate() {
        let ok = match info.phases[i] {
            Phase::Loop => elementwise_op(op) || matches!(op, BlockOp::Reduce { .. }),
            Phase::Post => elementwise_op(op) || matches!(op, BlockOp::Accum { .. }),
        };
        if !ok {
            return Err(format!("operator {op:?} in a loop reduction"));
        }
        if info.phases[i] == Phase::Post && !info.shapes[i].iter().all(TileExtent::is_single) {
            return Err("a loop reduction whose result is not one element per block".into());
        }
    }
    let accums = loop_accums(em, info)?;
    let threads = b.params.threads;
    let k = dim(&fl.extent);
    em.line("__shared__ float scratch[32];");
    for a in &accums {
        let init = if a.kind == AccumKind::Max {
            "-INFINITY"
        } else {
            "0.0f"
        };
        em.line(&format!("float acc{} = {init};", a.accum.0));
    }
    em.line(&format!(
        "for (long long kk = threadIdx.x; kk < {k}; kk += blockDim.x) {{"
    ));
    let mut ev = Evaluator::new(&info.shapes, input_tiles(em, "0", &k));
    for a in &accums {
        let shape = &info.shapes[a.reduce_input.0];
        let local: Vec<String> = shape
            .iter()
            .map(|e| {
                if e.is_single() {
                    "0".into()
                } else {
                    "kk".into()
                }
            })
            .collect();
        if local.iter().filter(|l| *l == "kk").count() != 1 {
            return Err("a loop reduction over more than the loop axis".into());
        }
        let v = ev.value(em, a.reduce_input, &local)?;
        let acc = format!("acc{}", a.accum.0);
        match a.kind {
            AccumKind::Max => em.line(&format!("{acc} = fmaxf({acc}, {v});")),
            _ => em.line(&format!("{acc} += {v};")),
        }
    }
    em.line("}");
    ev.clear_memo();
    for a in &accums {
        let acc = format!("acc{}", a.accum.0);
        block_reduce(
            em,
            &acc,
            a.kind == AccumKind::Max,
            threads,
            a.count.as_ref(),
        );
        ev.bound
            .insert(a.accum, Box::new(move |_: &[String]| acc.clone()));
    }
    em.line("if (threadIdx.x == 0) {");
    for (o, out) in b.outputs.iter().enumerate() {
        let tiles = em.axis_tiles(&out.map, "0", "0");
        let local = vec!["0".to_string(); tiles.len()];
        let v = ev.value(em, out.value, &local)?;
        store(em, o, &v, &local, &tiles);
    }
    em.line("}");
    Ok(())
}

/// `var = ` its block-wide maximum (`max`) or sum, every thread getting it
/// (through `scratch`, `__shared__ float[32]`); a mean then divides by
/// `mean_of`.
pub(super) fn block_reduce(
    em: &mut Emitter,
    var: &str,
    max: bool,
    threads: u32,
    mean_of: Option<&DimExpr>,
) {
    let op = if max { "MaxOp" } else { "SumOp" };
    em.line(&format!(
        "{var} = prism::block_reduce<prism::{op}, {threads}>({var}, scratch);"
    ));
    if let Some(c) = mean_of {
        em.line(&format!("{var} *= (float)(1.0 / (double)({}));", dim(c)));
    }
}

/// Shared memory the matmul kernel declares statically, checked against the
/// 48 KiB static limit by nvcc.
pub fn matmul(em: &mut Emitter, info: &BlockInfo) -> Result<()> {
    let b = em.block;
    let Some(fl) = &b.forloop else {
        return Err("no for-loop".into());
    };
    if fl.split.is_some() {
        return Err("a split for-loop".into());
    }
    let low_rank = low_rank_step(b, info)?;
    let mms: Vec<usize> = (0..b.ops.len())
        .filter(|i| matches!(b.ops[*i], BlockOp::Matmul(..)))
        .filter(|i| {
            low_rank
                .as_ref()
                .is_none_or(|l| *i != l.post_mm && l.side().is_none_or(|(mm, _, _)| *i != mm))
        })
        .collect();
    if mms.is_empty() || mms.len() > 2 {
        return Err("not one or two tile matmuls".into());
    }
    let side = low_rank.as_ref().and_then(LowRank::side);
    if low_rank.is_some() && mms.len() != 1 {
        return Err("a low-rank side product beside two GEMMs".into());
    }
    // Every matmul: the same left input tile, its own right input tile, and
    // a sum accumulator.
    let mut ia = None;
    let mut rights = Vec::new();
    let mut accs = Vec::new();
    for &mm in mms.iter().chain(side.as_ref().map(|(mm, _, _)| mm)) {
        let BlockOp::Matmul(x, y) = b.ops[mm] else {
            return Err("not a matmul".into());
        };
        let (BlockOp::Input(a), BlockOp::Input(r)) = (&b.ops[x.0], &b.ops[y.0]) else {
            return Err("a tile matmul of computed operands".into());
        };
        if ia.is_some_and(|i| i != *a) {
            return Err("two matmuls with different left operands".into());
        }
        ia = Some(*a);
        rights.push(*r);
        let acc = b
            .ops
            .iter()
            .position(|o| {
                *o == BlockOp::Accum {
                    kind: AccumKind::Sum,
                    input: ValueId(mm),
                }
            })
            .ok_or("a tile matmul without a sum accumulator")?;
        accs.push(acc);
    }
    let ia = ia.ok_or("no matmul")?;
    // The side product's right operand and accumulator are the last ones.
    if side.is_some() {
        rights.pop();
        accs.pop();
    }
    let ma = &b.inputs[ia];
    let r = ma.view.len();
    if let Some(l) = &low_rank {
        l.check_maps(b, r)?;
        if accs.first() != Some(&l.main_acc) {
            return Err(
                "the low-rank product is added to something other than the GEMM's sum".into(),
            );
        }
    }
    for &ib in &rights {
        let mb = &b.inputs[ib];
        if mb.view.len() != r || ma.fmap != Some(r - 1) || mb.fmap != Some(r - 2) {
            return Err("matmul operands not walked along k by the for-loop".into());
        }
    }
    if ma.imap.get(1) != Some(&Some(vec![r - 2]))
        || rights
            .iter()
            .any(|ib| b.inputs[*ib].imap.first() != Some(&Some(vec![r - 1])))
    {
        return Err("matmul grid is not (n tiles, m tiles, batch)".into());
    }
    // Row statistics: Accum(Sum, Reduce(Sum|Mean, f(a), last axis)).
    let mut stats: Vec<(ValueId, ValueId, Option<crate::ir::DimExpr>)> = Vec::new();
    for (i, op) in b.ops.iter().enumerate() {
        if accs.contains(&i) || side.is_some_and(|(_, acc, _)| acc == i) {
            continue;
        }
        if let BlockOp::Accum { kind, input } = op {
            let BlockOp::Reduce {
                op: rop,
                input: rin,
                axis,
                count,
            } = &b.ops[input.0]
            else {
                return Err("an accumulator of something other than a reduction".into());
            };
            if *kind != AccumKind::Sum
                || *axis != r - 1
                || !matches!(rop, ReduceOp::Sum | ReduceOp::Mean)
            {
                return Err("a row statistic other than a sum or mean over k".into());
            }
            if depends_on_input_other_than(b, *rin, ia) {
                return Err("a row statistic of something other than the left operand".into());
            }
            let count = if *rop == ReduceOp::Mean {
                Some(count.clone().ok_or("a tile mean without a data count")?)
            } else {
                None
            };
            stats.push((ValueId(i), *rin, count));
        }
    }
    for (i, op) in b.ops.iter().enumerate() {
        if info.phases[i] == Phase::Post
            && !(elementwise_op(op) || matches!(op, BlockOp::Accum { .. }))
            && low_rank.as_ref().is_none_or(|l| l.post_mm != i)
        {
            return Err(format!("operator {op:?} in a matmul epilogue"));
        }
    }
    let (gx, gy) = (&b.grid[0], &b.grid[1]);
    let (bm, bn, bk) = (gy.tile, gx.tile, fl.tile);
    let p = &b.params;
    let dtype = em.tensors[ma.tensor.0].dtype;
    let ty = c_type(dtype);
    let shape = GemmShape {
        bm,
        bn,
        bk,
        warps_m: p.warps_m,
        warps_n: p.warps_n,
        warps_k: p.warps_k,
        stages: p.stages,
        wgmma: p.wgmma,
    };
    let elem = dtype.size() as u32;
    // Two GEMMs run in one pipeline when both B tiles fit per stage.
    let pair_smem = match (rights.len() == 2).then(|| gemm_shared_bytes(shape, elem, 2)) {
        // Two main loops would keep both GEMMs' accumulators live anyway.
        Some(Err(why)) if p.wgmma => {
            return Err(format!(
                "matmul: two GEMMs on wgmma run in one pipeline, and {bm}×{bn} with {} stages cannot ({why})",
                p.stages
            ));
        }
        pair => pair.and_then(|r| r.ok()),
    };
    let pair = pair_smem.is_some();
    let (smem, smem_const) = match (pair_smem, &low_rank, side) {
        (Some(bytes), _, _) => (bytes, "PAIR_SMEM_BYTES"),
        (None, Some(_), Some(_)) => (low_rank_shared_bytes(shape, elem)?, "SIDE_SMEM_BYTES"),
        (None, Some(_), None) => (
            low_rank_input_shared_bytes(shape, elem)?,
            "INPUT_RANK_SMEM_BYTES",
        ),
        (None, None, _) => (gemm_shared_bytes(shape, elem, 1)?, "SMEM_BYTES"),
    };
    if p.threads != p.warps_m * p.warps_n * p.warps_k * 32 {
        return Err("matmul threads are not 32 per warp of warps_m × warps_n × warps_k".into());
    }
    let gemm = if p.wgmma {
        // One block per SM: its registers hold up to 128 accumulators per
        // thread (ptxas would otherwise trade them for occupancy, spilling).
        em.min_blocks = Some(1);
        em.line(&format!(
            "using Gemm = prism::WgmmaGemm<{ty}, {bm}, {bn}, {}>;",
            p.stages
        ));
        "WgmmaGemm"
    } else {
        em.line(&format!(
            "using Gemm = prism::TileGemm<{ty}, {bm}, {bn}, {bk}, {}, {}, {}, {}>;",
            p.warps_m, p.warps_n, p.stages, p.warps_k
        ));
        "TileGemm"
    };
    em.line(&format!(
        "static_assert(Gemm::{smem_const} == {smem}, \"prism: {gemm} shared memory differs from the code generator's\");"
    ));
    // Static arrays beside the pipeline (row statistics) need headroom.
    if smem + 4096 > STATIC_SHARED_BYTES {
        em.line("extern __shared__ __align__(16) char smem[];");
        em.dynamic_shared = smem;
    } else {
        em.line(&format!(
            "__shared__ __align__(16) char smem[Gemm::{smem_const}];"
        ));
    }
    for (s, _, _) in &stats {
        em.line(&format!("__shared__ float rowstat{}[{bm}];", s.0));
    }
    let k = dim(&fl.extent);
    let m = dim(&gy.extents[0]);
    let n = dim(&gx.extents[0]);
    em.line(&format!(
        "const int m_valid = (int)min((long long){bm}, {m} - g1_0);"
    ));
    em.line(&format!(
        "const int n_valid = (int)min((long long){bn}, {n} - g0_0);"
    ));
    let tiles = input_tiles(em, "0", &k);
    let zero = vec!["0".to_string(); r];
    let off_a = em.offset(ma, &tiles[ia], &zero);
    let pa = em.pointer(ma.tensor);
    let split_k = p.split_k.max(1);
    let k_range = if split_k > 1 {
        split_k_range(em, &k, split_k, bk)?;
        ("k_lo", "k_hi")
    } else {
        ("0LL", k.as_str())
    };
    // With one block row (decode-sized m), each right operand element is
    // read by one block: streamed through L2 evict_first.
    let b_ptrs: Vec<String> = rights
        .iter()
        .map(|&ib| {
            let mb = &b.inputs[ib];
            let off_b = em.offset(mb, &tiles[ib], &zero);
            format!("{} + {off_b}", em.pointer(mb.tensor))
        })
        .collect();
    for j in 0..rights.len() {
        em.line(&format!("Gemm gemm{j};"));
        em.line(&format!("gemm{j}.clear();"));
    }
    let (k_lo, k_hi) = k_range;
    let tma = if p.tma {
        Some(tma_maps(
            em,
            b,
            ia,
            &rights,
            &tiles,
            bm,
            TmaLimits {
                side: side.map(|(_, _, input)| input),
                stats: !stats.is_empty(),
            },
        )?)
    } else {
        None
    };
    if let Some((m0, n0)) = &tma {
        let maps = (0..em.tensor_maps.len())
            .map(|i| format!("tmap{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let call = if pair {
            "Gemm::mainloop_pair_tma(gemm0, gemm1, "
        } else if side.is_some() {
            "gemm0.mainloop_side_tma("
        } else {
            "gemm0.mainloop_tma("
        };
        em.line(&format!(
            "{call}{maps}, (int)({m0}), (int)({n0}), {k_lo}, {k_hi}, smem);"
        ));
        if let Some(l) = low_rank.as_ref().filter(|l| l.side().is_some()) {
            add_low_rank(em, b, l, &tiles, r);
        }
    } else if let (Some(l), Some((_, _, side_input))) = (&low_rank, side) {
        // The side operand's K tiles beside A's, then the rank update. Under
        // split-K each split adds its own rounded side sums times B before
        // storing its partial sums (the update is linear in them): the
        // splits' sums then add up to x·W + (x·A)·B with x·A rounded per
        // split, and the workspace holds the GEMM's partial sums only.
        let ms = &b.inputs[side_input];
        let ps = em.pointer(ms.tensor);
        let off_s = em.offset(ms, &tiles[side_input], &zero);
        let rank = dim(&ms.view[r - 1]);
        em.line(&format!(
            "gemm0.mainloop_side({pa} + {off_a}, {k}, m_valid, {}, {n}, n_valid, {ps} + {off_s}, {rank}, {rank}, {k_lo}, {k_hi}, smem, gridDim.y == 1);",
            b_ptrs[0]
        ));
        add_low_rank(em, b, l, &tiles, r);
    } else if pair {
        em.line(&format!(
            "Gemm::mainloop_pair(gemm0, gemm1, {pa} + {off_a}, {k}, m_valid, {}, {}, {n}, n_valid, {k_lo}, {k_hi}, smem, gridDim.y == 1);",
            b_ptrs[0], b_ptrs[1]
        ));
    } else {
        for (j, pb) in b_ptrs.iter().enumerate() {
            em.line(&format!(
                "gemm{j}.mainloop({pa} + {off_a}, {k}, m_valid, {pb}, {n}, n_valid, {k_lo}, {k_hi}, smem, gridDim.y == 1);"
            ));
        }
    }
    if split_k > 1 && p.cluster_combine {
        split_k_cluster_combine(em, split_k, rights.len(), smem / (bm * bn * 4))?;
    } else if split_k > 1 {
        split_k_combine(em, split_k, rights.len(), &gy.extents[0], &gx.extents[0]);
    }
    // An input S's product, once per output tile: after the splits'
    // sums are combined, by the block that goes on to the epilogue.
    if let Some(l) = low_rank.as_ref().filter(|l| l.side().is_none()) {
        if split_k > 1 {
            em.line("__syncthreads();  // the combine's shared memory is free");
        }
        add_low_rank(em, b, l, &tiles, r);
    }
    let mut ev = Evaluator::new(&info.shapes, tiles);
    if !stats.is_empty() {
        let warps = p.warps_m * p.warps_n * p.warps_k;
        em.line("{");
        em.line("const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;");
        em.line(&format!(
            "for (int row = warp; row < {bm}; row += {warps}) {{"
        ));
        for (s, _, _) in &stats {
            em.line(&format!("float st{} = 0.0f;", s.0));
        }
        // The row is read with 16-byte loads, 8 per lane in flight (one
        // row is otherwise K / 32 dependent L2 round trips, serial after
        // the main loop), when the rows are 16-byte aligned; else
        // element by element.
        em.line("if (row < m_valid) {");
        if dtype.size() == 2 {
            em.line(&format!(
                "const {ty}* xrow = {pa} + {off_a} + (long long)row * {k};"
            ));
            em.line(&format!(
                "if (({k}) % 8 == 0 && prism::is_aligned({pa} + {off_a}, 16)) {{"
            ));
            em.line("#pragma unroll 8");
            em.line(&format!(
                "for (long long kc = lane * 8LL; kc < {k}; kc += 256) {{"
            ));
            em.line("const uint4 raw = *reinterpret_cast<const uint4*>(xrow + kc);");
            em.line(&format!(
                "const {ty}* xe = reinterpret_cast<const {ty}*>(&raw);"
            ));
            em.line("#pragma unroll");
            em.line("for (int e = 0; e < 8; ++e) {");
            for (i, op) in b.ops.iter().enumerate() {
                if *op == BlockOp::Input(ia) {
                    ev.bound.insert(
                        ValueId(i),
                        Box::new(|_: &[String]| "prism::to_float(xe[e])".to_string()),
                    );
                }
            }
            accumulate_stats(em, &mut ev, &stats, r, "(kc + e)")?;
            ev.bound.clear();
            ev.clear_memo();
            em.line("}");
            em.line("}");
            em.line("} else {");
        } else {
            em.line("{");
        }
        em.line("#pragma unroll 8");
        em.line(&format!("for (long long kk = lane; kk < {k}; kk += 32) {{"));
        accumulate_stats(em, &mut ev, &stats, r, "kk")?;
        em.line("}");
        em.line("}");
        em.line("}");
        ev.clear_memo();
        for (s, _, count) in &stats {
            em.line(&format!(
                "st{0} = prism::warp_reduce<prism::SumOp>(st{0});",
                s.0
            ));
            let scale = match count {
                Some(c) => format!(" * (float)(1.0 / (double)({}))", dim(c)),
                None => String::new(),
            };
            em.line(&format!(
                "if (lane == 0) rowstat{0}[row] = st{0}{scale};",
                s.0
            ));
        }
        em.line("}");
        em.line("}");
        em.line("__syncthreads();");
    }
    for (s, _, _) in &stats {
        let name = format!("rowstat{}", s.0);
        ev.bound.insert(
            *s,
            Box::new(move |l: &[String]| format!("{name}[{}]", l[r - 2])),
        );
    }
    ev.bound
        .insert(ValueId(accs[0]), Box::new(|_: &[String]| "acc".to_string()));
    // The rank update went into the accumulators: they hold the sum.
    if let Some(l) = &low_rank {
        ev.bound
            .insert(ValueId(l.sum), Box::new(|_: &[String]| "acc".to_string()));
    }
    // One GEMM: a pair's two accumulator sets leave ptxas no registers
    // for the staging (28 bytes spilled at 288 threads).
    let staged = p.wgmma && accs.len() == 1 && staged_output(em, bm, bn, smem);
    if staged {
        // The pipeline's shared memory is free (the main loop, the rank
        // update and the combines end with a barrier); once more for
        // paths that read it last.
        em.line("__syncthreads();");
        let ty = c_type(em.tensors[b.outputs[0].map.tensor.0].dtype);
        em.line(&format!(
            "{ty}* const out_stage = reinterpret_cast<{ty}*>(smem);"
        ));
    }
    if let Some(&second) = accs.get(1) {
        ev.bound
            .insert(ValueId(second), Box::new(|_: &[String]| "acc1".to_string()));
        em.line("gemm0.for_each_pair(gemm1, [&](int row, int col, float acc, float acc1) {");
    } else {
        em.line("gemm0.for_each([&](int row, int col, float acc) {");
    }
    em.line("if (row >= m_valid || col >= n_valid) return;");
    let mut local = vec!["0".to_string(); r];
    local[r - 2] = "row".into();
    local[r - 1] = "col".into();
    for (o, out) in b.outputs.iter().enumerate() {
        let tiles = em.axis_tiles(&out.map, "0", "0");
        let v = ev.value(em, out.value, &local)?;
        if staged {
            let ty = c_type(em.tensors[out.map.tensor.0].dtype);
            em.line(&format!(
                "out_stage[row * {} + col] = prism::from_float<{ty}>({v});",
                stage_ld(em, bn)
            ));
        } else {
            store(em, o, &v, &local, &tiles);
        }
    }
    em.line("});");
    if staged {
        store_staged(em, bm, bn, &local);
    }
    Ok(())
}

/// Elements of one row of the staged output tile: `bn` and one 16-byte
/// chunk (fragment rows then fall in distinct banks).
fn stage_ld(em: &Emitter, bn: u32) -> u32 {
    let size = em.tensors[em.block.outputs[0].map.tensor.0].dtype.size() as u32;
    bn + 16 / size
}

/// Whether a matmul kernel's output tile goes through shared memory
/// (`out_stage`, then 16-byte stores of whole rows: the fragments' scattered
/// 2-byte stores cost a 2048-row GEMM's epilogue ~15 % on an H200,
/// bench/NOTES.md "Issue 6, session 11"): one output, the whole 2-D tensor
/// row-major, and a staged tile within the kernel's shared memory.
fn staged_output(em: &Emitter, bm: u32, bn: u32, smem: u32) -> bool {
    let [out] = &em.block.outputs[..] else {
        return false;
    };
    let t = &em.tensors[out.map.tensor.0];
    let size = t.dtype.size() as u32;
    out.map.view.len() == 2
        && t.shape == out.map.view
        && (bn * size).is_multiple_of(16)
        && bm * stage_ld(em, bn) * size <= smem
}

/// Copy the staged output tile (`out_stage`, `stage_ld` elements per row)
/// to the output: each thread 16-byte chunks of a row (element by element
/// at the tile's edge or an unaligned row).
fn store_staged(em: &mut Emitter, bm: u32, bn: u32, local: &[String]) {
    let map = em.block.outputs[0].map.clone();
    let t = &em.tensors[map.tensor.0];
    let (ty, vec) = (c_type(t.dtype), 16 / t.dtype.size() as u32);
    let ld = stage_ld(em, bn);
    let tiles = em.axis_tiles(&map, "0", "0");
    let off = em.offset(&map, &tiles, local);
    let ptr = em.pointer(map.tensor);
    em.line("__syncthreads();");
    em.line(&format!(
        "for (int idx = threadIdx.x; idx < {}; idx += blockDim.x) {{",
        bm * (bn / vec)
    ));
    em.line(&format!(
        "const int row = idx / {0}, col = (idx % {0}) * {vec};",
        bn / vec
    ));
    em.line("if (row >= m_valid || col >= n_valid) continue;");
    em.line(&format!("{ty}* dst = {ptr} + {off};"));
    em.line(&format!("const {ty}* src = out_stage + row * {ld} + col;"));
    em.line(&format!(
        "if (col + {vec} <= n_valid && prism::is_aligned(dst, 16)) *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);"
    ));
    em.line(&format!(
        "else for (int e = 0; e < {vec} && col + e < n_valid; ++e) dst[e] = src[e];"
    ));
    em.line("}");
}

/// The rank update `acc += S·B` (B: the low-rank product's post input,
/// rank rows, the GEMM's columns): `add_low_rank` with the side sums
/// `round(x·A)` after a main loop with a side product, or
/// `add_low_rank_input` with `S` an input tile of the block's rows.
fn add_low_rank(
    em: &mut Emitter,
    b: &crate::ugraph::BlockGraph,
    l: &LowRank,
    tiles: &[Vec<super::emit::AxisTile>],
    r: usize,
) {
    let zero = vec!["0".to_string(); r];
    let mp = &b.inputs[l.post_input];
    let pp = em.pointer(mp.tensor);
    let off_p = em.offset(mp, &tiles[l.post_input], &zero);
    let rank = dim(&b.inputs[l.rank_input()].view[r - 1]);
    let ldp = dim(&mp.view[r - 1]);
    match l.left {
        LowRankLeft::Side { .. } => em.line(&format!(
            "gemm0.add_low_rank({pp} + {off_p}, {ldp}, {rank}, n_valid, smem);"
        )),
        LowRankLeft::Input(is) => {
            let ms = &b.inputs[is];
            let ps = em.pointer(ms.tensor);
            let off_s = em.offset(ms, &tiles[is], &zero);
            em.line(&format!(
                "gemm0.add_low_rank_input({ps} + {off_s}, {rank}, m_valid, {pp} + {off_p}, {ldp}, {rank}, n_valid, smem);"
            ));
        }
    }
}

/// What a matmul kernel holds besides its GEMMs, for [`tma_maps`].
struct TmaLimits {
    /// The low-rank side product's right operand (an input index).
    side: Option<usize>,
    stats: bool,
}

/// The tensor maps of a TMA main loop (`WgmmaGemm::mainloop_tma`): A as
/// `[m, k]` in boxes of 64 k × `bm` rows, each B as `[k, n]` in boxes of
/// 64 × 64 (the 128-byte swizzle), and a low-rank side operand as `[k, r]`
/// in boxes of 16 × 64 (the 32-byte swizzle), all over the whole tensor as
/// the kernel's views lay it out (row-major). Returns the tile's row and
/// column starts (C expressions), the maps' coordinates. Only 2-D GEMMs
/// on wgmma: no batch axes or row statistic (the producer warp computes
/// none), and tiles whose K starts at the loop's. Split-K ranges are whole
/// 64-wide K tiles ([`split_k_range`]), so a split's last box ends at its
/// range's end or at K, where the maps' zero fill makes the edge.
fn tma_maps(
    em: &mut Emitter,
    b: &crate::ugraph::BlockGraph,
    ia: usize,
    rights: &[usize],
    tiles: &[Vec<super::emit::AxisTile>],
    bm: u32,
    limits: TmaLimits,
) -> Result<(String, String)> {
    let why = if !b.params.wgmma {
        Some("it runs on wgmma only")
    } else if limits.stats {
        Some("not with a row statistic")
    } else if rights.len() > 2 {
        Some("one or two GEMMs sharing A")
    } else {
        None
    };
    if let Some(why) = why {
        return Err(format!("matmul: a TMA main loop: {why}"));
    }
    let ma = &b.inputs[ia];
    let plain = |m: &crate::ugraph::TileMap, t: &[super::emit::AxisTile], k_axis: usize| {
        m.view.len() == 2 && m.fmap == Some(k_axis) && t.len() == 2 && t[k_axis].start == "0"
    };
    let side_plain = limits
        .side
        .is_none_or(|is| plain(&b.inputs[is], &tiles[is], 0) && tiles[is][1].start == "0");
    if !plain(ma, &tiles[ia], 1)
        || !side_plain
        || rights
            .iter()
            .any(|&ib| !plain(&b.inputs[ib], &tiles[ib], 0))
    {
        return Err(
            "matmul: a TMA main loop takes 2-D operands, A [m, k] and B [k, n], with no batch axes"
                .into(),
        );
    }
    // Row strides of 16-byte multiples, known here: a launcher then only
    // checks the pointers.
    let aligned_rows = |m: &crate::ugraph::TileMap| {
        m.view[1]
            .as_constant()
            .is_some_and(|c| c > 0 && (c * em.tensors[m.tensor.0].dtype.size() as i64) % 16 == 0)
    };
    if !aligned_rows(ma)
        || rights
            .iter()
            .chain(limits.side.as_ref())
            .any(|&ib| !aligned_rows(&b.inputs[ib]))
    {
        return Err("matmul: a TMA main loop takes rows of a constant multiple of 16 bytes".into());
    }
    let n0 = tiles[rights[0]][1].start.clone();
    if rights.iter().any(|&ib| tiles[ib][1].start != n0) {
        return Err("matmul: a TMA main loop's B tiles start at the same column".into());
    }
    // The whole 2-D tensor of input `i`, in boxes of `rows` × `cols`.
    let map_of = |i: usize, box_rows: u32, box_cols: u32| {
        let m = &b.inputs[i];
        crate::codegen::TensorMapPlan {
            tensor: m.tensor,
            rows: m.view[0].clone(),
            cols: m.view[1].clone(),
            box_rows,
            box_cols,
        }
    };
    em.tensor_maps.push(map_of(ia, bm, 64));
    for &ib in rights {
        em.tensor_maps.push(map_of(ib, 64, 64));
    }
    if let Some(is) = limits.side {
        em.tensor_maps.push(map_of(is, 64, 16));
    }
    Ok((tiles[ia][0].start.clone(), n0))
}

/// A low-rank product added to a matmul kernel's GEMM (LoRA's
/// `x·W + (x·A)·B`): the post-loop matmul of `S` (at most 16 columns) by an
/// input `B` (rank rows, the GEMM's columns) and the sum of the GEMM's
/// accumulator and that product. `S` is either the side matmul `x·A` in
/// the loop (same left operand as the GEMM, a right operand that the grid
/// does not cut) and its sum accumulator, the template adding `round(x·A)·B`
/// into the GEMM's accumulators (`mainloop_side`, `add_low_rank`), or an
/// input (`x·A` stored by an earlier kernel: `add_low_rank_input`).
struct LowRank {
    left: LowRankLeft,
    post_mm: usize,
    post_input: usize,
    /// The GEMM's accumulator, added to the post-loop product by `sum`.
    main_acc: usize,
    sum: usize,
}

/// Where a low-rank product's `S` comes from.
enum LowRankLeft {
    /// The side matmul `x·A` (its op, sum accumulator and right operand
    /// input) in the GEMM's loop.
    Side { mm: usize, acc: usize, input: usize },
    /// An input tile of the block's rows and all rank columns.
    Input(usize),
}

impl LowRank {
    /// The side matmul and its accumulator (none when `S` is an input).
    fn side(&self) -> Option<(usize, usize, usize)> {
        match self.left {
            LowRankLeft::Side { mm, acc, input } => Some((mm, acc, input)),
            LowRankLeft::Input(_) => None,
        }
    }

    /// The input whose last axis is the rank.
    fn rank_input(&self) -> usize {
        match self.left {
            LowRankLeft::Side { input, .. } | LowRankLeft::Input(input) => input,
        }
    }
}

/// The most columns of a low-rank side product (`prism::LOW_RANK`).
const LOW_RANK: i64 = 16;

/// The low-rank step of a matmul kernel's block graph, if it has a
/// post-loop matmul; an error when that matmul is not one.
fn low_rank_step(b: &crate::ugraph::BlockGraph, info: &BlockInfo) -> Result<Option<LowRank>> {
    // A matmul after the loop, or of two loop-invariant inputs (its value
    // the same at every iteration: computed once, after the loop).
    let invariant =
        |v: ValueId| matches!(b.ops[v.0], BlockOp::Input(i) if b.inputs[i].fmap.is_none());
    let posts: Vec<usize> = (0..b.ops.len())
        .filter(|i| match b.ops[*i] {
            BlockOp::Matmul(x, y) => {
                info.phases[*i] == Phase::Post || (invariant(x) && invariant(y))
            }
            _ => false,
        })
        .collect();
    let Some(&post_mm) = posts.first() else {
        return Ok(None);
    };
    let refuse = |why: &str| Err(format!("a matmul after the loop: {why}"));
    if posts.len() > 1 {
        return refuse("more than one");
    }
    let BlockOp::Matmul(s, p) = b.ops[post_mm] else {
        return refuse("not a matmul");
    };
    let (left, post_input) = match (&b.ops[s.0], &b.ops[p.0]) {
        (
            BlockOp::Accum {
                kind: AccumKind::Sum,
                input: side_mm,
            },
            BlockOp::Input(post_input),
        ) => {
            let BlockOp::Matmul(_, side_right) = b.ops[side_mm.0] else {
                return refuse("its left operand sums no matmul");
            };
            let BlockOp::Input(input) = b.ops[side_right.0] else {
                return refuse("the side product's right operand is computed");
            };
            let side = LowRankLeft::Side {
                mm: side_mm.0,
                acc: s.0,
                input,
            };
            (side, *post_input)
        }
        (BlockOp::Input(input), BlockOp::Input(post_input)) => {
            (LowRankLeft::Input(*input), *post_input)
        }
        _ => return refuse("not a summed product or an input times an input"),
    };
    // The GEMM's accumulator plus the product, each used only there.
    let users = |v: usize| {
        b.ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.operands().contains(&ValueId(v)))
            .map(|(i, _)| i)
            .collect::<Vec<_>>()
    };
    let post_users = users(post_mm);
    let [sum] = post_users[..] else {
        return refuse("its product is used other than once");
    };
    let BlockOp::Binary(crate::ir::BinaryOp::Add, x, y) = b.ops[sum] else {
        return refuse("its product is not added to the GEMM's sum");
    };
    let main_acc = if x.0 == post_mm { y.0 } else { x.0 };
    if !matches!(
        b.ops[main_acc],
        BlockOp::Accum {
            kind: AccumKind::Sum,
            ..
        }
    ) || users(main_acc) != [sum]
        || b.outputs
            .iter()
            .any(|o| [main_acc, post_mm].contains(&o.value.0))
    {
        return refuse("its product is not added to a GEMM's sum used only there");
    }
    Ok(Some(LowRank {
        left,
        post_mm,
        post_input,
        main_acc,
        sum,
    }))
}

impl LowRank {
    /// The side operand is walked along k with at most 16 columns, none cut
    /// by the grid (an input `S`: the block's rows, loop-invariant); `B` has
    /// that many rows and the GEMM's columns.
    fn check_maps(&self, b: &crate::ugraph::BlockGraph, r: usize) -> Result<()> {
        let (ms, mp) = (&b.inputs[self.rank_input()], &b.inputs[self.post_input]);
        let rank = ms.view.last().and_then(|d| d.as_constant());
        let (fmap, imap_y) = match self.left {
            LowRankLeft::Side { .. } => (Some(r - 2), None),
            LowRankLeft::Input(_) => (None, Some(vec![r - 2])),
        };
        if ms.view.len() != r || mp.view.len() != r || ms.fmap != fmap || mp.fmap.is_some() {
            return Err(
                "low-rank operands not a k-walked side operand (or the rows' S) and a loop-invariant one"
                    .into(),
            );
        }
        if !rank.is_some_and(|k| (1..=LOW_RANK).contains(&k)) {
            return Err(format!(
                "a low-rank side product of more than {LOW_RANK} or symbolic columns"
            ));
        }
        if ms.imap.first() != Some(&None)
            || ms.imap.get(1) != Some(&imap_y)
            || mp.imap.first() != Some(&Some(vec![r - 1]))
            || mp.imap.get(1) != Some(&None)
            || mp.view[r - 2] != ms.view[r - 1]
        {
            return Err(
                "low-rank operands not (k × rank, whole) and (rank × n, column tiles)".into(),
            );
        }
        Ok(())
    }
}

/// This block's share of K under split-K across blocks (`blockIdx.z` of
/// `splits`): whole K tiles, so the vector loader's alignment holds.
fn split_k_range(em: &mut Emitter, k: &str, splits: u32, bk: u32) -> Result<()> {
    if em.block.grid.len() > 2 {
        return Err("split-K across blocks with a third grid dim (z holds the splits)".into());
    }
    let span = u64::from(splits) * u64::from(bk);
    em.line(&format!(
        "const long long k_chunk = (({k} + {span}LL - 1) / {span}LL) * {bk}LL;"
    ));
    em.line(&format!(
        "const long long k_lo = min((long long)({k}), (long long)blockIdx.z * k_chunk);"
    ));
    em.line(&format!(
        "const long long k_hi = min((long long)({k}), k_lo + k_chunk);"
    ));
    Ok(())
}

/// Split-K across blocks, after the main loops: every block stores its
/// partial sums (`gemms` accumulators, the valid elements of its tile) to
/// the workspace `[splits, gemms, m, n]` (f32); the tile's last block to
/// arrive adds the splits' sums in split order (its own from registers,
/// the same values it stored, so the result does not depend on which
/// block is last; `TileGemm::combine_splits`, one L2 round trip per split)
/// and goes on to the epilogue; the others return.
fn split_k_combine(em: &mut Emitter, splits: u32, gemms: usize, m: &DimExpr, n: &DimExpr) {
    let (md, nd) = (dim(m), dim(n));
    // The workspace element of split `s`, accumulator `j`, tile position
    // (row, col), and which tile positions are data.
    em.line(&format!("const long long ws_plane = ({md}) * ({nd});"));
    em.line(&format!(
        "const auto splitk_at = [&](long long s, int j, int row, int col) {{ return splitk_workspace + (s * {gemms} + j) * ws_plane + (g1_0 + row) * ({nd}) + g0_0 + col; }};"
    ));
    em.line(
        "const auto splitk_valid = [&](int row, int col) { return row < m_valid && col < n_valid; };",
    );
    for j in 0..gemms {
        em.line(&format!(
            "gemm{j}.for_each([&](int row, int col, float acc) {{ if (splitk_valid(row, col)) __stcg(splitk_at(blockIdx.z, {j}, row, col), acc); }});"
        ));
    }
    em.line(&format!(
        "if (!prism::split_k_arrive(splitk_counters + (blockIdx.y * gridDim.x + blockIdx.x), {splits}u)) return;"
    ));
    for j in 0..gemms {
        em.line(&format!(
            "gemm{j}.combine_splits<{splits}>((int)blockIdx.z, splitk_valid, [&](int s, int row, int col) {{ return __ldcg(splitk_at(s, {j}, row, col)); }});"
        ));
    }
    em.split_k = Some(crate::codegen::SplitK {
        splits,
        workspace: DimExpr::constant(i64::from(splits) * gemms as i64)
            .mul(m)
            .mul(n),
    });
}

/// Split-K across a thread block cluster (`LaunchParams::cluster_combine`),
/// after the main loops: a tile's `splits` blocks (grid z) are one cluster
/// (`PRISM_CLUSTER_DIMS(1, 1, splits)`); each stages its `gemms`
/// accumulators' sums in its own shared memory (the pipeline's, free after
/// the main loop: `room` tiles of f32 fit there), and after a cluster
/// barrier the cluster's first block adds every split's sums, in split
/// order, through distributed shared memory
/// (`GemmAccumulators::add_cluster_sums`: the same sums in the same order
/// as the workspace combine) and goes on to the epilogue; the others wait
/// at a second barrier, until their sums are read, and return. No
/// workspace, counters or L2 round trip.
fn split_k_cluster_combine(em: &mut Emitter, splits: u32, gemms: usize, room: u32) -> Result<()> {
    if !crate::ugraph::flash::cluster_combine_takes(i64::from(splits)) {
        return Err(format!(
            "split-K across a cluster takes 2 to {} splits, not {splits}",
            crate::ugraph::flash::CLUSTER_COMBINE_MAX_SPLITS
        ));
    }
    if (room as usize) < gemms {
        return Err(format!(
            "split-K across a cluster stages {gemms} tiles of f32 sums in the pipeline's shared memory, which holds {room}"
        ));
    }
    em.cluster = Some([1, 1, splits]);
    em.line("__syncthreads();  // the pipeline's shared memory is free");
    for j in 0..gemms {
        em.line(&format!(
            "gemm{j}.stage_sums(smem + {j} * Gemm::SPLIT_STAGE_BYTES);"
        ));
    }
    em.line("prism::cluster::sync();");
    em.line("const bool splitk_first = prism::cluster::rank() == 0;");
    em.line("if (splitk_first) {");
    for j in 0..gemms {
        em.line(&format!(
            "gemm{j}.add_cluster_sums<{splits}>(smem + {j} * Gemm::SPLIT_STAGE_BYTES);"
        ));
    }
    em.line("}");
    em.line("prism::cluster::sync();  // the stages stay until they are read");
    em.line("if (!splitk_first) return;");
    Ok(())
}

/// `st<s> += <statistic's operand at (row, col)>` for every row statistic
/// `(s, operand, _)` of a matmul kernel of rank `r`.
fn accumulate_stats(
    em: &mut Emitter,
    ev: &mut Evaluator,
    stats: &[(ValueId, ValueId, Option<crate::ir::DimExpr>)],
    r: usize,
    col: &str,
) -> Result<()> {
    let mut local = vec!["0".to_string(); r];
    local[r - 2] = "row".into();
    local[r - 1] = col.into();
    for (s, rin, _) in stats {
        let v = ev.value(em, *rin, &local)?;
        em.line(&format!("st{} += {v};", s.0));
    }
    Ok(())
}

/// Static shared memory a kernel may declare; above it the matmul
/// template takes its pipeline buffers as dynamic shared memory.
pub const STATIC_SHARED_BYTES: u32 = 48 * 1024;
/// The most dynamic shared memory a matmul kernel may ask for: what every
/// target architecture from sm_80 up grants one block on opt-in, less
/// room for the kernel's static arrays.
pub const MAX_GEMM_SHARED_BYTES: u32 = 160 * 1024;

/// A tensor-core matmul tile configuration (`prism::TileGemm`'s template
/// arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    pub bm: u32,
    pub bn: u32,
    pub bk: u32,
    pub warps_m: u32,
    pub warps_n: u32,
    pub warps_k: u32,
    pub stages: u32,
    /// The main loop on warpgroup MMA (`prism::WgmmaGemm`, sm_90a): `bk`
    /// 64, one warpgroup (4 warps, all along m) per 64 rows.
    pub wgmma: bool,
}

/// The most dynamic shared memory a `prism::WgmmaGemm` kernel may ask for:
/// sm_90's 227 KiB per block less room for the kernel's static arrays.
pub const MAX_WGMMA_SHARED_BYTES: u32 = 220 * 1024;

/// `prism::WgmmaGemm<T, bm, bn, stages>::SMEM_BYTES` (`PAIR_SMEM_BYTES`
/// with `b_tiles` 2), or why the configuration breaks one of its static
/// assertions or the shared-memory limit.
fn wgmma_shared_bytes(g: GemmShape, elem: u32, b_tiles: u32) -> Result<u32> {
    let GemmShape {
        bm,
        bn,
        bk,
        warps_m,
        warps_n,
        warps_k,
        stages,
        ..
    } = g;
    let ok = elem == 2
        && bk == 64
        && bm.is_multiple_of(64)
        && (64..=256).contains(&bm)
        && matches!(bn, 64 | 128 | 256)
        && (3..=8).contains(&stages)
        && warps_m == bm / 16
        && warps_n == 1
        && warps_k == 1
        // f32 accumulators per thread: BN / 2 per GEMM, within the 255
        // registers a thread may have.
        && b_tiles * bn / 2 <= 128;
    if !ok {
        return Err(format!(
            "matmul: a wgmma tile {bm}×{bn}×{bk} with warps {warps_m}×{warps_n}×{warps_k}, {stages} stages and {b_tiles} B tile(s) breaks a WgmmaGemm constraint (16-bit elements, bk 64, bm a multiple of 64 up to 256 with bm/16 warps along m, bn 64, 128 or 256, 3 to 8 stages, at most 128 accumulators per thread)"
        ));
    }
    let bytes = pipeline_bytes(g, elem, b_tiles);
    if bytes > MAX_WGMMA_SHARED_BYTES {
        return Err(format!(
            "matmul: {bytes} bytes of shared memory (at most {MAX_WGMMA_SHARED_BYTES} for wgmma)"
        ));
    }
    Ok(bytes)
}

/// `prism::TileGemm<T, ..>::SMEM_BYTES` for elements of `elem` bytes
/// (`PAIR_SMEM_BYTES` with `b_tiles` 2: two GEMMs sharing A in one
/// pipeline), or why the configuration breaks one of the template's static
/// assertions or the shared-memory limit (checked here so that code
/// generation, not nvcc, refuses it).
pub fn gemm_shared_bytes(g: GemmShape, elem: u32, b_tiles: u32) -> Result<u32> {
    if g.wgmma {
        return wgmma_shared_bytes(g, elem, b_tiles);
    }
    let GemmShape {
        bm,
        bn,
        bk,
        warps_m,
        warps_n,
        warps_k,
        stages,
        wgmma: _,
    } = g;
    if !(elem == 2 || elem == 4) {
        return Err("matmul: elements must be 2 or 4 bytes".into());
    }
    if [bm, bn, bk, warps_m, warps_n, warps_k, stages].contains(&0) {
        return Err("matmul: a zero tile size or warp count".into());
    }
    let vec = 16 / elem;
    let group = warps_m * warps_n * 32;
    let threads = group * warps_k;
    let (a_row, b_row) = (bk / vec, bn / vec);
    let ok = stages <= 8
        && threads <= 1024
        && bk.is_multiple_of(vec)
        && bn.is_multiple_of(vec)
        && (bm * bn).is_multiple_of(group * 4)
        && (bk / 16).is_multiple_of(warps_k)
        && bk.is_multiple_of(4 * warps_k)
        && a_row > 0
        && b_row > 0
        && threads.is_multiple_of(a_row)
        && threads.is_multiple_of(b_row)
        && (elem != 2
            || (bm.is_multiple_of(16 * warps_m)
                && bn.is_multiple_of(16 * warps_n)
                && bk.is_multiple_of(16)))
        && simt_layout_ok(bm, bn, bk, group);
    if !ok {
        return Err(format!(
            "matmul: tile {bm}×{bn}×{bk} with warps {warps_m}×{warps_n}×{warps_k} breaks a TileGemm constraint"
        ));
    }
    let bytes = pipeline_bytes(g, elem, b_tiles).max(reduce_bytes(g));
    if bytes > MAX_GEMM_SHARED_BYTES {
        return Err(format!(
            "matmul: {bytes} bytes of shared memory (at most {MAX_GEMM_SHARED_BYTES})"
        ));
    }
    Ok(bytes)
}

/// The pipeline's shared memory of a valid configuration: `STAGES` stages of
/// the A tile and `b_tiles` B tiles (`TileGemm`: rows padded by one 16-byte
/// chunk; `WgmmaGemm`: unpadded, 16-bit, plus the 1024-byte alignment slack).
fn pipeline_bytes(g: GemmShape, elem: u32, b_tiles: u32) -> u32 {
    if g.wgmma {
        g.stages * (g.bm * g.bk * 2 + b_tiles * g.bk * g.bn * 2) + 1024
    } else {
        let vec = 16 / elem;
        g.stages * (g.bm * (g.bk + vec) + b_tiles * g.bk * (g.bn + vec)) * elem
    }
}

/// `TileGemm::REDUCE_BYTES`: the k groups' partial sums after the loop.
fn reduce_bytes(g: GemmShape) -> u32 {
    (g.warps_k - 1) * g.bm * g.bn * 4
}

/// `INPUT_RANK_SMEM_BYTES`: shared memory of a GEMM followed by
/// `add_low_rank_input`, the pipeline (and TileGemm's k-group reduction)
/// or the staged `S` and `B` tiles (`prism::LowRankEpilogue`) if larger.
pub fn low_rank_input_shared_bytes(g: GemmShape, elem: u32) -> Result<u32> {
    let bytes = gemm_shared_bytes(g, elem, 1)?;
    let vec = 16 / elem;
    let rank = LOW_RANK as u32;
    Ok(bytes.max(g.bm * (rank + vec) * elem + rank * (g.bn + vec) * elem))
}

/// `SIDE_SMEM_BYTES` of the configuration's GEMM class: its pipeline with
/// the side tile (`prism::SideTile`) per stage, or the low-rank epilogue's
/// buffers (`prism::LowRankEpilogue`) if larger.
pub fn low_rank_shared_bytes(g: GemmShape, elem: u32) -> Result<u32> {
    gemm_shared_bytes(g, elem, 1)?;
    let vec = 16 / elem;
    let rank = LOW_RANK as u32;
    // WgmmaGemm's side tile is unpadded (32-byte swizzle), TileGemm's padded.
    let side_stage = g.bk * (rank + if g.wgmma { 0 } else { vec }) * elem;
    let parts = if g.wgmma { 1 } else { g.warps_k };
    let post = parts * g.bm * rank * 4 + g.bm * (rank + vec) * elem + rank * (g.bn + vec) * elem;
    let pipe = pipeline_bytes(g, elem, 1) + g.stages * side_stage;
    let (bytes, max) = if g.wgmma {
        (pipe.max(post), MAX_WGMMA_SHARED_BYTES)
    } else {
        (pipe.max(reduce_bytes(g)).max(post), MAX_GEMM_SHARED_BYTES)
    };
    if bytes > max {
        return Err(format!(
            "matmul: {bytes} bytes of shared memory with the low-rank side tiles (at most {max})"
        ));
    }
    Ok(bytes)
}

/// The SIMT path's thread layout (instantiated for every element type:
/// it is the fallback below sm_80): `TN` columns and `TM` rows per thread.
fn simt_layout_ok(bm: u32, bn: u32, bk: u32, group: u32) -> bool {
    let acc = bm * bn / group;
    let tn = if acc >= 16 { 8 } else { 4 };
    let tm = acc / tn;
    let tx = bn / tn;
    acc.is_multiple_of(4)
        && bn.is_multiple_of(tn)
        && tx > 0
        && group.is_multiple_of(tx)
        && (group / tx) * tm == bm
        && bk.is_multiple_of(4)
}

/// Whether `v` reads a block input other than `allowed`.
fn depends_on_input_other_than(b: &crate::ugraph::BlockGraph, v: ValueId, allowed: usize) -> bool {
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        match &b.ops[x.0] {
            BlockOp::Input(i) if *i != allowed => return true,
            op => stack.extend(op.operands()),
        }
    }
    false
}
