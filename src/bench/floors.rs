//! What a workload must do at a shape point, independent of any schedule:
//! the bytes of its inputs and outputs (each read or written once) and
//! the tensor flops of its matmuls; and the time floors those imply on a
//! device whose copy bandwidth, mma peak and empty-launch time were
//! measured ([`Floors`]).

use crate::ir::{DimBindings, DimEvalError, DimExpr, Op, Workload};

/// The device's measured limits, from the probes of the same run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Floors {
    /// Device-to-device copy: bytes read plus bytes written per second.
    pub copy_bytes_per_s: f64,
    /// Back-to-back `mma.sync` m16n8k16 (f16 in, f32 accumulate) on every
    /// SM: flops per second.
    pub mma_flops_per_s: f64,
    /// An empty kernel (1 block of 32 threads), µs.
    pub launch_floor_us: f64,
}

impl Floors {
    /// The larger of `bytes` over the copy bandwidth and `flops` over the
    /// mma peak, µs: no kernel moves or computes less.
    pub fn roofline_us(&self, bytes: u64, flops: u64) -> f64 {
        let memory = bytes as f64 / self.copy_bytes_per_s;
        let compute = flops as f64 / self.mma_flops_per_s;
        memory.max(compute) * 1e6
    }

    /// [`Floors::roofline_us`] plus one launch: what a single fused kernel
    /// could reach at best.
    pub fn limit_us(&self, bytes: u64, flops: u64) -> f64 {
        self.roofline_us(bytes, flops) + self.launch_floor_us
    }
}

/// Elements of a tensor of `shape` at `p` (0 for an extent below 1).
fn elements(shape: &[DimExpr], p: &DimBindings) -> Result<u64, DimEvalError> {
    let mut n: u64 = 1;
    for e in shape {
        let v = u64::try_from(e.eval(p)?).unwrap_or(0);
        n = n.saturating_mul(v);
    }
    Ok(n)
}

/// Bytes of the workload's inputs and outputs at `p`, in their dtypes:
/// what must cross DRAM at least once.
pub fn bytes_at(w: &Workload, p: &DimBindings) -> Result<u64, DimEvalError> {
    let mut total: u64 = 0;
    for i in &w.graph.inputs {
        let n = elements(&i.shape, p)?;
        total = total.saturating_add(n.saturating_mul(i.dtype.size() as u64));
    }
    for o in &w.graph.outputs {
        let node = w.graph.node(o.node);
        let n = elements(&node.shape, p)?;
        total = total.saturating_add(n.saturating_mul(node.dtype.size() as u64));
    }
    Ok(total)
}

/// Multiply-adds of every matmul node at `p`: per node the elements of its
/// result (batch dims broadcast) times the contracted extent.
pub fn macs_at(w: &Workload, p: &DimBindings) -> Result<u64, DimEvalError> {
    let mut total: u64 = 0;
    for node in &w.graph.nodes {
        let Op::Matmul(a, _) = node.op else { continue };
        let out = elements(&node.shape, p)?;
        let k = match w.graph.node(a).shape.last() {
            Some(e) => u64::try_from(e.eval(p)?).unwrap_or(0),
            None => 0,
        };
        total = total.saturating_add(out.saturating_mul(k));
    }
    Ok(total)
}

/// Tensor flops at `p`: 2·M·N·K summed over the matmul nodes.
pub fn flops_at(w: &Workload, p: &DimBindings) -> Result<u64, DimEvalError> {
    Ok(macs_at(w, p)?.saturating_mul(2))
}

/// Most multiply-adds at which a point's outputs are compared with the CPU
/// reference interpreter (f32 accumulation, parallel: gated_mlp at n = 16,
/// 1.9·10⁹, takes 0.7 s on 2 cores); above it only finiteness is checked.
pub const CPU_CHECK_MAX_MACS: u64 = 2_000_000_000;

/// Most input plus output elements at which the CPU reference runs (it
/// holds every tensor in f64: 2 GiB at this bound).
pub const CPU_CHECK_MAX_ELEMENTS: u64 = 1 << 28;

/// Whether the CPU reference is cheap enough at `p` (see
/// [`CPU_CHECK_MAX_MACS`], [`CPU_CHECK_MAX_ELEMENTS`]).
pub fn cpu_checkable(w: &Workload, p: &DimBindings) -> Result<bool, DimEvalError> {
    let mut elems: u64 = 0;
    for i in &w.graph.inputs {
        elems = elems.saturating_add(elements(&i.shape, p)?);
    }
    for o in &w.graph.outputs {
        elems = elems.saturating_add(elements(&w.graph.node(o.node).shape, p)?);
    }
    Ok(macs_at(w, p)? <= CPU_CHECK_MAX_MACS && elems <= CPU_CHECK_MAX_ELEMENTS)
}
