//! The analytic cost model: a μGraph's time at a shape point on a described
//! GPU, kernel by kernel.
//!
//! Per kernel, from its block graph at the point:
//! - **bytes**: every global tensor it reads or writes, once (the DRAM
//!   traffic floor; re-reads served by L2 are not counted);
//! - **flops**: `2·m·n·k` of every tile matmul, over every block and loop
//!   iteration (tensor-core work);
//! - **blocks** and **waves**: a grid smaller than the SM count leaves SMs
//!   idle, so the achievable bandwidth and tensor rate scale with
//!   `min(1, blocks / SMs)`;
//! - **bytes in flight** (pipelined kernels, `stages > 1`): DRAM latency
//!   times bandwidth is what must be in flight to stream at full rate; a
//!   block keeps `stages - 1` stages of its input tiles in flight, so few
//!   or shallow blocks cap the bandwidth at `in flight / latency`;
//! - **L2 traffic**: every block's input tiles per loop iteration (small
//!   tiles re-read their operands more often), over a nominal L2
//!   bandwidth;
//! - **split-K across blocks**: the blocks multiply, each runs its share
//!   of the loop; the partial sums' workspace traffic joins the bytes and
//!   the last block's combine adds a round trip;
//! - **time** = launch + max(bytes / usable bandwidth, L2 bytes / L2
//!   bandwidth, flops / usable tensor rate).
//!
//! It ranks candidates before anything is timed; the tuner measures how
//! well it ranks (issue 5) and times the survivors.

use serde::Serialize;

use crate::ir::DimBindings;
use crate::ir::hardware::Hardware;
use crate::ugraph::validate::{BlockInfo, Phase, TileExtent, check_block};
use crate::ugraph::{BlockGraph, BlockOp, KernelBody, KernelGraph};

/// One kernel's estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelEstimate {
    pub name: String,
    pub bytes: u64,
    pub flops: u64,
    pub blocks: u64,
    /// `blocks / SMs` (fractional: 0.5 is half the SMs busy).
    pub waves: f64,
    pub micros: f64,
}

/// A graph's estimate: its kernels in launch order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    pub kernels: Vec<KernelEstimate>,
    pub micros: f64,
}

/// The number of elements along one tile axis at `p` (a full tile; edge
/// tiles are smaller, which the bytes and block counts already reflect).
fn extent(t: &TileExtent, p: &DimBindings) -> u64 {
    match t {
        TileExtent::One => 1,
        TileExtent::Full(d) => d.eval(p).unwrap_or(1).max(1) as u64,
        TileExtent::Part { extent, tile } => {
            let e = extent.eval(p).unwrap_or(1).max(1) as u64;
            e.min(u64::from(*tile))
        }
    }
}

/// Loop iterations one block runs at `p`: its share of a split loop, the
/// whole loop otherwise, 1 without a loop.
fn block_iterations(b: &BlockGraph, p: &DimBindings) -> u64 {
    b.forloop.as_ref().map_or(1, |f| {
        let splits = f
            .split
            .and_then(|s| b.grid.get(s))
            .and_then(|d| d.extents.first())
            .map_or(1, |e| e.eval(p).unwrap_or(1).max(1) as u64);
        f.iterations(p)
            .unwrap_or(1)
            .div_ceil(splits)
            .div_ceil(u64::from(b.params.split_k.max(1)))
    })
}

/// The round trip a split-K tile's last block adds (its counter, then the
/// other splits' partial sums from L2), µs.
pub const SPLIT_K_COMBINE_US: f64 = 1.0;

/// The cluster barriers and distributed-shared-memory reads of split-K
/// across a thread block cluster, µs (no workspace, no counter).
pub const CLUSTER_SPLIT_K_US: f64 = 0.5;

/// Split-K across blocks: the workspace bytes (each split's partial sums
/// of every tile matmul, written once and read once, f32) and the last
/// blocks' extra round trip; across a cluster no bytes and the barriers;
/// `(0, 0.0)` without.
fn split_k_cost(b: &BlockGraph, g: &KernelGraph, p: &DimBindings) -> (u64, f64) {
    let splits = u64::from(b.params.split_k.max(1));
    if splits <= 1 {
        return (0, 0.0);
    }
    if b.params.cluster_combine {
        return (0, CLUSTER_SPLIT_K_US);
    }
    let gemms = b
        .ops
        .iter()
        .filter(|o| matches!(o, BlockOp::Matmul(..)))
        .count() as u64;
    let out = b
        .outputs
        .first()
        .map_or(0, |o| g.tensors[o.map.tensor.0].elements_at(p));
    let bytes = splits
        .saturating_mul(gemms)
        .saturating_mul(out)
        .saturating_mul(4 * 2);
    (bytes, SPLIT_K_COMBINE_US)
}

/// Tensor-core flops of a block kernel at `p`: per block and loop
/// iteration `2·m·n·k` of each tile matmul, times the iterations a block
/// runs, times the blocks.
fn flops(b: &BlockGraph, info: &BlockInfo, p: &DimBindings) -> u64 {
    let nblocks = b.blocks(p);
    let iters = block_iterations(b, p);
    let mut total: u64 = 0;
    for (k, op) in b.ops.iter().enumerate() {
        let BlockOp::Matmul(x, _) = op else {
            continue;
        };
        let out = &info.shapes[k];
        let a = &info.shapes[x.0];
        let mn: u64 = out
            .iter()
            .map(|t| extent(t, p))
            .fold(1u64, u64::saturating_mul);
        let kk = a.last().map_or(1, |t| extent(t, p));
        let per = 2u64.saturating_mul(mn).saturating_mul(kk);
        let reps = if info.phases[k] == Phase::Loop {
            iters
        } else {
            1
        };
        total = total.saturating_add(per.saturating_mul(reps).saturating_mul(nblocks));
    }
    total
}

