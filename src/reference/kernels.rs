//! The interpreter's compute kernels: broadcasting elementwise ops,
//! reductions, permutes and batched matmul, parallel over independent output
//! elements (never over a reduction, so results do not depend on the thread
//! count).

use rayon::prelude::*;

use super::tensor::Tensor;
use crate::ir::ReduceOp;

/// Rows handed to one rayon task for elementwise work.
const CHUNK: usize = 1 << 14;

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Strides of `shape` broadcast to `out` (aligned at the last dim, 0 where broadcast).
fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let off = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < off || shape[i - off] == 1 {
                0
            } else {
                own[i - off]
            }
        })
        .collect()
}

/// Offset in a strided tensor of the row-major output index `flat`.
fn offset(mut flat: usize, out_shape: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for i in (0..out_shape.len()).rev() {
        let d = out_shape[i];
        off += (flat % d) * strides[i];
        flat /= d;
    }
    off
}

pub fn map(a: &Tensor, f: impl Fn(f64) -> f64 + Sync) -> Tensor {
    Tensor {
        shape: a.shape.clone(),
        data: a
            .data
            .par_iter()
            .with_min_len(CHUNK)
            .map(|&x| f(x))
            .collect(),
    }
}

pub fn zip(
    a: &Tensor,
    b: &Tensor,
    out_shape: &[usize],
    f: impl Fn(f64, f64) -> f64 + Sync,
) -> Tensor {
    let n: usize = out_shape.iter().product();
    let data = if a.shape == b.shape && a.shape == out_shape {
        a.data
            .par_iter()
            .zip(b.data.par_iter())
            .with_min_len(CHUNK)
            .map(|(&x, &y)| f(x, y))
            .collect()
    } else {
        let (sa, sb) = (
            broadcast_strides(&a.shape, out_shape),
            broadcast_strides(&b.shape, out_shape),
        );
        let inner = out_shape.last().copied().unwrap_or(1).max(1);
        let (ia, ib) = (
            sa.last().copied().unwrap_or(0),
            sb.last().copied().unwrap_or(0),
        );
        let mut data = vec![0.0; n];
        data.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(row, out)| {
                let (oa, ob) = (
                    offset(row * inner, out_shape, &sa),
                    offset(row * inner, out_shape, &sb),
                );
                for (j, o) in out.iter_mut().enumerate() {
                    *o = f(a.data[oa + j * ia], b.data[ob + j * ib]);
                }
            });
        data
    };
    Tensor {
        shape: out_shape.to_vec(),
        data,
    }
}

/// Reduce `axis`; the output keeps the axis with size 1 when `keepdim`.
/// `acc32` accumulates in f32 (as a GPU kernel would) instead of f64.
pub fn reduce(a: &Tensor, op: ReduceOp, axis: usize, keepdim: bool, acc32: bool) -> Tensor {
    let outer: usize = a.shape[..axis].iter().product();
    let len = a.shape[axis];
    let inner: usize = a.shape[axis + 1..].iter().product();
    let mut data = vec![0.0; outer * inner];
    data.par_iter_mut()
        .with_min_len(64)
        .enumerate()
        .for_each(|(i, o)| {
            let (oi, ii) = (i / inner.max(1), i % inner.max(1));
            let at = |k: usize| a.data[(oi * len + k) * inner + ii];
            *o = match op {
                ReduceOp::Max => (0..len).map(at).fold(f64::NEG_INFINITY, nan_max),
                ReduceOp::Sum | ReduceOp::Mean => {
                    let s = if acc32 {
                        (0..len).map(at).fold(0.0f32, |s, v| s + v as f32) as f64
                    } else {
                        (0..len).map(at).sum::<f64>()
                    };
                    if op == ReduceOp::Mean {
                        if acc32 {
                            (s as f32 / len as f32) as f64
                        } else {
                            s / len as f64
                        }
                    } else {
                        s
                    }
                }
            };
        });
    let mut shape = a.shape.clone();
    if keepdim {
        shape[axis] = 1;
    } else {
        shape.remove(axis);
    }
    Tensor { shape, data }
}

/// Maximum that propagates NaN, like a GPU kernel's `fmaxf` chain would not:
/// the reference must not hide a NaN.
fn nan_max(m: f64, v: f64) -> f64 {
    if m.is_nan() || v.is_nan() {
        f64::NAN
    } else {
        m.max(v)
    }
}

pub fn permute(a: &Tensor, perm: &[usize]) -> Tensor {
    let r = perm.len();
    if r >= 2
        && perm[r - 2] == r - 1
        && perm[r - 1] == r - 2
        && perm[..r - 2].iter().enumerate().all(|(i, &p)| i == p)
    {
        return transpose_last_two(a);
    }
    let shape: Vec<usize> = perm.iter().map(|&p| a.shape[p]).collect();
    let own = strides(&a.shape);
    let st: Vec<usize> = perm.iter().map(|&p| own[p]).collect();
    let n = a.data.len();
    let inner = shape.last().copied().unwrap_or(1).max(1);
    let step = st.last().copied().unwrap_or(0);
    let mut data = vec![0.0; n];
    data.par_chunks_mut(inner)
        .enumerate()
        .for_each(|(row, out)| {
            let base = offset(row * inner, &shape, &st);
            for (j, o) in out.iter_mut().enumerate() {
                *o = a.data[base + j * step];
            }
        });
    Tensor { shape, data }
}

