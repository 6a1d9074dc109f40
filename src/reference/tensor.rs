//! Dense row-major tensors of the reference interpreter.

use serde::Serialize;

/// A dense row-major tensor. Values are stored as f64 whatever the precision
/// they were computed in.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Tensor {
    /// `data.len()` must equal the product of `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f64>) -> Option<Self> {
        (shape.iter().product::<usize>() == data.len()).then_some(Tensor { shape, data })
    }

    pub fn scalar(v: f64) -> Self {
        Tensor {
            shape: vec![],
            data: vec![v],
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// How far a result is from the reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// ‖got − want‖₂ / ‖want‖₂ (‖got − want‖₂ when want is all zeros).
    pub rel_l2: f64,
    pub max_abs: f64,
    /// Elements where exactly one of the two is NaN or infinite.
    pub non_finite_mismatches: usize,
}

impl Comparison {
    pub fn within(&self, tolerance: f64) -> bool {
        self.non_finite_mismatches == 0 && self.rel_l2 <= tolerance
    }
}

/// Compare outputs one by one with `want`, the outputs of `reference`
/// (named in the message): the largest relative L2 error seen, and why they
/// disagree (their count, a shape, or the first output not within
/// `tolerance`: relative L2, no non-finite mismatches).
pub fn compare_outputs(
    got: &[Tensor],
    want: &[Tensor],
    tolerance: f64,
    reference: &str,
) -> (f64, Option<String>) {
    if got.len() != want.len() {
        return (
            f64::NAN,
            Some(format!("{} outputs, expected {}", got.len(), want.len())),
        );
    }
    let mut worst: f64 = 0.0;
    for (j, (g, w)) in got.iter().zip(want).enumerate() {
        let Some(c) = compare(g, w) else {
            return (
                f64::NAN,
                Some(format!(
                    "output {j} has shape {:?}, expected {:?}",
                    g.shape, w.shape
                )),
            );
        };
        worst = worst.max(c.rel_l2);
        if !c.within(tolerance) {
            return (
                worst,
                Some(format!(
                    "output {j} differs from {reference}: rel L2 {:.2e} (tolerance {tolerance:.0e}), {} non-finite mismatches",
                    c.rel_l2, c.non_finite_mismatches
                )),
            );
        }
    }
    (worst, None)
}

/// Compare `got` with the reference `want`; `None` when the shapes differ.
pub fn compare(got: &Tensor, want: &Tensor) -> Option<Comparison> {
    if got.shape != want.shape {
        return None;
    }
    let (mut diff2, mut ref2, mut max_abs, mut nonfinite) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for (&g, &w) in got.data.iter().zip(&want.data) {
        if g.is_finite() != w.is_finite() {
            nonfinite += 1;
            continue;
        }
        if !w.is_finite() {
            continue;
        }
        let d = g - w;
        diff2 += d * d;
        ref2 += w * w;
        max_abs = max_abs.max(d.abs());
    }
    let rel_l2 = if ref2 > 0.0 {
        (diff2 / ref2).sqrt()
    } else {
        diff2.sqrt()
    };
    Some(Comparison {
        rel_l2,
        max_abs,
        non_finite_mismatches: nonfinite,
    })
}
