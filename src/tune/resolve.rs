//! What a build runs: per workload, target arch and shape bucket, the
//! instance prism.lock names (rebuilt, and compared with the fingerprint it
//! was tuned with), else the cost model's first choice; as codegen
//! variants plus per-arch dispatch tables.
//!
//! A missing entry falls back to the model (the caller warns); a stale one
//! (its instance no longer rebuilds to the graph that was tuned) likewise,
//! never silently: both are listed. Offline (`PRISM_OFFLINE=1`) either is
//! an error.

use std::collections::BTreeMap;

use serde::Serialize;

use super::buckets::{ShapeBucket, buckets};
use super::instances::{Instance, InstanceId, set_splits, unverified, verify};
use super::lock::{Entry, Lock, Source, key};
use super::tuner::{BucketResult, hardware_for, rank};
use crate::codegen::{ArchDispatch, DispatchEntry};
use crate::ir::{Arch, Spec, Workload};
use crate::search::cache::graph_fingerprint;
use crate::search::crosscheck::CrossCheckOptions;
use crate::search::strategies::{Strategy, rebuild};
use crate::ugraph::KernelGraph;

/// Where one (arch, bucket) choice came from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Origin {
    /// The lock's entry (measured or model, as recorded).
    Lock(Source),
    /// No usable entry: the cost model's choice now.
    Model,
}

/// One resolved choice: the kernel instance a build uses for one target
/// architecture and shape bucket of a workload
/// ([`BuiltWorkload::choices`](crate::build::BuiltWorkload::choices)).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Choice {
    /// The target architecture (`sm_90a`).
    pub arch: String,
    /// The shape bucket's label: each dim's range (`n=1..=8 d=4096`).
    pub bucket: String,
    /// The instance's label (`sgraph#0 splits=16`).
    pub instance: String,
    /// Where the choice came from: prism.lock or the cost model.
    pub origin: Origin,
    /// Why the lock's entry was not used (missing or stale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A workload's resolution.
pub struct Resolution {
    /// Distinct graphs, labelled, in first-use order.
    pub variants: Vec<(String, KernelGraph)>,
    pub dispatch: Vec<ArchDispatch>,
    pub choices: Vec<Choice>,
}

impl Resolution {
    /// Choices whose lock entry was missing or stale.
    pub fn problems(&self) -> impl Iterator<Item = &Choice> {
        self.choices.iter().filter(|c| c.problem.is_some())
    }
}

/// Why a workload cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// `PRISM_OFFLINE` is set and prism.lock lacks fresh entries for the
    /// workload.
    #[error(
        "workload `{workload}`: {count} of its tuned kernels are not in {lock} or are stale (first: {first}) and PRISM_OFFLINE is set\nhint: run `{command}` on a machine with a GPU and commit the lock, or unset PRISM_OFFLINE to use the cost model's choice"
    )]
    Offline {
        /// The workload.
        workload: String,
        /// How many (arch, bucket) entries are missing or stale.
        count: usize,
        /// What is wrong with the first of them.
        first: String,
        /// The prism.lock, for the message.
        lock: String,
        /// The command that tunes it (`prism tune prism.toml`).
        command: String,
    },
    /// The workload has no usable instance.
    #[error(
        "workload `{workload}`: {message}\nhint: prism found no kernel instance for a shape bucket: report the workload to prism; `prism search` shows its candidates"
    )]
    Instances {
        /// The workload.
        workload: String,
        /// Why.
        message: String,
    },
}

fn ranges(b: &ShapeBucket) -> Vec<(i64, i64)> {
    b.dims.iter().map(|(_, x)| (x.lo, x.hi)).collect()
}

