//! The search funnel of a workload: what the sGraph enumeration generated
//! and pruned (by reason), what it kept, and how many candidates were
//! proven (e-graph), cross-checked (numeric) and chosen.
//!
//! It comes from a [`SearchReport`] (the full search: enumeration, proofs
//! and cross-checks). A build does not run the proofs and cross-checks
//! when prism.lock names its kernels, so the funnel is cached per workload
//! next to the search cache (`<target>/prism/search/<workload>-<key>.funnel.json`,
//! the search cache's content key): `prism report` fills it, builds read
//! it. Only integers and strings are stored, so a cached funnel renders
//! byte for byte like a fresh one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::svg::{count, esc, px};
use crate::ir::Workload;
use crate::search::strategies::{SearchReport, Strategy};

/// Bumped when the cached form changes.
pub const FUNNEL_VERSION: u32 = 1;

/// The enumeration's counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Enumeration {
    pub egraph_nodes: usize,
    pub egraph_classes: usize,
    pub loop_maps: usize,
    pub terms: usize,
    /// Choices pruned while walking terms, by reason (these are not terms).
    pub walk_pruned: Vec<(String, usize)>,
    pub walks_at_bound: usize,
    /// Mapping instances built from the terms.
    pub instances: usize,
    /// Instances pruned, by reason.
    pub instance_pruned: Vec<(String, usize)>,
    /// Distinct valid single-kernel instances.
    pub single_valid: usize,
    pub cut_sets: usize,
    pub cut_graphs: usize,
    pub cut_duplicates: usize,
    /// Distinct valid μGraphs (single kernels and kernel cuts).
    pub valid: usize,
    /// The cheapest, handed on to verification.
    pub kept: usize,
}

/// A pass or a failure, with its detail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

/// One verified candidate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// `sgraph #0`, `regions`.
    pub label: String,
    /// From the enumeration (else a lowering strategy).
    pub searched: bool,
    pub kernels: usize,
    /// Global-memory bytes at the funnel's point (`None`: not lowered).
    pub bytes: Option<u64>,
    /// The search's cost estimate, µs, as text.
    pub estimate: Option<String>,
    pub proof: Check,
    pub cross_check: Check,
}

/// A workload's funnel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Funnel {
    /// The point costs were compared at (`d=4096 n=16`).
    pub point: String,
    /// `Err`: why the enumeration failed.
    pub enumeration: Result<Enumeration, String>,
    pub candidates: Vec<Candidate>,
    /// Index into `candidates`.
    pub chosen: Option<usize>,
}

/// One bar of the funnel.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// Stable name (the `data-stage` attribute).
    pub id: &'static str,
    pub label: String,
    pub count: usize,
    pub kind: StageKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StageKind {
    /// What flows on.
    Main,
    /// Taken out here.
    Pruned,
    /// Joining here.
    Added,
}

fn first_line(s: &str, n: usize) -> String {
    super::svg::cut(s.lines().next().unwrap_or(""), n)
}

