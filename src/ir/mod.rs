//! The tensor-program IR: symbolic dims, dtypes, operators, graphs and the
//! validated workload set the front end produces.

pub mod dim;
pub mod dtype;
pub mod graph;
pub mod hardware;
pub mod op;
pub mod scalar;
pub mod workload;

pub use dim::{DimBindings, DimEvalError, DimExpr};
pub use dtype::DType;
pub use graph::{Graph, GraphBuilder, Input, Node, NodeId, Op, Output, ShapeError, type_string};
pub use op::{BinaryOp, ReduceOp, UnaryOp};
pub use scalar::ScalarExpr;
pub use workload::{Arch, DimDecl, DimValues, Spec, Target, Workload};
