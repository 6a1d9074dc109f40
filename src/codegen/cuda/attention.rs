//! The two kernel shapes of flash-decoding attention
//! ([`crate::ugraph::flash`]):
//!
//! - [`flash_partial`]: a split for-loop over key tiles with two tile
//!   matmuls and an online softmax between them, emitted as a call to
//!   `prism::FlashPartial` (`cuda/prism/attention.cuh`), or with
//!   `LaunchParams::wgmma` on `prism::FlashPartialWgmma`
//!   (`cuda/prism/attention_wgmma.cuh`, sm_90a).
//! - [`serial_loop`]: a for-loop of tile 1 whose accumulators (sum, max,
//!   rescaled sum, running values) are updated per element: threads stride
//!   over the output tile and each walks the whole loop (the combine of the
//!   splits).

use crate::ir::{DimExpr, ReduceOp, UnaryOp};
use crate::ugraph::flash::{CombineSlots, FUSED_COMBINE_MAX_ROWS, recognize_combine};
use crate::ugraph::validate::{BlockInfo, Phase, TileExtent};
use crate::ugraph::{AccumKind, BlockGraph, BlockOp, KernelGraph, TileMap, ValueId};

use super::emit::{Emitter, Evaluator, c_type, dim};
use super::templates::{elementwise_op, input_tiles, output_tile_index, store, stride_output_tile};

type Result<T> = std::result::Result<T, String>;

/// A for-loop of tile 1 walked by every thread for its output elements.
pub fn serial_loop(em: &mut Emitter, info: &BlockInfo) -> Result<()> {
    let b = em.block;
    let Some(fl) = &b.forloop else {
        return Err("no for-loop".into());
    };
    if fl.tile != 1 || fl.split.is_some() {
        return Err("not an unsplit for-loop of tile 1".into());
    }
    let shape0 = &info.shapes[b.outputs[0].value.0];
    if b.outputs.iter().any(|o| &info.shapes[o.value.0] != shape0) {
        return Err("outputs of different tile shapes".into());
    }
    for (i, op) in b.ops.iter().enumerate() {
        let ok = match info.phases[i] {
            Phase::Loop => {
                elementwise_op(op)
                    || matches!(op, BlockOp::Running(_))
                    || matches!(op, BlockOp::Reduce { input, axis, .. }
                        if info.shapes[input.0].get(*axis).is_some_and(TileExtent::is_single))
            }
            Phase::Post => elementwise_op(op) || matches!(op, BlockOp::Accum { .. }),
        };
        if !ok {
            return Err(format!("operator {op:?} in a serial loop"));
        }
    }
    // Thread groups: when the output tile has a fixed size E dividing the
    // threads and the running values are shift-covariant (so partial
    // accumulations merge exactly), G = threads / E groups each walk a
    // share of the loop and group 0 merges them; else one group strides
    // over the tile.
    let elems: Option<i64> = shape0
        .iter()
        .map(|t| match t {
            TileExtent::One => Some(1),
            TileExtent::Full(d) => d.as_constant().or_else(|| d.eval(&em.fixed).ok()),
            TileExtent::Part { tile, .. } => (*tile == 1).then_some(1),
        })
        .product();
    let threads = i64::from(b.params.threads);
    let groups = match (elems, fl.extent.as_constant()) {
        (Some(e), Some(n))
            if e > 0
                && threads % e == 0
                && threads / e >= 2
                && n >= 2
                && crate::ugraph::online::covariance(b, &info.shapes).is_ok() =>
        {
            (threads / e).min(n)
        }
        _ => 1,
    };
    if groups > 1 {
        // Sizes taken from dims with one declared value, checked at run time.
        for t in shape0 {
            if let TileExtent::Full(d) = t
                && d.as_constant().is_none()
                && let Ok(v) = d.eval(&em.fixed)
            {
                em.line(&format!("if ({} != {v}LL) __trap();", dim(d)));
            }
        }
    }
    let local = if groups > 1 {
        group_local(em, elems.unwrap_or(1))
    } else {
        stride_output_tile(em)
    };
    let accums: Vec<(usize, AccumKind, ValueId)> = b
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            BlockOp::Accum { kind, input } => Some((i, *kind, *input)),
            _ => None,
        })
        .collect();
    for (i, kind, _) in &accums {
        if *kind == AccumKind::Max {
            em.line(&format!("float acc{i} = -INFINITY, prev{i} = -INFINITY;"));
        } else {
            em.line(&format!("float acc{i} = 0.0f;"));
        }
    }
    let k = dim(&fl.extent);
    if groups > 1 {
        em.line(&format!(
            "const long long per = ({k} + {groups}LL - 1) / {groups}LL;"
        ));
        em.line(&format!(
            "const long long it_begin = min(grp * per, (long long){k});"
        ));
        em.line(&format!(
            "const long long it_end = min(it_begin + per, (long long){k});"
        ));
    } else {
        em.line("const long long it_begin = 0;");
        em.line(&format!("const long long it_end = {k};"));
    }
    // Unrolled so the loads of several iterations are in flight at once
    // (only the accumulator arithmetic is serial). With a constant share
    // per group of at most 16 iterations, the loop is unrolled fully over
    // that share with each iteration predicated, so every load of the
    // group can be issued before the first result is needed.
    let share = fl
        .extent
        .as_constant()
        .filter(|_| groups > 1)
        .map(|n| (n + groups - 1) / groups)
        .filter(|&per| per <= 16);
    let close = if let Some(per) = share {
        em.line("#pragma unroll");
        em.line(&format!("for (int u = 0; u < {per}; ++u) {{"));
        em.line("const long long it = it_begin + u;");
        em.line("if (it < it_end) {");
        "}}"
    } else {
        em.line("#pragma unroll 8");
        em.line("for (long long it = it_begin; it < it_end; ++it) {");
        "}"
    };
    let mut ev = Evaluator::new(&info.shapes, input_tiles(em, "it", "1"));
    for (i, op) in b.ops.iter().enumerate() {
        match op {
            BlockOp::Reduce { input, .. } if info.phases[i] == Phase::Loop => {
                let x = ev.value(em, *input, &local)?;
                ev.bound
                    .insert(ValueId(i), Box::new(move |_: &[String]| x.clone()));
            }
            BlockOp::Running(a) => {
                let name = format!("acc{}", a.0);
                ev.bound
                    .insert(ValueId(i), Box::new(move |_: &[String]| name.clone()));
            }
            BlockOp::Accum { kind, input } => {
                let x = ev.value(em, *input, &local)?;
                match kind {
                    AccumKind::Sum => em.line(&format!("acc{i} += {x};")),
                    AccumKind::Max => {
                        em.line(&format!("prev{i} = acc{i}; acc{i} = fmaxf(acc{i}, {x});"))
                    }
                    AccumKind::RescaledSum { max } => em.line(&format!(
                        "acc{i} = acc{i} * (prev{m} == acc{m} ? 1.0f : __expf(prev{m} - acc{m})) + {x};",
                        m = max.0
                    )),
                }
            }
            _ => {}
        }
    }
    for _ in 0..close.len() {
        em.line("}");
    }
    if groups > 1 {
        merge_groups(em, &accums, groups, elems.unwrap_or(1));
    }
    ev.clear_memo();
    for (i, _, _) in &accums {
        let name = format!("acc{i}");
        ev.bound
            .insert(ValueId(*i), Box::new(move |_: &[String]| name.clone()));
    }
    for (o, out) in b.outputs.iter().enumerate() {
        let tiles = em.axis_tiles(&out.map, "0", "0");
        let v = ev.value(em, out.value, &local)?;
        store(em, o, &v, &local, &tiles);
    }
    em.line("}");
    Ok(())
}