/// Swap the last two axes in cache-friendly square blocks.
fn transpose_last_two(a: &Tensor) -> Tensor {
    const B: usize = 32;
    let r = a.shape.len();
    let (rows, cols) = (a.shape[r - 2], a.shape[r - 1]);
    let mut shape = a.shape.clone();
    shape.swap(r - 2, r - 1);
    let mut data = vec![0.0; a.data.len()];
    let plane = rows * cols;
    data.par_chunks_mut(plane).enumerate().for_each(|(p, out)| {
        let src = &a.data[p * plane..(p + 1) * plane];
        for i0 in (0..rows).step_by(B) {
            for j0 in (0..cols).step_by(B) {
                for i in i0..(i0 + B).min(rows) {
                    for j in j0..(j0 + B).min(cols) {
                        out[j * rows + i] = src[i * cols + j];
                    }
                }
            }
        }
    });
    Tensor { shape, data }
}

/// Output rows and columns one task computes: keeps a block of B hot in cache
/// while it updates several rows of the output.
const ROW_TILE: usize = 8;
const COL_TILE: usize = 256;

/// Batched `[.., m, k] x [.., k, n]` with broadcast batch dims. Accumulates in
/// f64, or in f32 when `acc32` (inputs are converted to f32 first).
pub fn matmul(a: &Tensor, b: &Tensor, out_shape: &[usize], acc32: bool) -> Tensor {
    if acc32 {
        let a32: Vec<f32> = a.data.par_iter().map(|&v| v as f32).collect();
        let b32: Vec<f32> = b.data.par_iter().map(|&v| v as f32).collect();
        matmul_generic(&a32, &a.shape, &b32, &b.shape, out_shape)
    } else {
        matmul_generic(&a.data, &a.shape, &b.data, &b.shape, out_shape)
    }
}

trait Acc:
    Copy + Send + Sync + Default + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self>
{
    fn to_f64(self) -> f64;
}
impl Acc for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
}
impl Acc for f64 {
    fn to_f64(self) -> f64 {
        self
    }
}

fn matmul_generic<T: Acc>(
    a: &[T],
    sa: &[usize],
    b: &[T],
    sb: &[usize],
    out_shape: &[usize],
) -> Tensor {
    let r = out_shape.len();
    let (m, n) = (out_shape[r - 2], out_shape[r - 1]);
    let k = sa[sa.len() - 1];
    let batch_shape = &out_shape[..r - 2];
    let batches: usize = batch_shape.iter().product();
    let ba = broadcast_strides(&sa[..sa.len() - 2], batch_shape);
    let bb = broadcast_strides(&sb[..sb.len() - 2], batch_shape);
    let row_tiles = m.div_ceil(ROW_TILE);
    let col_tiles = n.div_ceil(COL_TILE).max(1);
    // Each task owns a disjoint (batch, row tile, column tile) block of the output.
    let blocks: Vec<(usize, usize, usize, Vec<f64>)> = (0..batches * row_tiles * col_tiles)
        .into_par_iter()
        .map(|t| {
            let (bi, rest) = (t / (row_tiles * col_tiles), t % (row_tiles * col_tiles));
            let (rt, ct) = (rest / col_tiles, rest % col_tiles);
            let a_off = offset(bi, batch_shape, &ba) * m * k;
            let b_off = offset(bi, batch_shape, &bb) * k * n;
            let (r0, r1) = (rt * ROW_TILE, ((rt + 1) * ROW_TILE).min(m));
            let (c0, c1) = (ct * COL_TILE, ((ct + 1) * COL_TILE).min(n));
            let w = c1 - c0;
            let mut acc = vec![T::default(); (r1 - r0) * w];
            for kk in 0..k {
                let brow = &b[b_off + kk * n + c0..b_off + kk * n + c1];
                for (ri, row) in (r0..r1).enumerate() {
                    let av = a[a_off + row * k + kk];
                    let out = &mut acc[ri * w..(ri + 1) * w];
                    for (o, &bv) in out.iter_mut().zip(brow) {
                        *o = *o + av * bv;
                    }
                }
            }
            (bi, rt, ct, acc.into_iter().map(T::to_f64).collect())
        })
        .collect();
    let mut data = vec![0.0; batches * m * n];
    for (bi, rt, ct, block) in blocks {
        let (r0, c0) = (rt * ROW_TILE, ct * COL_TILE);
        let w = (c0 + COL_TILE).min(n) - c0;
        for (ri, chunk) in block.chunks(w.max(1)).enumerate() {
            let dst = bi * m * n + (r0 + ri) * n + c0;
            data[dst..dst + chunk.len()].copy_from_slice(chunk);
        }
    }
    Tensor {
        shape: out_shape.to_vec(),
        data,
    }
}