impl Funnel {
    /// The funnel of a search.
    pub fn from_search(r: &SearchReport) -> Funnel {
        let point: Vec<String> = r.point.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let kept = r
            .candidates
            .iter()
            .filter(|c| matches!(c.strategy, Strategy::Searched(_)))
            .count();
        let enumeration = r.sgraph.as_ref().map_err(Clone::clone).map(|e| {
            let instance_pruned: Vec<(String, usize)> = e
                .pruned_instances
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            let walk_pruned: Vec<(String, usize)> = e
                .pruned
                .iter()
                .filter_map(|(k, v)| {
                    let n = v - e.pruned_instances.get(k).copied().unwrap_or(0).min(*v);
                    (n > 0).then(|| (k.clone(), n))
                })
                .collect();
            Enumeration {
                egraph_nodes: e.egraph_nodes,
                egraph_classes: e.egraph_classes,
                loop_maps: e.loop_maps,
                terms: e.terms,
                walk_pruned,
                walks_at_bound: e.walks_at_bound,
                instances: e.instances,
                instance_pruned,
                single_valid: e.single_valid,
                cut_sets: e.cut_sets,
                cut_graphs: e.cut_graphs,
                cut_duplicates: e.cut_duplicates,
                valid: e.valid,
                kept,
            }
        });
        let candidates = r
            .candidates
            .iter()
            .map(|c| Candidate {
                label: match c.strategy {
                    Strategy::Searched(k) => format!("sgraph #{k}"),
                    s => s.name().to_string(),
                },
                searched: matches!(c.strategy, Strategy::Searched(_)),
                kernels: c.kernels,
                bytes: c.cost.as_ref().map(|k| k.bytes),
                estimate: c.cost.as_ref().map(|k| format!("{:.1}", k.micros)),
                proof: match &c.proof {
                    Ok(n) => Check {
                        ok: true,
                        detail: format!("proven ({n} rewrites)"),
                    },
                    Err(e) => Check {
                        ok: false,
                        detail: first_line(e, 72),
                    },
                },
                cross_check: match &c.cross_check {
                    Ok(n) => Check {
                        ok: true,
                        detail: format!("ok ({n} trials)"),
                    },
                    Err(e) => Check {
                        ok: false,
                        detail: first_line(e, 72),
                    },
                },
            })
            .collect();
        Funnel {
            point: point.join(" "),
            enumeration,
            candidates,
            chosen: r.chosen,
        }
    }

    pub fn proven(&self) -> usize {
        self.candidates.iter().filter(|c| c.proof.ok).count()
    }

    pub fn cross_checked(&self) -> usize {
        self.candidates.iter().filter(|c| c.cross_check.ok).count()
    }

    /// Proven and cross-checked: the candidates that may be chosen.
    pub fn verified(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| c.proof.ok && c.cross_check.ok)
            .count()
    }

    /// The bars, top to bottom.
    pub fn stages(&self) -> Vec<Stage> {
        let mut s = Vec::new();
        let mut push = |id, label: &str, count, kind| {
            s.push(Stage {
                id,
                label: label.to_string(),
                count,
                kind,
            });
        };
        if let Ok(e) = &self.enumeration {
            push(
                "loop-maps",
                "loop maps walked",
                e.loop_maps,
                StageKind::Main,
            );
            push("terms", "terms generated", e.terms, StageKind::Main);
            push(
                "instances",
                "mapping instances",
                e.instances,
                StageKind::Main,
            );
            for (why, n) in &e.instance_pruned {
                push("pruned", why, *n, StageKind::Pruned);
            }
            push(
                "single-valid",
                "valid single kernels",
                e.single_valid,
                StageKind::Main,
            );
            push(
                "cut-graphs",
                "kernel-cut graphs",
                e.cut_graphs,
                StageKind::Added,
            );
            if e.cut_duplicates > 0 {
                push(
                    "cut-duplicates",
                    "duplicate cut graphs",
                    e.cut_duplicates,
                    StageKind::Pruned,
                );
            }
            push("valid", "valid μGraphs", e.valid, StageKind::Main);
            push("kept", "kept (cheapest by cost)", e.kept, StageKind::Main);
        }
        let lowering = self.candidates.iter().filter(|c| !c.searched).count();
        push(
            "lowering",
            "lowering strategies",
            lowering,
            StageKind::Added,
        );
        push(
            "candidates",
            "candidates verified",
            self.candidates.len(),
            StageKind::Main,
        );
        push("proven", "proven (e-graph)", self.proven(), StageKind::Main);
        push(
            "cross-checked",
            "cross-checked (numeric)",
            self.cross_checked(),
            StageKind::Main,
        );
        push(
            "verified",
            "proven and cross-checked",
            self.verified(),
            StageKind::Main,
        );
        push(
            "chosen",
            "chosen",
            usize::from(self.chosen.is_some()),
            StageKind::Main,
        );
        s
    }
}

#[derive(Serialize, Deserialize)]
struct Cached {
    version: u32,
    prism: String,
    workload: String,
    funnel: Funnel,
}

