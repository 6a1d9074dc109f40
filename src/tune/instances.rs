//! The instance space of a workload: the search's verified candidate graphs
//! with their parameters set.
//!
//! A candidate is a shape-independent kernel graph the search proved and
//! cross-checked (an enumerated sGraph or a lowering strategy). Its
//! parameters are instantiated here:
//! - **split factors**: a graph whose for-loop is split over a grid dim
//!   (split-K, flash decoding) gets one instance per power-of-two split
//!   count up to [`crate::ugraph::flash::MAX_SPLITS`] and the declared
//!   loop's iteration count. A small grid wants many splits, a large one
//!   few; only the tuner can tell where the crossover lies.
//!
//! - **tiles** of tensor-core matmul kernels: block tile, warp layout and
//!   pipeline depth from [`super::tiles::TILE_CONFIGS`] (narrow tiles with
//!   warps sharing K for decode-sized rows, 128-wide ones for prefill).
//!
//! Every instance is verified again, as a graph of its own: the partition
//! and algebraic proof ([`crate::search::strategies::prove`]) and the
//! numeric cross-check. An instance that fails either is dropped, so the
//! tuner only ever times verified graphs.

use std::collections::BTreeSet;

use rayon::prelude::*;
use serde::Serialize;

use crate::ir::{DimExpr, Workload};
use crate::search::crosscheck::{CrossCheckOptions, cross_check_all};
use crate::search::strategies::{Fits, Strategy, prove, search_all};
use crate::ugraph::flash::{FUSED_COMBINE_MAX_ROWS, MAX_SPLITS};
use crate::ugraph::{KernelBody, KernelGraph};

use super::tiles::{TILE_CONFIGS, tile_choices, with_tiles};

/// What an instance is: which candidate, and its parameters. It is enough
/// to rebuild the graph without a search (the candidate by
/// [`crate::search::strategies::rebuild`], then [`set_splits`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct InstanceId {
    pub strategy: Strategy,
    /// The split count of a split loop (`None`: as instantiated).
    pub splits: Option<u32>,
    /// The matmul tile configuration, an index into
    /// [`super::tiles::TILE_CONFIGS`] (`None`: as instantiated).
    pub tiles: Option<u8>,
    /// Query rows per block of the flash-decoding partial kernels
    /// ([`with_flash_rows`]; `None`: as instantiated).
    pub rows: Option<u32>,
    /// The flash-decoding combine runs in the partial's last block per
    /// row tile ([`with_fused_combine`]).
    pub fused: bool,
    /// ... and the row tile's splits are one thread block cluster that
    /// combines through distributed shared memory
    /// ([`with_cluster_combine`]; implies `fused`).
    pub cluster: bool,
    /// The flash-decoding partials run on Hopper's warpgroup MMA
    /// ([`with_flash_wgmma`]; 64 rows per block, sm_90a).
    pub wgmma: bool,
}

impl InstanceId {
    /// `sgraph#0 splits=16`, `flash splits=16 rows=16`,
    /// `sgraph#1 tiles=t16x32x128w124s4`, `regions`.
    pub fn label(&self) -> String {
        let mut s = self.strategy.label();
        if let Some(n) = self.splits {
            s.push_str(&format!(" splits={n}"));
        }
        if let Some(c) = self.tiles.and_then(|t| TILE_CONFIGS.get(usize::from(t))) {
            s.push_str(&format!(" tiles={}", c.name));
        }
        if let Some(r) = self.rows {
            s.push_str(&format!(" rows={r}"));
        }
        if self.wgmma {
            s.push_str(" wgmma");
        }
        if self.cluster {
            s.push_str(" cluster");
        } else if self.fused {
            s.push_str(" fused");
        }
        s
    }

