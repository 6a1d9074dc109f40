//! Tile variants of tensor-core matmul kernels: the block tile, the warp
//! layout (including warps that split each K tile), and the pipeline
//! depth, from a fixed table of configurations.
//!
//! The search instantiates one tile per matmul kernel (small-m tiles when
//! every declared `m` is at most 16). Which tile is fastest depends on the
//! shape: a decode-sized `m` wants narrow blocks, many of them, with deep
//! pipelines and warps sharing K (every SM streaming weights); a large `m`
//! wants 128-wide tiles that reuse each loaded operand many times. The
//! tuner times the table's configurations per shape bucket.
//!
//! A configuration changes the graph (the grid dims' tiles and the
//! for-loop's tile, which the proof checks) and its launch parameters; the
//! instance is verified again like a split variant.

use crate::codegen::cuda::templates::{GemmShape, gemm_shared_bytes};
use crate::ir::Workload;
use crate::ugraph::lower::max_value;
use crate::ugraph::{AccumKind, BlockGraph, BlockOp, KernelBody, KernelGraph};

/// One named configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileConfig {
    pub name: &'static str,
    pub shape: GemmShape,
    /// Blocks sharing each output tile's K range (split-K across blocks,
    /// [`crate::ugraph::LaunchParams::split_k`]); 1: none.
    pub split_k: u32,
    /// The `split_k` blocks of a tile are one thread block cluster that
    /// adds their sums through distributed shared memory instead of a
    /// workspace ([`crate::ugraph::LaunchParams::cluster_combine`]; sm_90+,
    /// see [`runs_on`]).
    pub cluster: bool,
    /// The main loop's copies come from the Tensor Memory Accelerator
    /// ([`crate::ugraph::LaunchParams::tma`]; wgmma tiles, sm_90a).
    pub tma: bool,
}

const fn cfg(
    name: &'static str,
    bm: u32,
    bn: u32,
    bk: u32,
    warps: (u32, u32, u32),
    stages: u32,
) -> TileConfig {
    split(name, bm, bn, bk, warps, stages, 1)
}

const fn split(
    name: &'static str,
    bm: u32,
    bn: u32,
    bk: u32,
    warps: (u32, u32, u32),
    stages: u32,
    split_k: u32,
) -> TileConfig {
    TileConfig {
        name,
        split_k,
        cluster: false,
        tma: false,
        shape: GemmShape {
            bm,
            bn,
            bk,
            warps_m: warps.0,
            warps_n: warps.1,
            warps_k: warps.2,
            stages,
            wgmma: false,
        },
    }
}

/// A configuration on warpgroup MMA (`prism::WgmmaGemm`, sm_90a): `bm`
/// rows in `bm / 64` warpgroups (all warps along m), K tiles of 64.
const fn wgmma(name: &'static str, bm: u32, bn: u32, stages: u32, split_k: u32) -> TileConfig {
    let mut c = split(name, bm, bn, 64, (bm / 16, 1, 1), stages, split_k);
    c.shape.wgmma = true;
    c
}

/// `c` (split over K) with its splits as one thread block cluster,
/// named `name` (`c`'s name and `c`).
const fn clustered(name: &'static str, mut c: TileConfig) -> TileConfig {
    c.name = name;
    c.cluster = true;
    c
}

/// `c` (a wgmma tile) fed by the Tensor Memory Accelerator, named `name`
/// (`c`'s name and `tma`).
const fn tma_fed(name: &'static str, mut c: TileConfig) -> TileConfig {
    c.name = name;
    c.tma = true;
    c
}

