//! The tuning stage: the search's graphs made concrete per shape bucket and
//! target GPU (issue 5, in progress).
//!
//! - [`buckets`]: the declared dim ranges cut into power-of-two buckets,
//!   the point each is tuned at, and the bucket of a launch's dims.
//!
//! The hardware descriptions the stage reads are data in
//! [`crate::ir::hardware`].

pub mod buckets;