    /// The id a [`InstanceId::label`] names.
    pub fn parse(label: &str) -> Option<InstanceId> {
        let mut parts = label.split(' ');
        let strategy = Strategy::from_label(parts.next()?)?;
        let mut id = InstanceId {
            strategy,
            splits: None,
            tiles: None,
            rows: None,
            fused: false,
            cluster: false,
            wgmma: false,
        };
        for p in parts {
            if id.fused {
                return None; // `fused` or `cluster` comes last
            }
            if id.wgmma && p != "fused" && p != "cluster" {
                return None; // `wgmma` comes after `rows=`
            }
            if let Some(n) = p.strip_prefix("splits=") {
                if id.splits.is_some() || id.tiles.is_some() || id.rows.is_some() {
                    return None;
                }
                id.splits = Some(n.parse().ok()?);
            } else if let Some(name) = p.strip_prefix("tiles=") {
                if id.tiles.is_some() || id.rows.is_some() {
                    return None;
                }
                let i = TILE_CONFIGS.iter().position(|c| c.name == name)?;
                id.tiles = Some(u8::try_from(i).ok()?);
            } else if let Some(n) = p.strip_prefix("rows=") {
                if id.rows.is_some() {
                    return None;
                }
                let r: u32 = n.parse().ok()?;
                FLASH_ROWS.contains(&r).then_some(())?;
                id.rows = Some(r);
            } else if p == "wgmma" {
                id.wgmma = true;
            } else if p == "fused" {
                id.fused = true;
            } else if p == "cluster" {
                (id.fused, id.cluster) = (true, true);
            } else {
                return None;
            }
        }
        Some(id)
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// One verified instance.
#[derive(Clone, Debug)]
pub struct Instance {
    pub id: InstanceId,
    pub graph: KernelGraph,
}

/// Why a workload has no instances.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    /// No candidate of the workload (named) was proven and cross-checked.
    #[error(
        "workload `{0}`: no candidate passed both the proof and the cross-check, and the direct lowering failed"
    )]
    NoneVerified(String),
}

/// The split count of `g`'s split loops (they all share it), or `None`
/// when no loop is split.
pub fn split_count(g: &KernelGraph) -> Option<u32> {
    g.kernels.iter().find_map(|k| match &k.body {
        KernelBody::Block(b) => {
            let gd = b.forloop.as_ref()?.split?;
            let s = b.grid.get(gd)?.extents.first()?.as_constant()?;
            u32::try_from(s).ok()
        }
        KernelBody::Predefined(_) => None,
    })
}

/// `g` with every split loop split `s` ways: the split grid dims, the
/// workspaces' leading axis (in the tensors and every view of them) and
/// the combine loops over the splits. `None` when `g` has no split loop or
/// does not have the shape a split form has.
pub fn with_splits(g: &KernelGraph, s: u32) -> Option<KernelGraph> {
    let old = split_count(g)?;
    let (old_e, new_e) = (
        DimExpr::constant(i64::from(old)),
        DimExpr::constant(i64::from(s)),
    );
    let mut g = g.clone();
    let mut workspaces = BTreeSet::new();
    for k in &mut g.kernels {
        let KernelBody::Block(b) = &mut k.body else {
            continue;
        };
        let Some(gd) = b.forloop.as_ref().and_then(|f| f.split) else {
            continue;
        };
        let dim = b.grid.get_mut(gd)?;
        if dim.extents != [old_e.clone()] {
            return None;
        }
        dim.extents = vec![new_e.clone()];
        workspaces.extend(b.outputs.iter().map(|o| o.map.tensor.0));
    }
    for &t in &workspaces {
        let shape = &mut g.tensors.get_mut(t)?.shape;
        if shape.first() != Some(&old_e) {
            return None;
        }
        shape[0] = new_e.clone();
    }
    for k in &mut g.kernels {
        let KernelBody::Block(b) = &mut k.body else {
            continue;
        };
        let mut loops_over_splits = false;
        for m in b
            .inputs
            .iter_mut()
            .chain(b.outputs.iter_mut().map(|o| &mut o.map))
        {
            if !workspaces.contains(&m.tensor.0) {
                continue;
            }
            if m.view.first() != Some(&old_e) {
                return None;
            }
            m.view[0] = new_e.clone();
            loops_over_splits |= m.fmap == Some(0);
        }
        if loops_over_splits && let Some(f) = &mut b.forloop {
            if f.extent != old_e || f.split.is_some() {
                return None;
            }
            f.extent = new_e.clone();
            // The combine's threads follow its split count.
            if let Some(n) = new_e.as_constant() {
                b.params.threads = crate::ugraph::flash::combine_threads(n);
            }
        }
    }
    Some(g)
}