/// Resolve `w` for every arch of `spec.target` from `lock` (entries keyed
/// with `nvcc`'s release). `command` is what to run to tune it (for
/// messages).
pub fn resolve(
    spec: &Spec,
    w: &Workload,
    lock: Option<&Lock>,
    nvcc: &str,
    offline: bool,
    lock_name: &str,
    command: &str,
) -> Result<Resolution, ResolveError> {
    let fits = |g: &KernelGraph| crate::codegen::cuda::fits(w, g);
    let bs = buckets(w);
    let picked = locked(spec, w, lock, nvcc);
    let failed: Vec<&String> = picked.iter().filter_map(|p| p.2.as_ref().err()).collect();
    if offline && let Some(first) = failed.first() {
        return Err(ResolveError::Offline {
            workload: w.name.clone(),
            count: failed.len(),
            first: (*first).clone(),
            lock: lock_name.to_string(),
            command: command.to_string(),
        });
    }
    // The model's choices: the search's verified candidates and their
    // split variants, ranked; a variant is verified only when it would be
    // chosen (the first that passes wins).
    let (insts, mut verified): (Vec<Instance>, Vec<Option<bool>>) = if failed.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        unverified(w, &CrossCheckOptions::default(), &fits)
            .map_err(|e| ResolveError::Instances {
                workload: w.name.clone(),
                message: e.to_string(),
            })?
            .into_iter()
            .map(|(i, ok)| (i, ok.then_some(true)))
            .unzip()
    };
    let mut variants: Vec<(String, KernelGraph)> = Vec::new();
    let mut dispatch: Vec<ArchDispatch> = Vec::new();
    let mut choices = Vec::new();
    for (arch, bi, r) in picked {
        let b = &bs[bi];
        let (label, graph, origin, problem) = match r {
            Ok((id, g, src)) => (id.label(), g, Origin::Lock(src), None),
            Err(why) => {
                let hw = hardware_for(spec, &arch).ok_or_else(|| ResolveError::Instances {
                    workload: w.name.clone(),
                    message: format!("no hardware description for {arch}"),
                })?;
                let mut best = None;
                for (i, _) in rank(&insts, &b.tuning_point(), hw, &arch) {
                    let ok = *verified[i].get_or_insert_with(|| {
                        verify(w, &[&insts[i].graph], &CrossCheckOptions::default())
                            .first()
                            .copied()
                            .unwrap_or(false)
                    });
                    if ok {
                        best = Some(&insts[i]);
                        break;
                    }
                }
                let best = best.ok_or_else(|| ResolveError::Instances {
                    workload: w.name.clone(),
                    message: "no verified instance".into(),
                })?;
                (
                    best.id.label(),
                    best.graph.clone(),
                    Origin::Model,
                    Some(why),
                )
            }
        };
        let v = match variants.iter().position(|(_, g)| *g == graph) {
            Some(v) => v,
            None => {
                variants.push((label.clone(), graph));
                variants.len() - 1
            }
        };
        let arch_name = arch.to_string();
        if dispatch.last().is_none_or(|d| d.arch != arch_name) {
            dispatch.push(ArchDispatch {
                arch: arch_name.clone(),
                capability: arch.capability,
                entries: Vec::new(),
            });
        }
        if let Some(d) = dispatch.last_mut() {
            d.entries.push(DispatchEntry {
                ranges: ranges(b),
                variant: v,
            });
        }
        choices.push(Choice {
            arch: arch_name,
            bucket: b.label(),
            instance: label,
            origin,
            problem,
        });
    }
    Ok(Resolution {
        variants,
        dispatch,
        choices,
    })
}

/// Per target arch and bucket (index into [`buckets`]): the lock's
/// instance rebuilt and matching its fingerprint, or why not (missing,
/// unknown, stale).
pub type Locked = Vec<(
    Arch,
    usize,
    Result<(InstanceId, KernelGraph, Source), String>,
)>;

/// The lock's choices for `w` ([`Locked`]).
pub fn locked(spec: &Spec, w: &Workload, lock: Option<&Lock>, nvcc: &str) -> Locked {
    let fits = |g: &KernelGraph| crate::codegen::cuda::fits(w, g);
    // One rebuild per candidate (a searched one runs the enumeration), its
    // split variants derived from it.
    let mut bases: BTreeMap<Strategy, Result<KernelGraph, String>> = BTreeMap::new();
    let mut rebuilt: BTreeMap<InstanceId, Result<KernelGraph, String>> = BTreeMap::new();
    let bs = buckets(w);
    // Per arch and bucket: the locked graph, or why not.
    let mut picked: Locked = Vec::new();
    for arch in &spec.target.archs {
        for (bi, b) in bs.iter().enumerate() {
            let k = key(w, b, arch, nvcc);
            let r = match lock.and_then(|l| l.get(&k)) {
                None => Err(format!("no entry for {arch} {}", b.label())),
                Some(e) => match InstanceId::parse(&e.instance) {
                    None => Err(format!(
                        "entry for {arch} {} names an unknown instance `{}`",
                        b.label(),
                        e.instance
                    )),
                    Some(id) => {
                        let g = rebuilt.entry(id).or_insert_with(|| {
                            bases
                                .entry(id.strategy)
                                .or_insert_with(|| rebuild(w, id.strategy, &fits))
                                .clone()
                                .and_then(|g| set_splits(g, id))
                        });
                        match g {
                            Ok(g) if !super::tiles::runs_on(g, arch) => Err(format!(
                                "entry for {arch} {} names `{}`, whose warpgroup-MMA kernels run on sm_90a only",
                                b.label(),
                                e.instance
                            )),
                            Ok(g) if graph_fingerprint(g) == e.graph => {
                                Ok((id, g.clone(), e.source))
                            }
                            Ok(_) => Err(format!(
                                "entry for {arch} {} is stale: `{}` is no longer the graph that was tuned",
                                b.label(),
                                e.instance
                            )),
                            Err(why) => Err(format!(
                                "entry for {arch} {} is stale: `{}` cannot be rebuilt ({why})",
                                b.label(),
                                e.instance
                            )),
                        }
                    }
                },
            };
            picked.push((arch.clone(), bi, r));
        }
    }
    picked
}

