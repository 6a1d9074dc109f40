//! Seeded random inputs. The values depend only on the seed, the input's
//! position and the element index: not on the thread count.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::tensor::Tensor;
use super::{EvalError, shapes_at};
use crate::ir::{DimBindings, Workload};

/// Elements drawn from one RNG stream.
const STREAM: usize = 1 << 16;

/// Normal random values with standard deviation `std`, rounded to `round`.
pub fn normal(shape: Vec<usize>, std: f64, seed: u64, round: impl Fn(f64) -> f64 + Sync) -> Tensor {
    let n: usize = shape.iter().product();
    let mut data = vec![0.0; n];
    data.par_chunks_mut(STREAM)
        .enumerate()
        .for_each(|(i, chunk)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(i as u64);
            for x in chunk.iter_mut() {
                let z: f64 = StandardNormal.sample(&mut rng);
                *x = round(z * std);
            }
        });
    Tensor { shape, data }
}

/// Random inputs for `w` at `dims`: normal with the declared `init` standard
/// deviation (1 by default), rounded to each input's dtype.
pub fn random_inputs(
    w: &Workload,
    dims: &DimBindings,
    seed: u64,
) -> Result<Vec<Tensor>, EvalError> {
    let shapes = shapes_at(&w.graph, dims)?;
    w.graph
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let std = match &w.init[i] {
                Some(s) => s.eval(dims)?,
                None => 1.0,
            };
            if !(std.is_finite() && std > 0.0) {
                return Err(EvalError::BadInit {
                    input: input.name.clone(),
                    std,
                });
            }
            let node = w
                .graph
                .nodes
                .iter()
                .position(|n| n.op == crate::ir::Op::Input(i))
                .ok_or(EvalError::Malformed("input without a node"))?;
            let dtype = input.dtype;
            let input_seed = seed ^ (0x9e37_79b9_7f4a_7c15u64.wrapping_mul(i as u64 + 1));
            Ok(normal(shapes[node].clone(), std, input_seed, move |v| {
                dtype.round(v)
            }))
        })
        .collect()
}