/// Group `grp` of this thread and its output element (`threadIdx.x % e`),
/// for `e` elements per group. Returns the local index.
fn group_local(em: &mut Emitter, e: i64) -> Vec<String> {
    em.line(&format!("const long long grp = threadIdx.x / {e}LL;"));
    output_tile_index(em, &format!("threadIdx.x % {e}LL"))
}

/// Merge the accumulators of the thread groups into group 0's (each thread
/// of group 0 owns the same element in every group): maxima by max, sums
/// by sum, rescaled sums by `exp(m_g - M)` over their max. A group whose
/// max stayed -inf saw only -inf maxima (e.g. empty splits, which come
/// last): its rescaled sums are skipped, as the serial loop weighs those
/// iterations by exp(-inf) = 0 (its own values may be NaN from
/// -inf - -inf). Then only group 0 goes on (`if (grp == 0) {`, closed by
/// the caller's `}`).
fn merge_groups(em: &mut Emitter, accums: &[(usize, AccumKind, ValueId)], groups: i64, e: i64) {
    let threads = em.block.params.threads;
    em.line(&format!(
        "__shared__ float red[{}][{threads}];",
        accums.len().max(1)
    ));
    for (slot, (i, _, _)) in accums.iter().enumerate() {
        em.line(&format!("red[{slot}][threadIdx.x] = acc{i};"));
    }
    em.line("__syncthreads();");
    em.line("if (grp == 0) {");
    let slot_of = |acc: usize| accums.iter().position(|(i, _, _)| *i == acc).unwrap_or(0);
    // Maxima first: the rescaled sums need the merged max.
    for (slot, (i, kind, _)) in accums.iter().enumerate() {
        match kind {
            AccumKind::Max => em.line(&format!(
                "for (int g = 1; g < {groups}; ++g) acc{i} = fmaxf(acc{i}, red[{slot}][g * {e} + threadIdx.x]);"
            )),
            AccumKind::Sum => em.line(&format!(
                "for (int g = 1; g < {groups}; ++g) acc{i} += red[{slot}][g * {e} + threadIdx.x];"
            )),
            AccumKind::RescaledSum { .. } => {}
        }
    }
    for (slot, (i, kind, _)) in accums.iter().enumerate() {
        if let AccumKind::RescaledSum { max } = kind {
            let (m, ms) = (max.0, slot_of(max.0));
            em.line("{ float s = 0.0f;");
            em.line(&format!(
                "for (int g = 0; g < {groups}; ++g) {{ const float mg = red[{ms}][g * {e} + threadIdx.x]; if (mg != -INFINITY) s += red[{slot}][g * {e} + threadIdx.x] * (mg == acc{m} ? 1.0f : __expf(mg - acc{m})); }}"
            ));
            em.line(&format!("acc{i} = s; }}"));
        }
    }
}