/// The split counts worth trying for `g`: powers of two up to both its
/// split loop's most iterations at `w`'s declared points (or its largest
/// one) and [`MAX_SPLITS`].
fn split_choices(g: &KernelGraph, w: &Workload) -> Vec<u32> {
    let mut iters: u64 = 1;
    for k in &g.kernels {
        let KernelBody::Block(b) = &k.body else {
            continue;
        };
        let Some(f) = b.forloop.as_ref().filter(|f| f.split.is_some()) else {
            continue;
        };
        for p in w.points_or_max() {
            iters = iters.max(f.iterations(&p).unwrap_or(1));
        }
    }
    let top = iters.next_power_of_two().min(MAX_SPLITS as u64) as u32;
    (0..).map(|e| 1u32 << e).take_while(|&s| s <= top).collect()
}

/// Query rows per block a flash-decoding partial may take: 16 (one warp
/// row, the four warps sharing each key tile: decode), 64 (four warp
/// rows, or one warpgroup: prefill) or 128 (two warpgroups sharing each K
/// and V tile; only [`with_flash_wgmma`] takes it).
pub const FLASH_ROWS: [u32; 3] = [16, 64, 128];

/// Whether `b` is a flash-decoding partial: a loop split over the grid with
/// two tile matmuls (scores, then `p · v`) and its rows on grid y.
fn is_flash_partial(b: &crate::ugraph::BlockGraph) -> bool {
    b.forloop.as_ref().is_some_and(|f| f.split == Some(0))
        && b.grid.len() >= 2
        && b.ops
            .iter()
            .filter(|op| matches!(op, crate::ugraph::BlockOp::Matmul(..)))
            .count()
            == 2
}

/// `g` with its flash-decoding partials taking `rows` query rows per block
/// (grid y's tile and the warp layout); `None` when `g` has none. The
/// combine is per row and does not change.
pub fn with_flash_rows(g: &KernelGraph, rows: u32) -> Option<KernelGraph> {
    let mut g = g.clone();
    let mut any = false;
    for k in &mut g.kernels {
        let KernelBody::Block(b) = &mut k.body else {
            continue;
        };
        if !is_flash_partial(b) {
            continue;
        }
        any = true;
        b.grid[1].tile = rows;
        (b.params.warps_m, b.params.warps_n) = crate::ugraph::flash::partial_warps(rows);
    }
    any.then_some(g)
}

/// `g` with the combine of each flash-decoding partial of at most
/// [`FUSED_COMBINE_MAX_ROWS`] rows per block that a kernel follows fused
/// into it
/// ([`crate::ugraph::LaunchParams::fused_combine`]); `None` when there is
/// none. Code generation refuses the graph (and the instance is dropped)
/// when the next kernel is not its combine.
pub fn with_fused_combine(g: &KernelGraph) -> Option<KernelGraph> {
    let mut g = g.clone();
    let n = g.kernels.len();
    let mut any = false;
    for (i, k) in g.kernels.iter_mut().enumerate() {
        let KernelBody::Block(b) = &mut k.body else {
            continue;
        };
        if is_flash_partial(b) && b.grid[1].tile <= FUSED_COMBINE_MAX_ROWS && i + 1 < n {
            b.params.fused_combine = true;
            any = true;
        }
    }
    any.then_some(g)
}