/// Where the funnel of `w` is cached in the search cache folder `dir`.
pub fn cache_path(dir: &Path, w: &Workload) -> PathBuf {
    dir.join(format!(
        "{}-{}.funnel.json",
        w.name,
        crate::search::cache::key(w)
    ))
}

/// The cached funnel of `w`, if a valid one exists.
pub fn cached(dir: &Path, w: &Workload) -> Option<Funnel> {
    let text = std::fs::read_to_string(cache_path(dir, w)).ok()?;
    let c: Cached = serde_json::from_str(&text).ok()?;
    (c.version == FUNNEL_VERSION && c.prism == env!("CARGO_PKG_VERSION") && c.workload == w.name)
        .then_some(c.funnel)
}

/// Cache the funnel of `w` (atomically).
pub fn store(dir: &Path, w: &Workload, f: &Funnel) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let c = Cached {
        version: FUNNEL_VERSION,
        prism: env!("CARGO_PKG_VERSION").to_string(),
        workload: w.name.clone(),
        funnel: f.clone(),
    };
    let text = serde_json::to_string_pretty(&c).map_err(std::io::Error::other)?;
    crate::atomic_write::write(&cache_path(dir, w), (text + "\n").as_bytes())
}

/// The funnel of `w`: cached, else computed by the full search (and
/// cached when `dir` is given). `compute` false: `None` when not cached.
pub fn funnel_of(w: &Workload, dir: Option<&Path>, compute: bool) -> Option<Funnel> {
    if let Some(f) = dir.and_then(|d| cached(d, w)) {
        return Some(f);
    }
    if !compute {
        return None;
    }
    let (report, _) = crate::search::strategies::search(
        w,
        &crate::search::crosscheck::CrossCheckOptions::default(),
    );
    let f = Funnel::from_search(&report);
    if let Some(d) = dir {
        // A cache that cannot be written only costs the next report a
        // search.
        let _ = store(d, w, &f);
    }
    Some(f)
}

const ROW: f64 = 22.0;
const LABEL_W: f64 = 250.0;
const BAR_W: f64 = 330.0;

/// The funnel as horizontal bars (widths on a log scale: counts span
/// several decades), `data-stage`/`data-count` on each bar.
pub fn svg(f: &Funnel) -> String {
    let stages = f.stages();
    let max = stages.iter().map(|s| s.count).max().unwrap_or(1).max(1);
    let scale = |n: usize| {
        if n == 0 {
            0.0
        } else {
            4.0 + (BAR_W - 4.0) * ((n as f64 + 1.0).log10() / (max as f64 + 1.0).log10())
        }
    };
    let height = ROW * stages.len() as f64 + 8.0;
    let width = LABEL_W + BAR_W + 70.0;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"funnel\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"search funnel\">",
        px(width),
        px(height),
        px(width),
        px(height)
    );
    for (i, st) in stages.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let (indent, class) = match st.kind {
            StageKind::Main => (0.0, "main"),
            StageKind::Pruned => (16.0, "pruned"),
            StageKind::Added => (16.0, "added"),
        };
        let sign = match st.kind {
            StageKind::Main => "",
            StageKind::Pruned => "− ",
            StageKind::Added => "+ ",
        };
        let w = scale(st.count);
        let label = super::svg::cut(&st.label, 36);
        let _ = write!(
            s,
            "<g class=\"stage {class}\" data-stage=\"{}\" data-count=\"{}\"><title>{}: {}</title><text class=\"flabel\" x=\"{}\" y=\"{}\">{sign}{}</text><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"/><text class=\"fcount\" x=\"{}\" y=\"{}\">{}</text></g>",
            st.id,
            st.count,
            esc(&st.label),
            st.count,
            px(indent + 2.0),
            px(y + 15.0),
            esc(&label),
            px(LABEL_W + indent),
            px(y + 3.0),
            px((w - indent).max(if st.count > 0 { 3.0 } else { 0.0 })),
            px(ROW - 6.0),
            px(LABEL_W + w.max(indent) + 6.0),
            px(y + 15.0),
            count(st.count)
        );
    }
    s.push_str("</svg>");
    s
}