/// The pieces of a flash partial block graph.
struct Flash {
    q: usize,
    k: usize,
    v: usize,
    /// `k` is read as `[keys, d]` and transposed in the block.
    k_rows: bool,
    scores: ValueId,
    raw: ValueId,
    o: ValueId,
    m: ValueId,
    l: ValueId,
}

fn recognize(em: &Emitter, info: &BlockInfo) -> Result<Flash> {
    let b = em.block;
    let ops = &b.ops;
    let input = |v: ValueId| match ops[v.0] {
        BlockOp::Input(i) => Some(i),
        _ => None,
    };
    let mms: Vec<usize> = (0..ops.len())
        .filter(|i| matches!(ops[*i], BlockOp::Matmul(..)))
        .collect();
    let [first, second] = mms[..] else {
        return Err("not two tile matmuls".into());
    };
    let BlockOp::Matmul(qv, kv) = ops[first] else {
        return Err("no score matmul".into());
    };
    let q = input(qv).ok_or("the score matmul's left operand is computed")?;
    let (k, k_rows) = match &ops[kv.0] {
        BlockOp::Input(i) => (*i, false),
        BlockOp::Permute(x, perm) => {
            let r = perm.len();
            let swap: Vec<usize> = (0..r - 2).chain([r - 1, r - 2]).collect();
            match (input(*x), *perm == swap) {
                (Some(i), true) => (i, true),
                _ => return Err("the key operand is not a transposed input".into()),
            }
        }
        _ => return Err("the key operand is computed".into()),
    };
    let BlockOp::Matmul(p, vv) = ops[second] else {
        return Err("no value matmul".into());
    };
    let v = input(vv).ok_or("the value operand is computed")?;
    // p = exp(s - running(max)), max = Accum Max(Reduce Max(s, last)).
    let BlockOp::Unary(UnaryOp::Exp, sh) = ops[p.0] else {
        return Err("p is not exp(s - m)".into());
    };
    let BlockOp::Binary(crate::ir::BinaryOp::Sub, s, run) = ops[sh.0] else {
        return Err("p is not exp(s - m)".into());
    };
    let BlockOp::Running(mx) = ops[run.0] else {
        return Err("p is not shifted by a running max".into());
    };
    let rank = info.shapes[s.0].len();
    let max_of_s = matches!(&ops[mx.0], BlockOp::Accum { kind: AccumKind::Max, input }
        if matches!(&ops[input.0], BlockOp::Reduce { op: ReduceOp::Max, input, axis, .. }
            if *input == s && *axis + 1 == rank));
    if !max_of_s {
        return Err("the running max is not the row max of the scores".into());
    }
    // s: elementwise with constants from the raw scores.
    let mut stack = vec![s];
    while let Some(x) = stack.pop() {
        match &ops[x.0] {
            BlockOp::Matmul(..) if x.0 == first => {}
            BlockOp::Const(_) => {}
            BlockOp::Unary(_, a) => stack.push(*a),
            BlockOp::Binary(_, a, c) => stack.extend([*a, *c]),
            _ => return Err("the scores are not elementwise in the raw scores".into()),
        }
    }
    let rescaled = |x: ValueId| {
        ops.iter().position(|op| {
            *op == BlockOp::Accum {
                kind: AccumKind::RescaledSum { max: mx },
                input: x,
            }
        })
    };
    let o = rescaled(ValueId(second)).ok_or("p . v is not a rescaled sum")?;
    let l = ops
        .iter()
        .enumerate()
        .find_map(|(i, op)| match op {
            BlockOp::Reduce {
                op: ReduceOp::Sum,
                input,
                axis,
                ..
            } if *input == p && *axis + 1 == rank => rescaled(ValueId(i)),
            _ => None,
        })
        .ok_or("the row sum of p is not a rescaled sum")?;
    Ok(Flash {
        q,
        k,
        v,
        k_rows,
        scores: s,
        raw: ValueId(first),
        o: ValueId(o),
        m: mx,
        l: ValueId(l),
    })
}