/// [`with_fused_combine`], with each fused partial's splits (2 to
/// [`CLUSTER_COMBINE_MAX_SPLITS`](crate::ugraph::flash::CLUSTER_COMBINE_MAX_SPLITS)) run as one thread block cluster that
/// combines through distributed shared memory
/// ([`crate::ugraph::LaunchParams::cluster_combine`]; sm_90+, see
/// [`super::tiles::runs_on`]). `None` when no fused partial has such a split count.
pub fn with_cluster_combine(g: &KernelGraph) -> Option<KernelGraph> {
    let mut g = with_fused_combine(g)?;
    let mut any = false;
    for k in &mut g.kernels {
        let KernelBody::Block(b) = &mut k.body else {
            continue;
        };
        let splits = b.grid[0].extents.first().and_then(|e| e.as_constant());
        if b.params.fused_combine && splits.is_some_and(crate::ugraph::flash::cluster_combine_takes)
        {
            b.params.cluster_combine = true;
            any = true;
        }
    }
    any.then_some(g)
}

/// `g` with its flash-decoding partials of 64 or 128 query rows per block
/// on Hopper's warpgroup MMA (a warpgroup per 64 rows) ([`crate::ugraph::LaunchParams::wgmma`]:
/// `prism::FlashPartialWgmma`, sm_90a, see [`super::tiles::runs_on`]);
/// `None` when it has none. Code generation refuses the partials the
/// template does not take (e.g. K read as `[keys, d]`), and the instance
/// is dropped.
pub fn with_flash_wgmma(g: &KernelGraph) -> Option<KernelGraph> {
    let mut g = g.clone();
    let mut any = false;
    for k in &mut g.kernels {
        let KernelBody::Block(b) = &mut k.body else {
            continue;
        };
        if !is_flash_partial(b) {
            continue;
        }
        let rows = b.grid[1].tile;
        if (rows == 64 || rows == 128) && !b.params.fused_combine {
            b.params.wgmma = true;
            b.params.threads = 2 * rows; // a warpgroup per 64 rows
            any = true;
        }
    }
    any.then_some(g)
}

/// How a flash instance's partials run: the combine fused into the last
/// block, as a cluster, and the partials on warpgroup MMA.
#[derive(Clone, Copy, Default)]
struct FlashForm {
    fused: bool,
    cluster: bool,
    wgmma: bool,
}

/// A flash instance: `splits`, `rows` and how it runs.
fn flash_instance(
    strategy: Strategy,
    splits: Option<u32>,
    rows: Option<u32>,
    form: FlashForm,
    graph: KernelGraph,
) -> Instance {
    Instance {
        id: InstanceId {
            strategy,
            splits,
            tiles: None,
            rows,
            fused: form.fused,
            cluster: form.cluster,
            wgmma: form.wgmma,
        },
        graph,
    }
}

/// The row tiles worth trying for `g`'s flash partials at `w`: both of
/// [`FLASH_ROWS`] when its rows reach past 16 at some declared point
/// (decode and prefill buckets of one workload, as in Prism's attention),
/// none otherwise (the lowering's 16 is the only sensible one).
fn flash_row_choices(g: &KernelGraph, w: &Workload) -> Vec<u32> {
    let mut rows: i64 = 0;
    for k in &g.kernels {
        let KernelBody::Block(b) = &k.body else {
            continue;
        };
        if is_flash_partial(b) {
            for e in &b.grid[1].extents {
                rows = rows.max(crate::ugraph::lower::max_value(e, w));
            }
        }
    }
    if rows > 16 {
        FLASH_ROWS.to_vec()
    } else {
        Vec::new()
    }
}

