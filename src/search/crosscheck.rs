//! The numeric cross-check: a μGraph run by the μGraph interpreter against the
//! tensor program run by the reference interpreter, both in f64, on seeded
//! random inputs at small concrete dims — including dims that do not divide
//! the μGraph's tiles, dims that need several for-loop iterations, and for
//! split loops dims that give every split several iterations.
//!
//! It catches what a proof cannot: an unsound rewrite rule, a wrong map, a
//! code path the proof did not model. A disagreement is an error that names
//! the dims, the seed and the output.

use crate::ir::{DimBindings, Workload};
use crate::reference::{self, Comparison, EvalError, Precision, compare};
use crate::ugraph::interp::{self, InterpError};
use crate::ugraph::{KernelBody, KernelGraph};

/// Relative L2 error above which the two interpreters disagree (both are
/// exact f64 up to summation order).
pub const THRESHOLD: f64 = 1e-9;

/// Largest intermediate the cross-check evaluates, in elements.
const MAX_ELEMENTS: usize = 1 << 21;
/// The same for the split trial, whose loop axis alone must exceed
/// splits × tile (e.g. 64 splits of 64 keys of 128-wide heads).
const MAX_SPLIT_ELEMENTS: usize = 1 << 24;

#[derive(Clone, Debug)]
pub struct CrossCheckOptions {
    pub trials: usize,
    pub seed: u64,
}

impl Default for CrossCheckOptions {
    fn default() -> Self {
        CrossCheckOptions { trials: 4, seed: 1 }
    }
}

/// One agreeing trial.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial {
    pub dims: DimBindings,
    pub seed: u64,
    pub worst_rel_l2: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum CrossCheckError {
    #[error(
        "the μGraph disagrees with the program at {dims:?} (seed {seed}), output `{output}`: {comparison:?}"
    )]
    Mismatch {
        dims: DimBindings,
        seed: u64,
        output: String,
        comparison: Option<Comparison>,
    },
    #[error("the μGraph cannot run at {dims:?}: {source}")]
    Interp {
        dims: DimBindings,
        #[source]
        source: Box<InterpError>,
    },
    #[error("the program cannot run at {dims:?}: {source}")]
    Reference {
        dims: DimBindings,
        #[source]
        source: Box<EvalError>,
    },
}

/// The largest tile or loop step in the graph: dims around it exercise
/// clipped edge tiles and several loop iterations.
fn largest_tile(g: &KernelGraph) -> i64 {
    let mut t = 1;
    for k in &g.kernels {
        if let KernelBody::Block(b) = &k.body {
            for gd in &b.grid {
                t = t.max(i64::from(gd.tile));
            }
            if let Some(l) = &b.forloop {
                t = t.max(i64::from(l.tile));
            }
        }
    }
    t
}

/// Whether every tensor of the program has at most `cap` elements at `dims`.
fn fits(w: &Workload, dims: &DimBindings, cap: usize) -> bool {
    reference::shapes_at(&w.graph, dims)
        .map(|shapes| shapes.iter().all(|s| s.iter().product::<usize>() <= cap))
        .unwrap_or(false)
}

/// The largest tile or loop step over an extent that mentions dim `sym`
/// (at least 1): a value beyond it clips edge tiles and runs several loop
/// iterations wherever `sym` is cut.
fn tile_of(graphs: &[&KernelGraph], sym: &str) -> i64 {
    let mentions = |e: &crate::ir::DimExpr| e.symbols().iter().any(|s| s == sym);
    let mut t = 1;
    for k in graphs.iter().flat_map(|g| &g.kernels) {
        if let KernelBody::Block(b) = &k.body {
            for gd in &b.grid {
                if gd.extents.last().is_some_and(mentions) {
                    t = t.max(i64::from(gd.tile));
                }
            }
            if let Some(l) = b.forloop.as_ref().filter(|l| mentions(&l.extent)) {
                t = t.max(i64::from(l.tile));
            }
        }
    }
    t
}

/// Dims of trial `t`: small, mostly odd values; from the second trial on,
/// one dim in turn is large: beyond every tile that cuts it, not dividing
/// it (`2·tile + 3`, and at least 17). Dims no kernel cuts stay small (a
/// large value there would only slow the interpreter). Falls back to
/// smaller values when a tensor would get too large.
pub fn trial_dims(w: &Workload, g: &KernelGraph, t: usize) -> DimBindings {
    shared_trial_dims(w, &[g], t)
}