/// Stages of the flash partial's ring of (K, V) tile pairs for `splits`
/// splits. With 3, a split of two or three key tiles has them all in
/// flight at once; the ring then takes 104 KB at a head dim of 128, so 2
/// blocks fit an SM instead of 3 (6 with 2 stages and 35 KB before the
/// ring). Many splits mean short, latency-bound blocks: 3 stages; few
/// splits mean long, bandwidth-bound ones, more per SM: 2 (70 KB). Measured
/// on an H200 (`bench/results/flash-stages-h200-*`): all at 3 stages,
/// attention decode (32–64 splits) 5–15 % faster than the single (K, V)
/// pair before the ring, prefill (8 splits) 8 %, gqa_decode at b=64
/// kv=8192 (2 splits) 16 % slower; with this rule (`…-ring-*`) attention
/// and qk_norm_attention 4.5–14 % faster, gqa_decode b=64 3 % faster, b=1
/// 2–3 % slower.
pub fn flash_stages(splits: i64) -> u32 {
    if splits >= 8 { 3 } else { 2 }
}

/// `FlashPartial::SMEM_BYTES` for 16-bit operands (the device library's
/// formula; the generated kernel asserts they agree).
pub fn flash_shared_bytes(
    bm: u32,
    bn: u32,
    d: i64,
    dv: i64,
    wn: u32,
    k_rows: bool,
    stages: u32,
) -> u32 {
    const VEC: i64 = 8;
    let (bm, bn) = (i64::from(bm), i64::from(bn));
    let ldq = d + VEC;
    let ldk = if k_rows { d + VEC } else { bn + VEC };
    let ldv = dv + VEC;
    let q = bm * ldq * 2;
    let k = if k_rows { bn } else { d } * ldk * 2;
    let v = bn * ldv * 2;
    let tiles = i64::from(stages) * (q.max(k) + v);
    let merge = i64::from(wn) * bm * (dv + 2) * 4;
    u32::try_from(tiles.max(merge)).unwrap_or(u32::MAX)
}

/// Whether `prism::FlashPartialWgmma` (`cuda/prism/attention_wgmma.cuh`:
/// one warpgroup, wgmma for both products) takes a partial of `bm` query
/// rows and `bn` keys per block, head dims `d` and `dv`, K read as given
/// (`k_rows`: transposed in the block) and a fused combine or not; `Err`
/// says what it lacks.
pub fn check_wgmma_partial(
    bm: u32,
    bn: u32,
    d: i64,
    dv: i64,
    k_rows: bool,
    combine: bool,
) -> Result<()> {
    if !(bm == 64 || bm == 128) {
        return Err(format!(
            "a warpgroup flash partial takes 64 or 128 query rows per block, not {bm}"
        ));
    }
    if !(bn == 64 || bn == 128) {
        return Err(format!(
            "a warpgroup flash partial takes 64 or 128 keys per tile, not {bn}"
        ));
    }
    if d % 64 != 0 || d > 256 {
        return Err(format!(
            "a warpgroup flash partial takes a head dim of 64, 128, 192 or 256, not {d}"
        ));
    }
    if !(dv == 64 || dv == 128) {
        return Err(format!(
            "a warpgroup flash partial takes a value dim of 64 or 128, not {dv}"
        ));
    }
    if k_rows {
        return Err(
            "a warpgroup flash partial reads K already transposed ([d, keys]), not as [keys, d]"
                .into(),
        );
    }
    if combine {
        return Err("a warpgroup flash partial does not fuse its combine".into());
    }
    Ok(())
}

/// Stages of `FlashPartialWgmma`'s (K, V) ring for `bm` rows per block:
/// at 64 rows 2, which keep two blocks per SM at head dims of 128 (81 KiB
/// each; 3 stages take 113 KiB, one block), so one block's softmax
/// overlaps the other's tensor-core work; at 128 rows (two warpgroups, one
/// block per SM) 4, to keep the key tiles in flight (161 KiB).
pub fn flash_wgmma_stages(bm: u32) -> u32 {
    if bm > 64 { 4 } else { 2 }
}