/// The instances of `w` before the split variants are verified: every
/// candidate that passed the proof and the cross-check (`verified`), and
/// its split variants (not yet). Deterministic: candidates in id order,
/// distinct graphs only.
pub fn unverified(
    w: &Workload,
    check: &CrossCheckOptions,
    fits: &Fits<'_>,
) -> Result<Vec<(Instance, bool)>, InstanceError> {
    let (report, graphs) = search_all(w, check, fits);
    let mut base: Vec<(Strategy, KernelGraph)> = Vec::new();
    for (c, g) in report.candidates.iter().zip(graphs) {
        let Some(g) = g else { continue };
        if c.proof.is_err() || c.cross_check.is_err() || base.iter().any(|(_, b)| *b == g) {
            continue;
        }
        base.push((c.strategy, g));
    }
    if base.is_empty() {
        // As the search does: the direct lowering (one kernel per operator,
        // correct for every operator) when nothing else is verified.
        let g = crate::ugraph::lower::lower(w, &crate::ugraph::lower::LowerOptions::direct())
            .map_err(|e| InstanceError::NoneVerified(format!("{} ({e})", w.name)))?;
        base.push((Strategy::Direct, g));
    }
    let mut out = Vec::new();
    for (strategy, g) in base {
        // Split variants (or the graph itself), then each one's tile
        // variants.
        let mut splits: Vec<(Option<u32>, KernelGraph, bool)> = Vec::new();
        match split_count(&g) {
            None => splits.push((None, g.clone(), true)),
            Some(_) => {
                for s in split_choices(&g, w) {
                    if let Some(v) = with_splits(&g, s).filter(|v| fits(v).is_ok()) {
                        let same = v == g;
                        splits.push((Some(s), v, same));
                    }
                }
            }
        }
        for (s, v, ok) in splits {
            // Row tiles and the fused combine of flash partials.
            // (A row tile only the warpgroup form takes, 128, is kept for it.)
            let mut flash: Vec<(Option<u32>, KernelGraph)> = vec![(None, v.clone())];
            for r in flash_row_choices(&v, w) {
                if let Some(x) = with_flash_rows(&v, r) {
                    flash.push((Some(r), x));
                }
            }
            for (r, x) in flash {
                if let Some(f) = with_flash_wgmma(&x).filter(|f| fits(f).is_ok()) {
                    let wgmma = FlashForm {
                        wgmma: true,
                        ..FlashForm::default()
                    };
                    out.push((flash_instance(strategy, s, r, wgmma, f), false));
                }
                if fits(&x).is_err() {
                    continue;
                }
                let form = |fused, cluster| FlashForm {
                    fused,
                    cluster,
                    wgmma: false,
                };
                if r.is_some() {
                    let plain = form(false, false);
                    out.push((flash_instance(strategy, s, r, plain, x.clone()), false));
                }
                if let Some(f) = with_fused_combine(&x).filter(|f| fits(f).is_ok()) {
                    let fused = form(true, false);
                    out.push((flash_instance(strategy, s, r, fused, f), false));
                }
                if let Some(f) = with_cluster_combine(&x).filter(|f| fits(f).is_ok()) {
                    let cluster = form(true, true);
                    out.push((flash_instance(strategy, s, r, cluster, f), false));
                }
            }
            for c in tile_choices(&v, w) {
                let Some(t) = with_tiles(&v, c).filter(|t| fits(t).is_ok()) else {
                    continue;
                };
                let index = TILE_CONFIGS
                    .iter()
                    .position(|x| x == c)
                    .and_then(|i| u8::try_from(i).ok());
                out.push((
                    Instance {
                        id: InstanceId {
                            strategy,
                            splits: s,
                            tiles: index,
                            rows: None,
                            fused: false,
                            cluster: false,
                            wgmma: false,
                        },
                        graph: t,
                    },
                    false,
                ));
            }
            out.push((
                Instance {
                    id: InstanceId {
                        strategy,
                        splits: s,
                        tiles: None,
                        rows: None,
                        fused: false,
                        cluster: false,
                        wgmma: false,
                    },
                    graph: v,
                },
                ok,
            ));
        }
    }
    out.sort_by_key(|(i, _)| i.id);
    // Graphs equal but for their kernels' names (a matched flash kernel and
    // the enumeration's identical one) are one instance: the first id.
    let mut distinct: Vec<(Instance, bool, KernelGraph)> = Vec::with_capacity(out.len());
    for (i, ok) in out {
        let anonymous = unnamed(&i.graph);
        match distinct.iter_mut().find(|(_, _, a)| *a == anonymous) {
            Some(d) => d.1 |= ok,
            None => distinct.push((i, ok, anonymous)),
        }
    }
    Ok(distinct.into_iter().map(|(i, ok, _)| (i, ok)).collect())
}