/// The configurations, by name: `t{bm}x{bn}x{bk}w{m}{n}{k}s{stages}`,
/// then `k{splits}` for split-K across blocks, `c` when those blocks
/// are one thread block cluster, and `tma` for a wgmma tile fed by the
/// Tensor Memory Accelerator. Rows up to 32 are decode
/// tiles (weight streaming); 64 and 128 rows are for prefill-sized `m`.
/// Split-K lets a decode matmul keep wide tiles (long contiguous weight
/// rows per block) and still put every SM to work: at `n = d = 4096` a
/// 128-column tile gives 32 tiles, × 8 splits = 256 blocks.
pub const TILE_CONFIGS: &[TileConfig] = &[
    cfg("t16x16x256w118s3", 16, 16, 256, (1, 1, 8), 3),
    cfg("t16x32x128w124s4", 16, 32, 128, (1, 2, 4), 4),
    cfg("t16x32x256w124s3", 16, 32, 256, (1, 2, 4), 3),
    cfg("t16x32x256w124s4", 16, 32, 256, (1, 2, 4), 4),
    cfg("t16x16x512w118s3", 16, 16, 512, (1, 1, 8), 3),
    cfg("t16x64x128w142s4", 16, 64, 128, (1, 4, 2), 4),
    cfg("t16x64x256w144s3", 16, 64, 256, (1, 4, 4), 3),
    cfg("t32x32x128w124s4", 32, 32, 128, (1, 2, 4), 4),
    cfg("t64x64x64w221s4", 64, 64, 64, (2, 2, 1), 4),
    cfg("t64x128x32w221s4", 64, 128, 32, (2, 2, 1), 4),
    cfg("t128x64x32w221s4", 128, 64, 32, (2, 2, 1), 4),
    cfg("t128x128x32w241s4", 128, 128, 32, (2, 4, 1), 4),
    cfg("t128x128x64w241s3", 128, 128, 64, (2, 4, 1), 3),
    split("t16x64x128w142s4k2", 16, 64, 128, (1, 4, 2), 4, 2),
    split("t16x64x128w142s4k4", 16, 64, 128, (1, 4, 2), 4, 4),
    split("t16x64x128w142s4k8", 16, 64, 128, (1, 4, 2), 4, 8),
    split("t16x64x128w142s4k16", 16, 64, 128, (1, 4, 2), 4, 16),
    split("t16x128x64w141s4k2", 16, 128, 64, (1, 4, 1), 4, 2),
    split("t16x128x64w141s4k4", 16, 128, 64, (1, 4, 1), 4, 4),
    split("t16x128x64w141s4k8", 16, 128, 64, (1, 4, 1), 4, 8),
    split("t16x128x64w141s4k16", 16, 128, 64, (1, 4, 1), 4, 16),
    split("t32x128x64w241s4k4", 32, 128, 64, (2, 4, 1), 4, 4),
    split("t32x128x64w241s4k8", 32, 128, 64, (2, 4, 1), 4, 8),
    split("t16x16x256w118s3k8", 16, 16, 256, (1, 1, 8), 3, 8),
    split("t16x16x256w118s3k16", 16, 16, 256, (1, 1, 8), 3, 16),
    split("t64x128x32w221s4k2", 64, 128, 32, (2, 2, 1), 4, 2),
    split("t64x128x32w221s4k4", 64, 128, 32, (2, 2, 1), 4, 4),
    // Shallower decode pipelines, whose stages also hold two B tiles (a
    // gated kernel's GEMMs in one pipeline: `TileGemm::mainloop_pair`)
    // within the shared-memory limit; the deeper ones above do not.
    cfg("t16x16x256w118s4", 16, 16, 256, (1, 1, 8), 4),
    cfg("t16x16x512w118s2", 16, 16, 512, (1, 1, 8), 2),
    cfg("t16x32x256w124s2", 16, 32, 256, (1, 2, 4), 2),
    cfg("t16x32x128w124s8", 16, 32, 128, (1, 2, 4), 8),
    cfg("t16x32x128w124s6", 16, 32, 128, (1, 2, 4), 6),
    split("t16x64x128w142s3k2", 16, 64, 128, (1, 4, 2), 3, 2),
    split("t16x64x128w142s3k4", 16, 64, 128, (1, 4, 2), 3, 4),
    // Warpgroup MMA (sm_90a only), for prefill-sized m: `g{warpgroups}`.
    // On an H200 (bench/results/wgmma-probe-h200-session13.txt) 128×128
    // with both B tiles per stage runs a gated MLP at n = 2048 in 1182 µs
    // against 1687 µs for t128x128x64w241s3; 128×256 a 2048×4096×4096
    // GEMM in 165 µs against 226 µs; 64×64 the same at m = 128 in 42 µs
    // against 72 µs.
    wgmma("t128x128x64g2s4", 128, 128, 4, 1),
    wgmma("t128x256x64g2s4", 128, 256, 4, 1),
    wgmma("t128x64x64g2s6", 128, 64, 6, 1),
    wgmma("t64x128x64g1s4", 64, 128, 4, 1),
    wgmma("t64x64x64g1s6", 64, 64, 6, 1),
    wgmma("t64x64x64g1s6k2", 64, 64, 6, 2),
    wgmma("t64x128x64g1s4k2", 64, 128, 4, 2),
    wgmma("t128x128x64g2s4k2", 128, 128, 4, 2),
    // Wider column tiles split over K for mid-sized m (LoRA's x · W at
    // m = 128: every block re-reads its rows of x from L2 once per column
    // tile, so wide tiles and more blocks per column).
    wgmma("t128x256x64g2s4k2", 128, 256, 4, 2),
    wgmma("t128x256x64g2s4k4", 128, 256, 4, 4),
    wgmma("t64x256x64g1s4k2", 64, 256, 4, 2),
    wgmma("t64x256x64g1s4k4", 64, 256, 4, 4),
    wgmma("t128x128x64g2s4k4", 128, 128, 4, 4),
    // Split-K across a thread block cluster (sm_90+): the tile's splits
    // add their sums through distributed shared memory, not a workspace
    // in L2 with a counter per tile (the decode GEMMs' serial tail).
    clustered(
        "t16x64x128w142s4k2c",
        split("", 16, 64, 128, (1, 4, 2), 4, 2),
    ),
    clustered(
        "t16x64x128w142s4k4c",
        split("", 16, 64, 128, (1, 4, 2), 4, 4),
    ),
    clustered(
        "t16x64x128w142s4k8c",
        split("", 16, 64, 128, (1, 4, 2), 4, 8),
    ),
    clustered(
        "t16x64x128w142s4k16c",
        split("", 16, 64, 128, (1, 4, 2), 4, 16),
    ),
    clustered(
        "t16x128x64w141s4k2c",
        split("", 16, 128, 64, (1, 4, 1), 4, 2),
    ),
    clustered(
        "t16x128x64w141s4k4c",
        split("", 16, 128, 64, (1, 4, 1), 4, 4),
    ),
    clustered(
        "t16x128x64w141s4k8c",
        split("", 16, 128, 64, (1, 4, 1), 4, 8),
    ),
    clustered(
        "t16x128x64w141s4k16c",
        split("", 16, 128, 64, (1, 4, 1), 4, 16),
    ),
    clustered(
        "t32x128x64w241s4k4c",
        split("", 32, 128, 64, (2, 4, 1), 4, 4),
    ),
    clustered(
        "t32x128x64w241s4k8c",
        split("", 32, 128, 64, (2, 4, 1), 4, 8),
    ),
    clustered(
        "t16x64x128w142s3k2c",
        split("", 16, 64, 128, (1, 4, 2), 3, 2),
    ),
    clustered(
        "t16x64x128w142s3k4c",
        split("", 16, 64, 128, (1, 4, 2), 3, 4),
    ),
    // Deeper decode pipelines (more weight bytes in flight per SM: one
    // block per SM at two splits), single GEMM, LoRA (its side tile per
    // stage) and pair forms within the shared-memory limit.
    clustered(
        "t16x64x128w142s6k2c",
        split("", 16, 64, 128, (1, 4, 2), 6, 2),
    ),
    clustered(
        "t16x64x128w142s5k2c",
        split("", 16, 64, 128, (1, 4, 2), 5, 2),
    ),
    clustered("t16x64x64w142s8k2c", split("", 16, 64, 64, (1, 4, 2), 8, 2)),
    clustered("t16x64x64w142s7k2c", split("", 16, 64, 64, (1, 4, 2), 7, 2)),
    clustered("t64x64x64g1s6k2c", wgmma("", 64, 64, 6, 2)),
    clustered("t64x128x64g1s4k2c", wgmma("", 64, 128, 4, 2)),
    clustered("t128x128x64g2s4k2c", wgmma("", 128, 128, 4, 2)),
    clustered("t128x256x64g2s4k2c", wgmma("", 128, 256, 4, 2)),
    clustered("t64x256x64g1s4k2c", wgmma("", 64, 256, 4, 2)),
    clustered("t64x256x64g1s4k4c", wgmma("", 64, 256, 4, 4)),
    // The same tiles fed by TMA (a producer warp; the warpgroups only
    // issue wgmma): gated n=2048 919 -> 682 µs, LoRA's x·W at n=2048
    // 155 -> 107 µs on an H200
    // (bench/results/wgmma-tma-probe-h200-session17.txt).
    tma_fed("t128x128x64g2s4tma", wgmma("", 128, 128, 4, 1)),
    tma_fed("t128x256x64g2s4tma", wgmma("", 128, 256, 4, 1)),
    tma_fed("t128x64x64g2s6tma", wgmma("", 128, 64, 6, 1)),
    tma_fed("t64x128x64g1s4tma", wgmma("", 64, 128, 4, 1)),
    // TMA-fed tiles split over K across a cluster (LoRA's and the gated
    // MLP's mid-sized m, where the cp.async twins above won).
    tma_fed(
        "t64x64x64g1s6k2ctma",
        clustered("", wgmma("", 64, 64, 6, 2)),
    ),
    tma_fed(
        "t64x128x64g1s4k2ctma",
        clustered("", wgmma("", 64, 128, 4, 2)),
    ),
    tma_fed(
        "t128x128x64g2s4k2ctma",
        clustered("", wgmma("", 128, 128, 4, 2)),
    ),
    tma_fed(
        "t128x256x64g2s4k2ctma",
        clustered("", wgmma("", 128, 256, 4, 2)),
    ),
    tma_fed(
        "t64x256x64g1s4k2ctma",
        clustered("", wgmma("", 64, 256, 4, 2)),
    ),
];

