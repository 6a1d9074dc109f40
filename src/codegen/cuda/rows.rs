//! [`row_resident`]: a block graph without a for-loop whose tile holds
//! whole rows (a constant number of elements), with reductions over the
//! tile in the middle of elementwise work: `rms_norm(x + α ⊙ (rms_norm(h)
//! + x))` in one kernel.
//!
//! Each thread loads its share of every full-tile input once into
//! registers (element `threadIdx.x + j·threads`, so a warp's loads are
//! coalesced); every reduction is a pass over those registers and a block
//! reduction whose result every thread holds; the outputs are a last pass.
//! Nothing is re-read from global memory between the passes.

use crate::ir::ReduceOp;
use crate::ugraph::validate::{BlockInfo, TileExtent};
use crate::ugraph::{BlockOp, ValueId};

use super::emit::{Emitter, Evaluator};
use super::templates::{
    block_reduce, elementwise_op, input_tiles, output_tile_elems, output_tile_index, store,
};

type Result<T> = std::result::Result<T, String>;

/// Most elements one thread keeps per input (registers, not local memory).
pub const MAX_PER_THREAD: i64 = 32;

/// Whether an operator of this shape is a plain per-element value of the
/// tile (`full`), one value per block (`single`), or neither.
fn kind(shape: &[TileExtent], full: &[TileExtent]) -> Option<bool> {
    if shape.iter().all(TileExtent::is_single) {
        Some(false)
    } else if shape == full {
        Some(true)
    } else {
        None
    }
}

/// One pass over this thread's elements: `body` emits the statements of
/// element `j` (its tile-local index given), guarded by the tile's size.
/// Without `guard` (every thread's elements exist: the tile's size is a
/// constant multiple of the threads) the unrolled body has no branch, so
/// all the loads of a pass are in flight at once; a guarded body waits
/// for each element's loads before the next branch.
fn pass(
    em: &mut Emitter,
    shape: Share,
    body: &mut dyn FnMut(&mut Emitter, &[String]) -> Result<()>,
) -> Result<()> {
    em.line("#pragma unroll");
    em.line(&format!("for (int j = 0; j < {}; ++j) {{", shape.per));
    em.line(&format!(
        "const long long li = threadIdx.x + (long long)j * {}LL;",
        shape.threads
    ));
    if shape.guard {
        em.line("if (li < tile_elems) {");
    }
    let local = output_tile_index(em, "li");
    body(em, &local)?;
    if shape.guard {
        em.line("}");
    }
    em.line("}");
    Ok(())
}

/// How a tile's elements are shared among the threads.
#[derive(Clone, Copy)]
struct Share {
    per: i64,
    threads: u32,
    guard: bool,
}

/// Whole rows per block, kept in registers across successive reductions.
pub fn row_resident(em: &mut Emitter, info: &BlockInfo) -> Result<()> {
    let b = em.block;
    if b.forloop.is_some() {
        return Err("a for-loop".into());
    }
    let full = info.shapes[b.outputs[0].value.0].clone();
    if b.outputs.iter().any(|o| info.shapes[o.value.0] != full) {
        return Err("outputs of different tile shapes".into());
    }
    let reduces: Vec<usize> = (0..b.ops.len())
        .filter(|&i| matches!(b.ops[i], BlockOp::Reduce { .. }))
        .collect();
    if reduces.is_empty() {
        return Err("no reduction (the elementwise template's case)".into());
    }
    // Every value is per element of the whole tile or one per block; a
    // reduction takes a per-element value to one per block.
    for (i, op) in b.ops.iter().enumerate() {
        let k = kind(&info.shapes[i], &full)
            .ok_or("a value that is neither per element of the tile nor one per block")?;
        match op {
            BlockOp::Reduce { input, .. } => {
                if k || kind(&info.shapes[input.0], &full) != Some(true) {
                    return Err("a reduction that is not over the whole tile".into());
                }
            }
            BlockOp::Permute(..) => return Err("a permute in a row-resident block".into()),
            op if elementwise_op(op) => {}
            op => return Err(format!("operator {op:?} in a row-resident block")),
        }
    }
    // Elements per thread: the tile's size must be a compile-time bound.
    let mut elems: i64 = 1;
    let mut exact = true;
    for t in &full {
        let e = match t {
            TileExtent::One => 1,
            TileExtent::Full(d) => match d.as_constant() {
                Some(c) => c,
                None => {
                    // A dim with one declared value: checked at run time.
                    let v = d
                        .eval(&em.fixed)
                        .map_err(|_| "a tile of data-dependent size")?;
                    em.line(&format!("if ({} != {v}LL) __trap();", super::emit::dim(d)));
                    v
                }
            },
            TileExtent::Part { tile, .. } => {
                // Clipped at the edge of the data.
                exact &= *tile == 1;
                i64::from(*tile)
            }
        };
        elems = elems.saturating_mul(e);
    }
    let threads = b.params.threads;
    let per = (elems + i64::from(threads) - 1) / i64::from(threads);
    if per > MAX_PER_THREAD {
        return Err(format!(
            "{elems} tile elements need {per} per thread (at most {MAX_PER_THREAD})"
        ));
    }
    let share = Share {
        per,
        threads,
        guard: !exact || per * i64::from(threads) != elems,
    };
    if share.guard {
        let count = output_tile_elems(em);
        em.line(&format!("const long long tile_elems = {count};"));
    }
    em.line("__shared__ float scratch[32];");
    let mut ev = Evaluator::new(&info.shapes, input_tiles(em, "0", "0"));
    // Registers for every full-tile input, loaded once.
    let loaded: Vec<usize> = (0..b.ops.len())
        .filter(|&i| matches!(b.ops[i], BlockOp::Input(_)) && info.shapes[i] == full)
        .collect();
    for i in &loaded {
        em.line(&format!("float r{i}[{per}];"));
    }
    pass(em, share, &mut |em, local| {
        for &i in &loaded {
            let v = ev.value(em, ValueId(i), local)?;
            em.line(&format!("r{i}[j] = {v};"));
        }
        Ok(())
    })?;
    ev.clear_memo();
    for &i in &loaded {
        ev.bound
            .insert(ValueId(i), Box::new(move |_: &[String]| format!("r{i}[j]")));
    }
    for &i in &reduces {
        let BlockOp::Reduce {
            op, input, count, ..
        } = &b.ops[i]
        else {
            continue;
        };
        let max = *op == ReduceOp::Max;
        let mean_of = match (op, count) {
            (ReduceOp::Mean, None) => return Err("a tile mean without a data count".into()),
            (ReduceOp::Mean, Some(c)) => Some(c),
            _ => None,
        };
        let s = format!("s{i}");
        em.line(&format!(
            "float {s} = {};",
            if max { "-INFINITY" } else { "0.0f" }
        ));
        pass(em, share, &mut |em, local| {
            let x = ev.value(em, *input, local)?;
            if max {
                em.line(&format!("{s} = fmaxf({s}, {x});"));
            } else {
                em.line(&format!("{s} = {s} + {x};"));
            }
            Ok(())
        })?;
        ev.clear_memo();
        block_reduce(em, &s, max, threads, mean_of);
        ev.bound
            .insert(ValueId(i), Box::new(move |_: &[String]| format!("s{i}")));
    }
    pass(em, share, &mut |em, local| {
        for (o, out) in b.outputs.iter().enumerate() {
            let tiles = em.axis_tiles(&out.map, "0", "0");
            let v = ev.value(em, out.value, local)?;
            store(em, o, &v, local, &tiles);
        }
        Ok(())
    })?;
    Ok(())
}
