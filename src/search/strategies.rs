//! The candidates the search compares: the best single-kernel μGraphs of
//! the sGraph enumeration ([`super::sgraph`]), and lowering strategies, from
//! the direct lowering (one kernel per operator) to fusion regions and
//! flash-decoding attention (multi-kernel graphs the enumeration does not
//! build). Each is proven and cross-checked numerically and ranked by a
//! simple analytic cost; the cheapest verified candidate wins, the
//! enumeration's on ties.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ir::{DimBindings, Workload};
use crate::ugraph::KernelGraph;
use crate::ugraph::lower::{LowerOptions, lower};

use super::crosscheck::{CrossCheckOptions, cross_check_all};
use super::sgraph::{EnumOptions, EnumStats, enumerate};

/// A lowering strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Strategy {
    /// One kernel per operator.
    Direct,
    /// The hand-built rms_norm → matmul fusion only.
    RmsMatmul,
    /// Fusion regions (elementwise, reductions, matmul epilogues, paired
    /// matmuls) plus the rms fusion.
    Regions,
    /// Regions plus flash-decoding attention (split online softmax and a
    /// combine).
    Flash,
    /// The enumeration's candidate of this rank (0: the cheapest).
    Searched(u32),
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [
        Strategy::Direct,
        Strategy::RmsMatmul,
        Strategy::Regions,
        Strategy::Flash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Direct => "direct",
            Strategy::RmsMatmul => "rms-matmul",
            Strategy::Regions => "regions",
            Strategy::Flash => "flash",
            Strategy::Searched(_) => "sgraph",
        }
    }

    /// `sgraph#0` for a searched candidate, else [`Strategy::name`].
    pub fn label(self) -> String {
        match self {
            Strategy::Searched(r) => format!("sgraph#{r}"),
            s => s.name().to_string(),
        }
    }

    /// The strategy a [`Strategy::label`] names.
    pub fn from_label(label: &str) -> Option<Strategy> {
        if let Some(r) = label.strip_prefix("sgraph#") {
            return r.parse().ok().map(Strategy::Searched);
        }
        Strategy::ALL.into_iter().find(|s| s.name() == label)
    }

    /// The lowering options of a lowering strategy (`None` for a searched
    /// candidate, which [`rebuild`] enumerates again).
    pub fn options(self) -> Option<LowerOptions> {
        Some(match self {
            Strategy::Direct => LowerOptions::direct(),
            Strategy::RmsMatmul => LowerOptions {
                fuse_rms_matmul: true,
                fuse_regions: false,
                flash_attention: false,
            },
            Strategy::Regions => LowerOptions {
                flash_attention: false,
                ..LowerOptions::default()
            },
            Strategy::Flash => LowerOptions::default(),
            Strategy::Searched(_) => return None,
        })
    }
}

/// The graph of a strategy: its lowering, or the enumeration's candidate
/// of that rank (the enumeration is deterministic).
pub fn rebuild(w: &Workload, s: Strategy, fits: &Fits<'_>) -> Result<KernelGraph, String> {
    match (s, s.options()) {
        (_, Some(o)) => lower(w, &o).map_err(|e| e.to_string()),
        (Strategy::Searched(rank), None) => {
            let (_, found) = enumerate(w, &cost_point(w), &EnumOptions::default(), fits)?;
            found
                .into_iter()
                .nth(rank as usize)
                .map(|f| f.graph)
                .ok_or_else(|| format!("the enumeration has no candidate of rank {rank}"))
        }
        (_, None) => Err("no lowering".into()),
    }
}

/// Whether the code generator can emit a graph (see
/// [`crate::codegen::cuda::fits`]).
pub type Fits<'a> = dyn Fn(&KernelGraph) -> Result<(), String> + Sync + 'a;

/// Analytic cost at one shape point: global-memory bytes every kernel reads
/// and writes, over a bandwidth, plus a fixed cost per launch. A ranking
/// aid, not a prediction of time.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cost {
    pub kernels: usize,
    pub bytes: u64,
    /// `bytes / 3 TB/s + kernels * 4 µs`, in microseconds.
    pub micros: f64,
}

