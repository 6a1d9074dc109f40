//! sGraph enumeration: single-kernel μGraphs found by walking the
//! saturated e-graph of the program.
//!
//! 1. **Target e-graph.** The program's outputs are saturated once with the
//!    verifier's rules (`crate::verify::rules`); every operator a
//!    candidate uses must be an e-node of it (expression-guided pruning:
//!    candidates are generated from the e-graph, so nothing outside it is
//!    ever built).
//! 2. **Loop maps** (the fmap variables): which axis of each input the
//!    kernel's for-loop walks, or none. Walked axes must have one extent
//!    (dimension matching).
//! 3. **Terms** ([`terms`]): per loop map, the loop state of every e-class
//!    ([`states`]), then a depth-first walk choosing e-nodes whose
//!    operands' states fit: each term is one kernel body.
//! 4. **Mapping instantiation** ([`instantiate`]): grid maps by axis
//!    identity, with grid dims in one canonical order, tiles, the
//!    structural check and the shared-memory limit; then the code
//!    generator's templates (a callback, so data flows one way).
//!
//! Everything is ordered (sorted e-classes and e-nodes, cheapest first, a
//! fixed walk per loop map run in parallel and collected in order) and
//! bounded by counts, not time: the same program gives the same
//! candidates, byte for byte. The survivors are ranked by the analytic
//! cost; [`super::strategies`] proves and cross-checks the best.

pub mod cuts;
pub mod instantiate;
pub mod split;
pub mod states;
pub mod terms;

use std::collections::BTreeMap;

use egg::{AstSize, Extractor, Id, RecExpr};
use rayon::prelude::*;
use serde::Serialize;

use crate::ir::{DimBindings, Workload};
use crate::ugraph::{KernelBody, KernelGraph};
use crate::verify::{Limits, Node, from_graph};

use states::{LoopMap, achievable, is_constant, output_states};
use terms::{Walk, WalkLimits};

/// Bounds of an enumeration (all counts: results do not depend on the
/// machine's speed, except for the saturation's safety-net time limit).
#[derive(Clone, Debug)]
pub struct EnumOptions {
    pub saturation: Limits,
    pub walk: WalkLimits,
    /// Candidates handed on to the proof and the cross-check.
    pub keep: usize,
    /// Most kernel cuts per candidate ([`cuts`]); 0: single kernels (and
    /// their split forms) only.
    pub cuts: usize,
}

impl Default for EnumOptions {
    fn default() -> Self {
        EnumOptions {
            saturation: Limits {
                nodes: 6_000,
                iterations: 12,
                time: std::time::Duration::from_secs(20),
            },
            walk: WalkLimits {
                terms: 48,
                steps: 20_000,
                ops: 24,
                accumulators: 4,
            },
            keep: 3,
            cuts: 3,
        }
    }
}

/// The counts `prism search` reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EnumStats {
    /// The target e-graph.
    pub egraph_nodes: usize,
    pub egraph_classes: usize,
    /// Loop maps walked (including "no loop").
    pub loop_maps: usize,
    /// Complete terms generated.
    pub terms: usize,
    /// Mapping instances built from them.
    pub instances: usize,
    /// Instances that passed the structural check, the shared-memory limit
    /// and a code template (distinct ones).
    pub valid: usize,
    /// Pruned choices and instances, by reason.
    pub pruned: BTreeMap<String, usize>,
    /// The part of `pruned` that are mapping instances (the rest are
    /// choices pruned while walking terms): `instances` is the sum of
    /// these and `single_valid`.
    pub pruned_instances: BTreeMap<String, usize>,
    /// Distinct valid single-kernel instances (before kernel cuts).
    pub single_valid: usize,
    /// Kernel-cut graphs equal to one found before (`valid` is
    /// `single_valid + cut_graphs - cut_duplicates`).
    pub cut_duplicates: usize,
    /// Walks that stopped at their term or step bound.
    pub walks_at_bound: usize,
    /// Kernel-cut sets tried, and the multi-kernel graphs they gave.
    pub cut_sets: usize,
    pub cut_graphs: usize,
    /// Wall time of the enumeration (everything else is deterministic).
    pub seconds: f64,
}

/// A valid instance.
#[derive(Clone, Debug)]
pub struct Found {
    pub graph: KernelGraph,
    /// The term, one s-expression per output.
    pub term: Vec<String>,
    /// The loop map, `input:axis` for walked inputs.
    pub loops: String,
    pub micros: f64,
}

