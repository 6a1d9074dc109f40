//! The tuning stage: the search's graphs made concrete per shape bucket and
//! target GPU (issue 5, in progress).
//!
//! - [`buckets`]: the declared dim ranges cut into power-of-two buckets,
//!   the point each is tuned at, and the bucket of a launch's dims.
//! - [`cost`]: the analytic cost model on a hardware description (bytes
//!   over usable bandwidth, tensor flops over usable peak, idle SMs when
//!   the grid is small, launches). Not yet used for the choice: the tuner
//!   will measure how well it ranks first.
//!
//! The hardware descriptions the stage reads are data in
//! [`crate::ir::hardware`].

pub mod buckets;
pub mod cost;