pub fn cost(g: &KernelGraph, dims: &DimBindings) -> Cost {
    let bytes = g
        .kernels
        .iter()
        .map(|k| g.kernel_bytes(k, dims))
        .fold(0u64, u64::saturating_add);
    let kernels = g.kernels.len();
    Cost {
        kernels,
        bytes,
        micros: bytes as f64 / 3.0e6 + kernels as f64 * 4.0,
    }
}

/// One candidate's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct CandidateReport {
    pub strategy: Strategy,
    /// For a searched candidate: its term (one s-expression per output)
    /// and loop map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<(Vec<String>, String)>,
    pub kernels: usize,
    /// `None` when lowering failed.
    pub cost: Option<Cost>,
    /// `Ok(trials)` or the disagreement.
    pub cross_check: Result<usize, String>,
    /// The algebraic proof that the candidate's unpartitioned meaning equals
    /// the program: `Ok(rewrites)`, or why there is none (unknown within
    /// the limits, or not expressible). A candidate is chosen only when both
    /// this and the cross-check pass.
    pub proof: Result<usize, String>,
}

/// Prove that every block computes the tiles its grid indices select
/// ([`super::partition`]), and every output of `g`'s unpartitioned meaning
/// equal to the program's.
pub fn prove(w: &Workload, g: &KernelGraph) -> Result<usize, String> {
    super::partition::check(g).map_err(|e| format!("partition: {e}"))?;
    let abstract_graph =
        super::abstract_graph::unpartitioned(w, g).map_err(|e| format!("not expressible: {e}"))?;
    let limits = crate::verify::Limits::default();
    let mut rewrites = 0;
    for (j, o) in w.graph.outputs.iter().enumerate() {
        let a = abstract_graph
            .outputs
            .get(j)
            .ok_or("an output is missing")?;
        match crate::verify::prove_graphs(&w.graph, o.node, &abstract_graph, a.node, &limits) {
            Ok(crate::verify::Verdict::Equivalent { rewrites: r, .. }) => rewrites += r,
            Ok(v) => return Err(format!("unknown: {v:?}")),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(rewrites)
}

#[derive(Clone, Debug, Serialize)]
pub struct SearchReport {
    pub workload: String,
    /// The shape point costs are evaluated at (the workload's last declared
    /// point, or its largest dims).
    pub point: DimBindings,
    pub candidates: Vec<CandidateReport>,
    /// The enumeration's counts, or why it failed.
    pub sgraph: Result<EnumStats, String>,
    /// Index into `candidates` of the cheapest proven and cross-checked one.
    pub chosen: Option<usize>,
    pub seconds: f64,
}

/// The point costs are compared at.
pub fn cost_point(w: &Workload) -> DimBindings {
    w.points.last().cloned().unwrap_or_else(|| w.max_point())
}

/// A candidate before verification: its origin, its term (searched ones)
/// and its graph or why there is none.
type Entry = (
    Strategy,
    Option<(Vec<String>, String)>,
    Result<KernelGraph, String>,
);

/// [`search_with`] with the code generator's templates.
pub fn search(w: &Workload, check: &CrossCheckOptions) -> (SearchReport, Option<KernelGraph>) {
    search_with(w, check, &|g: &KernelGraph| {
        crate::codegen::cuda::fits(w, g)
    })
}

/// Enumerate sGraph candidates and lower `w` with every strategy, prove
/// and cross-check each, and pick the cheapest one that passed both.
pub fn search_with(
    w: &Workload,
    check: &CrossCheckOptions,
    fits: &Fits<'_>,
) -> (SearchReport, Option<KernelGraph>) {
    let (report, mut graphs) = search_all(w, check, fits);
    let graph = report.chosen.and_then(|i| graphs[i].take());
    (report, graph)
}

/// [`search_with`], returning every candidate's graph (`None` where it
/// could not be lowered), aligned with `report.candidates`: the tuner
/// instantiates all the verified ones.
pub fn search_all(
    w: &Workload,
    check: &CrossCheckOptions,
    fits: &Fits<'_>,
) -> (SearchReport, Vec<Option<KernelGraph>>) {
    let start = Instant::now();
    let point = cost_point(w);
    let (sgraph, found) = match enumerate(w, &point, &EnumOptions::default(), fits) {
        Ok((stats, found)) => (Ok(stats), found),
        Err(e) => (Err(e), Vec::new()),
    };
    let mut entries: Vec<Entry> = Vec::new();
    for (rank, f) in found.into_iter().enumerate() {
        entries.push((
            Strategy::Searched(rank as u32),
            Some((f.term, f.loops)),
            Ok(f.graph),
        ));
    }
    for s in Strategy::ALL {
        let g = s
            .options()
            .ok_or_else(|| "no lowering".to_string())
            .and_then(|o| lower(w, &o).map_err(|e| e.to_string()));
        entries.push((s, None, g));
    }
    // Identical graphs (e.g. two strategies that change nothing for this
    // program) are verified once.
    let mut distinct: Vec<&KernelGraph> = Vec::new();
    let slot: Vec<Option<usize>> = entries
        .iter()
        .map(|e| {
            let g = e.2.as_ref().ok()?;
            Some(match distinct.iter().position(|d| *d == g) {
                Some(i) => i,
                None => {
                    distinct.push(g);
                    distinct.len() - 1
                }
            })
        })
        .collect();
    let checks: Vec<Result<usize, String>> = cross_check_all(w, &distinct, check)
        .into_iter()
        .map(|r| r.map(|t| t.len()).map_err(|e| e.to_string()))
        .collect();
    let proofs: Vec<Result<usize, String>> = distinct.iter().map(|g| prove(w, g)).collect();
    let mut candidates = Vec::new();
    let mut graphs = Vec::new();
    for ((s, term, g), slot) in entries.into_iter().zip(slot) {
        match (g, slot) {
            (Ok(g), Some(i)) => {
                candidates.push(CandidateReport {
                    strategy: s,
                    term,
                    kernels: g.kernels.len(),
                    cost: Some(cost(&g, &point)),
                    cross_check: checks
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Err("not cross-checked".into())),
                    proof: proofs
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| Err("not proven".into())),
                });
                graphs.push(Some(g));
            }
            (g, _) => {
                candidates.push(CandidateReport {
                    strategy: s,
                    term,
                    kernels: 0,
                    cost: None,
                    cross_check: Err(g.err().unwrap_or_default()),
                    proof: Err("not lowered".into()),
                });
                graphs.push(None);
            }
        }
    }
    // Both verifications must pass: the proof of the algebra and the
    // numeric cross-check. The first of equal costs wins (searched
    // candidates come first).
    let chosen = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.cross_check.is_ok() && c.proof.is_ok())
        .filter_map(|(i, c)| c.cost.as_ref().map(|k| (i, k.micros)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(i, _)| i);
    let report = SearchReport {
        workload: w.name.clone(),
        point,
        candidates,
        sgraph,
        chosen,
        seconds: start.elapsed().as_secs_f64(),
    };
    (report, graphs)
}

/// The graph the build uses for `w`: the search's choice, or the direct
/// lowering when no candidate passed both checks (`report.chosen` is
/// then `None`).
pub fn choose(
    w: &Workload,
    check: &CrossCheckOptions,
) -> Result<(SearchReport, KernelGraph), crate::ugraph::lower::LowerError> {
    choose_with(w, check, &|g: &KernelGraph| {
        crate::codegen::cuda::fits(w, g)
    })
}

/// [`choose`] with another template predicate.
pub fn choose_with(
    w: &Workload,
    check: &CrossCheckOptions,
    fits: &Fits<'_>,
) -> Result<(SearchReport, KernelGraph), crate::ugraph::lower::LowerError> {
    let (report, chosen) = search_with(w, check, fits);
    let graph = match chosen {
        Some(g) => g,
        None => lower(w, &LowerOptions::direct())?,
    };
    Ok((report, graph))
}