/// [`trial_dims`] for several candidates at once: each dim beyond every
/// tile that cuts it in any of them.
fn shared_trial_dims(w: &Workload, graphs: &[&KernelGraph], t: usize) -> DimBindings {
    const SMALL: [i64; 6] = [3, 5, 7, 2, 11, 13];
    let n = w.dims.len();
    let tile = if t > 0 && n > 0 {
        tile_of(graphs, &w.dims[(t - 1) % n].name).max(7)
    } else {
        graphs.iter().map(|g| largest_tile(g)).max().unwrap_or(1)
    };
    let mut candidates = vec![2 * tile + 3, tile + 3, 17, 7];
    candidates.dedup();
    for big in candidates {
        let dims: DimBindings = w
            .dims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let v = if t > 0 && n > 0 && i == (t - 1) % n {
                    big
                } else {
                    SMALL[(i + t) % SMALL.len()]
                };
                (d.name.clone(), v)
            })
            .collect();
        if fits(w, &dims, MAX_ELEMENTS) {
            return dims;
        }
    }
    w.dims.iter().map(|d| (d.name.clone(), 2)).collect()
}

/// Extra trials for split loops: each split must run several iterations,
/// so the loop extent must exceed splits × tile. Per split loop: every dim
/// 2 except one symbol of the extent (the one fewest tensor axes use), set
/// to `(splits + 1) · tile + 3` (two or more tiles per split, a clipped last
/// tile); dropped when a tensor would get too large.
fn split_trials(w: &Workload, graphs: &[&KernelGraph]) -> Vec<DimBindings> {
    let mut out: Vec<DimBindings> = Vec::new();
    for g in graphs {
        for k in &g.kernels {
            let KernelBody::Block(b) = &k.body else {
                continue;
            };
            let Some(fl) = &b.forloop else { continue };
            let Some(splits) = fl
                .split
                .and_then(|s| b.grid.get(s))
                .and_then(|gd| gd.extents.first())
                .and_then(|e| e.as_constant())
            else {
                continue;
            };
            let uses = |sym: &str| {
                g.tensors
                    .iter()
                    .flat_map(|t| &t.shape)
                    .filter(|d| d.symbols().iter().any(|s| s == sym))
                    .count()
            };
            let declared: Vec<String> = w.dims.iter().map(|d| d.name.clone()).collect();
            let Some(sym) = fl
                .extent
                .symbols()
                .into_iter()
                .filter(|s| declared.contains(s))
                .min_by_key(|s| (uses(s), s.clone()))
            else {
                continue;
            };
            let mut dims: DimBindings = w.dims.iter().map(|d| (d.name.clone(), 2)).collect();
            let tile = i64::from(fl.tile);
            dims.insert(sym, splits * tile + tile + 3);
            if fits(w, &dims, MAX_SPLIT_ELEMENTS) && !out.contains(&dims) {
                out.push(dims);
            }
        }
    }
    out
}

/// Input elements above which only one trial runs (model-sized constant
/// dims, e.g. a 4096 × 14336 weight, make each trial cost seconds).
const HUGE_INPUTS: usize = 1 << 25;

/// The trials to run: all of them, or for huge inputs only trial 1 (a dim
/// beyond the largest tile, not dividing it).
fn trial_ids(w: &Workload, graphs: &[&KernelGraph], trials: usize) -> Vec<usize> {
    let dims = shared_trial_dims(w, graphs, 0);
    let elements: usize = reference::shapes_at(&w.graph, &dims)
        .map(|shapes| {
            w.graph
                .nodes
                .iter()
                .zip(shapes)
                .filter(|(n, _)| matches!(n.op, crate::ir::Op::Input(_)))
                .map(|(_, s)| s.iter().product::<usize>())
                .sum()
        })
        .unwrap_or(0);
    if elements > HUGE_INPUTS && trials > 1 {
        vec![1]
    } else {
        (0..trials).collect()
    }
}

