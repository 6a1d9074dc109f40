//! The tuning stage: the search's graphs made concrete per shape bucket and
//! target GPU, timed on the build machine's GPU, and recorded in prism.lock.
//!
//! - [`buckets`]: the declared dim ranges cut into power-of-two buckets,
//!   the point each is tuned at, and the bucket of a launch's dims.
//! - [`instances`]: the verified candidates of the search with their
//!   parameters set (split factors), each verified again.
//! - [`cost`]: the analytic cost model on a hardware description (bytes
//!   over usable bandwidth, tensor flops over usable peak, idle SMs when
//!   the grid is small, launches): ranks the instances of a bucket.
//! - [`gpu`]: loading, running and timing generated kernels (cudarc).
//! - [`tuner`]: per bucket the model's best instances compiled, checked
//!   against the reference on the GPU and timed; the fastest correct one
//!   wins; the model's rank correlation.
//! - [`lock`]: prism.lock, the tuned choices committed for offline builds.
//! - [`resolve`]: what a build uses per workload, bucket and arch (the
//!   lock, a build-time tuning, or the cost model), as codegen variants
//!   and dispatch tables.
//!
//! The hardware descriptions the stage reads are data in
//! [`crate::ir::hardware`].

pub mod buckets;
pub mod cost;
pub mod gpu;
pub mod instances;
pub mod lock;
pub mod resolve;
pub mod tensor_map;
pub mod tiles;
pub mod tuner;