/// `FlashPartialWgmma::SMEM_BYTES` for 16-bit operands: q (`bm` rows),
/// `stages` (K, V) tile pairs and the 1024 bytes that align them to the
/// swizzle's period.
pub fn flash_wgmma_shared_bytes(bm: u32, bn: u32, d: i64, dv: i64, stages: u32) -> u32 {
    let bn = i64::from(bn);
    let q = i64::from(bm) * d * 2;
    let stage = (d * bn + bn * dv) * 2;
    let bytes = q + i64::from(stages) * stage + 1024;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Whether `combine` is the flash-decoding combine of `partial`, to run in
/// the partial's last block per row tile ([`flash_partial`] with
/// [`Emitter::combine`]): a combine
/// ([`crate::ugraph::flash::recognize_combine`]) over the partial's split
/// count, reading exactly the partial's three outputs as it writes them,
/// and writing one output whose view is the partial's `o` view without the
/// split axis. The flash template checks the rest (which output is `o`,
/// `m`, `l`). Returns the combine's input slots.
pub fn fusable_combine(
    partial: &BlockGraph,
    combine: &BlockGraph,
    graph: &KernelGraph,
) -> Option<CombineSlots> {
    let fl = partial.forloop.as_ref()?;
    let splits = partial.grid.first().map(|g| g.extents.as_slice());
    let (Some([s]), Some(rows)) = (splits, partial.grid.get(1)) else {
        return None;
    };
    let cl = combine.forloop.as_ref()?;
    let whole_tensor = |m: &TileMap| {
        graph
            .tensors
            .get(m.tensor.0)
            .is_some_and(|t| t.shape == m.view)
    };
    let [out] = &combine.outputs[..] else {
        return None;
    };
    let slots = recognize_combine(combine)?;
    let o_view = partial
        .outputs
        .iter()
        .find(|o| {
            combine
                .inputs
                .get(slots.o)
                .is_some_and(|i| i.tensor == o.map.tensor)
        })
        .map(|o| &o.map.view);
    let fusable = fl.split == Some(0)
        && partial.params.fused_combine
        && rows.tile <= FUSED_COMBINE_MAX_ROWS
        && s.as_constant().is_some()
        && cl.extent == *s
        && cl.tile == 1
        && out.map.fmap.is_none()
        && partial.outputs.len() == 3
        && combine.inputs.len() == 3
        && combine.inputs.iter().all(|i| {
            i.fmap == Some(0)
                && partial.outputs.iter().any(|o| {
                    o.map.tensor == i.tensor
                        && o.map.view == i.view
                        && o.map.imap.first() == Some(&Some(vec![0]))
                        && whole_tensor(&o.map)
                })
        })
        && o_view.is_some_and(|v| {
            out.map.view.first().is_some_and(DimExpr::is_one) && out.map.view[1..] == v[1..]
        });
    fusable.then_some(slots)
}

/// `prism::FlashCombine<BM, DV, SPLITS, THREADS>::BYTES` (the device
/// library's formula; the generated kernel asserts they agree).
pub fn combine_shared_bytes(bm: u32, dv: i64, splits: i64, threads: u32) -> u32 {
    let (bm, threads) = (i64::from(bm), i64::from(threads));
    let groups = (threads / (dv / 4)).min(splits);
    let floats = 2 * bm * splits + bm + groups * bm * dv;
    u32::try_from(floats * 4).unwrap_or(u32::MAX)
}

/// `prism::FlashClusterCombine<BM, DV, ..>::BYTES`: one block's staged
/// (o, m, l) in f32.
pub fn cluster_stage_bytes(bm: u32, dv: i64) -> u32 {
    let floats = i64::from(bm) * dv + 2 * i64::from(bm);
    u32::try_from(floats * 4).unwrap_or(u32::MAX)
}

/// One split of flash attention on tensor cores; with [`Emitter::combine`]
/// set, the tile's last block to finish then combines every split's
/// results into the output (the counters of split-K across blocks).
pub fn flash_partial(em: &mut Emitter, info: &BlockInfo) -> Result<()> {
    let b = em.block;
    let Some(fl) = &b.forloop else {
        return Err("no for-loop".into());
    };
    if fl.split != Some(0) || b.grid.len() < 2 {
        return Err("not a loop split over grid x".into());
    }
    let f = recognize(em, info)?;
    let (mq, mk, mv) = (&b.inputs[f.q], &b.inputs[f.k], &b.inputs[f.v]);
    let ty = c_type(em.tensors[mq.tensor.0].dtype);
    if ty == "float"
        || [mk, mv]
            .iter()
            .any(|m| c_type(em.tensors[m.tensor.0].dtype) != ty)
    {
        return Err("flash attention needs 16-bit q, k and v of one type".into());
    }
    let r = mq.view.len();
    // Head dims are compile-time sizes: constants, or dims declared with
    // one value (checked again at run time).
    let mut guards = Vec::new();
    let mut constant = |e: &crate::ir::DimExpr| {
        let c = e
            .as_constant()
            .or_else(|| e.eval(&em.fixed).ok())
            .filter(|c| *c > 0 && c % 16 == 0 && *c <= 256)?;
        if e.as_constant().is_none() {
            guards.push(format!("if ({} != {c}LL) __trap();", dim(e)));
        }
        Some(c)
    };
    let d = constant(&mq.view[r - 1])
        .ok_or("the head dim is not fixed to a multiple of 16 up to 256")?;
    let dv = constant(&mv.view[r - 1])
        .ok_or("the value dim is not fixed to a multiple of 16 up to 256")?;
    for g in guards {
        em.line(&g);
    }
    let bm = b.grid[1].tile;
    let bn = fl.tile;
    // One block is one split of one row tile of one batch index: every
    // leading (batch) axis of every tile is a single index, the rows of q
    // and of the outputs are the grid's row tile, the head dims whole.
    let shape_of = |i: usize| {
        b.ops
            .iter()
            .position(|op| *op == BlockOp::Input(i))
            .map(|k| &info.shapes[k])
    };
    let rows_tile = |s: &[TileExtent]| match s.get(r - 2) {
        Some(TileExtent::Part { tile, .. }) => *tile == bm,
        Some(TileExtent::Full(d)) => d.as_constant().is_some_and(|c| c <= i64::from(bm)),
        Some(TileExtent::One) => true,
        None => false,
    };
    let whole_last = |s: &[TileExtent]| matches!(s.get(r - 1), Some(TileExtent::Full(_)));
    let lead_single = |s: &[TileExtent]| s.iter().take(r - 2).all(TileExtent::is_single);
    let tiles_ok = [f.q, f.k, f.v]
        .iter()
        .all(|&i| shape_of(i).is_some_and(|s| lead_single(s)))
        && shape_of(f.q).is_some_and(|s| rows_tile(s) && whole_last(s))
        && [f.o, f.m, f.l]
            .iter()
            .all(|v| lead_single(&info.shapes[v.0]) && rows_tile(&info.shapes[v.0]))
        && whole_last(&info.shapes[f.o.0]);
    if !tiles_ok {
        return Err(
            "flash attention blocks own one batch index, a row tile and whole head dims".into(),
        );
    }
    let wgmma = b.params.wgmma;
    let wm = bm / 16;
    if wgmma {
        check_wgmma_partial(bm, bn, d, dv, f.k_rows, em.combine.is_some())?;
        if b.params.threads != 2 * bm {
            return Err(format!(
                "a warpgroup flash partial of {bm} rows runs {} threads, not {}",
                2 * bm,
                b.params.threads
            ));
        }
    } else if !(bm == 16 || bm == 32 || bm == 64) || bn % (16 * (4 / wm)) != 0 {
        return Err(format!("rows {bm} / keys {bn} per block not supported"));
    }
    let wn = (4 / wm).max(1);
    let splits = b.grid[0]
        .extents
        .first()
        .and_then(|e| e.as_constant())
        .ok_or("the split count is not constant")?;
    let n = dim(&fl.extent);
    let rows = dim(&b.grid[1].extents[0]);
    let stages = if wgmma {
        flash_wgmma_stages(bm)
    } else {
        flash_stages(splits)
    };
    let flash_smem = if wgmma {
        flash_wgmma_shared_bytes(bm, bn, d, dv, stages)
    } else {
        flash_shared_bytes(bm, bn, d, dv, wn, f.k_rows, stages)
    };
    // A cluster combine stages this block's (o, m, l) after the partial's
    // shared memory; the last-block combine reuses the partial's.
    let cluster = em.combine.filter(|_| b.params.cluster_combine);
    if cluster.is_some() && !crate::ugraph::flash::cluster_combine_takes(splits) {
        return Err(format!(
            "a cluster combine takes 2 to {} splits, not {splits}",
            crate::ugraph::flash::CLUSTER_COMBINE_MAX_SPLITS
        ));
    }
    if cluster.is_some() && dv % splits != 0 {
        return Err(format!(
            "a cluster combine shares the {dv} value columns evenly between the splits, not {splits}"
        ));
    }
    let stage_at = flash_smem.div_ceil(16) * 16;
    let combine_smem = match em.combine {
        None => 0,
        Some(_) if cluster.is_some() => stage_at + cluster_stage_bytes(bm, dv),
        Some(_) => combine_shared_bytes(bm, dv, splits, b.params.threads),
    };
    let smem = flash_smem.max(combine_smem);
    let template = if wgmma {
        em.line(&format!(
            "using F = prism::FlashPartialWgmma<{ty}, {}, {bn}, {d}, {dv}, {stages}>;",
            bm / 64
        ));
        "FlashPartialWgmma"
    } else {
        em.line(&format!(
            "using F = prism::FlashPartial<{ty}, {bm}, {bn}, {d}, {dv}, {wm}, {wn}, {}, {stages}>;",
            f.k_rows
        ));
        "FlashPartial"
    };
    em.line(&format!(
        "static_assert(F::SMEM_BYTES == {flash_smem}, \"prism: {template} shared memory differs from the code generator's\");"
    ));
    // Shared memory limits the blocks per SM to 2 or 3: registers need not
    // (without this ptxas capped gqa_decode's partial at 128 registers and
    // spilled 4 bytes).
    em.min_blocks = Some(1);
    if smem > super::templates::STATIC_SHARED_BYTES {
        em.line("extern __shared__ __align__(16) char smem[];");
        em.dynamic_shared = smem;
    } else {
        em.line(&format!("__shared__ __align__(16) char smem[{smem}];"));
    }
    em.line(&format!(
        "const long long iters = ({n} + {bn}LL - 1) / {bn}LL;"
    ));
    em.line(&format!(
        "const long long per = (iters + {splits}LL - 1) / {splits}LL;"
    ));
    em.line("const long long it_begin = min(g0_0 * per, iters);");
    em.line("const long long it_end = min(it_begin + per, iters);");
    em.line(&format!(
        "const int m_valid = (int)min((long long){bm}, {rows} - g1_0);"
    ));
    let tiles = input_tiles(em, "0", &n);
    let zero = vec!["0".to_string(); r];
    let ptr = |em: &Emitter, i: usize| {
        let m = &b.inputs[i];
        format!(
            "{} + {}",
            em.pointer(m.tensor),
            em.offset(m, &tiles[i], &zero)
        )
    };
    let (pq, pk, pv) = (ptr(em, f.q), ptr(em, f.k), ptr(em, f.v));
    let ldk = if f.k_rows {
        d.to_string()
    } else {
        dim(&mk.view[r - 1])
    };
    if cluster.is_some() {
        em.line(&format!(
            "using X = prism::FlashClusterCombine<{bm}, {dv}, {splits}, {}>;",
            b.params.threads
        ));
        em.line(&format!(
            "static_assert(X::BYTES == {}, \"prism: FlashClusterCombine shared memory differs from the code generator's\");",
            cluster_stage_bytes(bm, dv)
        ));
    }
    em.line("F f;");
    // One row tile per batch index: no other block reads these K / V tiles.
    em.line(&format!("f.stream_kv = {rows} <= {bm}LL;"));
    em.line(&format!(
        "f.run(smem, {pq}, {d}LL, m_valid, {pk}, {ldk}, {pv}, {dv}LL, {n}, it_begin, it_end,"
    ));
    // The score chain, as a function of the raw score.
    let mut ev = Evaluator::new(&info.shapes, tiles.clone());
    ev.bound
        .insert(f.raw, Box::new(|_: &[String]| "raw".to_string()));
    em.line("[&](float raw) {");
    let local = vec!["0".to_string(); r];
    let s = ev.value(em, f.scores, &local)?;
    em.line(&format!("return {s};"));
    em.line("},");
    ev.clear_memo();
    let mut local = vec!["0".to_string(); r];
    local[r - 2] = "row".into();
    local[r - 1] = "col".into();
    let out = |v: ValueId| b.outputs.iter().position(|o| o.value == v);
    let (oo, om, ol) = (
        out(f.o).ok_or("o is not written")?,
        out(f.m).ok_or("the row max is not written")?,
        out(f.l).ok_or("the row sum is not written")?,
    );
    if b.outputs.len() != 3 {
        return Err("flash partials write exactly o, m and l".into());
    }
    if let Some((c, slots)) = cluster {
        // This block's results stay in its shared memory, for the cluster.
        em.line(&format!(
            "[&](int row, int col, float o) {{ X::o(smem + {stage_at})[row * {dv} + col] = o; }},"
        ));
        em.line(&format!(
            "[&](int row, float m, float l) {{ X::m(smem + {stage_at})[row] = m; X::l(smem + {stage_at})[row] = l; }});"
        ));
        return cluster_combine(em, c, slots, [oo, om, ol], (splits, stage_at), &local);
    }
    em.line("[&](int row, int col, float o) {");
    let t = em.axis_tiles(&b.outputs[oo].map, "0", "0");
    store(em, oo, "o", &local, &t);
    em.line("},");
    em.line("[&](int row, float m, float l) {");
    let mut local1 = local.clone();
    local1[r - 1] = "0".into();
    let t = em.axis_tiles(&b.outputs[om].map, "0", "0");
    store(em, om, "m", &local1, &t);
    let t = em.axis_tiles(&b.outputs[ol].map, "0", "0");
    store(em, ol, "l", &local1, &t);
    em.line("});");
    if let Some((c, slots)) = em.combine {
        fused_combine(
            em,
            c,
            slots,
            [oo, om, ol],
            (bm, dv, splits, combine_smem),
            &local,
        )?;
    }
    Ok(())
}

/// The combine across the thread block cluster of a row tile's splits:
/// every block has staged its (o, m, l) in its shared memory at
/// `stage_at`; `prism::FlashClusterCombine` combines a share of the columns
/// in each block, reading the others' stages through distributed shared
/// memory, and writes the combine's output. No counters, no workspace.
fn cluster_combine(
    em: &mut Emitter,
    combine: &BlockGraph,
    slots: CombineSlots,
    [oo, om, ol]: [usize; 3],
    (splits, stage_at): (i64, u32),
    local: &[String],
) -> Result<()> {
    let out = combine_output(em, combine, slots, [oo, om, ol])?;
    em.line(&format!("X::run(smem + {stage_at}, m_valid,"));
    combine_output_store(em, out, oo, local);
    em.cluster = Some([u32::try_from(splits).map_err(|_| "too many splits")?, 1, 1]);
    Ok(())
}

/// The combine's output map, after checking that the combine reads the
/// partial's `[o, m, l]` (outputs of the partial); its tensor becomes a
/// written parameter of the partial's kernel.
fn combine_output<'g>(
    em: &mut Emitter,
    combine: &'g BlockGraph,
    slots: CombineSlots,
    [oo, om, ol]: [usize; 3],
) -> Result<&'g TileMap> {
    let b = em.block;
    let reads =
        |slot: usize, part: usize| combine.inputs[slot].tensor == b.outputs[part].map.tensor;
    if !(reads(slots.m, om) && reads(slots.o, oo) && reads(slots.l, ol)) {
        return Err("the combine does not read the partial's m, o and l".into());
    }
    let out = &combine.outputs[0].map;
    em.add_written_param(out.tensor);
    Ok(out)
}