/// Run `g` against `w`'s program on `options.trials` trials.
pub fn cross_check(
    w: &Workload,
    g: &KernelGraph,
    options: &CrossCheckOptions,
) -> Result<Vec<Trial>, CrossCheckError> {
    cross_check_all(w, &[g], options).remove(0)
}

/// Cross-check several candidates of one workload on shared trials (each
/// dim in turn beyond every tile that cuts it in any candidate; dims no
/// kernel cuts stay small), each trial's inputs and reference outputs
/// computed once; split-loop candidates also run their split trials. One
/// result per candidate, in order.
pub fn cross_check_all(
    w: &Workload,
    graphs: &[&KernelGraph],
    options: &CrossCheckOptions,
) -> Vec<Result<Vec<Trial>, CrossCheckError>> {
    // The regular trials, shared; then per split-loop candidate its split
    // trials.
    let shared: Vec<(usize, DimBindings)> = trial_ids(w, graphs, options.trials)
        .into_iter()
        .map(|t| (t, shared_trial_dims(w, graphs, t)))
        .collect();
    let plans: Vec<Vec<(usize, DimBindings)>> = graphs
        .iter()
        .map(|g| {
            // Empty for a graph without a split loop.
            let split = split_trials(w, &[g]);
            let mut plan = shared.clone();
            plan.extend(
                split
                    .into_iter()
                    .enumerate()
                    .map(|(j, d)| (options.trials + j, d)),
            );
            plan
        })
        .collect();
    let mut results: Vec<Result<Vec<Trial>, CrossCheckError>> =
        graphs.iter().map(|_| Ok(Vec::new())).collect();
    // Distinct trials in first-use order, each evaluated once.
    let mut distinct: Vec<(usize, DimBindings)> = Vec::new();
    for plan in &plans {
        for t in plan {
            if !distinct.contains(t) {
                distinct.push(t.clone());
            }
        }
    }
    for (t, dims) in distinct {
        let seed = options.seed.wrapping_add(t as u64);
        let users: Vec<usize> = (0..graphs.len())
            .filter(|&i| plans[i].iter().any(|p| p.0 == t && p.1 == dims))
            .filter(|&i| results[i].is_ok())
            .collect();
        if users.is_empty() {
            continue;
        }
        let reference = reference::random_inputs(w, &dims, seed).and_then(|inputs| {
            let want = reference::eval(&w.graph, &dims, &inputs, Precision::F64)?;
            Ok((inputs, want))
        });
        let (inputs, want) = match reference {
            Ok(r) => r,
            Err(source) => {
                let mut source = Some(source);
                for &i in &users {
                    let e = source
                        .take()
                        .unwrap_or(EvalError::Malformed("see the first candidate's failure"));
                    results[i] = Err(CrossCheckError::Reference {
                        dims: dims.clone(),
                        source: Box::new(e),
                    });
                }
                continue;
            }
        };
        for i in users {
            let Ok(trials) = &mut results[i] else {
                continue;
            };
            match one_trial(w, graphs[i], &dims, seed, &inputs, &want) {
                Ok(trial) => trials.push(trial),
                Err(e) => results[i] = Err(e),
            }
        }
    }
    results
}

fn one_trial(
    w: &Workload,
    g: &KernelGraph,
    dims: &DimBindings,
    seed: u64,
    inputs: &[crate::reference::Tensor],
    want: &[crate::reference::Tensor],
) -> Result<Trial, CrossCheckError> {
    let got = interp::run(g, dims, inputs).map_err(|source| CrossCheckError::Interp {
        dims: dims.clone(),
        source: Box::new(source),
    })?;
    let mut worst = 0.0f64;
    for (i, want) in want.iter().enumerate() {
        let name = w.graph.outputs[i].name.clone();
        match got.get(i).and_then(|g| compare(g, want)) {
            Some(c) if c.rel_l2 <= THRESHOLD && c.non_finite_mismatches == 0 => {
                worst = worst.max(c.rel_l2);
            }
            c => {
                return Err(CrossCheckError::Mismatch {
                    dims: dims.clone(),
                    seed,
                    output: name,
                    comparison: c,
                });
            }
        }
    }
    Ok(Trial {
        dims: dims.clone(),
        seed,
        worst_rel_l2: worst,
    })
}