/// Whether `g` runs on `arch`: a graph with a warpgroup-MMA matmul kernel
/// ([`crate::ugraph::LaunchParams::wgmma`]) needs `sm_90a` (elsewhere its
/// main loop traps), one with a cluster combine
/// ([`crate::ugraph::LaunchParams::cluster_combine`]) sm_90 or newer.
pub fn runs_on(g: &KernelGraph, arch: &crate::ir::Arch) -> bool {
    let uses = |f: fn(&crate::ugraph::LaunchParams) -> bool| {
        g.kernels
            .iter()
            .any(|k| matches!(&k.body, KernelBody::Block(b) if f(&b.params)))
    };
    (arch.has_warpgroup_mma() || !uses(|p| p.wgmma))
        && (arch.capability >= 90 || !uses(|p| p.cluster_combine))
}

/// The configuration named `name`.
pub fn by_name(name: &str) -> Option<&'static TileConfig> {
    TILE_CONFIGS.iter().find(|c| c.name == name)
}

/// Whether the matmul code template takes `b`: an unsplit for-loop over
/// K with tile matmuls, and no online-softmax state (flash kernels have
/// their own template).
fn is_matmul_kernel(b: &BlockGraph) -> bool {
    let Some(fl) = &b.forloop else {
        return false;
    };
    fl.split.is_none()
        && b.grid.len() >= 2
        && b.ops.iter().any(|o| matches!(o, BlockOp::Matmul(..)))
        && !b.ops.iter().any(|o| {
            matches!(
                o,
                BlockOp::Running(_)
                    | BlockOp::Accum {
                        kind: AccumKind::RescaledSum { .. },
                        ..
                    }
            )
        })
}