/// Entries of `lock` whose keys no workload, arch and bucket of `spec`
/// has (a changed prism.toml, prism or nvcc): `workload bucket arch`.
pub fn orphans(spec: &Spec, lock: &Lock, nvcc: &str) -> Vec<String> {
    let mut keys = std::collections::HashSet::new();
    for w in &spec.workloads {
        for arch in &spec.target.archs {
            for b in buckets(w) {
                keys.insert(key(w, &b, arch, nvcc));
            }
        }
    }
    lock.entries
        .iter()
        .filter(|e| !keys.contains(&e.key))
        .map(|e| format!("{} {} {}", e.workload, e.bucket, e.arch))
        .collect()
}

/// Lock entries for `w` on `arch` from measured results (`results` of this
/// workload and arch, in bucket order).
pub fn measured_entries(
    w: &Workload,
    arch: &Arch,
    nvcc: &str,
    results: &[&BucketResult],
) -> Vec<Entry> {
    let bs = buckets(w);
    let mut out = Vec::new();
    for b in &bs {
        let Some(r) = results.iter().find(|r| r.bucket == b.label()) else {
            continue;
        };
        let Some(c) = r.chosen() else { continue };
        let m = r.model_choice();
        out.push(Entry {
            workload: w.name.clone(),
            bucket: b.label(),
            arch: arch.to_string(),
            key: key(w, b, arch, nvcc),
            instance: c.instance.clone(),
            graph: c.graph.clone(),
            source: Source::Measured,
            micros: c.micros,
            model_instance: m.map(|m| m.instance.clone()),
            model_micros: m.and_then(|m| m.micros),
            device: Some(r.device.clone()),
        });
    }
    out
}

/// Lock entries for `w` on `arch` from the cost model alone (an arch no
/// GPU here has).
pub fn model_entries(
    spec: &Spec,
    w: &Workload,
    arch: &Arch,
    nvcc: &str,
    insts: &[Instance],
) -> Vec<Entry> {
    let Some(hw) = hardware_for(spec, arch) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for b in buckets(w) {
        let Some(&(i, _)) = rank(insts, &b.tuning_point(), hw, arch).first() else {
            continue;
        };
        out.push(Entry {
            workload: w.name.clone(),
            bucket: b.label(),
            arch: arch.to_string(),
            key: key(w, &b, arch, nvcc),
            instance: insts[i].id.label(),
            graph: graph_fingerprint(&insts[i].graph),
            source: Source::Model,
            micros: None,
            model_instance: None,
            model_micros: None,
            device: None,
        });
    }
    out
}

/// Lock entries from a tuning run: measured ones for the arch the GPUs
/// ran, the cost model's for every other target arch.
pub fn tuned_entries(spec: &Spec, tuned: &super::tuner::Tuned, nvcc: &str) -> Vec<Entry> {
    let mut fresh = Vec::new();
    for (name, insts) in &tuned.instances {
        let Some(w) = spec.workload(name) else {
            continue;
        };
        for arch in &spec.target.archs {
            if *arch == tuned.arch {
                let rs: Vec<&BucketResult> = tuned
                    .results
                    .iter()
                    .filter(|r| r.workload == *name)
                    .collect();
                fresh.extend(measured_entries(w, arch, nvcc, &rs));
            } else {
                fresh.extend(model_entries(spec, w, arch, nvcc, insts));
            }
        }
    }
    fresh
}

/// What a GPU tuning run keeps of the old lock: every measured entry, and
/// the model entries of the workloads it does not tune (`tuned`); the
/// model entries of the workloads it tunes are recomputed.
pub fn kept_entries(old: &Lock, tuned: &[String]) -> Lock {
    Lock {
        entries: old
            .entries
            .iter()
            .filter(|e| e.source == Source::Measured || !tuned.contains(&e.workload))
            .cloned()
            .collect(),
        ..old.clone()
    }
}

/// The entries of `fresh` and then `old` (those `fresh` lacks), ordered by
/// workload (spec order), arch (target order) and bucket; entries of keys
/// the spec no longer has are dropped.
pub fn merge(spec: &Spec, nvcc: &str, fresh: &[Entry], old: Option<&Lock>) -> Lock {
    let mut lock = Lock::new(nvcc);
    for w in &spec.workloads {
        for arch in &spec.target.archs {
            for b in buckets(w) {
                let k = key(w, &b, arch, nvcc);
                let e = fresh
                    .iter()
                    .find(|e| e.key == k)
                    .or_else(|| old.and_then(|l| l.get(&k)));
                if let Some(e) = e {
                    lock.entries.push(e.clone());
                }
            }
        }
    }
    lock
}