/// `g` with its kernels' names cleared (they do not change what it
/// computes or how fast).
fn unnamed(g: &KernelGraph) -> KernelGraph {
    let mut g = g.clone();
    for k in &mut g.kernels {
        k.name.clear();
    }
    g
}

/// Whether `graphs` (new graphs of `w`) pass the proof and the numeric
/// cross-check, each.
pub fn verify(w: &Workload, graphs: &[&KernelGraph], check: &CrossCheckOptions) -> Vec<bool> {
    if graphs.is_empty() {
        return Vec::new();
    }
    let checks = cross_check_all(w, graphs, check);
    let proofs: Vec<bool> = graphs.par_iter().map(|g| prove(w, g).is_ok()).collect();
    checks
        .into_iter()
        .zip(proofs)
        .map(|(c, p)| c.is_ok() && p)
        .collect()
}

/// The verified instances of `w`: every candidate that passed the proof
/// and the cross-check, and its split variants that pass both again.
pub fn instances(
    w: &Workload,
    check: &CrossCheckOptions,
    fits: &Fits<'_>,
) -> Result<Vec<Instance>, InstanceError> {
    let all = unverified(w, check, fits)?;
    let todo: Vec<&KernelGraph> = all
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(i, _)| &i.graph)
        .collect();
    let mut results = verify(w, &todo, check).into_iter();
    Ok(all
        .into_iter()
        .filter_map(|(i, ok)| (ok || results.next().unwrap_or(false)).then_some(i))
        .collect())
}

/// The instance `id` of its candidate's graph `g` (rebuilt without a
/// search by [`crate::search::strategies::rebuild`]): `g` itself, or `g`
/// split `id.splits` ways and set to the tiles `id.tiles`. The caller
/// compares it with the fingerprint recorded when it was verified.
pub fn set_splits(g: KernelGraph, id: InstanceId) -> Result<KernelGraph, String> {
    let g = match id.splits {
        None => g,
        Some(s) => with_splits(&g, s).ok_or_else(|| {
            format!(
                "`{}` has no split loop to split {s} ways",
                id.strategy.label()
            )
        })?,
    };
    let g = match id.rows {
        None => g,
        Some(r) => with_flash_rows(&g, r).ok_or_else(|| {
            format!(
                "`{}` has no flash-decoding kernel to set to {r} rows per block",
                id.strategy.label()
            )
        })?,
    };
    let g = if id.wgmma {
        with_flash_wgmma(&g).ok_or_else(|| {
            format!(
                "`{}` has no flash-decoding partial of 64 rows per block to run on warpgroup MMA",
                id.strategy.label()
            )
        })?
    } else {
        g
    };
    let g = if id.cluster {
        with_cluster_combine(&g).ok_or_else(|| {
            format!(
                "`{}` has no flash-decoding partial of at most 16 rows and 2 to 16 splits to combine as a cluster",
                id.strategy.label()
            )
        })?
    } else if id.fused {
        with_fused_combine(&g).ok_or_else(|| {
            format!(
                "`{}` has no flash-decoding partial of at most 16 rows to fuse its combine into",
                id.strategy.label()
            )
        })?
    } else {
        g
    };
    match id.tiles {
        None => Ok(g),
        Some(t) => {
            let c = TILE_CONFIGS
                .get(usize::from(t))
                .ok_or_else(|| format!("no tile configuration {t}"))?;
            with_tiles(&g, c).ok_or_else(|| {
                format!(
                    "`{}` has no matmul kernel to set to tiles {}",
                    id.strategy.label(),
                    c.name
                )
            })
        }
    }
}