/// Every loop map: per input, no axis or one axis of extent other than 1;
/// the walked axes must have equal extents.
fn loop_maps(w: &Workload) -> Vec<LoopMap> {
    let mut maps: Vec<Vec<(String, Option<usize>)>> = vec![vec![]];
    for x in &w.graph.inputs {
        let mut options = vec![None];
        options.extend(
            (0..x.shape.len())
                .filter(|&a| !x.shape[a].is_one())
                .map(Some),
        );
        let mut next = Vec::new();
        for m in &maps {
            for o in &options {
                let mut m = m.clone();
                m.push((x.name.clone(), *o));
                next.push(m);
            }
        }
        maps = next;
    }
    let extent = |name: &str, a: usize| {
        w.graph
            .inputs
            .iter()
            .find(|x| x.name == name)
            .map(|x| x.shape[a].clone())
    };
    maps.into_iter()
        .filter(|m| {
            let mut walked = m.iter().filter_map(|(n, a)| a.and_then(|a| extent(n, a)));
            match walked.next() {
                Some(first) => walked.all(|e| e == first),
                None => true,
            }
        })
        .map(|m| m.into_iter().collect())
        .collect()
}

fn describe(m: &LoopMap) -> String {
    let walked: Vec<String> = m
        .iter()
        .filter_map(|(n, a)| a.map(|a| format!("{n}:{a}")))
        .collect();
    if walked.is_empty() {
        "no loop".into()
    } else {
        walked.join(" ")
    }
}

/// The terms of every loop map, in a fixed order, with the counts so far.
pub struct Walked {
    pub stats: EnumStats,
    pub terms: Vec<(LoopMap, terms::Term)>,
}

