//! Shape buckets: the declared dim ranges cut into the pieces one tuned
//! instance serves.
//!
//! A range is cut at powers of two (cubecl's autotune keys do the same):
//! `1..=2048` gives `1`, `2`, `3..=4`, `5..=8`, ..., `1025..=2048`. A listed
//! value is a bucket of its own. A workload's buckets are the product of
//! its dims' buckets, in declaration order. Each bucket is tuned at its
//! largest point (the instance must cover the whole bucket, and the largest
//! shape is the one whose time matters most), and the runtime picks the
//! bucket of a launch's dims with [`bucket_of`].

use serde::Serialize;

use crate::ir::{DimBindings, DimValues, Workload};

/// The values of one dim one instance serves: `lo..=hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Bucket {
    pub lo: i64,
    pub hi: i64,
}

impl Bucket {
    pub fn contains(&self, v: i64) -> bool {
        (self.lo..=self.hi).contains(&v)
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}..={}", self.lo, self.hi)
        }
    }
}

/// Most buckets per workload: beyond it, the dims with the most buckets
/// are coarsened (two neighbouring power-of-two buckets merged) until the
/// product fits.
pub const MAX_BUCKETS: usize = 64;

/// The buckets of one dim's declared values, ascending.
pub fn dim_buckets(values: &DimValues) -> Vec<Bucket> {
    match values {
        DimValues::List(l) => l.iter().map(|&v| Bucket { lo: v, hi: v }).collect(),
        DimValues::Range { lo, hi } => {
            let mut out = Vec::new();
            let mut start = (*lo).max(1);
            while start <= *hi {
                // The power of two at or above `start` closes its bucket.
                let top = (start as u64).next_power_of_two().min(i64::MAX as u64) as i64;
                let end = top.min(*hi);
                out.push(Bucket { lo: start, hi: end });
                start = end.saturating_add(1);
                if end == i64::MAX {
                    break;
                }
            }
            out
        }
    }
}

/// Merge neighbouring buckets pairwise (`[1,1],[2,2],[3,4]` → `[1,2],[3,4]`).
fn coarsen(b: &[Bucket]) -> Vec<Bucket> {
    b.chunks(2)
        .map(|c| Bucket {
            lo: c[0].lo,
            hi: c[c.len() - 1].hi,
        })
        .collect()
}

/// A workload's shape buckets: per dim (declaration order) its bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShapeBucket {
    pub dims: Vec<(String, Bucket)>,
}

impl ShapeBucket {
    /// The point it is tuned at: every dim at its bucket's top.
    pub fn tuning_point(&self) -> DimBindings {
        self.dims.iter().map(|(n, b)| (n.clone(), b.hi)).collect()
    }

    /// `n=5..=8 d=4096`.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self.dims.iter().map(|(n, b)| format!("{n}={b}")).collect();
        parts.join(" ")
    }
}

/// Per dim (declaration order) its buckets, coarsened to at most
/// [`MAX_BUCKETS`] combinations. Listed values are never merged.
pub fn per_dim(w: &Workload) -> Vec<(String, Vec<Bucket>)> {
    let mut dims: Vec<(String, Vec<Bucket>, bool)> = w
        .dims
        .iter()
        .map(|d| {
            let ranged = matches!(d.values, DimValues::Range { .. });
            (d.name.clone(), dim_buckets(&d.values), ranged)
        })
        .collect();
    let count = |d: &[(String, Vec<Bucket>, bool)]| {
        d.iter()
            .map(|(_, b, _)| b.len())
            .fold(1usize, usize::saturating_mul)
    };
    while count(&dims) > MAX_BUCKETS {
        // The ranged dim with the most buckets (the first on ties).
        let Some(widest) = dims
            .iter_mut()
            .filter(|(_, b, ranged)| *ranged && b.len() > 1)
            .reduce(|a, b| if b.1.len() > a.1.len() { b } else { a })
        else {
            break;
        };
        widest.1 = coarsen(&widest.1);
    }
    dims.into_iter().map(|(n, b, _)| (n, b)).collect()
}

/// Every shape bucket of `w`, in a fixed order (the last dim varies
/// fastest).
pub fn buckets(w: &Workload) -> Vec<ShapeBucket> {
    let mut out = vec![ShapeBucket { dims: vec![] }];
    for (name, bs) in per_dim(w) {
        let mut next = Vec::with_capacity(out.len() * bs.len());
        for sb in &out {
            for b in &bs {
                let mut dims = sb.dims.clone();
                dims.push((name.clone(), *b));
                next.push(ShapeBucket { dims });
            }
        }
        out = next;
    }
    out
}

/// The index in [`buckets`] of the bucket holding `dims`, or `None` when a
/// dim is missing or outside the declared values.
pub fn bucket_of(w: &Workload, dims: &DimBindings) -> Option<usize> {
    let mut index = 0usize;
    for (name, bs) in per_dim(w) {
        let v = *dims.get(&name)?;
        let decl = w.dim(&name)?;
        if !decl.values.contains(v) {
            return None;
        }
        let k = bs.iter().position(|b| b.contains(v))?;
        index = index * bs.len() + k;
    }
    Some(index)
}