/// L2 bandwidth over DRAM bandwidth (nominal: about 3× on A100 and H100).
const L2_OVER_DRAM: f64 = 3.0;
/// How much faster a TMA-fed main loop moves its tiles from L2 than
/// cp.async's 16-byte copies (measured 1.37× on the gated pair, 1.48× on
/// LoRA's x·W at n = 2048 on an H200,
/// bench/results/wgmma-tma-probe-h200-session17.txt).
pub const TMA_TILE_SPEEDUP: f64 = 1.35;
/// How much faster a flash partial's products run on warpgroup MMA
/// (`prism::FlashPartialWgmma`, one read of each K / V tile per block)
/// than on four mma.sync warps that each read them through ldmatrix
/// (predicted from the shared-memory traffic; the tuner measures).
pub const FLASH_WGMMA_SPEEDUP: f64 = 2.0;
/// DRAM latency under load, µs: bytes in flight / latency = bandwidth.
const DRAM_LATENCY_US: f64 = 1.0;

/// Bytes of input tiles one block loads per loop iteration (the whole
/// kernel's inputs for a kernel without a loop).
fn tile_bytes(b: &BlockGraph, g: &KernelGraph, info: &BlockInfo, p: &DimBindings) -> u64 {
    let mut bytes: u64 = 0;
    for (k, op) in b.ops.iter().enumerate() {
        if let BlockOp::Input(i) = op {
            let elems = info.shapes[k]
                .iter()
                .map(|t| extent(t, p))
                .fold(1u64, u64::saturating_mul);
            let size = b
                .inputs
                .get(*i)
                .map_or(2, |m| g.tensors[m.tensor.0].dtype.size() as u64);
            bytes = bytes.saturating_add(elems.saturating_mul(size));
        }
    }
    bytes
}

/// The estimate of `g` at `p` on `hw`.
pub fn estimate(g: &KernelGraph, p: &DimBindings, hw: &Hardware) -> Estimate {
    let mut kernels = Vec::with_capacity(g.kernels.len());
    for (i, k) in g.kernels.iter().enumerate() {
        // A flash combine fused into the partial before it runs in that
        // kernel's last blocks: no launch of its own, one more round trip.
        let fused = i > 0
            && matches!(&g.kernels[i - 1].body, KernelBody::Block(b) if b.params.fused_combine);
        let launch_us = if fused {
            SPLIT_K_COMBINE_US
        } else {
            hw.launch_us
        };
        let (split_bytes, split_us) = match &k.body {
            KernelBody::Block(b) => split_k_cost(b, g, p),
            KernelBody::Predefined(_) => (0, 0.0),
        };
        let bytes = g.kernel_bytes(k, p).saturating_add(split_bytes);
        // The block graph's tile shapes, once per kernel (a graph that does
        // not check counts no flops and no tile traffic).
        let block = match &k.body {
            KernelBody::Block(b) => Some((b, check_block(b, &g.tensors).ok())),
            KernelBody::Predefined(_) => None,
        };
        let (flops, nblocks) = match &block {
            Some((b, info)) => (info.as_ref().map_or(0, |i| flops(b, i, p)), b.blocks(p)),
            None => (0, u64::from(hw.sms)),
        };
        let waves = nblocks as f64 / f64::from(hw.sms.max(1));
        let busy = waves.clamp(f64::MIN_POSITIVE, 1.0);
        // GB/s = 1e3 bytes/µs; TFLOP/s = 1e6 flops/µs.
        let mut dram = hw.dram_gbps * 1e3 * busy;
        let mut l2 = 0.0;
        if let Some((b, info)) = &block {
            let stage = info.as_ref().map_or(0, |i| tile_bytes(b, g, i, p));
            let iters = block_iterations(b, p).max(1);
            let total = (stage as f64) * (iters as f64) * (nblocks as f64);
            l2 = total / (hw.dram_gbps * 1e3 * L2_OVER_DRAM * busy);
            if b.params.tma {
                l2 /= TMA_TILE_SPEEDUP;
            }
            if b.params.stages > 1 {
                // Blocks resident at once: the whole grid up to one wave
                // of as many blocks per SM as threads allow.
                let per_sm = (hw.max_threads_per_sm / b.params.threads.max(1)).max(1);
                let resident = (nblocks as f64).min(f64::from(hw.sms) * f64::from(per_sm));
                let in_flight = resident * stage as f64 * f64::from(b.params.stages - 1);
                dram = dram.min(in_flight / DRAM_LATENCY_US);
            }
        }
        let memory = bytes as f64 / dram.max(f64::MIN_POSITIVE);
        let memory = memory.max(l2);
        let mut compute = flops as f64 / (hw.tensor_tflops * 1e6 * busy);
        if let Some((b, _)) = &block
            && b.params.wgmma
            && b.forloop.as_ref().is_some_and(|f| f.split.is_some())
        {
            compute /= FLASH_WGMMA_SPEEDUP;
        }
        kernels.push(KernelEstimate {
            name: k.name.clone(),
            bytes,
            flops,
            blocks: nblocks,
            waves,
            micros: launch_us + memory.max(compute) + split_us,
        });
    }
    let micros = kernels.iter().map(|k| k.micros).sum();
    Estimate { kernels, micros }
}