/// Saturate the program and walk every loop map (steps 1–3).
pub fn walk_all(w: &Workload, opts: &EnumOptions) -> Result<Walked, String> {
    let exprs: Vec<RecExpr<Node>> = w
        .graph
        .outputs
        .iter()
        .map(|o| from_graph(&w.graph, o.node).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let refs: Vec<&RecExpr<Node>> = exprs.iter().collect();
    let sat = crate::verify::prove::saturate(&refs, &opts.saturation).map_err(|e| e.to_string())?;
    let eg = &sat.egraph;
    let roots: Vec<Id> = sat.roots.iter().map(|r| eg.find(*r)).collect();
    let mut stats = EnumStats {
        egraph_nodes: eg.total_number_of_nodes(),
        egraph_classes: eg.number_of_classes(),
        ..EnumStats::default()
    };
    // The smallest term of every constant class.
    let extractor = Extractor::new(eg, AstSize);
    let mut ids: Vec<Id> = eg.classes().map(|c| c.id).collect();
    ids.sort();
    let constants: BTreeMap<Id, RecExpr<Node>> = ids
        .iter()
        .filter(|c| is_constant(&eg[**c].data))
        .map(|c| (*c, extractor.find_best(*c).1))
        .collect();
    let exp_args = states::exp_args(eg, &refs);
    let maps = loop_maps(w);
    stats.loop_maps = maps.len();
    type WalkOut = (
        LoopMap,
        Vec<terms::Term>,
        BTreeMap<&'static str, usize>,
        usize,
    );
    let walks: Vec<WalkOut> = maps
        .into_par_iter()
        .map(|lm| {
            let best = achievable(eg, &lm, &exp_args);
            let has_loop = lm.values().any(|a| a.is_some());
            let wanted = output_states(has_loop);
            let options: Vec<Vec<(Id, states::State)>> = roots
                .iter()
                .map(|r| {
                    wanted
                        .iter()
                        .filter(|s| best.contains_key(&(*r, **s)))
                        .map(|s| (*r, *s))
                        .collect()
                })
                .collect();
            let mut terms = Vec::new();
            let mut pruned = BTreeMap::new();
            let mut at_bound = 0;
            for goals in states::combinations(&options) {
                let mut walk = Walk::new(eg, &lm, &best, &constants, &exp_args, opts.walk);
                walk.run(&goals);
                terms.append(&mut walk.terms);
                for (k, v) in walk.pruned {
                    *pruned.entry(k).or_default() += v;
                }
                at_bound += usize::from(walk.stopped);
            }
            if options.iter().any(|o| o.is_empty()) {
                *pruned
                    .entry("loop map: an output has no valid state")
                    .or_default() += 1;
            }
            (lm, terms, pruned, at_bound)
        })
        .collect();
    let mut out = Vec::new();
    for (lm, ts, pruned, at_bound) in walks {
        for (k, v) in pruned {
            *stats.pruned.entry(k.to_string()).or_default() += v;
        }
        stats.walks_at_bound += at_bound;
        out.extend(ts.into_iter().map(|t| (lm.clone(), t)));
    }
    stats.terms = out.len();
    Ok(Walked { stats, terms: out })
}

/// The fewest blocks any block kernel of `g` launches at `point`.
pub fn min_blocks(g: &KernelGraph, point: &DimBindings) -> u64 {
    g.kernels
        .iter()
        .filter_map(|k| match &k.body {
            KernelBody::Block(b) => Some(b.blocks(point)),
            KernelBody::Predefined(_) => None,
        })
        .min()
        .unwrap_or(1)
}

/// Enumerate single-kernel candidates for `w`, ranked by cost at `point`;
/// `fits` says whether the code generator can emit a graph.
pub fn enumerate(
    w: &Workload,
    point: &DimBindings,
    opts: &EnumOptions,
    fits: &(dyn Fn(&KernelGraph) -> Result<(), String> + Sync),
) -> Result<(EnumStats, Vec<Found>), String> {
    let start = std::time::Instant::now();
    let Walked { mut stats, terms } = walk_all(w, opts)?;
    // Instantiate every term (in parallel, collected in order).
    let built: Vec<Vec<Result<Found, String>>> = terms
        .par_iter()
        .map(|(lm, t)| {
            instantiate::instances(w, t, lm)
                .into_iter()
                .map(|r| {
                    let g = r?;
                    // The proof's partition rules, checked here so that a
                    // reduction over a grid-cut axis never takes a place
                    // among the candidates handed on.
                    crate::search::partition::check(&g)
                        .map_err(|_| "partition: a reduction over a grid-cut axis".to_string())?;
                    fits(&g).map_err(|_| "no code generation template".to_string())?;
                    let micros = super::strategies::cost(&g, point).micros;
                    Ok(Found {
                        graph: g,
                        term: (0..t.roots.len()).map(|j| t.sexpr(j)).collect(),
                        loops: describe(lm),
                        micros,
                    })
                })
                .collect()
        })
        .collect();
    let mut found: Vec<Found> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in built.into_iter().flatten() {
        stats.instances += 1;
        match r {
            Ok(f) => {
                if seen.insert(format!("{:?}", f.graph)) {
                    found.push(f);
                } else {
                    *stats.pruned.entry("duplicate instance".into()).or_default() += 1;
                    *stats
                        .pruned_instances
                        .entry("duplicate instance".into())
                        .or_default() += 1;
                }
            }
            Err(why) => {
                *stats.pruned.entry(why.clone()).or_default() += 1;
                *stats.pruned_instances.entry(why).or_default() += 1;
            }
        }
    }
    stats.single_valid = found.len();
    // Kernel cuts: pieces enumerated like workloads (without cuts), their
    // best graphs stitched.
    if opts.cuts > 0 {
        let piece_opts = EnumOptions {
            cuts: 0,
            keep: 1,
            ..opts.clone()
        };
        let (cut, sets) = cuts::cut_candidates(w, point, opts, &|pw: &Workload| {
            enumerate(pw, point, &piece_opts, fits)
                .ok()
                .and_then(|(_, f)| f.into_iter().next())
        });
        stats.cut_sets = sets;
        stats.cut_graphs = cut.len();
        for f in cut {
            if seen.insert(format!("{:?}", f.graph)) {
                found.push(f);
            } else {
                stats.cut_duplicates += 1;
            }
        }
    }
    stats.valid = found.len();
    let ops = |f: &Found| -> usize {
        f.graph
            .kernels
            .iter()
            .map(|k| match &k.body {
                KernelBody::Block(b) => b.ops.len(),
                KernelBody::Predefined(_) => 0,
            })
            .sum()
    };
    // Cheapest first; then more parallelism (the analytic cost has no
    // occupancy term yet: of equal traffic, the graph whose smallest kernel
    // has more blocks fills more SMs); fewer operators; generation order.
    let parallel = |f: &Found| std::cmp::Reverse(min_blocks(&f.graph, point));
    found.sort_by(|a, b| {
        a.micros
            .total_cmp(&b.micros)
            .then(parallel(a).cmp(&parallel(b)))
            .then(ops(a).cmp(&ops(b)))
    });
    found.truncate(opts.keep);
    stats.seconds = start.elapsed().as_secs_f64();
    Ok((stats, found))
}