/// The configuration of every narrow matmul kernel (`is_narrow`),
/// whatever the graph's other kernels use.
pub const NARROW: &str = "t16x16x256w118s3k16";

/// Whether `b` computes at most 16 output columns (a constant): LoRA's
/// `x · A` (rank 16). A configuration made for the wide kernels of its
/// graph would give it one column of blocks walking all of K (at n = 1,
/// one block: 16.5 µs against 17 µs for the 4096-wide `x · W`, measured
/// with ncu on an H200); a 16-wide tile with K split over 16 blocks per
/// row tile keeps it short.
fn is_narrow(b: &BlockGraph) -> bool {
    b.grid[0]
        .extents
        .iter()
        .try_fold(1i64, |acc, e| {
            e.as_constant().map(|v| acc.saturating_mul(v))
        })
        .is_some_and(|n| n <= 16)
}

/// `g` with every matmul kernel set to `c` (narrow kernels to [`NARROW`]);
/// `None` when it has none, when its operands are not 16-bit, or when a
/// kernel already has `c`. A graph whose matmul kernels are all narrow
/// has the one variant [`NARROW`].
pub fn with_tiles(g: &KernelGraph, c: &TileConfig) -> Option<KernelGraph> {
    let mut g = g.clone();
    let mut changed = false;
    let mut any = false;
    let mut wide = false;
    let narrow = by_name(NARROW)?;
    for k in &mut g.kernels {
        let KernelBody::Block(b) = &mut k.body else {
            continue;
        };
        if !is_matmul_kernel(b) {
            continue;
        }
        any = true;
        let c = if is_narrow(b) {
            narrow
        } else {
            wide = true;
            c
        };
        let s = c.shape;
        let fl = b.forloop.as_mut()?;
        if c.split_k > 1 && b.grid.len() > 2 {
            return None; // z holds the splits
        }
        let before = (b.grid[1].tile, b.grid[0].tile, fl.tile, b.params.clone());
        fl.tile = s.bk;
        b.grid[0].tile = s.bn;
        b.grid[1].tile = s.bm;
        b.params.warps_m = s.warps_m;
        b.params.warps_n = s.warps_n;
        b.params.warps_k = s.warps_k;
        b.params.stages = s.stages;
        b.params.split_k = c.split_k;
        b.params.wgmma = s.wgmma;
        b.params.cluster_combine = c.cluster;
        b.params.tma = c.tma;
        b.params.threads = s.warps_m * s.warps_n * s.warps_k * 32;
        changed |= before != (b.grid[1].tile, b.grid[0].tile, s.bk, b.params.clone());
    }
    let elem = g
        .tensors
        .iter()
        .find(|t| matches!(t.role, crate::ugraph::TensorRole::Input(_)))
        .map(|t| t.dtype.size() as u32)?;
    if !any || !changed || elem != 2 || gemm_shared_bytes(c.shape, elem, 1).is_err() {
        return None;
    }
    if !wide && c.name != NARROW {
        return None;
    }
    Some(g)
}

/// The configurations worth trying for `g` in `w`: all of them, less the
/// 64- and 128-row tiles when no matmul kernel of `g` has more than 32
/// rows at any declared shape (they would compute mostly padding).
pub fn tile_choices(g: &KernelGraph, w: &Workload) -> Vec<&'static TileConfig> {
    let mut rows: i64 = 0;
    let mut any = false;
    for k in &g.kernels {
        let KernelBody::Block(b) = &k.body else {
            continue;
        };
        if !is_matmul_kernel(b) {
            continue;
        }
        any = true;
        for e in &b.grid[1].extents {
            rows = rows.max(max_value(e, w));
        }
    }
    if !any {
        return Vec::new();
    }
    TILE_CONFIGS
        .iter()
        .filter(|c| rows > 32 || c.shape.bm <= 32)
        .collect()
}