/// `[&](int row, int col, float v) { out[..] = v; });`: the combine's
/// output at this block's rows, addressed as the partial's o (its view is
/// o's without the split axis).
fn combine_output_store(em: &mut Emitter, out: &TileMap, oo: usize, local: &[String]) {
    let map = TileMap {
        tensor: out.tensor,
        view: out.view.clone(),
        imap: em.block.outputs[oo].map.imap.clone(),
        fmap: None,
    };
    let tiles = em.axis_tiles(&map, "0", "0");
    let off = em.offset(&map, &tiles, local);
    let ty = c_type(em.tensors[out.tensor.0].dtype);
    em.line(&format!(
        "[&](int row, int col, float v) {{ {}[{off}] = prism::from_float<{ty}>(v); }});",
        em.pointer(out.tensor)
    ));
}

/// The combine in the partial's last block of its row tile: every split
/// of the tile has stored its `o`, `m` and `l` (outputs `[o, m, l]` of the
/// partial) when `prism::split_k_arrive` lets that block through; it reads
/// them back through L2 and writes the combine's output.
fn fused_combine(
    em: &mut Emitter,
    combine: &BlockGraph,
    slots: CombineSlots,
    [oo, om, ol]: [usize; 3],
    (bm, dv, splits, smem): (u32, i64, i64, u32),
    local: &[String],
) -> Result<()> {
    let b = em.block;
    let r = local.len();
    let out = combine_output(em, combine, slots, [oo, om, ol])?;
    let threads = b.params.threads;
    em.line(&format!(
        "using C = prism::FlashCombine<{bm}, {dv}, {splits}, {threads}>;"
    ));
    em.line(&format!(
        "static_assert(C::BYTES == {smem}, \"prism: FlashCombine shared memory differs from the code generator's\");"
    ));
    // One counter per row tile and batch index (grid x holds the splits).
    em.line(&format!(
        "if (!prism::split_k_arrive(splitk_counters + ((long long)blockIdx.z * gridDim.y + blockIdx.y), {splits}u)) return;"
    ));
    // The partial's outputs at split `s` instead of this block's.
    let at_split = |em: &Emitter, part: usize| {
        let mut t = em.axis_tiles(&b.outputs[part].map, "0", "0");
        if let Some(a) = t.first_mut() {
            a.start = "(long long)s".into();
        }
        t
    };
    let mut row0 = local.to_vec();
    row0[r - 1] = "0".into();
    let o_tiles = at_split(em, oo);
    let o_at = em.offset(&b.outputs[oo].map, &o_tiles, &row0);
    let m_tiles = at_split(em, om);
    let m_at = em.offset(&b.outputs[om].map, &m_tiles, &row0);
    let l_tiles = at_split(em, ol);
    let l_at = em.offset(&b.outputs[ol].map, &l_tiles, &row0);
    let [po, pm, pl] = [oo, om, ol].map(|part| em.pointer(b.outputs[part].map.tensor));
    em.line("C::run(smem, m_valid,");
    em.line(&format!("[&](int s, int row) {{ return {po} + {o_at}; }},"));
    em.line(&format!(
        "[&](int s, int row) {{ return __ldcg({pm} + {m_at}); }},"
    ));
    em.line(&format!(
        "[&](int s, int row) {{ return __ldcg({pl} + {l_at}); }},"
    ));
    combine_output_store(em, out, oo, local);
    em.split_k = Some(crate::codegen::SplitK {
        splits: u32::try_from(splits).map_err(|_| "too many splits")?,
        workspace: DimExpr::constant(0),
    });
    Ok(())
}
