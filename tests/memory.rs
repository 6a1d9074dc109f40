//! The memory target of issue 6: no launch needs more device memory than
//! its inputs, its outputs and a split workspace of at most the output's
//! size × splits. Checked on what a build embeds (every variant prism.lock
//! names for the bundled prism.toml) at every declared point, without a
//! GPU, from the launch plan:
//!
//! - split workspaces (split-K partial sums, flash-decoding partial `o`,
//!   `m`, `l`) are f32, and hold at most two accumulators per output
//!   element and split: the dual GEMM of the gated kernels keeps two, a
//!   flash split keeps one plus two row statistics (`2 / dv` of one);
//! - every other intermediate is no larger than the largest input (the
//!   normalized `q` of qk_norm_attention, LoRA's `x · A`).

mod common;

use prism::ir::DimBindings;
use prism::tune::instances::split_count;
use prism::ugraph::{KernelGraph, TensorRole};

/// Bytes of tensor `t` of `g` at `p`.
fn bytes(g: &KernelGraph, t: usize, p: &DimBindings) -> u64 {
    let x = &g.tensors[t];
    x.elements_at(p) * x.dtype.size() as u64
}

#[test]
fn split_workspaces_and_intermediates_stay_within_the_memory_target() {
    let (spec, locked) = common::bundled_locked();
    let mut checked = 0;
    let mut worst: f64 = 0.0;
    for (w, (r, k)) in spec.workloads.iter().zip(&locked) {
        for ((label, g), plan) in r.variants.iter().zip(&k.variants) {
            let flash_splits = split_count(g).filter(|&s| s > 1);
            for p in w.points_or_max() {
                let outputs: u64 = (0..g.tensors.len())
                    .filter(|&t| matches!(g.tensors[t].role, TensorRole::Output(_)))
                    .map(|t| g.tensors[t].elements_at(&p))
                    .sum();
                let largest_input = (0..g.tensors.len())
                    .filter(|&t| matches!(g.tensors[t].role, TensorRole::Input(_)))
                    .map(|t| bytes(g, t, &p))
                    .max()
                    .unwrap_or(0);
                let mut splits: u64 = 1;
                let mut workspace: u64 = 0;
                for l in &plan.launches {
                    if l.split_k.is_some() {
                        splits = splits.max(u64::from(l.splits()));
                        workspace += 4 * l.workspace_at(&p).expect("workspace") as u64;
                    }
                }
                for (t, x) in g.tensors.iter().enumerate() {
                    if x.role != TensorRole::Intermediate {
                        continue;
                    }
                    let split_axis = flash_splits.is_some_and(|s| {
                        x.shape.first().and_then(|d| d.as_constant()) == Some(i64::from(s))
                    });
                    if split_axis {
                        splits = splits.max(u64::from(flash_splits.unwrap_or(1)));
                        assert_eq!(x.dtype, prism::ir::DType::F32, "{}: {label}", w.name);
                        workspace += bytes(g, t, &p);
                    } else {
                        assert!(
                            bytes(g, t, &p) <= largest_input,
                            "{} {label} at {p:?}: intermediate {} of {} bytes, above the largest input's {largest_input}",
                            w.name,
                            x.name,
                            bytes(g, t, &p)
                        );
                    }
                }
                let unit = 4 * outputs * splits;
                assert!(
                    workspace <= 2 * unit,
                    "{} {label} at {p:?}: {workspace} bytes of split workspace, above two f32 accumulators per output element and split ({})",
                    w.name,
                    2 * unit
                );
                if workspace > 0 {
                    worst = worst.max(workspace as f64 / unit as f64);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} variant points checked");
    // The dual GEMM's split-K keeps exactly two accumulators per element.
    assert!(worst > 1.0 && worst <= 2.0, "{worst}");
}
